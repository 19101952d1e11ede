//! A fixed, made-up machine for the UI tests: never the live host, so screens are reproducible.

use std::sync::Arc;

use jiff::tz::TimeZone;

use crate::config::Config;
use crate::model::{
    Alert, AlertDetails, AlertKey, AlertState, CpuBreakdown, CpuStats, DiskIo, DiskUsage,
    LoadAverage, MemoryStats, Metric, NetIo, PersistentEpisode, ProcessStats, Severity, Snapshot,
    Status, StatusReport, SystemStats, TaskCounts, Timestamp, TopProcess, UserStats,
};
use crate::store::StoredAlert;
use crate::ui::state::{AppState, Feed, Options};

/// 2026-11-20 03:00:00 UTC.
pub const AT: Timestamp = Timestamp(1_795_143_600_000);
pub const OWN_PID: u32 = 4242;
/// A process name that tries to clear the screen and retitle the terminal.
pub const HOSTILE: &str = "\x1b[2J\x1b]0;pwned\x07evil\u{202E}txt";
const GIB: u64 = 1024 * 1024 * 1024;
const MIB: u64 = 1024 * 1024;

fn cpu(busy: f64) -> CpuBreakdown {
    CpuBreakdown {
        busy,
        user: busy * 0.8,
        system: busy * 0.2,
        idle: 100.0 - busy,
        ..CpuBreakdown::default()
    }
}

#[allow(clippy::too_many_arguments)]
fn process(
    pid: u32,
    ppid: u32,
    uid: u32,
    user: &str,
    name: &str,
    cmdline: &str,
    cpu_percent: f64,
    mem_mib: u64,
) -> ProcessStats {
    ProcessStats {
        pid,
        ppid,
        uid,
        user: Arc::from(user),
        name: Arc::from(name),
        cmdline: Arc::from(cmdline),
        state: if cpu_percent > 0.0 { 'R' } else { 'S' },
        cpu_percent,
        memory_bytes: mem_mib * MIB,
        memory_percent: (mem_mib * MIB) as f64 / (64 * GIB) as f64 * 100.0,
        pss_bytes: None,
        threads: 1 + u64::from(pid % 7),
        start_time: Timestamp(AT.0 - i64::from(pid) * 1000),
        cpu_time_secs: f64::from(pid % 5000) * 3.0 + cpu_percent * 10.0,
    }
}

pub fn processes() -> Vec<ProcessStats> {
    vec![
        process(1, 0, 0, "root", "systemd", "/sbin/init", 0.1, 12),
        process(812, 1, 0, "root", "sshd", "sshd: /usr/sbin/sshd -D", 0.0, 8),
        process(2001, 812, 1000, "alice", "bash", "-bash", 0.0, 5),
        process(
            2002,
            2001,
            1000,
            "alice",
            "python3",
            "python3 train.py --epochs 400 --batch-size 256",
            398.0,
            20_480,
        ),
        process(
            2003,
            2001,
            1000,
            "alice",
            "python3",
            "python3 -m tensorboard.main --logdir runs",
            12.5,
            900,
        ),
        process(3001, 812, 1001, "bob", "bash", "-bash", 0.0, 5),
        process(3002, 3001, 1001, "bob", "make", "make -j8", 1.0, 30),
        process(
            3003,
            3002,
            1001,
            "bob",
            "cc1plus",
            "/usr/lib/gcc/x86_64-linux-gnu/13/cc1plus -quiet big.cpp",
            96.0,
            1_400,
        ),
        process(
            3004,
            3002,
            1001,
            "bob",
            "cc1plus",
            "/usr/lib/gcc/x86_64-linux-gnu/13/cc1plus -quiet small.cpp",
            64.0,
            600,
        ),
        process(
            4001,
            1,
            1002,
            HOSTILE,
            HOSTILE,
            "./x \x1b[31mred\x1b[0m \u{9b}2J",
            33.0,
            64,
        ),
        process(OWN_PID, 2001, 1000, "alice", "sysmon", "sysmon", 0.7, 18),
    ]
}

