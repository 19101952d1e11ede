//! `sysmon --headless` as systemd runs it: the real binary, a database on disk, a real SMTP
//! server on loopback, signals, reloads, and other processes acting on its alerts.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::server::{Options, Received, Security, TestCert, TestServer};
use crate::support::{
    Daemon, base, cli, damage_page, free_port, json, now_ms, status_field, try_json, wait,
};

/// Where mail goes: a STARTTLS server on loopback whose self-signed certificate is trusted
/// through `email.ca_file`.
struct MailSetup<'a> {
    port: u16,
    ca_file: &'a Path,
}

/// A configuration whose system memory threshold every machine exceeds, so a HIGH system
/// memory alert opens on the first real sample.
fn config(db: &Path, mail: Option<&MailSetup<'_>>, extra: &str) -> String {
    let email = match mail {
        Some(m) => format!(
            "[email]\nenabled = true\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\ntls = \"starttls\"\n\
             ca_file = \"{}\"\nfrom = \"sysmon@test.invalid\"\nto = [\"admin@test.invalid\"]\n",
            m.port,
            m.ca_file.display()
        ),
        None => String::new(),
    };
    format!(
        "[monitoring]\ninterval_secs = 1\nmemory_threshold = 0.1\n{extra}\n\
         [storage]\npath = \"{}\"\n{email}",
        db.display()
    )
}

fn open_memory_alert(cfg: &Path) -> Option<Value> {
    let alerts = try_json(cfg, &["alerts", "--json"])?;
    alerts
        .as_array()?
        .iter()
        .find(|a| a["kind"] == "system" && a["metric"] == "memory" && a["state"] != "resolved")
        .cloned()
}

struct Setup {
    _dir: tempfile::TempDir,
    cfg: PathBuf,
    db: PathBuf,
    cert: TestCert,
}

/// A database and config in a fresh directory; with `smtp_port`, mail goes to a STARTTLS
/// server on that port.
fn setup(smtp_port: Option<u16>, extra: &str) -> Setup {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("sysmon.db");
    let cfg = dir.path().join("config.toml");
    let cert = TestCert::generate();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &cert.pem).expect("ca");
    let mail = smtp_port.map(|port| MailSetup {
        port,
        ca_file: &ca_file,
    });
    std::fs::write(&cfg, config(&db, mail.as_ref(), extra)).expect("config");
    Setup {
        _dir: dir,
        cfg,
        db,
        cert,
    }
}

fn starttls_server(port: u16, s: &Setup) -> TestServer {
    TestServer::start_on(port, Options::new(Security::StartTls), Some(&s.cert))
}

/// Every mail the server receives within `secs`, until `done` says enough.
fn collect_mail(
    server: &TestServer,
    secs: u64,
    mut done: impl FnMut(&[Received]) -> bool,
) -> Vec<Received> {
    let mut got = Vec::new();
    wait(secs, || {
        got.extend(server.drain());
        done(&got)
    });
    got
}

fn integrity(db: &Path) -> String {
    let conn = rusqlite::Connection::open(db).expect("open db");
    conn.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
        .expect("integrity_check")
}

#[test]
fn records_alerts_mails_them_and_stops_cleanly_on_sigterm() {
    let port = free_port();
    let s = setup(Some(port), "");
    let smtp = starttls_server(port, &s);
    let mut d = Daemon::start(&s.cfg);
    // Only the memory alert is certain; a busy test machine may raise a CPU alert as well.
    let is_memory = |m: &Received| m.header("Subject").is_some_and(|s| s.contains("memory"));
    let mails = collect_mail(&smtp, 20, |m| m.iter().any(is_memory));
    let mail = mails
        .iter()
        .find(|m| is_memory(m))
        .unwrap_or_else(|| panic!("no memory alert mail; log:\n{}", d.log()));
    assert!(mail.tls, "delivered over STARTTLS");
    let subject = mail.header("Subject").expect("subject");
    assert!(subject.starts_with("[sysmon] HIGH "), "{subject}");
    assert!(subject.contains("memory"), "{subject}");
    assert_eq!(mail.to, ["admin@test.invalid"]);
    let body = mail.body();
    for needle in ["0.1%", "Load", "Uptime"] {
        assert!(body.contains(needle), "{needle} missing from\n{body}");
    }
    let alert = open_memory_alert(&s.cfg).expect("the alert is in the database");
    assert_eq!(alert["severity"], "high");

    let status = json(&s.cfg, &["status", "--json"]);
    assert_eq!(status["daemon_pid"], d.child.id());
    assert!(status["open_alerts"].as_u64() >= Some(1), "{status}");
    assert!(
        status["last_sample_age_secs"].as_f64() < Some(10.0),
        "{status}"
    );

    d.signal(rustix::process::Signal::TERM);
    let (code, took) = d.wait_exit(5).expect("exits after SIGTERM");
    assert_eq!(code, 0, "{}", d.log());
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(
        d.log().contains("stopped: everything recorded"),
        "{}",
        d.log()
    );
    assert_eq!(integrity(&s.db), "ok");
}

