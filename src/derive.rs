//! From two raw samples to the figures people read: a pure function.
//!
//! Every rate is a difference of counters over time, so it lives here, away from I/O, where it
//! can be tested on plain numbers. Time comes from the samples themselves: CPU shares from the
//! kernel's own tick counts (exact whatever the scheduling jitter of the sampler), byte rates
//! from the caller's timestamps.

mod exited;
pub mod gpu;

use std::collections::HashMap;
use std::sync::Arc;

use crate::collect::PssReading;
use crate::collect::{CpuTimes, RawProc, RawSample};
use crate::config::Filtering;
use crate::model::{
    CpuAccounting, CpuBreakdown, CpuStats, DiskIo, DiskUsage, ExitedSource, LoadAverage,
    MemorySource, MemoryStats, NetIo, ProcessStats, Snapshot, SystemStats, TaskCounts, Timestamp,
    TopProcess, UserStats,
};

/// How many of a user's processes are kept as their "top processes".
pub const TOP_PROCESSES: usize = 5;

const SECTOR_BYTES: f64 = 512.0;

/// Turn the change between `prev` and `cur` into a snapshot. `filtering` decides which users are
/// tracked. Counters that went backwards (a device re-plugged, a counter wrapped) give zero rates
/// rather than nonsense.
pub fn derive(prev: &RawSample, cur: &RawSample, filtering: &Filtering) -> Snapshot {
    let elapsed = cur.at.secs_since(prev.at).max(0.0);
    let cpu = cpu_stats(&prev.system.cpu_total, &cur.system, &prev.system.cpu_cores);
    let memory = memory_stats(cur);
    // Ticks one core could have run during the interval, from the kernel's own accounting.
    let core_ticks = if cpu.count > 0 {
        cur.system
            .cpu_total
            .total()
            .saturating_sub(prev.system.cpu_total.total()) as f64
            / cpu.count as f64
    } else {
        0.0
    };
    let processes = process_stats(prev, cur, core_ticks, memory.total_bytes);
    let hz = cur.ticks_per_second.max(1) as f64;
    let exited = exited::exited_ticks(&prev.procs, &cur.procs, cur.exits.as_ref(), hz);
    let mut users = user_stats(
        &processes,
        &exited,
        core_ticks,
        cpu.count,
        memory.total_bytes,
        filtering,
    );
    let accounting = accounting(&cpu, &users, cur);
    let gpu = gpu::gpu_stats(prev, cur, &mut users);
    let tasks = TaskCounts {
        processes: processes.len() as u64,
        threads: processes.iter().map(|p| p.threads).sum(),
        running: cur.system.procs_running,
        blocked: cur.system.procs_blocked,
    };
    let [one, five, fifteen] = cur.system.load;
    Snapshot {
        at: cur.at,
        interval_secs: elapsed,
        host: cur.host.to_string(),
        system: SystemStats {
            cpu,
            memory,
            disks: cur.system.disks.iter().map(disk_usage).collect(),
            disk_io: disk_io(prev, cur, elapsed),
            net: net_io(prev, cur, elapsed),
            load: LoadAverage { one, five, fifteen },
            uptime_secs: cur.system.uptime_secs,
            tasks,
            pressure: cur.system.pressure,
        },
        users,
        accounting,
        processes,
        gpu,
    }
}

fn accounting(cpu: &CpuStats, users: &[UserStats], cur: &RawSample) -> CpuAccounting {
    let busy_cores = cpu.total.busy / 100.0 * cpu.count as f64;
    let users_cores: f64 = users.iter().map(|u| u.cpu_cores).sum();
    let unattributed_cores = (busy_cores - users_cores).max(0.0);
    CpuAccounting {
        exited_source: match &cur.exits {
            Some(log) if log.complete => ExitedSource::ExitRecords,
            _ => ExitedSource::ChildTimes,
        },
        exited_cores: users.iter().map(|u| u.exited_cpu_cores).sum(),
        unattributed_cores,
        unattributed_percent: pct(unattributed_cores, cpu.count as f64),
    }
}

/// Memory of one process with a shared page counted once: its PSS as last measured, moved by
/// what its RSS did since (pages gained since are taken as its own; pages lost, proportionally).
pub fn pss_estimate(reading: PssReading, rss_now: u64) -> u64 {
    if rss_now >= reading.rss_bytes {
        reading.pss_bytes + (rss_now - reading.rss_bytes)
    } else if reading.rss_bytes > 0 {
        (reading.pss_bytes as f64 * rss_now as f64 / reading.rss_bytes as f64) as u64
    } else {
        0
    }
    .min(rss_now)
}