fn user(uid: u32, name: &str, procs: &[ProcessStats], cores: f64) -> UserStats {
    let mine: Vec<&ProcessStats> = procs.iter().filter(|p| p.uid == uid).collect();
    let cpu: f64 = mine.iter().map(|p| p.cpu_percent).sum();
    let mem: u64 = mine.iter().map(|p| p.memory_bytes).sum();
    let mut top: Vec<&&ProcessStats> = mine.iter().collect();
    top.sort_by(|a, b| b.cpu_percent.total_cmp(&a.cpu_percent));
    UserStats {
        uid,
        name: Arc::from(name),
        cpu_percent: cpu / cores,
        cpu_cores: cpu / 100.0,
        memory_bytes: mem,
        memory_percent: mem as f64 / (64 * GIB) as f64 * 100.0,
        exited_cpu_cores: 0.0,
        rss_bytes: mem,
        memory_source: Default::default(),
        processes: mine.len() as u64,
        threads: mine.iter().map(|p| p.threads).sum(),
        tracked: uid >= 1000,
        top_processes: top
            .iter()
            .take(5)
            .map(|p| TopProcess {
                pid: p.pid,
                name: p.name.clone(),
                cmdline: p.cmdline.clone(),
                cpu_percent: p.cpu_percent,
                memory_bytes: p.memory_bytes,
            })
            .collect(),
        pids: mine.iter().map(|p| p.pid).collect(),
        gpu: None,
    }
}

pub fn snapshot() -> Snapshot {
    let procs = processes();
    let cores = 8.0;
    let mut users = vec![
        user(1000, "alice", &procs, cores),
        user(1001, "bob", &procs, cores),
        user(1002, HOSTILE, &procs, cores),
        user(0, "root", &procs, cores),
    ];
    // bob's build runs short compiler jobs that no sample sees alive; alice's workers share
    // their parent's memory, measured as PSS.
    users[1].exited_cpu_cores = 1.2;
    users[1].cpu_cores += 1.2;
    users[1].cpu_percent = users[1].cpu_cores / cores * 100.0;
    users[0].rss_bytes = users[0].memory_bytes * 27 / 10;
    users[0].memory_source = crate::model::MemorySource::Pss;
    users.sort_by(|a, b| b.cpu_percent.total_cmp(&a.cpu_percent));
    Snapshot {
        at: AT,
        interval_secs: 2.0,
        host: "gpu-node-07".into(),
        system: SystemStats {
            cpu: CpuStats {
                total: cpu(75.6),
                cores: [99.0, 98.5, 100.0, 97.0, 61.0, 48.0, 33.0, 68.0]
                    .into_iter()
                    .map(cpu)
                    .collect(),
                count: 8,
            },
            memory: MemoryStats {
                total_bytes: 64 * GIB,
                used_bytes: 40 * GIB,
                available_bytes: 24 * GIB,
                free_bytes: 4 * GIB,
                buffers_bytes: GIB,
                cached_bytes: 19 * GIB,
                used_percent: 62.5,
                swap_total_bytes: 8 * GIB,
                swap_used_bytes: GIB,
                swap_used_percent: 12.5,
            },
            disks: vec![
                DiskUsage {
                    path: "/".into(),
                    total_bytes: 200 * GIB,
                    used_bytes: 120 * GIB,
                    available_bytes: 80 * GIB,
                    used_percent: 60.0,
                    ok: true,
                },
                DiskUsage {
                    path: "/home".into(),
                    total_bytes: 2000 * GIB,
                    used_bytes: 1860 * GIB,
                    available_bytes: 140 * GIB,
                    used_percent: 93.0,
                    ok: true,
                },
            ],
            disk_io: vec![DiskIo {
                device: "nvme0n1".into(),
                read_bytes_per_sec: 12.0 * MIB as f64,
                write_bytes_per_sec: 3.5 * MIB as f64,
                reads_per_sec: 300.0,
                writes_per_sec: 80.0,
                busy_percent: 22.0,
            }],
            net: vec![NetIo {
                interface: "eth0".into(),
                rx_bytes_per_sec: 1.5 * MIB as f64,
                tx_bytes_per_sec: 200.0 * 1024.0,
                ..NetIo::default()
            }],
            load: LoadAverage {
                one: 6.12,
                five: 5.80,
                fifteen: 4.95,
            },
            uptime_secs: 41.0 * 86_400.0 + 5.0 * 3600.0,
            tasks: TaskCounts {
                processes: 11,
                threads: 40,
                running: 6,
                blocked: 0,
            },
            pressure: None,
        },
        users,
        accounting: crate::model::CpuAccounting {
            exited_source: crate::model::ExitedSource::ChildTimes,
            exited_cores: 1.2,
            unattributed_cores: 0.35,
            unattributed_percent: 0.35 / 8.0 * 100.0,
        },
        processes: procs,
        gpu: Default::default(),
    }
}

