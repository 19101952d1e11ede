//! Tests of the tracker over synthetic snapshot sequences with explicit times.
//!
//! Events are compared as short descriptions (`opened system:cpu:system high`) so that each table
//! row reads as what an operator would see, in order.

mod alerts;
mod conditions;
mod persistence;
mod props;
mod restore;
mod status;

use std::sync::Arc;

use super::Tracker;
use crate::config::Config;
use crate::model::{
    AlertKey, DiskUsage, Event, LoadAverage, ResolvedBy, Severity, Snapshot, Status, Timestamp,
    TopProcess, UserStats,
};

const TOTAL_MEMORY: u64 = 16 << 30;
const CORES: f64 = 8.0;

/// Limits chosen so that every level is a round number: system 80 (approaching 72, elevated 48,
/// clearing 5 points lower), disks 90, users 50 for 10 minutes, one sample a minute.
pub(super) fn config() -> Config {
    let mut c = Config::default();
    c.monitoring.interval_secs = 60;
    c.monitoring.cpu_threshold = 80.0;
    c.monitoring.memory_threshold = 80.0;
    c.monitoring.disk_threshold = 90.0;
    c.monitoring.hysteresis = 5.0;
    c.users.cpu_threshold = 50.0;
    c.users.memory_threshold = 50.0;
    c.users.persistent_minutes = 10;
    c.alerts.repeat_minutes = 30;
    c.alerts.notify_recovery = true;
    c
}

#[derive(Debug, Clone)]
struct UserSpec {
    name: String,
    uid: u32,
    cpu: f64,
    mem: f64,
}

/// A snapshot under construction: `snap(60).cpu(93.0).user("alice", 1001, 60.0, 10.0)`.
#[derive(Debug, Clone)]
pub(super) struct Snap {
    at_secs: i64,
    interval_secs: f64,
    cpu: f64,
    mem: f64,
    disks: Vec<DiskUsage>,
    users: Vec<UserSpec>,
}

pub(super) fn snap(at_secs: i64) -> Snap {
    Snap {
        at_secs,
        interval_secs: 0.0,
        cpu: 10.0,
        mem: 20.0,
        disks: Vec::new(),
        users: Vec::new(),
    }
}

impl Snap {
    pub fn cpu(mut self, v: f64) -> Self {
        self.cpu = v;
        self
    }

    pub fn mem(mut self, v: f64) -> Self {
        self.mem = v;
        self
    }

    pub fn interval(mut self, secs: f64) -> Self {
        self.interval_secs = secs;
        self
    }

    pub fn disk(mut self, path: &str, used_percent: f64) -> Self {
        self.disks.push(DiskUsage {
            path: path.to_string(),
            total_bytes: 100 << 30,
            used_bytes: (used_percent * (1u64 << 30) as f64) as u64,
            available_bytes: 0,
            used_percent,
            ok: true,
        });
        self
    }

    pub fn unreadable_disk(mut self, path: &str) -> Self {
        self.disks.push(DiskUsage {
            path: path.to_string(),
            ok: false,
            ..DiskUsage::default()
        });
        self
    }

    pub fn user(mut self, name: &str, uid: u32, cpu: f64, mem: f64) -> Self {
        self.users.push(UserSpec {
            name: name.to_string(),
            uid,
            cpu,
            mem,
        });
        self
    }

    /// The snapshot `derive` would produce, with `tracked` decided by `config.filtering`.
    pub fn build(&self, config: &Config) -> Snapshot {
        let mut s = Snapshot {
            at: Timestamp::from_secs(self.at_secs),
            interval_secs: self.interval_secs,
            host: "node1".to_string(),
            ..Snapshot::default()
        };
        s.system.cpu.total.busy = self.cpu;
        s.system.cpu.count = CORES as usize;
        s.system.memory.used_percent = self.mem;
        s.system.memory.total_bytes = TOTAL_MEMORY;
        s.system.disks = self.disks.clone();
        s.system.load = LoadAverage {
            one: 3.5,
            five: 2.25,
            fifteen: 1.0,
        };
        s.system.uptime_secs = 86_400.0;
        s.users = self.users.iter().map(|u| user_stats(u, config)).collect();
        s.users
            .sort_by(|a, b| b.cpu_percent.total_cmp(&a.cpu_percent));
        s
    }
}