fn pct(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        (part / whole * 100.0).clamp(0.0, 100.0)
    } else {
        0.0
    }
}

pub fn cpu_breakdown(prev: &CpuTimes, cur: &CpuTimes) -> CpuBreakdown {
    let d = |a: u64, b: u64| b.saturating_sub(a) as f64;
    let total = d(prev.total(), cur.total());
    let idle = d(prev.idle, cur.idle);
    let iowait = d(prev.iowait, cur.iowait);
    CpuBreakdown {
        busy: pct(total - idle - iowait, total),
        user: pct(
            d(prev.user, cur.user) - d(prev.guest, cur.guest).min(d(prev.user, cur.user)),
            total,
        ),
        nice: pct(d(prev.nice, cur.nice), total),
        system: pct(d(prev.system, cur.system), total),
        iowait: pct(iowait, total),
        irq: pct(d(prev.irq, cur.irq), total),
        softirq: pct(d(prev.softirq, cur.softirq), total),
        steal: pct(d(prev.steal, cur.steal), total),
        guest: pct(d(prev.guest, cur.guest), total),
        idle: pct(idle, total),
    }
}

fn cpu_stats(
    prev_total: &CpuTimes,
    cur: &crate::collect::RawSystem,
    prev_cores: &[CpuTimes],
) -> CpuStats {
    let cores = cur
        .cpu_cores
        .iter()
        .enumerate()
        .map(|(i, c)| match prev_cores.get(i) {
            Some(p) => cpu_breakdown(p, c),
            None => CpuBreakdown::default(), // a core came online: no interval yet
        })
        .collect::<Vec<_>>();
    CpuStats {
        total: cpu_breakdown(prev_total, &cur.cpu_total),
        count: cores.len().max(1),
        cores,
    }
}

fn memory_stats(s: &RawSample) -> MemoryStats {
    let m = &s.system.memory;
    let used = m.total.saturating_sub(m.available);
    let swap_used = m.swap_total.saturating_sub(m.swap_free);
    MemoryStats {
        total_bytes: m.total,
        used_bytes: used,
        available_bytes: m.available,
        free_bytes: m.free,
        buffers_bytes: m.buffers,
        cached_bytes: m.cached + m.sreclaimable,
        used_percent: pct(used as f64, m.total as f64),
        swap_total_bytes: m.swap_total,
        swap_used_bytes: swap_used,
        swap_used_percent: pct(swap_used as f64, m.swap_total as f64),
    }
}

fn disk_usage(d: &crate::collect::RawDiskUsage) -> DiskUsage {
    // As df: blocks reserved for root count neither as used nor as available.
    let used = d.total.saturating_sub(d.free);
    DiskUsage {
        path: d.path.clone(),
        total_bytes: d.total,
        used_bytes: used,
        available_bytes: d.available,
        used_percent: pct(used as f64, (used + d.available) as f64),
        ok: d.ok,
    }
}

fn rate(prev: u64, cur: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        cur.saturating_sub(prev) as f64 / secs
    } else {
        0.0
    }
}

fn disk_io(prev: &RawSample, cur: &RawSample, secs: f64) -> Vec<DiskIo> {
    cur.system
        .disk_io
        .iter()
        .filter_map(|c| {
            let p = prev.system.disk_io.iter().find(|p| p.device == c.device)?;
            Some(DiskIo {
                device: c.device.clone(),
                read_bytes_per_sec: rate(p.sectors_read, c.sectors_read, secs) * SECTOR_BYTES,
                write_bytes_per_sec: rate(p.sectors_written, c.sectors_written, secs)
                    * SECTOR_BYTES,
                reads_per_sec: rate(p.reads, c.reads, secs),
                writes_per_sec: rate(p.writes, c.writes, secs),
                busy_percent: if secs > 0.0 {
                    c.io_ticks_ms.saturating_sub(p.io_ticks_ms) as f64 / (secs * 10.0)
                } else {
                    0.0
                },
            })
        })
        .collect()
}

