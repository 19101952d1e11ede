//! A recorded moment from the database, shaped like a live tick so every view can draw it.
//!
//! The store keeps less than a live snapshot has (no per-core figures, no full process list,
//! machine-wide network and disk rates only), so those parts come out empty or summed; the
//! users and their top processes, the alerts and the persistent episodes are all there, which
//! is what "who was hogging the machine at 3 am" needs. GPUs (schema v4) come back as devices
//! with their figures and each user's GPU figures and devices; the per-process GPU list is not
//! recorded, so it is empty. Names read back from the database are
//! sanitised again here: the database is a file others may have written.

use std::sync::Arc;

use super::state::Feed;
use crate::config::Config;
use crate::model::{
    CpuBreakdown, CpuStats, DiskIo, DiskUsage, MemoryStats, NetIo, ProcessStats, Snapshot,
    StatusReport, SystemStats, TaskCounts, TopProcess, UserStats,
};
use crate::model::{GpuDevice, GpuStats, MigInfo, UserGpu};
use crate::model::{PersistentEpisode, Timestamp};
use crate::sanitize::clean;
use crate::store::{RecordedGpu, RecordedState, RecordedUser, RecordedUserGpu};

fn clean_arc(s: &str) -> Arc<str> {
    Arc::from(clean(s))
}

/// The persistence episodes as they stood at `at`, the way a live tick reports them: under way
/// (no end yet), lasting from their start to `at`.
///
/// The `episodes` table keeps one row per episode with its final end and length (a row written
/// while the episode lasted is updated when it ends), so the rows under way at `at` mostly carry
/// an end and a length from later; taken as they are, the users view (which badges ongoing
/// episodes) showed nothing for them. The row does not say when the episode was reported, only
/// when its condition started, so an episode counts at `at` once it had lasted the user's
/// `persistent_minutes` by then (the configuration this TUI reads, the daemon's), as the tracker
/// would have reported it; before that the user was over a limit but not yet persistent, and gets
/// no badge. Only tracked users can be persistent: an episode of a user the sample recorded as
/// untracked is left out rather than shown against the flag. The live screen uses it too while a
/// daemon records, so every TUI counts a persistence from the daemon's start of it.
pub(super) fn episodes_at(
    at: Timestamp,
    episodes: &[PersistentEpisode],
    users: &[RecordedUser],
    config: &Config,
) -> Vec<PersistentEpisode> {
    episodes
        .iter()
        .filter(|e| e.started_at <= at && e.ended_at.is_none_or(|end| end > at))
        .filter(|e| !users.iter().any(|u| u.name == e.user && !u.tracked))
        .filter_map(|e| {
            let lasted = u64::try_from(at.0.saturating_sub(e.started_at.0) / 1000).unwrap_or(0);
            let needed = config
                .limits_for(&e.user)
                .persistent_minutes
                .saturating_mul(60);
            (lasted >= needed).then(|| PersistentEpisode {
                user: clean(&e.user),
                ended_at: None,
                duration_secs: lasted,
                ..e.clone()
            })
        })
        .collect()
}