#[test]
fn a_second_instance_is_refused_with_the_first_ones_pid() {
    let s = setup(None, "");
    let d = Daemon::start(&s.cfg);
    assert!(d.wait_log("started", 30), "{}", d.log());
    let (code, _, err) = cli(&s.cfg, &["--headless"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("pid {}", d.child.id())), "{err}");
}

#[test]
fn the_database_is_never_world_readable_and_an_admin_group_can_share_it() {
    use std::os::unix::fs::PermissionsExt;
    for (umask, want) in [("077", 0o600), ("007", 0o660), ("022", 0o640)] {
        let s = setup(None, "");
        let mut d = Daemon::start_with_umask(&s.cfg, umask);
        assert!(d.wait_log("started", 30), "{}", d.log());
        let shm = format!("{}-shm", s.db.display());
        assert!(wait(30, || Path::new(&shm).exists()), "{}", d.log());
        for file in [
            s.db.display().to_string(),
            format!("{}-wal", s.db.display()),
            shm,
        ] {
            let mode = std::fs::metadata(&file).expect(&file).permissions().mode() & 0o777;
            assert_eq!(mode, want, "{file} under umask {umask}: {mode:o}");
        }
        d.signal(rustix::process::Signal::TERM);
        assert_eq!(d.wait_exit(10).map(|e| e.0), Some(0), "{}", d.log());
    }
}

#[test]
fn a_bad_reload_keeps_the_running_config_and_a_good_one_applies() {
    let s = setup(None, "");
    let mut d = Daemon::start(&s.cfg);
    assert!(d.wait_log("started", 30), "{}", d.log());
    std::fs::write(&s.cfg, "[monitoring]\ncpu_threshold = 150\n").expect("write bad");
    assert!(d.wait_log("reload failed", 10), "{}", d.log());
    assert!(d.log().contains("monitoring.cpu_threshold"), "{}", d.log());
    assert!(d.child.try_wait().expect("wait").is_none(), "still running");

    std::fs::write(&s.cfg, config(&s.db, None, "cpu_threshold = 95.0")).expect("write good");
    d.signal(rustix::process::Signal::HUP);
    assert!(
        d.wait_log("monitoring.cpu_threshold: 80.0 -> 95.0", 10),
        "{}",
        d.log()
    );
    // Still sampling after both reloads.
    let before = status_field(&s.cfg, "last_sample").as_i64();
    assert!(wait(10, || status_field(&s.cfg, "last_sample").as_i64() > before));
}