fn user_stats(u: &UserSpec, config: &Config) -> UserStats {
    let memory_bytes = (u.mem / 100.0 * TOTAL_MEMORY as f64) as u64;
    let pid = u.uid * 10;
    UserStats {
        uid: u.uid,
        name: Arc::from(u.name.as_str()),
        cpu_percent: u.cpu,
        cpu_cores: u.cpu / 100.0 * CORES,
        memory_bytes,
        memory_percent: u.mem,
        exited_cpu_cores: 0.0,
        rss_bytes: memory_bytes,
        memory_source: Default::default(),
        processes: 3,
        threads: 7,
        tracked: config.filtering.tracks(u.uid, &u.name, u.cpu, u.mem),
        top_processes: vec![TopProcess {
            pid,
            name: Arc::from(format!("{}-job", u.name).as_str()),
            cmdline: Arc::from(""),
            cpu_percent: u.cpu * CORES,
            memory_bytes,
        }],
        pids: vec![pid],
        gpu: None,
    }
}

/// Sample times from `from` to `to` inclusive, `step` seconds apart.
pub(super) fn every(step: i64, from: i64, to: i64) -> impl Iterator<Item = i64> {
    (from..=to).step_by(usize::try_from(step).unwrap())
}

pub(super) struct Harness {
    pub tracker: Tracker,
    pub config: Config,
}

impl Harness {
    pub fn new(config: Config) -> Self {
        Harness {
            tracker: Tracker::new(&config),
            config,
        }
    }

    pub fn events(&mut self, s: &Snap) -> Vec<Event> {
        self.tracker.observe(&s.build(&self.config))
    }

    /// Every event of one sample, described.
    pub fn feed(&mut self, s: &Snap) -> Vec<String> {
        self.events(s).iter().map(describe).collect()
    }

    /// Only the alert events of one sample, described.
    pub fn alerts(&mut self, s: &Snap) -> Vec<String> {
        self.feed(s)
            .into_iter()
            .filter(|d| !d.starts_with("status") && !d.starts_with("persistent"))
            .collect()
    }

    /// Feeds several samples and returns the described events of all of them.
    pub fn feed_all(&mut self, snaps: impl IntoIterator<Item = Snap>) -> Vec<String> {
        snaps.into_iter().flat_map(|s| self.feed(&s)).collect()
    }

    pub fn set_config(&mut self, config: Config) {
        self.tracker.set_config(&config);
        self.config = config;
    }

    /// `key severity` of every open alert, in key order.
    pub fn open(&self) -> Vec<String> {
        self.tracker
            .open_alerts()
            .iter()
            .map(|a| format!("{} {}", a.key, a.severity))
            .collect()
    }
}

pub(super) fn describe(e: &Event) -> String {
    match e {
        Event::AlertOpened(a) => format!("opened {} {}", a.key, a.severity),
        Event::AlertRepeated(a) => format!("repeated {}", a.key),
        Event::AlertEscalated { alert, from } => {
            format!("escalated {} {from}->{}", alert.key, alert.severity)
        }
        Event::AlertResolved { alert, by } => {
            let by = match by {
                ResolvedBy::Recovered => "recovered",
                ResolvedBy::Operator => "operator",
            };
            format!("resolved {} by {by}", alert.key)
        }
        Event::AlertAcknowledged(a) => format!("acknowledged {}", a.key),
        Event::Recovery(a) => format!("recovery {}", a.key),
        Event::PersistentStarted(p) => format!("persistent {} {}", p.user, p.metric),
        Event::PersistentEnded(p) => format!("persistent-ended {} {}", p.user, p.metric),
        Event::StatusChanged { from, to } => {
            format!("status {}->{}", word(from.status), word(to.status))
        }
    }
}

fn word(s: Status) -> &'static str {
    match s {
        Status::Light => "light",
        Status::Medium => "medium",
        Status::Heavy => "heavy",
    }
}

pub(super) fn cpu_key() -> AlertKey {
    AlertKey::system(crate::model::Metric::Cpu)
}

pub(super) fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

pub(super) fn severity_of(h: &Harness, key: &AlertKey) -> Option<Severity> {
    h.tracker
        .open_alerts()
        .iter()
        .find(|a| a.key == *key)
        .map(|a| a.severity)
}