pub fn alert(key: AlertKey, severity: Severity, opened_secs_ago: i64, message: &str) -> Alert {
    let opened = Timestamp(AT.0 - opened_secs_ago * 1000);
    Alert {
        key: key.clone(),
        severity,
        state: AlertState::Open,
        opened_at: opened,
        last_notified_at: opened,
        updated_at: AT,
        resolved_at: None,
        value: 93.0,
        threshold: 90.0,
        peak: 95.0,
        message: message.into(),
        details: AlertDetails {
            host: "gpu-node-07".into(),
            metric: key.metric,
            value: 93.0,
            threshold: 90.0,
            duration_secs: opened_secs_ago as u64,
            status: Status::Heavy,
            system_cpu_percent: 75.6,
            system_memory_percent: 62.5,
            top_users: Vec::new(),
            persistent_users: Vec::new(),
            load: LoadAverage::default(),
            uptime_secs: 0.0,
            recommendation: "Free space on /home.".into(),
        },
    }
}

pub fn feed() -> Feed {
    // The daemon recorded two alerts: alice's (acknowledged by carol) and /home, which this
    // session's tracker has open too and must not be listed twice.
    let mut stored_acked = alert(
        AlertKey::user("alice", Metric::Cpu),
        Severity::High,
        4320,
        "alice CPU 49.9% > 25%",
    );
    stored_acked.state = AlertState::Acknowledged;
    let stored = vec![
        StoredAlert {
            id: 17,
            alert: stored_acked,
            acknowledged_at: Some(AT),
            acknowledged_by: Some("operator:carol".into()),
            resolved_by: None,
        },
        StoredAlert {
            id: 21,
            alert: alert(
                AlertKey::disk("/home"),
                Severity::Medium,
                620,
                "disk /home 93.0% > 90%",
            ),
            acknowledged_at: None,
            acknowledged_by: None,
            resolved_by: None,
        },
    ];
    let mut acked = alert(
        AlertKey::user("alice", Metric::Cpu),
        Severity::High,
        4320,
        "alice CPU 49.9% > 25%",
    );
    acked.state = AlertState::Acknowledged;
    Feed {
        snapshot: snapshot(),
        status: StatusReport {
            status: Status::Heavy,
            reasons: vec![
                "alice over the CPU limit for 1h12m".into(),
                "disk /home 93.0% > 90%".into(),
            ],
        },
        alerts: vec![
            acked,
            alert(
                AlertKey::disk("/home"),
                Severity::Medium,
                600,
                "disk /home 93.0% > 90%",
            ),
            alert(
                AlertKey::user(HOSTILE, Metric::Cpu),
                Severity::Low,
                30,
                &format!("{HOSTILE} CPU 4.1% > 4%"),
            ),
        ],
        persistent: vec![PersistentEpisode {
            user: "alice".into(),
            metric: Metric::Cpu,
            threshold: 25.0,
            started_at: Timestamp(AT.0 - 4_320_000),
            ended_at: None,
            duration_secs: 4320,
            peak: 52.0,
            average: 49.0,
            samples: 2160,
        }],
        stored,
    }
}

pub fn options() -> Options {
    Options {
        ascii: false,
        color: true,
        refresh_secs: 2.0,
        own_pid: OWN_PID,
        tz: TimeZone::UTC,
        readonly: false,
        config_path: None,
    }
}

/// A state with the fixture fed in, and a CPU history for the sparkline.
pub fn state() -> AppState {
    state_of(feed)
}

/// A state fed 41 samples of `feed`, the CPU figures varying for the sparklines.
fn state_of(feed: fn() -> Feed) -> AppState {
    let mut s = AppState::new(Config::default(), options());
    for i in 0..40 {
        let mut f = feed();
        f.snapshot.system.cpu.total.busy = f64::from((i * 37) % 100);
        for (j, c) in f.snapshot.system.cpu.cores.iter_mut().enumerate() {
            c.busy = f64::from((i * 37 + j as u32 * 13) % 100);
        }
        s.ingest(f);
    }
    s.ingest(feed());
    s
}

