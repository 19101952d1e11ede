//! Tests of the store on real SQLite files in temporary directories, with chosen times.

mod alerts;
mod budget;
mod compact;
mod files;
mod gpu;
mod history;
mod outbox;
mod record;
mod retention;

use std::path::PathBuf;
use std::sync::Arc;

use tempfile::TempDir;

use super::{PendingMail, Record, RecordOutcome, Store};
use crate::model::{
    Alert, AlertDetails, AlertKey, AlertState, CpuBreakdown, DiskIo, DiskUsage, Event, LoadAverage,
    Mail, NetIo, Severity, Snapshot, Status, Timestamp, TopProcess, UserStats,
};
use crate::track::TrackerState;

/// An hour boundary (2023-11-14 21:00 UTC), so minute and hour buckets are easy to reason about.
pub(super) const T0: i64 = 1_699_995_600_000;
pub(super) const MIN: i64 = 60_000;
pub(super) const HOUR: i64 = 3_600_000;
pub(super) const DAY: i64 = 86_400_000;

/// A database file in a fresh directory (kept alive by the returned guard).
pub(super) fn temp_db() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sysmon.db");
    (dir, path)
}

pub(super) fn open(path: &std::path::Path) -> Store {
    Store::open(path).expect("open store")
}

/// Turns a file back into what sysmon wrote before schema v3: the disk figures spelled out in
/// every sample row, no `disk_sets`.
pub(super) const UNDO_V3: &str = "
    UPDATE samples SET disks = (SELECT disks FROM disk_sets d WHERE d.id = samples.disk_set);
    ALTER TABLE samples DROP COLUMN disk_set;
    DROP TABLE disk_sets;
    DELETE FROM schema_version WHERE version = 3;
";

/// Turns a file whose GPU rows are all hot back into what sysmon wrote before schema v5: no
/// `gpu_blocks`.
pub(super) const UNDO_V5: &str = "
    DROP TABLE gpu_blocks;
    DELETE FROM schema_version WHERE version = 5;
";

/// Turns a file back into what sysmon wrote before schema v4: no GPU tables, packed or not.
pub(super) const UNDO_V4: &str = "
    DROP TABLE gpu_blocks;
    DELETE FROM schema_version WHERE version = 5;
    DROP TABLE gpu_devices;
    DROP TABLE gpu_samples;
    DROP TABLE user_gpu_samples;
    DROP TABLE gpu_1m;
    DROP TABLE gpu_1h;
    DROP TABLE user_gpu_1m;
    DROP TABLE user_gpu_1h;
    DELETE FROM schema_version WHERE version = 4;
";

/// A snapshot under construction: `snap(T0).cpu(50.0).user("alice", 1001, 30.0, 5.0)`.
#[derive(Debug, Clone)]
pub(super) struct Snap(pub Snapshot);

pub(super) fn snap(at: i64) -> Snap {
    let mut s = Snapshot {
        at: Timestamp(at),
        interval_secs: 5.0,
        host: "web01".into(),
        ..Snapshot::default()
    };
    s.system.cpu.count = 8;
    s.system.memory.total_bytes = 16 << 30;
    Snap(s)
}

impl Snap {
    pub fn cpu(mut self, v: f64) -> Self {
        self.0.system.cpu.total = CpuBreakdown {
            busy: v,
            idle: 100.0 - v,
            ..CpuBreakdown::default()
        };
        self
    }

    pub fn mem(mut self, v: f64) -> Self {
        self.0.system.memory.used_percent = v;
        self.0.system.memory.used_bytes = (v / 100.0 * (16u64 << 30) as f64) as u64;
        self
    }

    pub fn swap(mut self, v: f64) -> Self {
        self.0.system.memory.swap_used_percent = v;
        self
    }

    pub fn load(mut self, one: f64) -> Self {
        self.0.system.load = LoadAverage {
            one,
            five: one / 2.0,
            fifteen: one / 4.0,
        };
        self
    }

    pub fn net(mut self, rx: f64, tx: f64) -> Self {
        self.0.system.net.push(NetIo {
            interface: format!("eth{}", self.0.system.net.len()),
            rx_bytes_per_sec: rx,
            tx_bytes_per_sec: tx,
            ..NetIo::default()
        });
        self
    }

    pub fn disk_io(mut self, read: f64, write: f64) -> Self {
        self.0.system.disk_io.push(DiskIo {
            device: format!("sd{}", self.0.system.disk_io.len()),
            read_bytes_per_sec: read,
            write_bytes_per_sec: write,
            ..DiskIo::default()
        });
        self
    }

    pub fn disk(mut self, path: &str, used: f64) -> Self {
        self.0.system.disks.push(DiskUsage {
            path: path.into(),
            used_percent: used,
            ok: true,
            ..DiskUsage::default()
        });
        self
    }

    /// A tracked user.
    pub fn user(mut self, name: &str, uid: u32, cpu: f64, mem: f64) -> Self {
        self.0.users.push(UserStats {
            uid,
            name: name.into(),
            cpu_percent: cpu,
            cpu_cores: cpu * 8.0 / 100.0,
            memory_bytes: (mem / 100.0 * (16u64 << 30) as f64) as u64 / 4096 * 4096,
            memory_percent: mem,
            exited_cpu_cores: 0.0,
            rss_bytes: 0,
            memory_source: Default::default(),
            processes: 3,
            threads: 4,
            tracked: true,
            top_processes: Vec::new(),
            pids: Vec::new(),
            gpu: None,
        });
        self
    }