#[test]
fn an_alert_resolved_from_another_process_stays_resolved() {
    let s = setup(None, "");
    let d = Daemon::start(&s.cfg);
    assert!(
        wait(45, || open_memory_alert(&s.cfg).is_some()),
        "{}",
        d.log()
    );
    let id = open_memory_alert(&s.cfg)
        .and_then(|a| a["id"].as_i64())
        .expect("id");
    let (code, _, err) = cli(&s.cfg, &["alerts", "resolve", &id.to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        d.wait_log(&format!("alert {id} resolved by"), 10),
        "{}",
        d.log()
    );
    // The condition still holds, yet over the next ticks the daemon opens nothing again.
    std::thread::sleep(Duration::from_secs(3));
    assert!(open_memory_alert(&s.cfg).is_none(), "{}", d.log());
    let all = json(&s.cfg, &["alerts", "--all", "--json"]);
    let row = all
        .as_array()
        .and_then(|a| a.iter().find(|r| r["id"] == id))
        .expect("resolved row listed with --all");
    assert_eq!(row["state"], "resolved");
    let me = uzers::get_current_username()
        .map(|n| n.to_string_lossy().into_owned())
        .expect("this user's name");
    assert_eq!(
        row["resolved_by"],
        format!("operator:{me}"),
        "one prefix: {row}"
    );
    let (code, _, _) = cli(&s.cfg, &["alerts", "resolve", "999999"]);
    assert_eq!(code, 1, "an unknown alert id is an error");
}

#[test]
fn smtp_down_then_up_delivers_every_mail_exactly_once() {
    let port = free_port();
    let s = setup(Some(port), "");
    let d = Daemon::start(&s.cfg);
    assert!(
        wait(45, || status_field(&s.cfg, "outbox_backlog").as_u64()
            >= Some(1)),
        "{}",
        d.log()
    );
    let smtp = starttls_server(port, &s);
    let msgs = collect_mail(&smtp, 60, |_| status_field(&s.cfg, "outbox_backlog") == 0);
    assert_eq!(status_field(&s.cfg, "outbox_backlog"), 0, "{}", d.log());
    std::thread::sleep(Duration::from_secs(2));
    let msgs: Vec<Received> = msgs.into_iter().chain(smtp.drain()).collect();
    assert!(!msgs.is_empty());
    let ids = message_ids(&msgs);
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(ids.len(), msgs.len(), "every mail has a Message-ID");
    assert_eq!(unique.len(), ids.len(), "no mail delivered twice: {ids:?}");
}

#[test]
fn sigkill_leaves_a_sound_database_and_loses_no_queued_mail() {
    let port = free_port();
    let s = setup(Some(port), "");
    let mut d = Daemon::start(&s.cfg);
    assert!(
        wait(45, || status_field(&s.cfg, "outbox_backlog").as_u64()
            >= Some(1)),
        "{}",
        d.log()
    );
    std::thread::sleep(Duration::from_millis(1500)); // kill mid-run, between or during writes
    d.signal(rustix::process::Signal::KILL);
    d.wait_exit(5).expect("killed");
    assert_eq!(integrity(&s.db), "ok");
    let queued = json(&s.cfg, &["status", "--json"])["outbox_backlog"]
        .as_u64()
        .expect("backlog");
    assert!(queued >= 1);

    let smtp = starttls_server(port, &s);
    let d2 = Daemon::start(&s.cfg);
    let got = collect_mail(&smtp, 60, |m| m.len() as u64 >= queued);
    assert!(
        got.len() as u64 >= queued,
        "{} of {queued}: {}",
        got.len(),
        d2.log()
    );
    assert!(d2.log().contains("started"));
}

/// Outbox rows the daemon has marked sent.
fn sent_rows(db: &Path) -> i64 {
    rusqlite::Connection::open(db)
        .and_then(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL",
                [],
                |r| r.get(0),
            )
        })
        .unwrap_or(0)
}

fn message_ids(mails: &[Received]) -> Vec<String> {
    mails
        .iter()
        .filter_map(|m| m.header("Message-ID"))
        .collect()
}