/// The same machine with eight GPUs, as NVML answers for it, turned into figures by the
/// collector's mapping and `derive` (the path a live sample takes). GPU 3 is split into two MIG
/// instances. alice trains on GPUs 0-2, carol serves from GPUs 4 and 5 and a MIG instance, dave
/// holds memory on GPU 6 and keeps it idle, the hostile user has the other MIG instance, a pid
/// that exited still holds memory on GPU 4, and GPU 7 is free.
pub fn gpu_snapshot() -> Snapshot {
    use crate::collect::gpu::RawGpu;
    use crate::collect::gpu::nvml::{self, NvmlDevice, NvmlMig, NvmlProcess, NvmlUtilSample};
    use crate::collect::{RawProc, RawSample};

    let mut snap = snapshot();
    snap.processes.extend([
        process(
            5001,
            1,
            1003,
            "carol",
            "python3",
            "python3 serve.py --port 8000",
            35.0,
            6_000,
        ),
        process(
            5002,
            5001,
            1003,
            "carol",
            "python3",
            "python3 serve.py --worker 1",
            20.0,
            4_000,
        ),
        process(
            6001,
            1,
            1004,
            "dave",
            "jupyter-lab",
            "jupyter-lab --no-browser",
            0.2,
            1_500,
        ),
    ]);
    snap.processes
        .sort_by(|a, b| b.cpu_percent.total_cmp(&a.cpu_percent));
    let procs = &snap.processes;
    snap.users.push(user(1003, "carol", procs, 8.0));
    snap.users.push(user(1004, "dave", procs, 8.0));
    snap.users
        .sort_by(|a, b| b.cpu_percent.total_cmp(&a.cpu_percent));
    let mut raw: Vec<RawProc> = procs
        .iter()
        .map(|p| RawProc {
            pid: p.pid,
            ppid: p.ppid,
            uid: p.uid,
            user: p.user.clone(),
            name: p.name.clone(),
            cmdline: p.cmdline.clone(),
            state: p.state,
            cpu_ticks: 0,
            child_ticks: 0,
            rss_pages: 0,
            pss: None,
            threads: p.threads,
            start_ticks: u64::from(p.pid) * 10,
        })
        .collect();
    raw.sort_by_key(|p| p.pid);

    let on = |pid: u32, gib: u64| NvmlProcess {
        pid,
        used_bytes: Some(gib * GIB),
    };
    let gpu = |index: u32, util: u32, used_gib: u64, temp: u32, watts: u32| NvmlDevice {
        index,
        name: Some("NVIDIA H100 80GB HBM3".into()),
        uuid: Some(format!("GPU-{index}f3c")),
        utilization_percent: Some(util),
        memory: Some((used_gib * GIB, 80 * GIB)),
        temperature_celsius: Some(temp),
        power_milliwatts: Some(watts * 1000),
        ..NvmlDevice::default()
    };
    let busy = |pid: u32, sm: u32| NvmlUtilSample {
        pid,
        timestamp_us: 1,
        sm_percent: sm,
    };
    let mut devices: Vec<NvmlDevice> = vec![
        gpu(0, 98, 71, 71, 650),
        gpu(1, 96, 71, 69, 640),
        gpu(2, 97, 71, 70, 655),
        gpu(3, 0, 28, 44, 180),
        gpu(4, 35, 43, 52, 310),
        gpu(5, 30, 40, 50, 290),
        gpu(6, 0, 30, 36, 75),
        gpu(7, 0, 0, 31, 70),
    ];
    for (i, d) in devices.iter_mut().enumerate().take(3) {
        d.compute = vec![on(2002, 70)];
        d.samples = vec![busy(2002, 95 - i as u32)];
    }
    devices[3].utilization_percent = None;
    // Two 3g.40gb instances, each with one process holding `gib`.
    let mig = |index: u32, pid: u32, gib: u64| NvmlMig {
        index,
        uuid: Some(format!("MIG-3{index}")),
        name: Some("NVIDIA H100 80GB HBM3 MIG 3g.40gb".into()),
        memory: Some((gib * GIB, 40 * GIB)),
        gpu_instance: Some(index + 1),
        compute_instance: Some(0),
        compute: vec![on(pid, gib)],
        graphics: vec![],
    };
    devices[3].mig = vec![mig(0, 5001, 20), mig(1, 4001, 8)];
    devices[4].compute = vec![on(5002, 40), on(9999, 2)];
    devices[4].samples = vec![busy(5002, 35)];
    devices[5].compute = vec![on(5002, 40)];
    devices[5].samples = vec![busy(5002, 30)];
    devices[6].compute = vec![on(6001, 30)];
    devices[6].samples = vec![busy(6001, 0)];

    let mut gpus = RawGpu::default();
    nvml::map(&devices, &raw, &mut gpus);
    let sample = |at: Timestamp| RawSample {
        at,
        procs: raw.clone(),
        gpu: gpus.clone(),
        ..RawSample::default()
    };
    snap.gpu = crate::derive::gpu::gpu_stats(
        &sample(Timestamp(AT.0 - 2000)),
        &sample(AT),
        &mut snap.users,
    );
    snap
}