pub fn feed_from(rec: &RecordedState, host: &str, config: &Config) -> Feed {
    let sys = &rec.system;
    let cores = sys.cores.max(1) as f64;
    let users: Vec<UserStats> = rec
        .users
        .iter()
        .map(|u| UserStats {
            uid: u.uid,
            name: clean_arc(&u.name),
            cpu_percent: u.cpu_percent,
            cpu_cores: u.cpu_percent * cores / 100.0,
            exited_cpu_cores: 0.0,
            memory_bytes: u.memory_bytes,
            memory_percent: u.memory_percent,
            rss_bytes: u.memory_bytes,
            memory_source: Default::default(),
            processes: u.processes,
            threads: 0,
            tracked: u.tracked,
            top_processes: u
                .top_processes
                .iter()
                .map(|p| TopProcess {
                    pid: p.pid,
                    name: clean_arc(&p.name),
                    cmdline: clean_arc(&p.cmdline),
                    cpu_percent: p.cpu_percent,
                    memory_bytes: p.memory_bytes,
                })
                .collect(),
            pids: u.top_processes.iter().map(|p| p.pid).collect(),
            gpu: u.gpu.as_ref().map(user_gpu),
        })
        .collect();
    // The recorded top processes stand in for the process list, so a drill-down still shows
    // what each user was running.
    let processes: Vec<ProcessStats> = users
        .iter()
        .flat_map(|u| {
            u.top_processes.iter().map(|p| ProcessStats {
                pid: p.pid,
                ppid: 0,
                uid: u.uid,
                user: u.name.clone(),
                name: p.name.clone(),
                cmdline: p.cmdline.clone(),
                state: '?',
                cpu_percent: p.cpu_percent,
                memory_bytes: p.memory_bytes,
                memory_percent: if sys.memory_total_bytes > 0 {
                    p.memory_bytes as f64 / sys.memory_total_bytes as f64 * 100.0
                } else {
                    0.0
                },
                pss_bytes: None,
                threads: 0,
                start_time: rec.at,
                cpu_time_secs: 0.0,
            })
        })
        .collect();
    let mut stored = rec.alerts.clone();
    for a in &mut stored {
        a.alert.message = clean(&a.alert.message);
        a.alert.key.subject = clean(&a.alert.key.subject);
    }
    Feed {
        snapshot: Snapshot {
            at: rec.at,
            interval_secs: sys.interval_secs,
            host: host.to_string(),
            system: SystemStats {
                cpu: CpuStats {
                    total: CpuBreakdown {
                        busy: sys.cpu_percent,
                        iowait: sys.iowait_percent,
                        idle: (100.0 - sys.cpu_percent).max(0.0),
                        ..CpuBreakdown::default()
                    },
                    cores: Vec::new(),
                    count: sys.cores as usize,
                },
                memory: MemoryStats {
                    total_bytes: sys.memory_total_bytes,
                    used_bytes: sys.memory_used_bytes,
                    used_percent: sys.memory_percent,
                    swap_used_percent: sys.swap_percent,
                    ..MemoryStats::default()
                },
                disks: sys
                    .disks
                    .iter()
                    .map(|d| DiskUsage {
                        path: clean(&d.path),
                        used_percent: d.used_percent,
                        ok: true,
                        ..DiskUsage::default()
                    })
                    .collect(),
                disk_io: vec![DiskIo {
                    device: "all".into(),
                    read_bytes_per_sec: sys.disk_read_bytes_per_sec,
                    write_bytes_per_sec: sys.disk_write_bytes_per_sec,
                    ..DiskIo::default()
                }],
                net: vec![NetIo {
                    interface: "all".into(),
                    rx_bytes_per_sec: sys.net_rx_bytes_per_sec,
                    tx_bytes_per_sec: sys.net_tx_bytes_per_sec,
                    ..NetIo::default()
                }],
                load: sys.load,
                uptime_secs: 0.0,
                tasks: TaskCounts {
                    processes: sys.processes,
                    threads: sys.threads,
                    ..TaskCounts::default()
                },
                pressure: None,
            },
            users,
            accounting: Default::default(),
            processes,
            gpu: GpuStats {
                devices: rec.gpus.iter().map(gpu_device).collect(),
                processes: Vec::new(),
            },
        },
        status: StatusReport::default(),
        alerts: Vec::new(),
        persistent: episodes_at(rec.at, &rec.persistent, &rec.users, config),
        stored,
    }
}

fn user_gpu(g: &RecordedUserGpu) -> UserGpu {
    UserGpu {
        devices: u32::try_from(g.devices.len()).unwrap_or(u32::MAX),
        device_ids: g.devices.iter().map(|d| clean_arc(&d.id)).collect(),
        memory_bytes: g.memory_bytes,
        memory_percent: g.memory_percent,
        utilization_percent: g.utilization_percent,
        processes: g.processes,
    }
}

fn gpu_device(d: &RecordedGpu) -> GpuDevice {
    let memory_percent = match (d.memory_used_bytes, d.memory_total_bytes) {
        (Some(u), Some(t)) if t > 0 => Some((u as f64 / t as f64 * 100.0).min(100.0)),
        _ => None,
    };
    GpuDevice {
        index: d.index,
        id: clean_arc(&d.id),
        name: clean_arc(&d.name),
        driver: clean_arc(&d.driver),
        // Which GPU and compute instance is not recorded, only the parent.
        mig: d.mig_parent.map(|parent_index| MigInfo {
            parent_index,
            gpu_instance: None,
            compute_instance: None,
        }),
        utilization_percent: d.utilization_percent,
        memory_used_bytes: d.memory_used_bytes,
        memory_total_bytes: d.memory_total_bytes,
        memory_percent,
        temperature_celsius: d.temperature_celsius,
        power_watts: d.power_watts,
        processes: d.processes,
    }
}