#[test]
fn a_mail_the_server_accepted_is_recorded_before_quit_and_never_sent_twice() {
    let port = free_port();
    let s = setup(Some(port), "");
    let mut options = Options::new(Security::StartTls);
    options.stall_after_data = true;
    let stalling = TestServer::start_on(port, options, Some(&s.cert));
    let mut d = Daemon::start(&s.cfg);
    let first = collect_mail(&stalling, 45, |m| !m.is_empty());
    assert!(!first.is_empty(), "no mail reached the server: {}", d.log());
    // The server has answered 250 to the message and now answers nothing, not even QUIT. The
    // delivery must be on record already; waiting for the goodbye would leave it unrecorded for
    // as long as the server stalls.
    assert!(
        wait(10, || sent_rows(&s.db) >= 1),
        "the accepted mail is not marked sent while the server stalls after accepting it: {}",
        d.log()
    );
    d.signal(rustix::process::Signal::KILL);
    d.wait_exit(5).expect("killed");
    let mut got: Vec<Received> = first.into_iter().chain(stalling.drain()).collect();
    drop(stalling);

    let smtp = starttls_server(port, &s);
    let d2 = Daemon::start(&s.cfg);
    assert!(
        wait(45, || status_field(&s.cfg, "outbox_backlog") == 0),
        "{}",
        d2.log()
    );
    std::thread::sleep(Duration::from_secs(2));
    got.extend(smtp.drain());
    let ids = message_ids(&got);
    assert_eq!(ids.len(), got.len(), "every mail has a Message-ID");
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        ids.len(),
        "a mail was delivered twice: {ids:?}"
    );
}

/// systemd's `RestartPreventExitStatus=` in the shipped unit.
fn unit_prevents_restart_on(code: i32) -> bool {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sysmon.service"),
    )
    .expect("unit");
    unit.lines()
        .filter_map(|l| l.strip_prefix("RestartPreventExitStatus="))
        .flat_map(|v| v.split_whitespace())
        .any(|c| c == code.to_string())
}

#[test]
fn a_database_a_restart_cannot_fix_exits_2_which_systemd_does_not_restart() {
    // Written by a newer sysmon.
    let s = setup(None, "");
    let conn = rusqlite::Connection::open(&s.db).expect("create db");
    conn.execute_batch(
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL);
         INSERT INTO schema_version VALUES (999, 0);",
    )
    .expect("newer schema");
    drop(conn);
    let mut d = Daemon::start(&s.cfg);
    assert_eq!(d.wait_exit(20).map(|e| e.0), Some(2), "{}", d.log());
    assert!(d.log().contains("newer than this sysmon"), "{}", d.log());

    // Not a SQLite file at all (storage.path pointing at the wrong file).
    let s = setup(None, "");
    std::fs::write(&s.db, vec![b'x'; 8192]).expect("write");
    let mut d = Daemon::start(&s.cfg);
    assert_eq!(d.wait_exit(20).map(|e| e.0), Some(2), "{}", d.log());
    assert!(d.log().contains("not a database"), "{}", d.log());
    assert_eq!(std::fs::read(&s.db).expect("kept"), vec![b'x'; 8192]);

    // A directory where the file should be: it cannot be opened whoever runs the daemon.
    let s = setup(None, "");
    std::fs::create_dir(&s.db).expect("dir");
    let mut d = Daemon::start(&s.cfg);
    assert_eq!(d.wait_exit(20).map(|e| e.0), Some(2), "{}", d.log());
    assert!(d.log().contains("cannot open"), "{}", d.log());

    assert!(unit_prevents_restart_on(2));
}