pub fn gpu_feed() -> Feed {
    Feed {
        snapshot: gpu_snapshot(),
        ..feed()
    }
}

/// The 8-GPU machine fed in, with a CPU history.
pub fn gpu_state() -> AppState {
    state_of(gpu_feed)
}

/// What the database recorded an hour before the live fixture: bob's build was
/// hogging the machine. Names as a hostile writer of the database might leave them.
pub fn recorded() -> crate::store::RecordedState {
    use crate::store::{DiskPoint, RecordedState, RecordedSystem, RecordedUser};
    let at = Timestamp(AT.0 - 3_600_000);
    let top = |pid: u32, name: &str, cmd: &str, cpu: f64| TopProcess {
        pid,
        name: Arc::from(name),
        cmdline: Arc::from(cmd),
        cpu_percent: cpu,
        memory_bytes: 700 * MIB,
    };
    let mut stored = feed().stored;
    stored.truncate(1);
    RecordedState {
        at,
        system: RecordedSystem {
            interval_secs: 2.0,
            cpu_percent: 97.5,
            iowait_percent: 1.5,
            memory_percent: 40.0,
            swap_percent: 2.0,
            memory_used_bytes: 25 * GIB,
            memory_total_bytes: 64 * GIB,
            load: LoadAverage {
                one: 9.5,
                five: 8.25,
                fifteen: 6.0,
            },
            net_rx_bytes_per_sec: 4096.0,
            net_tx_bytes_per_sec: 1024.0,
            disk_read_bytes_per_sec: 5.0 * MIB as f64,
            disk_write_bytes_per_sec: 9.0 * MIB as f64,
            processes: 230,
            threads: 900,
            cores: 8,
            disks: vec![DiskPoint {
                path: "/home".into(),
                used_percent: 91.0,
            }],
        },
        users: vec![
            RecordedUser {
                uid: 1001,
                name: "bob".into(),
                tracked: true,
                cpu_percent: 88.0,
                memory_percent: 9.0,
                memory_bytes: 6 * GIB,
                processes: 40,
                top_processes: vec![
                    top(5001, "cc1plus", "cc1plus -O2 huge.cpp", 99.0),
                    top(5002, "ld", "ld -o \x1b[2Jout", 80.0),
                ],
                gpu: None,
            },
            RecordedUser {
                uid: 1002,
                name: HOSTILE.into(),
                tracked: true,
                cpu_percent: 3.0,
                memory_percent: 0.5,
                memory_bytes: 300 * MIB,
                processes: 2,
                top_processes: vec![top(6001, HOSTILE, HOSTILE, 20.0)],
                gpu: None,
            },
        ],
        alerts: stored,
        // The rows under way at that moment, as the episodes table holds them now: bob's CPU
        // episode had lasted 1h12m then and ended later; his memory one had started only 20
        // minutes before, short of the 60 that make it persistent.
        persistent: vec![
            PersistentEpisode {
                user: "bob".into(),
                metric: Metric::Cpu,
                threshold: 25.0,
                started_at: Timestamp(at.0 - 72 * 60_000),
                ended_at: Some(Timestamp(at.0 + 30 * 60_000)),
                duration_secs: 102 * 60,
                peak: 99.0,
                average: 80.0,
                samples: 3060,
            },
            PersistentEpisode {
                user: "bob".into(),
                metric: Metric::Memory,
                threshold: 8.0,
                started_at: Timestamp(at.0 - 20 * 60_000),
                ended_at: Some(Timestamp(at.0 + 50 * 60_000)),
                duration_secs: 70 * 60,
                peak: 12.0,
                average: 9.0,
                samples: 2100,
            },
        ],
        gpus: Vec::new(),
    }
}