fn net_io(prev: &RawSample, cur: &RawSample, secs: f64) -> Vec<NetIo> {
    cur.system
        .net
        .iter()
        .filter_map(|c| {
            let p = prev
                .system
                .net
                .iter()
                .find(|p| p.interface == c.interface)?;
            Some(NetIo {
                interface: c.interface.clone(),
                rx_bytes_per_sec: rate(p.rx_bytes, c.rx_bytes, secs),
                tx_bytes_per_sec: rate(p.tx_bytes, c.tx_bytes, secs),
                rx_packets_per_sec: rate(p.rx_packets, c.rx_packets, secs),
                tx_packets_per_sec: rate(p.tx_packets, c.tx_packets, secs),
                rx_errors_per_sec: rate(p.rx_errors, c.rx_errors, secs),
                tx_errors_per_sec: rate(p.tx_errors, c.tx_errors, secs),
            })
        })
        .collect()
}

/// Per-process figures. Both sample lists are sorted by pid, so the previous reading of each
/// process is found by a merge walk; a pid whose start time differs is a different process.
fn process_stats(
    prev: &RawSample,
    cur: &RawSample,
    core_ticks: f64,
    mem_total: u64,
) -> Vec<ProcessStats> {
    let hz = cur.ticks_per_second.max(1) as f64;
    let boot_ms = cur.system.boot_time * 1000;
    let mut prev_iter = prev.procs.iter().peekable();
    let mut out: Vec<ProcessStats> = cur
        .procs
        .iter()
        .map(|p| {
            while prev_iter.next_if(|q| q.pid < p.pid).is_some() {}
            let before = prev_iter
                .next_if(|q| q.pid == p.pid)
                .filter(|q| q.start_ticks == p.start_ticks);
            // A process that started during the interval used all its ticks within it.
            let used = p.cpu_ticks - before.map_or(0, |q| q.cpu_ticks.min(p.cpu_ticks));
            let cpu_percent = if core_ticks > 0.0 {
                (used as f64 / core_ticks * 100.0).min(100.0 * p.threads.max(1) as f64)
            } else {
                0.0
            };
            let memory_bytes = p.rss_pages * cur.page_size;
            let mut stats = process(p, cpu_percent, memory_bytes, mem_total, hz, boot_ms);
            stats.pss_bytes = p.pss.map(|r| pss_estimate(r, memory_bytes));
            stats
        })
        .collect();
    // Pids are unique, so the order is total and an unstable sort gives the stable order
    // without a scratch copy of the whole table.
    out.sort_unstable_by(|a, b| {
        b.cpu_percent
            .total_cmp(&a.cpu_percent)
            .then(a.pid.cmp(&b.pid))
    });
    out
}

fn process(
    p: &RawProc,
    cpu_percent: f64,
    memory_bytes: u64,
    mem_total: u64,
    hz: f64,
    boot_ms: i64,
) -> ProcessStats {
    ProcessStats {
        pid: p.pid,
        ppid: p.ppid,
        uid: p.uid,
        user: p.user.clone(),
        name: p.name.clone(),
        cmdline: p.cmdline.clone(),
        state: p.state,
        cpu_percent,
        memory_bytes,
        memory_percent: pct(memory_bytes as f64, mem_total as f64),
        pss_bytes: None,
        threads: p.threads,
        start_time: Timestamp(boot_ms + (p.start_ticks as f64 / hz * 1000.0) as i64),
        cpu_time_secs: p.cpu_ticks as f64 / hz,
    }
}

