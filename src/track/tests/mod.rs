//! Tests of the tracker over synthetic snapshot sequences with explicit times.
//!
//! Events are compared as short descriptions (`opened system:cpu:system high`) so that each table
//! row reads as what an operator would see, in order.

mod alerts;
mod conditions;
mod gpu;
mod persistence;
mod props;
mod restore;
mod status;

use std::sync::Arc;

use super::Tracker;
use crate::config::Config;
use crate::model::{
    AlertKey, DiskUsage, Event, GpuDevice, GpuProcess, LoadAverage, MigInfo, ResolvedBy, Severity,
    Snapshot, Status, Timestamp, TopProcess, UserGpu, UserStats,
};

const TOTAL_MEMORY: u64 = 16 << 30;
const CORES: f64 = 8.0;
/// Memory of each whole GPU in the GPU snapshots.
pub(super) const GPU_MEMORY: u64 = 80 << 30;

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
    gpus: Vec<GpuDevice>,
    /// user, uid, device id, bytes, and the pid when the test chose one.
    gpu_procs: Vec<(String, u32, String, u64, Option<u32>)>,
}

pub(super) fn snap(at_secs: i64) -> Snap {
    Snap {
        at_secs,
        interval_secs: 0.0,
        cpu: 10.0,
        mem: 20.0,
        disks: Vec::new(),
        users: Vec::new(),
        gpus: Vec::new(),
        gpu_procs: Vec::new(),
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

    /// A whole GPU `GPU-<index>` of [`GPU_MEMORY`] with its utilization (None: not reported).
    pub fn gpu(mut self, index: u32, utilization: Option<f64>) -> Self {
        self.gpus.push(GpuDevice {
            index,
            id: Arc::from(format!("GPU-{index}").as_str()),
            name: Arc::from("NVIDIA H100"),
            driver: Arc::from("nvidia"),
            mig: None,
            utilization_percent: utilization,
            memory_used_bytes: None,
            memory_total_bytes: Some(GPU_MEMORY),
            memory_percent: None,
            temperature_celsius: Some(40.0),
            power_watts: Some(70.0),
            processes: 0,
        });
        self
    }

    /// MIG instance `MIG-<parent>-<index>` of GPU `parent`, which reports no utilization.
    pub fn mig(mut self, parent: u32, index: u32) -> Self {
        self.gpus.push(GpuDevice {
            index,
            id: Arc::from(format!("MIG-{parent}-{index}").as_str()),
            name: Arc::from("NVIDIA H100 MIG 1g.10gb"),
            driver: Arc::from("nvidia"),
            mig: Some(MigInfo {
                parent_index: parent,
                gpu_instance: Some(index),
                compute_instance: Some(0),
            }),
            utilization_percent: None,
            memory_used_bytes: None,
            memory_total_bytes: Some(10 << 30),
            memory_percent: None,
            temperature_celsius: None,
            power_watts: None,
            processes: 0,
        });
        self
    }

    /// `user` holds `gib` GiB on the device `device` (its id: `GPU-0`, `MIG-1-0`).
    pub fn holds(self, user: &str, uid: u32, device: &str, gib: f64) -> Self {
        self.holding(None, user, uid, device, gib)
    }

    /// The same, by process `pid` (one process may hold memory on several devices). Add
    /// holdings in device order, as the collector lists them.
    pub fn holds_by(self, pid: u32, user: &str, uid: u32, device: &str, gib: f64) -> Self {
        self.holding(Some(pid), user, uid, device, gib)
    }

    fn holding(mut self, pid: Option<u32>, user: &str, uid: u32, device: &str, gib: f64) -> Self {
        let bytes = (gib * (1u64 << 30) as f64) as u64;
        self.gpu_procs
            .push((user.to_string(), uid, device.to_string(), bytes, pid));
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
        let mut users = self.users.clone();
        for (name, uid, ..) in &self.gpu_procs {
            if !users.iter().any(|u| &u.name == name) {
                users.push(UserSpec {
                    name: name.clone(),
                    uid: *uid,
                    cpu: 0.0,
                    mem: 1.0,
                });
            }
        }
        s.users = users.iter().map(|u| user_stats(u, config)).collect();
        s.users
            .sort_by(|a, b| b.cpu_percent.total_cmp(&a.cpu_percent));
        self.add_gpus(&mut s);
        s
    }

    /// Devices, processes and each user's GPU sums, as `derive` computes them.
    fn add_gpus(&self, s: &mut Snapshot) {
        s.gpu.devices = self.gpus.clone();
        let index_of = |id: &str| self.gpus.iter().find(|d| &*d.id == id).map(|d| d.index);
        s.gpu.processes = self
            .gpu_procs
            .iter()
            .enumerate()
            .map(|(n, (user, uid, device, bytes, pid))| GpuProcess {
                pid: pid.unwrap_or(50_000 + n as u32),
                uid: Some(*uid),
                user: Some(Arc::from(user.as_str())),
                name: Some(Arc::from("python3")),
                device: Arc::from(device.as_str()),
                device_index: index_of(device).unwrap_or(u32::MAX),
                kind: Arc::from("compute"),
                memory_bytes: Some(*bytes),
                utilization_percent: None,
            })
            .collect();
        let total: u64 = s.gpu.physical().filter_map(|d| d.memory_total_bytes).sum();
        for u in &mut s.users {
            let mine: Vec<&GpuProcess> = s
                .gpu
                .processes
                .iter()
                .filter(|p| p.user.as_deref() == Some(&*u.name))
                .collect();
            if mine.is_empty() {
                continue;
            }
            let mut device_ids: Vec<Arc<str>> = mine.iter().map(|p| p.device.clone()).collect();
            device_ids.sort();
            device_ids.dedup();
            let memory_bytes: u64 = mine.iter().filter_map(|p| p.memory_bytes).sum();
            u.gpu = Some(UserGpu {
                devices: device_ids.len() as u32,
                device_ids,
                memory_bytes,
                memory_percent: memory_bytes as f64 * 100.0 / total.max(1) as f64,
                utilization_percent: 0.0,
                processes: mine
                    .iter()
                    .map(|p| p.pid)
                    .collect::<std::collections::BTreeSet<_>>()
                    .len() as u64,
            });
        }
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