/// An hour of charts with two alert marks, as the database would give them.
pub fn history() -> crate::ui::history::HistoryData {
    use crate::ui::history::{HistoryData, Mark, Series, Unit};
    let wave = |phase: f64, amp: f64, base: f64| -> Vec<f64> {
        (0..120)
            .map(|i| base + amp * ((f64::from(i) / 9.0 + phase).sin() + 1.0) / 2.0)
            .collect()
    };
    HistoryData {
        since: Timestamp(AT.0 - 3_600_000),
        until: AT,
        source: "database, raw points every 30s".into(),
        series: vec![
            Series {
                label: "CPU".into(),
                unit: Unit::Percent,
                points: wave(0.0, 80.0, 10.0),
            },
            Series {
                label: "Memory".into(),
                unit: Unit::Percent,
                points: wave(1.0, 10.0, 55.0),
            },
            Series {
                label: "Load (1 min)".into(),
                unit: Unit::Load,
                points: wave(2.0, 6.0, 1.0),
            },
            Series {
                label: "Network rx+tx".into(),
                unit: Unit::BytesPerSec,
                points: wave(3.0, 2e6, 1e4),
            },
            Series {
                label: "bob CPU".into(),
                unit: Unit::Percent,
                points: wave(0.5, 60.0, 0.0),
            },
        ],
        marks: vec![
            Mark {
                at: Timestamp(AT.0 - 2_400_000),
                severity: Severity::Medium,
                message: "disk /home 93.0% > 90%".into(),
            },
            Mark {
                at: Timestamp(AT.0 - 600_000),
                severity: Severity::High,
                message: format!("{HOSTILE} CPU 40% > 25%"),
            },
        ],
        times: (0..120)
            .map(|i| Timestamp(AT.0 - 3_600_000 + i * 30_000))
            .collect(),
        users: vec!["alice".into(), "bob".into(), HOSTILE.into()],
    }
}

/// A database holding an hour of a GPU server (`derive::gpu::recorded_nvidia`) recorded every
/// 30 s up to [`AT`], with GPU 0 busier as the hour goes on. Alice (1001),
/// bob (1002) and carol (1003) hold GPUs; dave (1004) does not. Returns the store and the
/// snapshots recorded.
pub fn gpu_database(path: &std::path::Path) -> (crate::store::Store, Vec<Snapshot>) {
    let mut store = crate::store::Store::open(path).expect("open a database");
    let tracker = crate::track::TrackerState::default();
    let mut recorded = Vec::new();
    for i in 0..120i64 {
        let mut s = Snapshot {
            at: Timestamp(AT.0 - (119 - i) * 30_000),
            interval_secs: 30.0,
            host: "gpu-node-07".into(),
            ..Snapshot::default()
        };
        s.system.cpu.count = 8;
        s.system.cpu.total = cpu(30.0 + (i % 9) as f64);
        s.system.memory.total_bytes = 64 * GIB;
        s.system.memory.used_percent = 40.0;
        for (uid, name, busy) in [
            (1001, "alice", 20.0),
            (1002, "bob", 5.0),
            (1003, "carol", 1.0),
        ] {
            let mut u = UserStats::new(uid, Arc::from(name));
            u.cpu_percent = busy;
            u.memory_percent = 2.0;
            u.tracked = true;
            s.users.push(u);
        }
        s.users.push(UserStats::new(1004, Arc::from("dave")));
        s.gpu = crate::derive::gpu::recorded_nvidia(&mut s.users);
        s.gpu.devices[0].utilization_percent = Some(i as f64 * 100.0 / 119.0);
        store
            .record(&crate::store::Record {
                snapshot: &s,
                events: &[],
                mails: &[],
                tracker: &tracker,
            })
            .expect("record");
        recorded.push(s);
    }
    (store, recorded)
}