    /// Marks the last user untracked.
    pub fn untracked(mut self) -> Self {
        if let Some(u) = self.0.users.last_mut() {
            u.tracked = false;
        }
        self
    }

    pub fn processes(mut self, n: u64) -> Self {
        if let Some(u) = self.0.users.last_mut() {
            u.processes = n;
        }
        self
    }

    /// A GPU server (`derive::gpu::recorded_nvidia`): fills the snapshot's GPUs and the GPU
    /// figures of its users with uid 1001 to 1003 (who hold GPUs there).
    pub fn gpus(mut self) -> Self {
        self.0.gpu = crate::derive::gpu::recorded_nvidia(&mut self.0.users);
        self
    }

    /// Adds a top process to the last user.
    pub fn top(mut self, pid: u32, name: &str, cmdline: &str, cpu: f64, mem_bytes: u64) -> Self {
        if let Some(u) = self.0.users.last_mut() {
            u.top_processes.push(TopProcess {
                pid,
                name: Arc::from(name),
                cmdline: Arc::from(cmdline),
                cpu_percent: cpu,
                memory_bytes: mem_bytes,
            });
        }
        self
    }
}

pub(super) fn details() -> AlertDetails {
    AlertDetails {
        host: "web01".into(),
        metric: crate::model::Metric::Cpu,
        value: 0.0,
        threshold: 80.0,
        duration_secs: 0,
        status: Status::Heavy,
        system_cpu_percent: 0.0,
        system_memory_percent: 0.0,
        top_users: Vec::new(),
        persistent_users: Vec::new(),
        load: LoadAverage::default(),
        uptime_secs: 0.0,
        recommendation: "look".into(),
    }
}

/// An open alert for `key` opened at `at`.
pub(super) fn alert(key: &AlertKey, severity: Severity, at: i64, value: f64) -> Alert {
    Alert {
        key: key.clone(),
        severity,
        state: AlertState::Open,
        opened_at: Timestamp(at),
        last_notified_at: Timestamp(at),
        updated_at: Timestamp(at),
        resolved_at: None,
        value,
        threshold: 80.0,
        peak: value,
        message: format!("{key} {value}%"),
        details: details(),
    }
}

/// The same alert later, with a new value.
pub(super) fn later(a: &Alert, at: i64, value: f64) -> Alert {
    let mut a = a.clone();
    a.updated_at = Timestamp(at);
    a.last_notified_at = Timestamp(at);
    a.value = value;
    a.peak = a.peak.max(value);
    a.message = format!("{} {value}%", a.key);
    a
}

pub(super) fn resolved(a: &Alert, at: i64) -> Alert {
    let mut a = a.clone();
    a.state = AlertState::Resolved;
    a.resolved_at = Some(Timestamp(at));
    a.updated_at = Timestamp(at);
    a
}

pub(super) fn mail(subject: &str, key: Option<&AlertKey>) -> PendingMail {
    PendingMail {
        mail: Mail {
            severity: Severity::High,
            subject: subject.into(),
            body: format!("body of {subject}"),
            alert_id: None,
        },
        alert_key: key.cloned(),
        sent_at: None,
    }
}

/// Records a snapshot with events and mails and an empty tracker state.
pub(super) fn put(
    store: &mut Store,
    s: &Snap,
    events: &[Event],
    mails: &[PendingMail],
) -> RecordOutcome {
    let tracker = TrackerState::default();
    store
        .record(&Record {
            snapshot: &s.0,
            events,
            mails,
            tracker: &tracker,
        })
        .expect("record")
}

/// Records bare samples (system figures only) every `step` ms in [from, to).
pub(super) fn put_range(store: &mut Store, from: i64, to: i64, step: i64, f: impl Fn(i64) -> Snap) {
    let mut t = from;
    while t < to {
        put(store, &f(t), &[], &[]);
        t += step;
    }
}

/// Marks the file at `path` as written by a sysmon at schema `version`, and checks that opening
/// it is refused with that version named.
pub(super) fn assert_newer_refused(path: &std::path::Path, version: i64) {
    let conn = rusqlite::Connection::open(path).expect("raw");
    conn.execute("INSERT INTO schema_version VALUES (?1, 0)", [version])
        .expect("bump");
    drop(conn);
    let err = Store::open(path).expect_err("newer schema");
    assert!(
        matches!(err, super::StoreError::NewerSchema { found, .. } if found == version),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("version {version}")) && msg.contains("newer"),
        "{msg}"
    );
}

/// Approximate equality for figures that went through hundredths.
/// Every row of `table`, in key order, as SQLite values: for comparing stored data exactly.
pub(super) fn table_rows(store: &Store, table: &str) -> Vec<Vec<rusqlite::types::Value>> {
    let mut stmt = store
        .conn
        .prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2"))
        .expect("prepare");
    let n = stmt.column_count();
    stmt.query_map([], |r| (0..n).map(|i| r.get(i)).collect())
        .expect("query")
        .collect::<Result<Vec<Vec<_>>, _>>()
        .expect("rows")
}

pub(super) fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}