/// A small tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// None (and the reason) when this machine does not let the test mount one.
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }

    /// Write a file until the file system has no space left.
    fn fill(&self) -> PathBuf {
        use std::io::Write as _;
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).expect("filler");
        let block = vec![0xa5u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let small = [0u8; 512];
        while f.write_all(&small).is_ok() {}
        let _ = f.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

fn memory_mails(mails: &[Received]) -> usize {
    mails
        .iter()
        .filter(|m| m.header("Subject").is_some_and(|s| s.contains("memory")))
        .count()
}

#[test]
fn an_alert_raised_while_the_disk_is_full_is_mailed_at_once_and_recorded_once() {
    let port = free_port();
    let s = setup(Some(port), "");
    let dir = s.cfg.parent().expect("dir").to_path_buf();
    let fs = match Tmpfs::mount(&dir.join("small"), "4m") {
        Ok(fs) => fs,
        Err(e) => {
            eprintln!("SKIPPED: cannot mount a tmpfs here ({e}); this test needs root");
            return;
        }
    };
    let db = dir.join("small/sysmon.db");
    let mail = MailSetup {
        port,
        ca_file: &dir.join("ca.pem"),
    };
    let quiet =
        config(&db, Some(&mail), "").replace("memory_threshold = 0.1", "memory_threshold = 99.9");
    std::fs::write(&s.cfg, &quiet).expect("config");
    let smtp = starttls_server(port, &s);
    let mut d = Daemon::start(&s.cfg);
    assert!(
        wait(30, || status_field(&s.cfg, "samples").as_u64() >= Some(2)),
        "{}",
        d.log()
    );

    let filler = fs.fill();
    assert!(
        d.wait_log("cannot write to", 30),
        "the database stayed writable on a full file system: {}",
        d.log()
    );
    // The user goes over the limit (a memory threshold every machine exceeds) while nothing can
    // be written.
    std::fs::write(&s.cfg, config(&db, Some(&mail), "")).expect("config");
    d.signal(rustix::process::Signal::HUP);
    let mut got = collect_mail(&smtp, 30, |m| memory_mails(m) >= 1);
    assert_eq!(
        memory_mails(&got),
        1,
        "the alert was not mailed while the disk was full: {}",
        d.log()
    );
    assert!(!d.log().contains("database writable again"), "{}", d.log());

    std::fs::remove_file(&filler).expect("free space");
    assert!(d.wait_log("database writable again", 30), "{}", d.log());
    assert!(
        wait(30, || status_field(&s.cfg, "outbox_backlog") == 0),
        "{}",
        d.log()
    );
    let conn = rusqlite::Connection::open(&db).expect("db");
    let rows: Vec<Option<i64>> = conn
        .prepare("SELECT sent_at FROM outbox WHERE subject LIKE '%memory%'")
        .and_then(|mut st| {
            st.query_map([], |r| r.get(0))
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        })
        .expect("outbox");
    assert_eq!(rows.len(), 1, "the mail is recorded once: {rows:?}");
    assert!(rows[0].is_some(), "and recorded as sent");
    std::thread::sleep(Duration::from_secs(3));
    got.extend(smtp.drain());
    assert_eq!(
        memory_mails(&got),
        1,
        "no second copy after the disk had room"
    );
    d.signal(rustix::process::Signal::TERM);
    assert_eq!(d.wait_exit(10).map(|e| e.0), Some(0), "{}", d.log());
}

#[test]
fn a_damaged_database_is_refused_with_exit_2_reported_by_status_and_never_changed() {
    // A database with samples, an alert and queued mail (the mail server is down).
    let port = free_port();
    let s = setup(Some(port), "");
    let mut d = Daemon::start(&s.cfg);
    assert!(
        wait(45, || status_field(&s.cfg, "outbox_backlog").as_u64()
            >= Some(1)
            && status_field(&s.cfg, "samples").as_u64() >= Some(3)),
        "{}",
        d.log()
    );
    d.signal(rustix::process::Signal::TERM);
    assert_eq!(d.wait_exit(10).map(|e| e.0), Some(0), "{}", d.log());
    let (code, _, err) = cli(&s.cfg, &["status"]);
    assert_eq!(code, 0, "a sound database: {err}");

    for object in ["samples", "outbox", "alerts", "outbox_due"] {
        let copy = s.db.with_file_name(format!("{object}.db"));
        std::fs::copy(&s.db, &copy).expect("copy");
        damage_page(&copy, object);
        let damaged = std::fs::read(&copy).expect("read");
        let cfg = s.cfg.with_file_name(format!("{object}.toml"));
        std::fs::write(
            &cfg,
            std::fs::read_to_string(&s.cfg)
                .expect("config")
                .replace(&s.db.display().to_string(), &copy.display().to_string()),
        )
        .expect("config");

        let mut d = Daemon::start(&cfg);
        assert_eq!(
            d.wait_exit(30).map(|e| e.0),
            Some(2),
            "{object}: a damaged database must stop the daemon for good: {}",
            d.log()
        );
        let log = d.log();
        assert!(
            log.contains("is damaged") && log.contains(&copy.display().to_string()),
            "{object}: {log}"
        );
        let (code, _, err) = cli(&cfg, &["status"]);
        assert_ne!(code, 0, "{object}: sysmon status on a damaged database");
        assert!(err.contains("damaged"), "{object}: {err}");
        assert_eq!(
            std::fs::read(&copy).expect("read"),
            damaged,
            "{object}: the damaged file was changed"
        );
    }
}

/// `GET path` as the raw answer, status line included.
fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .expect("request");
    let mut answer = String::new();
    let _ = c.read_to_string(&mut answer);
    answer
}

