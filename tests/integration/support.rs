//! Helpers shared by the tests that run the real binary as a daemon (`headless`, `http`).

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_sysmon");

/// A loopback port that nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("ephemeral port")
}

pub struct Daemon {
    pub child: Child,
    pub log: Arc<Mutex<String>>,
}

impl Daemon {
    pub fn start(cfg: &Path) -> Daemon {
        let mut cmd = base(cfg);
        cmd.arg("--headless");
        Daemon::spawn(cmd)
    }

    /// `sysmon --headless` started by a shell that sets the umask first, as systemd's `UMask=`.
    pub fn start_with_umask(cfg: &Path, umask: &str) -> Daemon {
        let mut cmd = clean(Command::new("sh"));
        cmd.arg("-c")
            .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
            .arg(BIN)
            .arg("--config")
            .arg(cfg)
            .arg("--headless");
        Daemon::spawn(cmd)
    }

    fn spawn(mut cmd: Command) -> Daemon {
        let mut child = cmd
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn daemon");
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().expect("stderr");
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut l) = sink.lock() {
                    l.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        Daemon { child, log }
    }

    pub fn child_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn wait_log(&self, needle: &str, secs: u64) -> bool {
        wait(secs, || self.log().contains(needle))
    }

    pub fn signal(&self, sig: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("pid");
        rustix::process::kill_process(pid, sig).expect("kill");
    }

    /// Wait for the process to exit; its status code and how long it took.
    pub fn wait_exit(&mut self, secs: u64) -> Option<(i32, Duration)> {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(secs) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some((status.code().unwrap_or(-1), start.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn base(cfg: &Path) -> Command {
    let mut c = clean(Command::new(BIN));
    c.arg("--config").arg(cfg);
    c
}

/// Without the caller's sysmon and systemd variables, and no stdin.
fn clean(mut c: Command) -> Command {
    for (k, _) in std::env::vars() {
        if k.starts_with("SYSMON_") || k == "JOURNAL_STREAM" || k == "NOTIFY_SOCKET" {
            c.env_remove(k);
        }
    }
    c.stdin(Stdio::null());
    c
}

pub fn cli(cfg: &Path, args: &[&str]) -> (i32, String, String) {
    let out = base(cfg).args(args).output().expect("run sysmon");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn json(cfg: &Path, args: &[&str]) -> Value {
    let (code, out, err) = cli(cfg, args);
    assert_eq!(code, 0, "sysmon {args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} gave bad JSON ({e}): {out}"))
}

/// The command's JSON, or None while it fails (the daemon has not created the database yet).
pub fn try_json(cfg: &Path, args: &[&str]) -> Option<Value> {
    let (code, out, _) = cli(cfg, args);
    if code != 0 {
        return None;
    }
    serde_json::from_str(&out).ok()
}

pub fn status_field(cfg: &Path, field: &str) -> Value {
    try_json(cfg, &["status", "--json"])
        .map(|s| s[field].clone())
        .unwrap_or(Value::Null)
}

/// The wall clock in milliseconds since the epoch, as the store's timestamps.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

pub fn wait(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    cond()
}

/// Overwrite the first page of `object` (a table's or an index's root) in a database file no
/// process has open, as a bad sector or a stray write would: the page-level damage SQLite
/// reports as "database disk image is malformed".
pub fn damage_page(db: &Path, object: &str) {
    use std::io::{Seek, SeekFrom, Write};
    let (root, page_size): (i64, i64) = {
        let conn = rusqlite::Connection::open(db).expect("open the database");
        let root = conn
            .query_row(
                "SELECT rootpage FROM sqlite_master WHERE name = ?1",
                [object],
                |r| r.get(0),
            )
            .unwrap_or_else(|e| panic!("no {object} in {}: {e}", db.display()));
        let size = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .expect("page size");
        (root, size)
    };
    assert!(root > 1, "{object} starts on page {root}");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(db)
        .expect("open for damage");
    f.seek(SeekFrom::Start(((root - 1) * page_size) as u64))
        .expect("seek");
    f.write_all(&vec![0xa5; page_size as usize])
        .expect("damage");
}