/// Sum processes per user, and add what their ended processes used. `processes` is sorted
/// heaviest first, so each user's first five are their top processes.
fn user_stats(
    processes: &[ProcessStats],
    exited: &exited::Exited,
    core_ticks: f64,
    ncpu: usize,
    mem_total: u64,
    filtering: &Filtering,
) -> Vec<UserStats> {
    let mut by_uid: HashMap<u32, UserStats> = HashMap::new();
    let new_user = |uid: u32, name: &Arc<str>| UserStats::new(uid, Arc::clone(name));
    // Processes whose memory is PSS, per uid: the source is Pss when that is all of them.
    let mut measured: HashMap<u32, u64> = HashMap::new();
    for p in processes {
        let u = by_uid
            .entry(p.uid)
            .or_insert_with(|| new_user(p.uid, &p.user));
        u.cpu_cores += p.cpu_percent / 100.0;
        u.memory_bytes += p.pss_bytes.unwrap_or(p.memory_bytes);
        u.rss_bytes += p.memory_bytes;
        if p.pss_bytes.is_some() {
            *measured.entry(p.uid).or_default() += 1;
        }
        u.processes += 1;
        u.threads += p.threads;
        u.pids.push(p.pid);
        if u.top_processes.len() < TOP_PROCESSES {
            u.top_processes.push(TopProcess {
                pid: p.pid,
                name: p.name.clone(),
                cmdline: p.cmdline.clone(),
                cpu_percent: p.cpu_percent,
                memory_bytes: p.memory_bytes,
            });
        }
    }
    if core_ticks > 0.0 {
        for (&uid, (name, ticks)) in exited {
            let u = by_uid.entry(uid).or_insert_with(|| new_user(uid, name));
            u.exited_cpu_cores = ticks / core_ticks;
            u.cpu_cores += u.exited_cpu_cores;
        }
    }
    let mut users: Vec<UserStats> = by_uid
        .into_values()
        .map(|mut u| {
            u.cpu_percent = (u.cpu_cores / ncpu.max(1) as f64 * 100.0).min(100.0);
            u.memory_percent = pct(u.memory_bytes as f64, mem_total as f64);
            u.memory_source = match measured.get(&u.uid).copied().unwrap_or(0) {
                0 => MemorySource::Rss,
                n if n == u.processes => MemorySource::Pss,
                _ => MemorySource::Partial,
            };
            u.tracked = filtering.tracks(u.uid, &u.name, u.cpu_percent, u.memory_percent);
            u.pids.sort_unstable();
            u
        })
        .collect();
    users.sort_by(|a, b| {
        b.cpu_percent
            .total_cmp(&a.cpu_percent)
            .then(b.memory_bytes.cmp(&a.memory_bytes))
            .then(a.uid.cmp(&b.uid))
    });
    users
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::{ExitLog, ExitedGroup, RawDiskIo, RawMemory, RawNet, RawSystem};

    fn times(busy: u64, idle: u64) -> CpuTimes {
        CpuTimes {
            user: busy,
            idle,
            ..Default::default()
        }
    }

    fn proc(pid: u32, uid: u32, user: &str, ticks: u64, rss: u64) -> RawProc {
        RawProc {
            pid,
            ppid: 1,
            uid,
            user: Arc::from(user),
            name: Arc::from("job"),
            cmdline: Arc::from("job --run"),
            state: 'R',
            cpu_ticks: ticks,
            child_ticks: 0,
            rss_pages: rss,
            pss: None,
            threads: 1,
            start_ticks: 10,
        }
    }

    /// Two cores; `cpu` gives (busy, idle) ticks summed over both.
    fn sample(at_secs: i64, cpu: (u64, u64), procs: Vec<RawProc>) -> RawSample {
        RawSample {
            at: Timestamp::from_secs(at_secs),
            host: Arc::from("h"),
            system: RawSystem {
                cpu_total: times(cpu.0, cpu.1),
                cpu_cores: vec![times(cpu.0 / 2, cpu.1 / 2); 2],
                memory: RawMemory {
                    total: 1000 * 4096,
                    available: 600 * 4096,
                    swap_total: 100,
                    swap_free: 25,
                    ..Default::default()
                },
                ..Default::default()
            },
            procs,
            ticks_per_second: 100,
            page_size: 4096,
            ..Default::default()
        }
    }

    fn open_filter() -> Filtering {
        Filtering {
            min_uid: 0,
            ignore_system_users: false,
            min_cpu_percent: 0.0,
            min_memory_percent: 0.0,
            excluded_users: vec![],
        }
    }

    #[test]
    fn cpu_share_from_tick_deltas() {
        let prev = sample(0, (100, 100), vec![]);
        // 200 ticks passed over 2 cores: 150 busy, 50 idle.
        let cur = sample(1, (250, 150), vec![]);
        let s = derive(&prev, &cur, &open_filter());
        assert!((s.system.cpu.total.busy - 75.0).abs() < 1e-9);
        assert!((s.system.cpu.total.idle - 25.0).abs() < 1e-9);
        assert_eq!(s.system.cpu.cores.len(), 2);
        assert!((s.system.cpu.cores[0].busy - 75.0).abs() < 1e-9);
    }

    #[test]
    fn iowait_and_steal_are_apart_from_busy() {
        let p = CpuTimes::default();
        let c = CpuTimes {
            user: 40,
            system: 10,
            iowait: 30,
            steal: 10,
            idle: 10,
            ..Default::default()
        };
        let b = cpu_breakdown(&p, &c);
        assert!((b.busy - 60.0).abs() < 1e-9, "user+system+steal");
        assert!((b.iowait - 30.0).abs() < 1e-9);
        assert!((b.steal - 10.0).abs() < 1e-9);
    }

    #[test]
    fn process_and_user_cpu_percent() {
        // 200 ticks over 2 cores = 100 ticks per core. alice's two processes used 100 and 50.
        let prev = sample(
            0,
            (0, 0),
            vec![
                proc(10, 1001, "alice", 0, 100),
                proc(11, 1001, "alice", 0, 100),
            ],
        );
        let cur = sample(
            1,
            (150, 50),
            vec![
                proc(10, 1001, "alice", 100, 100),
                proc(11, 1001, "alice", 50, 100),
                proc(12, 1002, "bob", 20, 300),
            ],
        );
        let s = derive(&prev, &cur, &open_filter());
        let p10 = s.processes.iter().find(|p| p.pid == 10).expect("pid 10");
        assert!((p10.cpu_percent - 100.0).abs() < 1e-9, "one full core");
        let alice = s.user("alice").expect("alice");
        assert!((alice.cpu_cores - 1.5).abs() < 1e-9);
        assert!((alice.cpu_percent - 75.0).abs() < 1e-9, "1.5 of 2 cores");
        assert_eq!(alice.processes, 2);
        assert_eq!(alice.memory_bytes, 200 * 4096);
        assert!((alice.memory_percent - 20.0).abs() < 1e-9);
        assert_eq!(alice.top_processes[0].pid, 10, "heaviest first");
        // bob's process is new in this interval: all of its 20 ticks count.
        let bob = s.user("bob").expect("bob");
        assert!((bob.cpu_cores - 0.2).abs() < 1e-9);
        assert_eq!(s.users[0].name.as_ref(), "alice", "users sorted by CPU");
    }

    #[test]
    fn reused_pid_is_a_new_process() {
        let mut old = proc(10, 1001, "alice", 5000, 1);
        old.start_ticks = 1;
        let prev = sample(0, (0, 0), vec![old]);
        let cur = sample(1, (100, 100), vec![proc(10, 1001, "alice", 30, 1)]);
        let s = derive(&prev, &cur, &open_filter());
        assert!((s.processes[0].cpu_percent - 30.0).abs() < 1e-9);
    }

    #[test]
    fn memory_used_is_total_minus_available() {
        let s = derive(
            &sample(0, (0, 0), vec![]),
            &sample(1, (1, 1), vec![]),
            &open_filter(),
        );
        assert_eq!(s.system.memory.used_bytes, 400 * 4096);
        assert!((s.system.memory.used_percent - 40.0).abs() < 1e-9);
        assert!((s.system.memory.swap_used_percent - 75.0).abs() < 1e-9);
    }

    #[test]
    fn io_rates_per_second_and_counter_resets() {
        let mut prev = sample(0, (0, 0), vec![]);
        let mut cur = sample(2, (1, 1), vec![]);
        prev.system.net = vec![RawNet {
            interface: "eth0".into(),
            rx_bytes: 1000,
            tx_bytes: 5000,
            ..Default::default()
        }];
        cur.system.net = vec![RawNet {
            interface: "eth0".into(),
            rx_bytes: 3000,
            tx_bytes: 10, // counter reset
            ..Default::default()
        }];
        prev.system.disk_io = vec![RawDiskIo {
            device: "sda".into(),
            sectors_read: 0,
            io_ticks_ms: 0,
            ..Default::default()
        }];
        cur.system.disk_io = vec![RawDiskIo {
            device: "sda".into(),
            sectors_read: 4096,
            io_ticks_ms: 500,
            ..Default::default()
        }];
        let s = derive(&prev, &cur, &open_filter());
        assert!((s.system.net[0].rx_bytes_per_sec - 1000.0).abs() < 1e-9);
        assert_eq!(s.system.net[0].tx_bytes_per_sec, 0.0);
        assert!((s.system.disk_io[0].read_bytes_per_sec - 4096.0 * 512.0 / 2.0).abs() < 1e-9);
        assert!((s.system.disk_io[0].busy_percent - 25.0).abs() < 1e-9);
    }

    #[test]
    fn filtering_decides_tracked_users() {
        let filter = Filtering {
            excluded_users: vec!["carol".into()],
            ..Filtering::default()
        };
        let prev = sample(0, (0, 0), vec![]);
        let cur = sample(
            1,
            (200, 0),
            vec![
                proc(1, 0, "root", 100, 1),
                proc(2, 1001, "alice", 100, 1),
                proc(3, 1002, "bob", 1, 1),
                proc(4, 1003, "carol", 100, 1),
            ],
        );
        let s = derive(&prev, &cur, &filter);
        let tracked = |n: &str| s.user(n).map(|u| u.tracked);
        assert_eq!(tracked("root"), Some(false), "system uid");
        assert_eq!(tracked("alice"), Some(true));
        assert_eq!(tracked("bob"), Some(false), "below min percents");
        assert_eq!(tracked("carol"), Some(false), "excluded");
        assert_eq!(s.users.len(), 4, "untracked users are still reported");
    }

    #[test]
    fn zero_interval_gives_zero_rates_not_nan() {
        let a = sample(5, (10, 10), vec![proc(1, 1000, "a", 5, 1)]);
        let s = derive(&a, &a, &open_filter());
        assert_eq!(s.system.cpu.total.busy, 0.0);
        assert_eq!(s.processes[0].cpu_percent, 0.0);
        assert!(s.users.iter().all(|u| u.cpu_percent.is_finite()));
    }

    /// A process for the ended-process cases: `own` and `child` ticks, start time 10.
    fn pc(pid: u32, ppid: u32, uid: u32, user: &str, own: u64, child: u64) -> RawProc {
        RawProc {
            ppid,
            child_ticks: child,
            ..proc(pid, uid, user, own, 1)
        }
    }

    /// Derive across one second in which the machine was busy for `busy` ticks of 200 (two
    /// cores: 100 ticks are one core).
    fn across(prev: Vec<RawProc>, cur: Vec<RawProc>, busy: u64) -> Snapshot {
        derive(
            &sample(0, (0, 0), prev),
            &sample(1, (busy, 200 - busy), cur),
            &open_filter(),
        )
    }

    fn cores(s: &Snapshot, name: &str) -> (f64, f64) {
        s.user(name)
            .map_or((0.0, 0.0), |u| (u.cpu_cores, u.exited_cpu_cores))
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn child_seen_then_reaped_counts_only_its_unseen_tail() {
        // make (alice) had a compiler child that had used 30 ticks; it ended with 50 and was
        // reaped: make's children's ticks grew by 50, of which 30 were counted already.
        let prev = vec![
            pc(100, 1, 1001, "alice", 5, 0),
            pc(101, 100, 1001, "alice", 30, 0),
        ];
        let cur = vec![pc(100, 1, 1001, "alice", 7, 50)];
        let s = across(prev, cur, 120);
        let (total, exited) = cores(&s, "alice");
        assert!(close(exited, 0.20), "{exited}");
        assert!(
            close(total, 0.22),
            "2 ticks of make's own + 20 unseen: {total}"
        );
    }

    #[test]
    fn children_never_seen_go_to_the_waiting_parent() {
        let prev = vec![pc(100, 1, 1001, "alice", 0, 0)];
        let cur = vec![pc(100, 1, 1001, "alice", 1, 80)];
        let s = across(prev, cur, 100);
        assert!(close(cores(&s, "alice").1, 0.80));
        assert!(close(s.accounting.unattributed_cores, 0.19));
        assert_eq!(s.accounting.exited_source, ExitedSource::ChildTimes);
    }

    #[test]
    fn a_parent_new_in_the_interval_passes_on_all_it_received() {
        let cur = vec![pc(200, 1, 1001, "alice", 3, 40)];
        let s = across(vec![], cur, 43);
        assert!(close(cores(&s, "alice").0, 0.43));
    }

    #[test]
    fn orphans_reaped_by_init_go_to_their_own_user_and_the_rest_is_unattributed() {
        // bob's job was reparented to init (root) and ended: init received its whole 40 (25
        // seen earlier), plus 30 from processes nobody saw.
        let prev = vec![
            pc(1, 0, 0, "root", 10, 1000),
            pc(300, 1, 1002, "bob", 25, 0),
        ];
        let cur = vec![pc(1, 0, 0, "root", 10, 1070)];
        let s = across(prev, cur, 45);
        assert!(
            close(cores(&s, "bob").1, 0.45),
            "40 - 25 + all 30 shared by who was seen"
        );
        assert!(
            close(cores(&s, "root").0, 0.0),
            "init is not charged with its orphans"
        );
    }

    #[test]
    fn a_root_reaper_with_nobody_seen_leaves_it_unattributed() {
        let prev = vec![pc(700, 1, 0, "root", 0, 0)];
        let cur = vec![pc(700, 1, 0, "root", 0, 90)];
        let s = across(prev, cur, 90);
        assert!(s.user("root").is_some_and(|u| close(u.cpu_cores, 0.0)));
        assert!(close(s.accounting.unattributed_cores, 0.90));
        assert!(close(s.accounting.unattributed_percent, 45.0));
    }

    #[test]
    fn a_users_subreaper_keeps_its_orphans() {
        // alice's systemd --user adopts and reaps orphans nobody saw.
        let prev = vec![pc(500, 1, 1001, "alice", 0, 0)];
        let cur = vec![pc(500, 1, 1001, "alice", 0, 60)];
        assert!(close(cores(&across(prev, cur, 60), "alice").1, 0.60));
    }

    #[test]
    fn jobs_of_another_user_under_a_root_parent_go_to_the_job_user() {
        // root runuser waited for alice's job (seen at 5 ticks, ended at 30) and bob's (seen at
        // 15, ended at 20): 25 + 5 unseen, shared by what each had used.
        let prev = vec![
            pc(700, 1, 0, "root", 1, 0),
            pc(701, 700, 1001, "alice", 5, 0),
            pc(702, 700, 1002, "bob", 15, 0),
        ];
        let cur = vec![pc(700, 1, 0, "root", 1, 50)];
        let s = across(prev, cur, 30);
        assert!(close(cores(&s, "alice").1, 0.30 * 5.0 / 20.0));
        assert!(close(cores(&s, "bob").1, 0.30 * 15.0 / 20.0));
        assert!(close(cores(&s, "root").0, 0.0));
    }

    #[test]
    fn a_parent_that_ended_too_passes_everything_to_its_own_reaper() {
        // shell -> make -> cc; make and cc both ended, make after reaping cc. The shell received
        // make's whole A: make's own 12 plus cc's 40; 10 + 20 of it were seen.
        let prev = vec![
            pc(100, 1, 1001, "alice", 2, 0),
            pc(101, 100, 1001, "alice", 10, 0),
            pc(102, 101, 1001, "alice", 20, 0),
        ];
        let cur = vec![pc(100, 1, 1001, "alice", 2, 52)];
        let s = across(prev, cur, 22);
        assert!(close(cores(&s, "alice").1, 0.22));
    }

    #[test]
    fn a_reused_pid_is_not_the_process_seen_before() {
        // pid 10 was alice's (500 own ticks, 0 children); now it is bob's, new, with 7 from
        // children it reaped: all 7 are bob's, and alice's 500 are not taken from anyone.
        let mut old = pc(10, 1, 1001, "alice", 500, 0);
        old.start_ticks = 1;
        let mut new = pc(10, 1, 1002, "bob", 3, 7);
        new.start_ticks = 99;
        let s = across(vec![old], vec![new], 10);
        assert!(close(cores(&s, "bob").0, 0.10));
        assert!(close(cores(&s, "bob").1, 0.07));
    }

    #[test]
    fn counters_going_backwards_give_nothing() {
        let prev = vec![pc(100, 1, 1001, "alice", 50, 90)];
        let cur = vec![pc(100, 1, 1001, "alice", 50, 10)];
        let s = across(prev, cur, 0);
        assert!(close(cores(&s, "alice").0, 0.0));
    }

    #[test]
    fn a_parent_ignoring_sigchld_receives_nothing_and_the_gap_is_unattributed() {
        // The children were auto-reaped: no cutime anywhere. The machine was busy for 0.8
        // cores; nobody can be charged, and the users + unattributed still add up.
        let prev = vec![
            pc(100, 1, 1001, "alice", 0, 0),
            pc(101, 100, 1001, "alice", 5, 0),
        ];
        let cur = vec![pc(100, 1, 1001, "alice", 0, 0)];
        let s = across(prev, cur, 80);
        assert!(close(cores(&s, "alice").0, 0.0));
        assert!(close(s.accounting.unattributed_cores, 0.80));
    }

    fn exits(groups: Vec<(u32, u32, &str, u64)>, complete: bool) -> Option<ExitLog> {
        Some(ExitLog {
            groups: groups
                .into_iter()
                .map(|(tgid, uid, user, cpu_us)| ExitedGroup {
                    tgid,
                    uid,
                    user: Arc::from(user),
                    cpu_us,
                })
                .collect(),
            complete,
        })
    }

    #[test]
    fn exit_records_are_exact_whoever_reaped() {
        // A root parent (children's ticks ignored with records) waited for alice's job seen at
        // 5 ticks and ended at 300 ms, and for carol's job nobody saw (120 ms).
        let prev = vec![
            pc(700, 1, 0, "root", 0, 0),
            pc(701, 700, 1001, "alice", 5, 0),
        ];
        let cur = vec![pc(700, 1, 0, "root", 0, 42)];
        let mut p = sample(0, (0, 0), prev);
        let mut c = sample(1, (42, 158), cur);
        p.exits = exits(vec![], true);
        c.exits = exits(
            vec![(701, 1001, "alice", 300_000), (900, 1003, "carol", 120_000)],
            true,
        );
        let s = derive(&p, &c, &open_filter());
        assert_eq!(s.accounting.exited_source, ExitedSource::ExitRecords);
        assert!(
            close(cores(&s, "alice").1, 0.25),
            "30 ticks less the 5 seen"
        );
        assert!(
            close(cores(&s, "carol").1, 0.12),
            "a user with no live process is listed"
        );
        assert_eq!(s.user("carol").map(|u| u.processes), Some(0));
        assert!(
            close(cores(&s, "root").0, 0.0),
            "the reaper's cutime is not used"
        );
        assert!(close(s.accounting.exited_cores, 0.37));
        assert!(close(s.accounting.unattributed_cores, 0.05));
    }

    #[test]
    fn incomplete_exit_records_fall_back_to_children_ticks() {
        let prev = vec![pc(100, 1, 1001, "alice", 0, 0)];
        let cur = vec![pc(100, 1, 1001, "alice", 0, 30)];
        let mut c = sample(1, (30, 170), cur);
        c.exits = exits(vec![(555, 1001, "alice", 999_000)], false);
        let s = derive(&sample(0, (0, 0), prev), &c, &open_filter());
        assert_eq!(s.accounting.exited_source, ExitedSource::ChildTimes);
        assert!(close(cores(&s, "alice").1, 0.30));
    }

    #[test]
    fn user_memory_counts_a_shared_page_once() {
        // A parent touched 300 MiB and forked three workers that read it: RSS 300 MiB each,
        // PSS 75 MiB each. One worker grew by 8 MiB of its own since it was measured.
        let mib = 1u64 << 20;
        let reading = PssReading {
            pss_bytes: 75 * mib,
            rss_bytes: 300 * mib,
        };
        let mut procs: Vec<RawProc> = (0..4)
            .map(|i| RawProc {
                rss_pages: 300 * mib / 4096,
                pss: Some(reading),
                ..proc(10 + i, 1001, "alice", 0, 0)
            })
            .collect();
        procs[3].rss_pages += 8 * mib / 4096;
        let mut cur = sample(1, (0, 200), procs);
        cur.system.memory.total = 4096 * mib;
        let s = derive(&sample(0, (0, 0), vec![]), &cur, &open_filter());
        let alice = s.user("alice").expect("alice");
        assert_eq!(alice.memory_bytes, 308 * mib);
        assert_eq!(alice.rss_bytes, 1208 * mib);
        assert_eq!(alice.memory_source, MemorySource::Pss);
        assert!((alice.memory_percent - 308.0 / 4096.0 * 100.0).abs() < 1e-9);
        let grown = s.processes.iter().find(|p| p.pid == 13).expect("pid 13");
        assert_eq!(grown.memory_bytes, 308 * mib, "the process keeps its RSS");
        assert_eq!(grown.pss_bytes, Some(83 * mib));
    }

    #[test]
    fn pss_estimate_follows_rss() {
        let r = PssReading {
            pss_bytes: 100,
            rss_bytes: 400,
        };
        assert_eq!(pss_estimate(r, 400), 100);
        assert_eq!(pss_estimate(r, 500), 200, "new pages are the process's own");
        assert_eq!(pss_estimate(r, 200), 50, "lost pages, proportionally");
        assert_eq!(pss_estimate(r, 0), 0);
        let big = PssReading {
            pss_bytes: 500,
            rss_bytes: 0,
        };
        assert_eq!(pss_estimate(big, 100), 100, "never above RSS");
    }

    #[test]
    fn partly_measured_users_say_so() {
        let mut procs = vec![
            proc(10, 1001, "alice", 0, 100),
            proc(11, 1001, "alice", 0, 100),
        ];
        procs[0].pss = Some(PssReading {
            pss_bytes: 4096,
            rss_bytes: 100 * 4096,
        });
        let s = derive(
            &sample(0, (0, 0), vec![]),
            &sample(1, (0, 200), procs),
            &open_filter(),
        );
        let alice = s.user("alice").expect("alice");
        assert_eq!(alice.memory_source, MemorySource::Partial);
        assert_eq!(alice.memory_bytes, 101 * 4096);
    }
}