#[test]
fn damage_found_while_running_is_reported_loudly_and_alerts_are_still_mailed() {
    let port = free_port();
    let s = setup(Some(port), "");
    let dir = s.cfg.parent().expect("dir").to_path_buf();
    let mail = MailSetup {
        port,
        ca_file: &dir.join("ca.pem"),
    };
    // Three hours of history, so that the samples table spans pages under a root page that new
    // samples read but do not rewrite.
    let now = now_ms();
    crate::tui::three_hours_recorded(&s.db, now - 60_000);
    let http_port = free_port();
    let http = format!("[http]\nenabled = true\nlisten = \"127.0.0.1:{http_port}\"\n");
    let alerting = config(&s.db, Some(&mail), "") + &http;
    let quiet = alerting.replace("memory_threshold = 0.1", "memory_threshold = 99.9");
    std::fs::write(&s.cfg, &quiet).expect("config");
    let smtp = starttls_server(port, &s);
    let mut d = Daemon::start(&s.cfg);
    assert!(d.wait_log("started", 30), "{}", d.log());
    let (code, _, err) = cli(&s.cfg, &["status"]);
    assert_eq!(code, 0, "{err}");

    // A stray write lands on the samples table's root page; another writer then changes the
    // schema, so the daemon reads its pages afresh.
    let conn = rusqlite::Connection::open(&s.db).expect("open");
    conn.busy_timeout(Duration::from_secs(5)).expect("busy");
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint");
    damage_page(&s.db, "samples");
    conn.execute_batch("CREATE TABLE stray_write (x INTEGER)")
        .expect("touch");
    drop(conn);
    assert!(
        d.wait_log("DATABASE DAMAGED", 30),
        "the damage was not reported: {}",
        d.log()
    );
    let (code, _, err) = cli(&s.cfg, &["status"]);
    assert_ne!(code, 0, "sysmon status on the damaged database");
    assert!(err.contains("damaged"), "{err}");
    let health = http_get(http_port, "/health");
    assert!(
        health.starts_with("HTTP/1.1 503")
            && health.contains("\"status\":\"degraded\"")
            && health.contains("\"state\":\"damaged\""),
        "{health}"
    );
    let metrics = http_get(http_port, "/metrics");
    assert!(metrics.contains("\nsysmon_store_damaged 1\n"), "{metrics}");

    // Still monitoring and mailing: an alert raised now is delivered.
    std::fs::write(&s.cfg, alerting).expect("config");
    d.signal(rustix::process::Signal::HUP);
    let got = collect_mail(&smtp, 30, |m| memory_mails(m) >= 1);
    assert_eq!(memory_mails(&got), 1, "{}", d.log());
    assert!(d.child_alive(), "{}", d.log());
    d.signal(rustix::process::Signal::TERM);
    assert!(d.wait_exit(10).is_some(), "{}", d.log());
    // And on restart it refuses, exit 2.
    let mut d = Daemon::start(&s.cfg);
    assert_eq!(d.wait_exit(30).map(|e| e.0), Some(2), "{}", d.log());
}

