//! The real binary's terminal UI, driven through tmux: what an admin's SSH session would see.
//!
//! Each test gets its own tmux server (`-L`), so tests run in parallel and never touch a user's
//! tmux. tmux is required: a missing tmux fails loudly rather than skipping, so CI cannot go
//! green without running these.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::{BIN, Daemon, damage_page, now_ms, status_field, try_json, wait};

static NEXT: AtomicUsize = AtomicUsize::new(0);

struct Tmux {
    socket: String,
    _dir: tempfile::TempDir,
    cfg: PathBuf,
}

/// A fresh directory holding a config (`monitoring`: lines for its `[monitoring]` table, or
/// nothing) whose database is in the same directory: (directory, config, database).
fn config_dir(monitoring: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = dir.path().join("config.toml");
    let db = dir.path().join("sysmon.db");
    let monitoring = if monitoring.is_empty() {
        String::new()
    } else {
        format!("[monitoring]\n{monitoring}")
    };
    std::fs::write(
        &cfg,
        format!(
            "{monitoring}[storage]\npath = {:?}\n",
            db.display().to_string()
        ),
    )
    .expect("write config");
    (dir, cfg, db)
}

fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Tmux {
    /// Start `sysmon ARGS` in a 120x40 pane with the given locale, with its own empty config. When sysmon exits, the pane
    /// prints its exit status and the terminal's canonical/echo modes, then idles.
    fn start(args: &str, lang: &str) -> Tmux {
        let (dir, cfg, _) = config_dir("");
        Tmux::start_with(dir, cfg, args, lang)
    }

    fn start_with(dir: tempfile::TempDir, cfg: PathBuf, args: &str, lang: &str) -> Tmux {
        Tmux::start_as(dir, cfg, "", args, lang)
    }

    /// `prefix` goes before the binary: `runuser -u NAME --` runs it as another user.
    fn start_as(
        dir: tempfile::TempDir,
        cfg: PathBuf,
        prefix: &str,
        args: &str,
        lang: &str,
    ) -> Tmux {
        assert!(
            tmux_available(),
            "tmux is not installed: the TUI end-to-end tests need it (apt-get install -y tmux)"
        );
        let socket = format!(
            "sysmon-e2e-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let script = format!(
            "env -u NO_COLOR LANG={lang} LC_ALL={lang} {prefix} {} --config {} {args}; \
             echo EXITED rc=$?; \
             echo MODES $(stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon -e echo -e -echo); \
             sleep 60",
            shell_quote(BIN),
            shell_quote(&cfg.display().to_string()),
        );
        let t = Tmux {
            socket,
            _dir: dir,
            cfg,
        };
        let ok = t
            .cmd(&[
                "new-session",
                "-d",
                "-x",
                "120",
                "-y",
                "40",
                "sh",
                "-c",
                &script,
            ])
            .status()
            .expect("run tmux");
        assert!(ok.success(), "tmux new-session failed");
        t
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket, "-f", "/dev/null"]).args(args);
        c.stdin(Stdio::null());
        c
    }

    fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "0"];
        args.extend_from_slice(keys);
        let ok = self.cmd(&args).status().expect("tmux send-keys");
        assert!(ok.success());
    }

    fn send_text(&self, text: &str) {
        let ok = self
            .cmd(&["send-keys", "-t", "0", "-l", text])
            .status()
            .expect("tmux send-keys");
        assert!(ok.success());
    }

    fn screen(&self) -> String {
        let out = self
            .cmd(&["capture-pane", "-p", "-t", "0"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Wait until the screen satisfies `cond`; panic with the screen if it never does.
    fn wait_for(&self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = self.screen();
            if cond(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_text(&self, needle: &str) -> String {
        self.wait_for(needle, |s| s.contains(needle))
    }

    /// The process list, filtered (still typing) down to the `sleep 300` with this pid.
    fn filter_to(&self, pid: u32) {
        self.send(&["p"]);
        self.wait_text("Processes: all users");
        self.send(&["/"]);
        self.send_text(&format!("pid={pid}"));
        self.wait_text("sleep 300");
    }

    fn config(&self) -> &Path {
        &self.cfg
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]).status();
    }
}

/// The shell's report after sysmon exited: exit status 0, and the tty back in canonical mode
/// with echo (raw mode undone), on the main screen (the UI's boxes are gone).
fn assert_exited_and_restored(t: &Tmux) {
    let s = t.wait_text("MODES");
    assert!(s.contains("EXITED rc=0"), "exit status:\n{s}");
    let modes = s
        .lines()
        .find(|l| l.starts_with("MODES"))
        .unwrap_or_default()
        .to_string();
    assert!(
        modes.contains(" icanon") && modes.contains(" echo"),
        "terminal left in raw mode: {modes:?}"
    );
    assert!(!s.contains("Users"), "still on the alternate screen:\n{s}");
}

#[test]
fn start_help_filter_and_quit_with_the_terminal_restored() {
    let t = Tmux::start("--interval 0.5", "C.UTF-8");
    // Under load a capture once caught a frame with the users pane reaching the hint bar and no
    // alerts pane (cause not found; not reproduced in 20 runs): wait for the whole main screen
    // rather than take the first frame that names the users pane.
    let s = t.wait_for("the main screen", |s| {
        s.contains("Users") && s.contains("Alerts")
    });
    assert!(s.contains("System") && s.contains("Alerts"), "{s}");
    assert!(s.contains("q quit"), "hint bar:\n{s}");

    t.send(&["?"]);
    t.wait_text("Help - any key closes");
    t.send(&["Escape"]);
    t.wait_for("the help to close", |s| !s.contains("Help - any key"));

    t.send(&["p"]);
    t.wait_text("Processes: all users");
    t.send(&["/"]);
    t.send_text("cmd=zzz-no-such-command");
    t.wait_text("no process matches");
    // Esc on its own: an Esc immediately followed by a key reads as Alt+key.
    t.send(&["Escape"]);
    t.wait_for("the filter to clear", |s| !s.contains("Filter:"));
    t.send(&["/"]);
    t.send_text("cmd=interval");
    let s = t.wait_text("Filter: cmd=interval");
    assert!(s.contains("sysmon --config"), "sysmon lists itself:\n{s}");
    t.send(&["Enter"]);
    t.wait_for("the filter to be kept", |s| {
        s.contains("Filter: cmd=interval ") || s.contains("Filter: cmd=interval  ")
    });
    t.send(&["Escape"]);
    t.wait_text("Alerts");

    t.send(&["q"]);
    assert_exited_and_restored(&t);
}

#[test]
fn ctrl_c_quits_cleanly() {
    let t = Tmux::start("--interval 0.5", "C.UTF-8");
    t.wait_text("Users");
    t.send(&["C-c"]);
    assert_exited_and_restored(&t);
}

#[test]
fn a_non_utf8_locale_gets_ascii_only() {
    let t = Tmux::start("--interval 0.5", "C");
    let s = t.wait_text("Users");
    assert!(s.contains("+-"), "ASCII borders:\n{s}");
    t.send(&["q"]);
    assert_exited_and_restored(&t);
}

#[test]
fn without_a_terminal_it_points_to_batch_mode() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, "").expect("write config");
    let mut child = Command::new(BIN)
        .args(["--config", &cfg.display().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sysmon");
    // A binary that ignored the missing terminal would run forever: bound the wait.
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("wait for sysmon").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sysmon without a terminal did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("sysmon output");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--batch"), "{err}");
}

fn alerts_json(cfg: &Path) -> Vec<serde_json::Value> {
    try_json(cfg, &["alerts", "--all", "--json"])
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

fn memory_alert(cfg: &Path) -> Option<serde_json::Value> {
    alerts_json(cfg)
        .into_iter()
        .find(|a| a["kind"] == "system" && a["metric"] == "memory")
}

/// A daemon with one open alert, on memory: every machine uses more than 0.1% of it, so the
/// alert opens at once, and it is the only one (CPU and disk limits out of reach).
fn daemon_with_a_memory_alert() -> (tempfile::TempDir, PathBuf, Daemon, i64) {
    let (dir, cfg, _) = config_dir(
        "interval_secs = 1\nmemory_threshold = 0.1\ncpu_threshold = 100.0\ndisk_threshold = 100.0\n",
    );
    let daemon = Daemon::start(&cfg);
    assert!(
        wait(45, || memory_alert(&cfg).is_some()),
        "the daemon opened no alert"
    );
    let id = memory_alert(&cfg)
        .and_then(|a| a["id"].as_i64())
        .expect("alert id");
    (dir, cfg, daemon, id)
}

#[test]
fn resolving_a_daemon_alert_in_the_tui_resolves_it_in_the_database() {
    let (dir, cfg, _daemon, id) = daemon_with_a_memory_alert();

    let t = Tmux::start_with(dir, cfg, "--interval 0.5", "C.UTF-8");
    let s = t.wait_text("memory");
    assert!(
        !s.contains("no database"),
        "the TUI reads the database:\n{s}"
    );
    // Focus the alerts pane and open alerts until the daemon's memory alert is on screen (a
    // busy machine may also have a CPU warning above it).
    t.send(&["Tab"]);
    let mut found = false;
    for _ in 0..5 {
        t.send(&["Enter"]);
        let s = t.wait_text("Esc back");
        if s.contains(&format!("database, id {id}")) {
            found = true;
            break;
        }
        t.send(&["Escape"]);
        t.wait_text("Alerts");
        t.send(&["j"]);
    }
    assert!(found, "alert {id} not listed:\n{}", t.screen());
    t.send(&["r"]);
    t.wait_text("y / Enter: yes");
    t.send(&["y"]);
    t.wait_text("1 alert(s) resolved");

    let row = memory_alert(t.config()).expect("the alert is still listed with --all");
    assert_eq!(row["id"], id);
    assert_eq!(row["state"], "resolved", "{row}");
    assert!(
        row["resolved_by"]
            .as_str()
            .is_some_and(|b| b.starts_with("operator:") && !b.starts_with("operator:operator:")),
        "{row}"
    );
    t.send(&["Escape"]);
    t.wait_for("the alert to leave the pane", |s| {
        !s.contains("system memory")
    });
    t.send(&["q"]);
    assert_exited_and_restored(&t);
}

#[test]
fn an_alert_resolved_elsewhere_stays_resolved_in_a_new_tui() {
    // It is resolved from the command line while the condition still holds. A TUI started
    // afterwards has its own tracker, which sees the same condition: while the daemon records,
    // the database alone decides what is open.
    let (dir, cfg, _daemon, id) = daemon_with_a_memory_alert();
    let out = Command::new(BIN)
        .args([
            "--config",
            &cfg.display().to_string(),
            "alerts",
            "resolve",
            &id.to_string(),
        ])
        .output()
        .expect("sysmon alerts resolve");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let t = Tmux::start_with(dir, cfg, "--interval 0.5", "C.UTF-8");
    t.wait_text("Alerts");
    // Several refreshes: the TUI's tracker has long seen memory over 0.1 % by then.
    std::thread::sleep(Duration::from_secs(3));
    let s = t.screen();
    assert!(
        !s.contains("system memory"),
        "the resolved alert is back:\n{s}"
    );
    // On a loaded host the daemon may also warn that CPU approaches its limit: the pane agrees
    // with `sysmon alerts` on however many are open, within a refresh.
    t.wait_for("the pane to agree with `sysmon alerts`", |s| {
        let open = alerts_json(t.config())
            .iter()
            .filter(|a| a["state"] != "resolved")
            .count();
        s.contains(&format!("Alerts {open} "))
    });
    t.send(&["q"]);
    assert_exited_and_restored(&t);
}

#[test]
fn readonly_refuses_to_change_alerts() {
    let t = Tmux::start("--interval 0.5 --readonly", "C.UTF-8");
    t.wait_text("Users");
    t.send(&["R"]);
    t.wait_text("read-only session");
    t.send(&["q"]);
    assert_exited_and_restored(&t);
}

#[test]
fn time_travel_and_history_charts_read_what_a_daemon_recorded() {
    let (dir, cfg, _) = config_dir("interval_secs = 1\n");
    let daemon = Daemon::start(&cfg);
    // Let the daemon record a few samples, then stop it so the record ends.
    assert!(
        wait(45, || status_field(&cfg, "samples").as_u64() >= Some(3)),
        "the daemon recorded nothing"
    );
    drop(daemon);

    let t = Tmux::start_with(dir, cfg, "--interval 0.5", "C.UTF-8");
    t.wait_text("Users");
    let live = |s: &str| !s.contains("HISTORY") && s.contains("Users");
    // J from the live screen goes back one step (an hour): before the first sample, so the
    // earliest one is shown; J again goes forward an hour, past the record: live again.
    t.send(&["J"]);
    let s = t.wait_text("HISTORY");
    assert!(s.contains("ago)") && s.contains("step 1h"), "{s}");
    t.send(&["J"]);
    t.wait_for("live again after J", live);
    t.send(&["t"]);
    t.wait_text("HISTORY");
    t.send(&["t"]);
    t.send(&["j"]);
    t.wait_text("HISTORY");
    t.send(&["L"]);
    t.wait_for("live again", live);
    // The charts read the same database.
    t.send(&["H"]);
    let s = t.wait_text("History 1h");
    assert!(s.contains("database"), "{s}");
    t.send(&["Escape"]);
    t.wait_for("the main screen", live);
    t.send(&["q"]);
    assert_exited_and_restored(&t);
}

/// A database holding three hours, one sample a minute, each sample's 1-minute load saying how
/// many minutes before `base` it was taken (0.60 = an hour before), and two users.
pub(crate) fn three_hours_recorded(db: &Path, base: i64) {
    use sysmon::model::{LoadAverage, Snapshot, Timestamp, UserStats};
    use sysmon::store::{Record, Store};
    use sysmon::track::TrackerState;
    let mut store = Store::open(db).expect("open the database");
    let tracker = TrackerState::default();
    let user = |uid: u32, name: &str, cpu: f64| UserStats {
        uid,
        name: name.into(),
        cpu_percent: cpu,
        cpu_cores: cpu / 100.0,
        memory_bytes: 1 << 30,
        memory_percent: 5.0,
        exited_cpu_cores: 0.0,
        rss_bytes: 1 << 30,
        memory_source: Default::default(),
        processes: 3,
        threads: 3,
        tracked: true,
        top_processes: Vec::new(),
        pids: Vec::new(),
        gpu: None,
    };
    for m in (0..=180i64).rev() {
        let mut snap = Snapshot {
            at: Timestamp(base - m * 60_000),
            interval_secs: 60.0,
            host: "e2e".into(),
            users: vec![user(2001, "alice", 30.0), user(2002, "bob", 60.0)],
            ..Snapshot::default()
        };
        snap.system.load = LoadAverage {
            one: m as f64 / 100.0,
            five: 0.0,
            fifteen: 0.0,
        };
        store
            .record(&Record {
                snapshot: &snap,
                events: &[],
                mails: &[],
                tracker: &tracker,
            })
            .expect("record a sample");
    }
}

#[test]
fn j_and_capital_j_step_through_the_past_by_the_range_and_the_charts_pick_a_user() {
    let (dir, cfg, db) = config_dir("");
    let base = now_ms();
    three_hours_recorded(&db, base);

    let t = Tmux::start_with(dir, cfg, "--interval 0.5", "C.UTF-8");
    t.wait_text("Users");
    // Each step lands on the sample whose load names its age in minutes (hundredths).
    let at = |minutes: &str| {
        let banner = format!("load {minutes} 0.00 0.00");
        t.wait_for(&banner, |s| s.contains("HISTORY") && s.contains(&banner))
    };
    t.send(&["J"]);
    let s = at("0.60");
    assert!(s.contains("step 1h"), "the banner names the step:\n{s}");
    t.send(&["j"]);
    at("1.20");
    t.send(&["J"]);
    at("0.60");
    // A shorter range is a shorter step.
    t.send(&["["]);
    t.wait_text("step 15m");
    t.send(&["j"]);
    at("0.75");
    t.send(&["<"]);
    at("0.90");
    t.send(&["Right"]);
    t.wait_text("step 1h");
    t.send(&["J"]);
    at("0.30");
    // t and T still step one recorded sample.
    t.send(&["t"]);
    at("0.31");
    t.send(&["T"]);
    at("0.30");
    t.send(&["L"]);
    t.wait_for("live again", |s| {
        !s.contains("HISTORY") && s.contains("Users")
    });
    // b takes what an admin types: a compound duration, and a time before anything recorded,
    // which lands on the first sample and says so.
    t.send(&["b"]);
    t.send_text("1h30m");
    t.send(&["Enter"]);
    at("0.90");
    t.send(&["b"]);
    t.send_text("99999h");
    t.send(&["Enter"]);
    t.wait_text("nothing is recorded that far back: the first sample");
    t.send(&["L"]);
    t.wait_for("live again", |s| {
        !s.contains("HISTORY") && s.contains("Users")
    });

    // The charts span the same range; u lists the users recorded in it.
    t.send(&["Tab"]);
    t.send(&["H"]);
    t.wait_text("History 1h - no user (u picks one) - database");
    t.send(&["u"]);
    let s = t.wait_text("Chart a user (1h)");
    assert!(
        s.contains("alice") && s.contains("bob") && s.contains("none: the machine only"),
        "{s}"
    );
    t.send(&["Down"]);
    t.send(&["Down"]);
    t.send(&["Enter"]);
    let s = t.wait_text("History 1h - user bob");
    assert!(s.contains("bob CPU"), "{s}");
    // Esc in the picker keeps the user.
    t.send(&["u"]);
    t.wait_text("Chart a user");
    t.send(&["Escape"]);
    t.wait_for("the picker to close", |s| !s.contains("Chart a user"));
    assert!(t.screen().contains("History 1h - user bob"));
    t.send(&["q"]);
    assert_exited_and_restored(&t);
}

#[test]
fn k_sends_the_chosen_signal_to_the_chosen_process() {
    let mut victim = Command::new("sleep")
        .arg("300")
        .stdin(Stdio::null())
        .spawn()
        .expect("start sleep");
    let pid = victim.id();
    let t = Tmux::start("--interval 0.5", "C.UTF-8");
    t.wait_text("Users");
    t.filter_to(pid);
    t.send(&["Enter"]);
    t.send(&["k"]);
    t.wait_text(&format!("Signal process {pid}"));
    t.send(&["Enter"]);
    t.wait_text(&format!("Send SIGTERM to process {pid}"));
    t.send(&["y"]);
    t.wait_text(&format!("sent SIGTERM to {pid}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = victim.try_wait().expect("wait for sleep") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = victim.kill();
            panic!("sleep {pid} is still running");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(15), "{status:?}");
    t.send(&["q"]);
    assert_exited_and_restored(&t);
}

/// A `sleep 300` to act on, killed when the test ends.
struct Victim(std::process::Child);

impl Victim {
    fn start() -> Victim {
        Victim(
            Command::new("sleep")
                .arg("300")
                .stdin(Stdio::null())
                .spawn()
                .expect("start sleep"),
        )
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The nice value the kernel reports for `pid` (field 19 of /proc/PID/stat).
fn nice_of(pid: u32) -> i64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    after
        .split_whitespace()
        .nth(16)
        .and_then(|n| n.parse().ok())
        .expect("nice field")
}

#[test]
fn f8_renices_the_chosen_process_after_a_confirmation() {
    let victim = Victim::start();
    let pid = victim.pid();
    assert_eq!(nice_of(pid), 0);
    let t = Tmux::start("--interval 0.5", "C.UTF-8");
    t.wait_text("Users");
    t.filter_to(pid);
    t.send(&["Enter", "F8"]);
    t.wait_text("nice now 0   set to 1");
    t.send(&["F8", "F8", "Up"]);
    t.wait_text("nice now 0   set to 2");
    t.send(&["Enter"]);
    t.wait_text(&format!(
        "Renice process {pid} (sleep, user root) from 0 to 2?"
    ));
    t.send(&["y"]);
    t.wait_text(&format!("process {pid} now has nice 2"));
    assert_eq!(nice_of(pid), 2, "the kernel agrees");
    // The details view reads the new value back.
    t.send(&["Enter"]);
    t.wait_text(&format!("Process {pid} (sleep)"));
    t.wait_text("nice 2");
    t.send(&["q"]);
    assert_exited_and_restored(&t);
}

#[test]
fn readonly_refuses_to_renice() {
    let victim = Victim::start();
    let pid = victim.pid();
    let t = Tmux::start("--interval 0.5 --readonly", "C.UTF-8");
    t.wait_text("READ-ONLY");
    t.filter_to(pid);
    t.send(&["Enter", "F7"]);
    t.wait_text("read-only session (--readonly): no renicing");
    assert_eq!(nice_of(pid), 0);
    t.send(&["q"]);
    assert_exited_and_restored(&t);
}

/// The cursor is put on one process, then the whole list comes back and re-sorts by CPU on
/// every refresh around it; Enter still opens that process.
#[test]
fn the_cursor_follows_its_process_while_the_list_resorts() {
    let victim = Victim::start();
    let pid = victim.pid();
    let t = Tmux::start("--interval 0.5", "C.UTF-8");
    t.wait_text("Users");
    t.filter_to(pid);
    // Ctrl-U erases the filter and keeps typing: every process is listed again.
    t.send(&["C-u"]);
    t.wait_for("the whole list", |s| !s.contains(&format!("pid={pid}")));
    t.send(&["Enter"]);
    // Several refreshes re-sort the list while nothing is pressed.
    std::thread::sleep(Duration::from_secs(3));
    t.send(&["Enter"]);
    t.wait_text(&format!("Process {pid} (sleep)"));
    t.send(&["q"]);
    assert_exited_and_restored(&t);
}

/// tmux passes a terminal's mouse reports through to the program: a click on the PID header
/// sorts by PID, a second one reverses; a click on a row selects it.
#[test]
fn mouse_clicks_sort_by_a_header_and_select_a_row() {
    let t = Tmux::start("--interval 0.5", "C.UTF-8");
    t.wait_text("Users");
    t.send(&["p"]);
    t.wait_text("Processes: all users");
    // SGR mouse report: button 0 pressed at column 3, row 4 (1-based): the header line.
    let click = |col: u16, row: u16| {
        t.send_text(&format!("\x1b[<0;{col};{row}M"));
        t.send_text(&format!("\x1b[<0;{col};{row}m"));
    };
    click(3, 4);
    t.wait_text("sort PID low first");
    click(3, 4);
    t.wait_text("sort PID high first");
    click(3, 4);
    let s = t.wait_text("sort PID low first");
    // The third row of the list is on screen row 7 (1-based); its pid is the first word.
    let third: String = s
        .lines()
        .nth(6)
        .and_then(|l| l.trim_start_matches('│').split_whitespace().next())
        .unwrap_or_default()
        .to_string();
    click(40, 7);
    t.send(&["Enter"]);
    t.wait_text(&format!("Process {third} ("));
    t.send(&["q"]);
    assert_exited_and_restored(&t);
}

/// F2 in the process list: hide USER, and the choice lands in the config file the session read,
/// the rest of the file kept.
#[test]
fn chosen_columns_are_saved_to_the_config_file() {
    let t = Tmux::start("--interval 0.5", "C.UTF-8");
    t.wait_text("Users");
    let before = std::fs::read_to_string(t.config()).expect("config");
    t.send(&["p"]);
    t.wait_text("Processes: all users");
    t.send(&["F2"]);
    t.wait_text("Columns");
    t.send(&["Down", "Space", "Enter"]);
    t.wait_text("columns saved to");
    let after = std::fs::read_to_string(t.config()).expect("config");
    assert!(
        after.contains(
            r#"columns = ["pid", "state", "cpu", "mem", "res", "threads", "time", "command"]"#
        ),
        "{after}"
    );
    for line in before.lines() {
        assert!(after.contains(line), "{line:?} was lost:\n{after}");
    }
    let s = t.wait_for("the list without USER", |s| !s.contains(" USER "));
    assert!(s.contains("PID"), "{s}");
    t.send(&["q"]);
    assert_exited_and_restored(&t);
}

/// A user (uid >= 1000) for the tests that need someone other than root; created once.
fn unprivileged_user() -> &'static str {
    const NAME: &str = "smtui11";
    let exists = Command::new("id")
        .arg(NAME)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !exists {
        // Parallel tests may race to create it: a failure is fine if it exists afterwards.
        let _ = Command::new("useradd")
            .args(["-M", "-N", "-K", "UID_MIN=1000", "-s", "/bin/sh", NAME])
            .status();
    }
    NAME
}

/// A user who may not read the daemon's database is told so, and what to do, rather than "no
/// database" (before: a cut-off title in the alerts pane, and `t` said "no database").
#[test]
fn a_database_this_user_may_not_read_says_permission_denied() {
    use std::os::unix::fs::PermissionsExt;
    let user = unprivileged_user();
    let (dir, cfg, db) = config_dir("");
    std::fs::write(&db, b"").expect("database file");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).expect("chmod db");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).expect("chmod");
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).expect("chmod cfg");
    let t = Tmux::start_as(
        dir,
        cfg,
        &format!("runuser -u {user} --"),
        "--interval 0.5",
        "C.UTF-8",
    );
    let s = t.wait_text("permission denied");
    // A loaded host may have an alert of this session's own.
    assert!(s.contains(" (this session) "), "{s}");
    assert!(s.contains("Sharing the database"), "{s}");
    t.send(&["t"]);
    t.wait_text("nothing recorded to travel to:");
    t.send(&["q"]);
    assert_exited_and_restored(&t);
}

/// The TUI reads a daemon's database but never writes to a damaged one or gives up the live
/// screen because of it: what it cannot read it says it cannot read.
#[test]
fn a_damaged_database_leaves_the_tui_running_and_says_so() {
    let live = |s: &str| !s.contains("HISTORY") && s.contains("Users");
    for object in ["samples", "alerts"] {
        let (dir, cfg, db) = config_dir("");
        let base = now_ms();
        three_hours_recorded(&db, base);
        damage_page(&db, object);
        let damaged = std::fs::read(&db).expect("read");

        let t = Tmux::start_with(dir, cfg, "--interval 0.5", "C.UTF-8");
        t.wait_for("the main screen", live);
        t.send(&["J"]);
        if object == "samples" {
            t.wait_text("reading a recorded sample: database disk image is malformed");
        } else {
            t.wait_text("load 0.60 0.00 0.00");
        }
        t.send(&["L"]);
        t.wait_for("live again", live);
        t.send(&["Tab"]);
        t.send(&["H"]);
        if object == "samples" {
            t.wait_text(
                "cannot read history: reading raw samples: database disk image is malformed",
            );
        } else {
            t.wait_text("History 1h");
        }
        t.send(&["Escape"]);
        t.wait_for("the main screen", live);
        t.send(&["q"]);
        assert_exited_and_restored(&t);
        assert_eq!(
            std::fs::read(&db).expect("read"),
            damaged,
            "{object}: the file changed"
        );
    }
}