#[test]
fn a_locked_database_is_buffered_and_caught_up() {
    let s = setup(None, "");
    let mut d = Daemon::start(&s.cfg);
    assert!(
        wait(45, || open_memory_alert(&s.cfg).is_some()),
        "{}",
        d.log()
    );
    let before = status_field(&s.cfg, "samples").as_u64().expect("samples");
    {
        // Another process holds the write lock for longer than the daemon's busy timeout.
        let conn = rusqlite::Connection::open(&s.db).expect("open");
        conn.execute_batch("BEGIN EXCLUSIVE").expect("lock");
        assert!(d.wait_log("cannot write to", 20), "{}", d.log());
        std::thread::sleep(Duration::from_secs(3));
        assert!(d.child_alive(), "still monitoring");
        conn.execute_batch("COMMIT").expect("unlock");
    }
    assert!(
        d.wait_log("database writable again: wrote", 20),
        "{}",
        d.log()
    );
    assert_eq!(
        d.log().matches("cannot write to").count(),
        1,
        "logged once: {}",
        d.log()
    );
    let log = d.log();
    let wrote: u64 = log
        .split("database writable again: wrote ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("how many were written");
    assert!(
        wrote >= 2,
        "the samples taken during the lock were kept: {log}"
    );
    let after = status_field(&s.cfg, "samples").as_u64().expect("samples");
    assert!(
        after >= before + wrote,
        "buffered samples written: {before} -> {after}"
    );
}

#[test]
fn systemd_is_told_when_the_daemon_is_ready_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let s = setup(None, "");
    let sock_path = s.db.with_file_name("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind notify socket");
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut d = {
        let mut c = base(&s.cfg);
        c.arg("--headless")
            .env("NOTIFY_SOCKET", &sock_path)
            .stderr(Stdio::null())
            .stdout(Stdio::null());
        Daemon {
            child: c.spawn().expect("spawn"),
            log: Arc::new(Mutex::new(String::new())),
        }
    };
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains("READY=1") {
        let n = sock.recv(&mut buf).expect("a notification within 20 s");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        seen.push('\n');
    }
    assert!(seen.contains("STATUS="), "{seen}");
    d.signal(rustix::process::Signal::TERM);
    while !seen.contains("STOPPING=1") {
        let n = sock.recv(&mut buf).expect("STOPPING before exit");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert_eq!(d.wait_exit(5).map(|(c, _)| c), Some(0));
}

#[test]
fn history_exports_what_was_recorded_in_three_formats() {
    let s = setup(None, "");
    let mut d = Daemon::start(&s.cfg);
    assert!(
        wait(45, || status_field(&s.cfg, "samples").as_u64() >= Some(3)),
        "{}",
        d.log()
    );
    d.signal(rustix::process::Signal::TERM);
    d.wait_exit(5).expect("stopped");
    let me = uzers::get_current_username()
        .map(|n| n.to_string_lossy().into_owned())
        .expect("current user");

    let doc = json(
        &s.cfg,
        &[
            "history", "--since", "10m", "--user", &me, "--format", "json",
        ],
    );
    let system = doc["system"].as_array().expect("system points");
    assert!(system.len() >= 3, "{doc}");
    assert!(
        system
            .iter()
            .all(|p| p["memory"]["avg"].as_f64() > Some(0.1))
    );
    assert_eq!(doc["source"], "raw");
    assert!(
        doc["alerts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|m| m["metric"] == "memory")),
        "the memory alert is marked: {doc}"
    );

    let (code, csv, err) = cli(&s.cfg, &["history", "--since", "10m", "--format", "csv"]);
    assert_eq!(code, 0, "{err}");
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .is_some_and(|h| h.starts_with("time,cpu_avg,cpu_max,mem_avg"))
    );
    assert_eq!(lines.count(), system.len(), "one row per point");

    let (code, table, _) = cli(&s.cfg, &["history", "--since", "10m"]);
    assert_eq!(code, 0);
    assert!(
        table.contains("# alert ") && table.contains("cpu_avg"),
        "{table}"
    );

    let (code, _, err) = cli(&s.cfg, &["history", "--since", "yesterday-ish"]);
    assert_eq!(code, 2, "a bad time is a usage error");
    assert!(err.contains("yesterday-ish"), "{err}");
}

#[test]
fn test_email_reports_success_or_the_exact_failure() {
    let port = free_port();
    let s = setup(Some(port), "");
    let (code, _, err) = cli(&s.cfg, &["test-email"]);
    assert_eq!(code, 1, "nothing listens yet");
    assert!(err.contains("127.0.0.1"), "{err}");

    let smtp = starttls_server(port, &s);
    let (code, out, err) = cli(&s.cfg, &["test-email"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("admin@test.invalid"), "{out}");
    let got = collect_mail(&smtp, 10, |m| !m.is_empty());
    assert!(
        got.first().is_some_and(|m| m.tls),
        "a test mail arrived over TLS"
    );
}
