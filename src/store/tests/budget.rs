//! The budgets, measured. Ignored by default (minutes of work); run them with
//! `cargo test --release --lib store::tests::budget -- --ignored --nocapture`.
//!
//! - File size: a 5 s interval with 50 active users, each with five top processes, written the
//!   way the daemon writes (one `record` transaction per sample, which also packs complete
//!   windows into blocks, see `compact.rs`). `SYSMON_BUDGET_DAYS` (default 1) days are written
//!   and the size per week extrapolated; the whole file counts (blocks, free pages, and the hot
//!   rows of the last window, which are a constant rather than a rate). Two workloads:
//!   - typical (the budget): each user runs one or two jobs that hold their CPU level to within
//!     ±1 % (scheduler and clock-tick noise) and grow or shrink their memory by a few pages now
//!     and then, beside three or four interactive processes that idle at 0 % and wake up in one
//!     sample in ten; jobs last about an hour, a fifth of them with a command line never seen
//!     before;
//!   - busy (the worst case): every figure of every process wanders at every sample (CPU by up
//!     to ±5 % of a core, memory by up to ±1 MB), 1 % of processes replaced per sample. Its cost
//!     is set by its own noise, so the test checks the coding against that noise instead.
//! - A GPU server: the typical workload on a machine with 8 GPUs, twelve of the users each
//!   holding one or two of them (memory that grows by an allocator's 2 MiB now and then,
//!   utilization in whole percent moving by a few percent every sample, temperature and power
//!   moving as NVML reports them). Its cost beside the same run without GPUs is what GPUs add.
//! - Query time: 30 days of history (system and one user) from 28 days of 1-minute rollups plus
//!   48 h of raw samples rolled up by `run_retention`, as a daemon's file looks after a month.

use std::time::{Duration, Instant};

use rusqlite::params;

use super::*;
use crate::store::HistoryQuery;
use crate::store::series::{self, Point, write_keyed, write_system};

const USERS: u32 = 50;
const INTERVAL: i64 = 5_000;

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn walk(&mut self, v: f64, step: f64, lo: f64, hi: f64) -> f64 {
        (v + (self.unit() - 0.5) * 2.0 * step).clamp(lo, hi)
    }
}

struct Proc {
    pid: u32,
    cmd: String,
    cpu: f64,
    mem: u64,
    /// A job's CPU level (typical workload); 0 for an interactive process.
    level: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Typical,
    Busy,
}

struct UserGen {
    name: String,
    uid: u32,
    cpu: f64,
    mem: f64,
    procs: Vec<Proc>,
}

/// Fifty users with five top processes each (see the module comment for the two kinds).
struct Workload {
    kind: Kind,
    /// GPUs of the machine (0: none) and who holds which.
    gpus: Vec<GpuGen>,
    holders: Vec<Holder>,
    rng: Rng,
    users: Vec<UserGen>,
    next_pid: u32,
}

/// Typical workload: a job lasts an hour on average, an interactive process six.
const JOB_END: f64 = 1.0 / 720.0;
const INTERACTIVE_END: f64 = 1.0 / 4_320.0;

/// One GPU: its figures as NVML gives them (whole percent, whole degrees, milliwatts).
struct GpuGen {
    util: f64,
    temperature: f64,
    power: f64,
}

/// A user's process on a GPU.
struct Holder {
    user: usize,
    pid: u32,
    device: usize,
    memory: u64,
    util: f64,
}

const GPUS: usize = 8;
const GPU_USERS: usize = 12;
const GPU_MEMORY: u64 = 80 << 30;

impl Workload {
    fn with_gpus(kind: Kind) -> Self {
        let mut w = Workload::new(kind);
        w.gpus = (0..GPUS)
            .map(|_| GpuGen {
                util: 0.0,
                temperature: 40.0,
                power: 80.0,
            })
            .collect();
        for user in 0..GPU_USERS {
            for k in 0..1 + user % 2 {
                w.holders.push(Holder {
                    user,
                    pid: 900_000 + (user * 2 + k) as u32,
                    device: (user + k * 5) % GPUS,
                    memory: (4 + w.rng.next() % 30) << 30,
                    util: (w.rng.next() % 100) as f64,
                });
            }
        }
        w
    }

    /// The GPUs, their processes and the users' sums, as `derive::gpu` makes them.
    fn gpu_step(&mut self, mut s: Snap) -> Snap {
        use crate::model::{GpuDevice, GpuProcess, UserGpu};
        if self.gpus.is_empty() {
            return s;
        }
        let rng = &mut self.rng;
        for h in &mut self.holders {
            h.util = rng.walk(h.util, 4.0, 0.0, 100.0).round();
            if rng.unit() < 0.01 {
                h.memory += 2 << 20;
            }
        }
        for (i, g) in self.gpus.iter_mut().enumerate() {
            let mine = self.holders.iter().filter(|h| h.device == i);
            g.util = mine.map(|h| h.util).sum::<f64>().min(100.0);
            g.temperature = (35.0 + g.util * 0.45 + (rng.unit() - 0.5) * 2.0).round();
            g.power = ((60.0 + g.util * 3.4 + (rng.unit() - 0.5) * 20.0) * 1000.0).round() / 1000.0;
        }
        let users: Vec<(u32, Arc<str>)> = self
            .users
            .iter()
            .map(|u| (u.uid, Arc::from(u.name.as_str())))
            .collect();
        let id = |i: usize| -> Arc<str> {
            Arc::from(format!("GPU-{i:08x}-0000-0000-0000-000000000000"))
        };
        for (i, g) in self.gpus.iter().enumerate() {
            let used: u64 = self
                .holders
                .iter()
                .filter(|h| h.device == i)
                .map(|h| h.memory)
                .sum();
            s.0.gpu.devices.push(GpuDevice {
                index: i as u32,
                id: id(i),
                name: "NVIDIA H100 80GB HBM3".into(),
                driver: "nvidia".into(),
                mig: None,
                utilization_percent: Some(g.util),
                memory_used_bytes: Some(used),
                memory_total_bytes: Some(GPU_MEMORY),
                memory_percent: Some(used as f64 / GPU_MEMORY as f64 * 100.0),
                temperature_celsius: Some(g.temperature),
                power_watts: Some(g.power),
                processes: self.holders.iter().filter(|h| h.device == i).count() as u64,
            });
        }
        for h in &self.holders {
            let (uid, user) = users[h.user].clone();
            s.0.gpu.processes.push(GpuProcess {
                pid: h.pid,
                uid: Some(uid),
                user: Some(user),
                name: Some("python3".into()),
                device: id(h.device),
                device_index: h.device as u32,
                kind: "compute".into(),
                memory_bytes: Some(h.memory),
                utilization_percent: Some(h.util),
            });
        }
        for (k, (uid, _)) in users.iter().enumerate().take(GPU_USERS) {
            let mine: Vec<&Holder> = self.holders.iter().filter(|h| h.user == k).collect();
            let memory: u64 = mine.iter().map(|h| h.memory).sum();
            if let Some(u) = s.0.users.iter_mut().find(|u| u.uid == *uid) {
                u.gpu = Some(UserGpu {
                    devices: mine.len() as u32,
                    device_ids: mine.iter().map(|h| id(h.device)).collect(),
                    memory_bytes: memory,
                    memory_percent: memory as f64 / (GPUS as u64 * GPU_MEMORY) as f64 * 100.0,
                    utilization_percent: mine.iter().map(|h| h.util).sum::<f64>() / GPUS as f64,
                    processes: mine.len() as u64,
                });
            }
        }
        s
    }

    fn new(kind: Kind) -> Self {
        let mut w = Workload {
            kind,
            gpus: Vec::new(),
            holders: Vec::new(),
            rng: Rng(0x9E37_79B9_7F4A_7C15),
            users: Vec::new(),
            next_pid: 1000,
        };
        for u in 0..USERS {
            let jobs = 1 + u as usize % 2;
            let procs = (0..5).map(|i| w.new_proc(u, i < jobs)).collect();
            w.users.push(UserGen {
                name: format!("user{u:02}"),
                uid: 2000 + u,
                cpu: 1.0 + w.rng.unit() * 3.0,
                mem: 0.5 + w.rng.unit() * 2.0,
                procs,
            });
        }
        w
    }

    fn new_proc(&mut self, user: u32, job: bool) -> Proc {
        self.next_pid += 1 + (self.rng.next() % 7) as u32;
        let cmd = if self.rng.unit() < 0.2 {
            format!(
                "python3 /home/user{user:02}/scratch/run_{:x}.py --out /tmp/out-{}",
                self.rng.next() % 0xffff_ffff,
                self.next_pid
            )
        } else {
            let n = self.rng.next() % 8;
            format!(
                "python3 /home/user{user:02}/project/train.py --config configs/exp{n}.yaml --workers 4"
            )
        };
        let threads = [1.0, 2.0, 4.0, 8.0][(self.rng.next() % 4) as usize];
        let level = if job {
            threads * 100.0 * (0.6 + 0.4 * self.rng.unit())
        } else {
            0.0
        };
        Proc {
            pid: self.next_pid,
            cmd,
            cpu: self.rng.unit() * 100.0,
            mem: (64 + self.rng.next() % 4096) << 20,
            level,
        }
    }

    /// One sample's change to a process; whether it ended and is to be replaced.
    fn step(&mut self, p: &mut Proc) -> bool {
        let rng = &mut self.rng;
        let page_steps =
            |rng: &mut Rng, pages: f64| ((rng.unit() - 0.5) * 2.0 * pages) as i64 * 4096;
        match self.kind {
            Kind::Busy => {
                p.cpu = rng.walk(p.cpu, 5.0, 0.0, 400.0);
                p.mem = p.mem.saturating_add_signed(page_steps(rng, 244.0));
                rng.unit() < 0.01
            }
            Kind::Typical if p.level > 0.0 => {
                p.cpu = p.level * (0.99 + 0.02 * rng.unit());
                if rng.unit() < 0.3 {
                    p.mem = p.mem.saturating_add_signed(page_steps(rng, 1_000.0));
                }
                rng.unit() < JOB_END
            }
            Kind::Typical => {
                p.cpu = if rng.unit() < 0.1 {
                    0.1 + rng.unit() * 15.0
                } else {
                    0.0
                };
                if rng.unit() < 0.02 {
                    p.mem = p.mem.saturating_add_signed(page_steps(rng, 244.0));
                }
                rng.unit() < INTERACTIVE_END
            }
        }
    }

    fn snapshot(&mut self, at: i64) -> Snap {
        let mut s = snap(at)
            .cpu(40.0 + self.rng.unit() * 40.0)
            .mem(60.0 + self.rng.unit() * 10.0)
            .load(2.0 + self.rng.unit() * 6.0)
            .net(self.rng.unit() * 1e6, self.rng.unit() * 1e6)
            .disk_io(self.rng.unit() * 1e7, self.rng.unit() * 1e7)
            .disk("/", 61.5)
            .disk("/home", 78.25);
        for i in 0..self.users.len() {
            let uid_index = self.users[i].uid - 2000;
            let mut procs = std::mem::take(&mut self.users[i].procs);
            for p in &mut procs {
                if self.step(p) {
                    *p = self.new_proc(uid_index, p.level > 0.0);
                }
            }
            let rng = &mut self.rng;
            let u = &mut self.users[i];
            u.procs = procs;
            u.cpu = match self.kind {
                Kind::Busy => rng.walk(u.cpu, 0.5, 0.5, 6.0),
                // The processes' sum and a little from the rest, in % of all 64 cores.
                Kind::Typical => {
                    (u.procs.iter().map(|p| p.cpu).sum::<f64>() + rng.unit() * 2.0) / 64.0
                }
            };
            u.mem = match self.kind {
                Kind::Busy => rng.walk(u.mem, 0.05, 0.5, 3.0),
                // The processes' sum, of 16 GiB: it moves when theirs does.
                Kind::Typical => {
                    u.procs.iter().map(|p| p.mem as f64).sum::<f64>() / (16u64 << 30) as f64 * 100.0
                }
            };
            u.procs.sort_by(|a, b| b.cpu.total_cmp(&a.cpu));
            s = s.user(&u.name, u.uid, u.cpu, u.mem).processes(12);
            for p in &u.procs {
                s = s.top(p.pid, "python3", &p.cmd, p.cpu, p.mem);
            }
        }
        self.gpu_step(s)
    }
}

fn file_bytes(store: &Store) -> u64 {
    store
        .conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint");
    let wal = std::fs::metadata(format!("{}-wal", store.path().display()))
        .map(|m| m.len())
        .unwrap_or(0);
    std::fs::metadata(store.path()).expect("size").len() + wal
}

/// Bytes per table and index, when this SQLite has the dbstat table.
fn breakdown(store: &Store) -> Vec<(String, i64)> {
    let Ok(mut stmt) = store
        .conn
        .prepare("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")
    else {
        return Vec::new();
    };
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map(|rows| rows.flatten().collect())
        .unwrap_or_default()
}

/// What the packed rows carry: the empirical (zeroth-order) entropy of the differences a delta
/// coder stores — each user figure's change from the previous sample, which of the previous
/// sample's processes each top process is (or none), and each kept process's CPU and memory
/// change — in bytes per user-sample. New processes' identities are not counted, so no lossless
/// coder of these differences does better; the figure says how far the encoding is from what
/// the workload's noise allows.
fn entropy_per_user_sample(store: &Store) -> f64 {
    use std::collections::HashMap;
    let mut hists: Vec<HashMap<i64, u64>> = vec![HashMap::new(); 9];
    let mut rows = 0u64;
    let mut stmt = store
        .conn
        .prepare("SELECT data FROM user_blocks")
        .expect("prepare");
    let blocks: Vec<Vec<u8>> = stmt
        .query_map([], |r| r.get(0))
        .expect("blocks")
        .collect::<Result<_, _>>()
        .expect("blocks");
    for data in blocks {
        for urows in crate::store::block::decode(&data, None)
            .expect("decode")
            .into_values()
        {
            for w in urows.windows(2) {
                let (a, b) = (&w[0], &w[1]);
                rows += 1;
                let figures = [
                    b.at - a.at,
                    b.cpu - a.cpu,
                    b.memory - a.memory,
                    b.mem_kib - a.mem_kib,
                    b.processes - a.processes,
                    i64::from(b.tracked) - i64::from(a.tracked),
                ];
                for (k, d) in figures.into_iter().enumerate() {
                    *hists[k].entry(d).or_default() += 1;
                }
                // References as the blocks code them: into the previous list in pid order.
                let by_pid = |top: &[crate::store::codec::StoredProcess]| {
                    let mut t = top.to_vec();
                    t.sort_by_key(|p| p.pid);
                    t
                };
                let (a_top, b_top) = (by_pid(&a.top), by_pid(&b.top));
                for (k, p) in b_top.iter().enumerate() {
                    let same = a_top
                        .iter()
                        .position(|q| q.pid == p.pid && q.command == p.command);
                    // New, or where in the previous list relative to its own place.
                    *hists[6]
                        .entry(same.map_or(i64::MIN, |i| i as i64 - k as i64))
                        .or_default() += 1;
                    if let Some(i) = same {
                        let q = a_top[i];
                        *hists[7]
                            .entry(p.cpu_hundredths as i64 - q.cpu_hundredths as i64)
                            .or_default() += 1;
                        *hists[8]
                            .entry(p.mem_kib as i64 - q.mem_kib as i64)
                            .or_default() += 1;
                    }
                }
            }
        }
    }
    let per_row: Vec<f64> = hists
        .iter()
        .map(|h| {
            let n = h.values().sum::<u64>() as f64;
            let bits = h
                .values()
                .map(|&c| -(c as f64) * (c as f64 / n).log2())
                .sum::<f64>();
            (bits / 8.0 / rows.max(1) as f64).abs()
        })
        .collect();
    let names = [
        "time",
        "cpu",
        "memory %",
        "memory KiB",
        "processes",
        "tracked",
        "top identity",
        "process cpu",
        "process KiB",
    ];
    let parts: Vec<String> = names
        .iter()
        .zip(&per_row)
        .map(|(n, b)| format!("{n} {b:.2}"))
        .collect();
    println!(
        "BUDGET size: entropy by column, bytes per user-sample: {}",
        parts.join(", ")
    );
    per_row.iter().sum()
}

fn mb(b: f64) -> f64 {
    b / 1e6
}

#[test]
#[ignore = "budget measurement: minutes in a release build"]
fn budget_file_size_per_week() {
    let m = file_size_per_week(Workload::new(Kind::Typical));
    assert!(m.per_week < 50e6, "{:.1} MB per week", mb(m.per_week));
}

/// The worst case cannot be made smaller than its noise; what can fail is the coding, so this
/// checks the packed blocks against the entropy of what they hold (measured: 10.05 bytes per
/// user-sample against 7.55, 1.33x; 87 MB a week for the whole file).
#[test]
#[ignore = "budget measurement: minutes in a release build"]
fn budget_file_size_per_week_worst_case() {
    let m = file_size_per_week(Workload::new(Kind::Busy));
    assert!(
        m.packed_per_row < 1.4 * m.entropy_per_row,
        "packed {:.2} bytes per user-sample against {:.2} of entropy",
        m.packed_per_row,
        m.entropy_per_row
    );
}

/// The typical workload on a GPU server: what the GPU figures cost per sample, beside the same
/// run without them (`budget_file_size_per_week`).
#[test]
#[ignore = "budget measurement: minutes in a release build"]
fn budget_file_size_per_week_with_gpus() {
    let plain = file_size_per_week(Workload::new(Kind::Typical));
    let gpus = file_size_per_week(Workload::with_gpus(Kind::Typical));
    let samples = (DAY / INTERVAL) as f64 * 7.0;
    println!(
        "BUDGET size: {GPUS} GPUs, {GPU_USERS} users holding them: {:.1} MB per week against \
         {:.1} MB without GPUs: {:.0} bytes per sample more ({:.0} and {:.0} bytes per sample)",
        mb(gpus.per_week),
        mb(plain.per_week),
        (gpus.per_week - plain.per_week) / samples,
        gpus.per_week / samples,
        plain.per_week / samples
    );
    assert!(gpus.per_week > plain.per_week, "GPU figures are recorded");
    // Measured: 47 bytes per sample (445 against 398; 53.8 MB a week against 48.2): the 8 GPUs'
    // rows packed per window at 3.2 bytes per GPU and sample, 26 per sample (280 as plain rows,
    // before schema v5), most of it power, which NVML gives in milliwatts and which moves by
    // watts every sample; the 12 users' GPU figures, 17 bytes per sample in the user blocks
    // (under 1.5 each). This guards against a change that costs more.
    assert!(
        gpus.per_week - plain.per_week < 55.0 * samples,
        "{:.0} bytes per sample",
        (gpus.per_week - plain.per_week) / samples
    );
}

/// The tables of hot rows, which hold the last window (and the delay) whatever the length of the
/// run: a constant, not a rate.
const HOT: [&str; 3] = ["user_samples", "user_gpu_samples", "gpu_samples"];

struct Measured {
    per_week: f64,
    packed_per_row: f64,
    entropy_per_row: f64,
}

fn file_size_per_week(mut w: Workload) -> Measured {
    let kind = w.kind;
    let days: i64 = std::env::var("SYSMON_BUDGET_DAYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    let samples = days * DAY / INTERVAL;
    let started = Instant::now();
    let mut times = Vec::with_capacity(samples as usize);
    let tracker = TrackerState::default();
    for i in 0..samples {
        let s = w.snapshot(T0 + i * INTERVAL);
        let t = Instant::now();
        store
            .record(&Record {
                snapshot: &s.0,
                events: &[],
                mails: &[],
                tracker: &tracker,
            })
            .expect("record");
        times.push(t.elapsed());
    }
    times.sort();
    let slowest = times.last().copied().unwrap_or_default();
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    let elapsed = started.elapsed();
    let bytes = file_bytes(&store) as f64;
    let rows = (samples * i64::from(USERS)) as f64;
    let parts = breakdown(&store);
    // The hot rows are the last window's, whatever the length of the run: not a rate.
    let hot_bytes: f64 = parts
        .iter()
        .filter(|(n, _)| HOT.contains(&n.as_str()))
        .map(|(_, b)| *b as f64)
        .sum();
    let per_week = (bytes - hot_bytes) * 7.0 / days as f64 + hot_bytes;
    println!(
        "BUDGET size: {kind:?} workload, {days} day(s), {samples} samples x {USERS} users x 5 top \
         processes"
    );
    println!(
        "BUDGET size: written in {:.1} s ({:.0} us per record() on average, median {:.0} us, \
         slowest {:.1} ms: the records that pack a window)",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / samples as f64,
        median.as_secs_f64() * 1e6,
        slowest.as_secs_f64() * 1e3
    );
    println!(
        "BUDGET size: file {:.1} MB = {:.0} bytes per user-sample; per week {:.1} MB (budget 50 MB: {})",
        mb(bytes),
        bytes / rows,
        mb(per_week),
        if per_week < 50e6 { "met" } else { "NOT met" }
    );
    for (name, size) in parts.iter().filter(|(_, b)| *b > 50_000) {
        let week = if HOT.contains(&name.as_str()) {
            *size as f64
        } else {
            *size as f64 * 7.0 / days as f64
        };
        println!("BUDGET size:   {name:<28} {:8.1} MB/week", mb(week));
    }
    let (packed_rows, packed_bytes): (i64, i64) = store
        .conn
        .query_row(
            "SELECT SUM(rows), SUM(LENGTH(data)) FROM user_blocks",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("blocks");
    println!(
        "BUDGET size: packed blocks hold {packed_rows} user-samples in {:.1} MB = {:.2} bytes each",
        mb(packed_bytes as f64),
        packed_bytes as f64 / packed_rows as f64
    );
    let (gpu_rows, gpu_bytes): (i64, i64) = store
        .conn
        .query_row(
            "SELECT COALESCE(SUM(rows), 0), COALESCE(SUM(LENGTH(data)), 0) FROM gpu_blocks",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("GPU blocks");
    if gpu_rows > 0 {
        println!(
            "BUDGET size: packed GPU blocks hold {gpu_rows} GPU-samples in {:.2} MB = {:.2} bytes each",
            mb(gpu_bytes as f64),
            gpu_bytes as f64 / gpu_rows as f64
        );
    }
    let entropy_per_row = entropy_per_user_sample(&store);
    println!(
        "BUDGET size: the workload's own information: {entropy_per_row:.2} bytes per user-sample \
         (entropy of the deltas; the budget of 50 MB/week is ~8.3 bytes per user-sample for \
         everything)"
    );
    // Reads of packed data: one moment (every user, one block decoded) and six hours of one
    // user at full resolution (24 blocks, one user's section each).
    let t = Instant::now();
    let state = store
        .state_at(Timestamp(T0 + 6 * HOUR + 2_500))
        .expect("state")
        .expect("a sample");
    let state_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let h = store
        .history(&HistoryQuery {
            since: Timestamp(T0 + 2 * HOUR),
            until: Timestamp(T0 + 8 * HOUR),
            user: Some("user07".into()),
            max_points: None,
        })
        .expect("history");
    println!(
        "BUDGET size: state_at in a packed window ({} users) {state_ms:.1} ms; 6 h raw history \
         of one user ({} points) {:.1} ms",
        state.users.len(),
        h.user.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    let hot: i64 = store
        .conn
        .query_row("SELECT COUNT(*) FROM user_samples", [], |r| r.get(0))
        .expect("hot rows");
    println!("BUDGET size: {hot} user-samples still hot (the last window and the delay)");

    // What the file holds in steady state: 48 h raw, 30 days of minutes, a year of hours.
    let t = Instant::now();
    let rep = store
        .run_retention(Timestamp(T0 + days * DAY), 30)
        .expect("retention");
    println!(
        "BUDGET size: retention over the run took {:.2} s ({} minute rows, {} user minute rows)",
        t.elapsed().as_secs_f64(),
        rep.minutes_rolled_up,
        rep.user_minutes_rolled_up
    );
    let size_of = |parts: &[(String, i64)], names: &[&str]| -> f64 {
        parts
            .iter()
            .filter(|(n, _)| names.iter().any(|m| n.starts_with(m)))
            .map(|(_, s)| *s as f64)
            .sum::<f64>()
            / days as f64
    };
    let parts = breakdown(&store);
    if !parts.is_empty() {
        let raw_day = size_of(
            &parts,
            &[
                "samples",
                "user_samples",
                "user_blocks",
                "commands",
                "sqlite_autoindex_samples",
                "sqlite_autoindex_commands",
            ],
        );
        let gpu_raw_day = size_of(&parts, &["gpu_samples", "user_gpu_samples", "gpu_devices"]);
        let minute_day = size_of(&parts, &["system_1m", "user_1m", "gpu_1m", "user_gpu_1m"]);
        let hour_day = size_of(&parts, &["system_1h", "user_1h", "gpu_1h", "user_gpu_1h"]);
        let raw_day = raw_day + gpu_raw_day;
        let steady = 2.0 * raw_day + 30.0 * minute_day + 365.0 * hour_day;
        println!(
            "BUDGET size: per day raw {:.1} MB, minute rollups {:.2} MB, hour rollups {:.3} MB",
            mb(raw_day),
            mb(minute_day),
            mb(hour_day)
        );
        println!(
            "BUDGET size: steady-state file (48 h raw + 30 d minutes + 365 d hours) ~ {:.0} MB",
            mb(steady)
        );
    }
    Measured {
        per_week,
        packed_per_row: packed_bytes as f64 / packed_rows as f64,
        entropy_per_row,
    }
}

#[test]
#[ignore = "budget measurement: minutes in a release build"]
fn budget_history_30_days() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    let now = T0 + 30 * DAY;
    let raw_from = now - 2 * DAY;

    // 28 days of 1-minute rollups, system and 50 users, written directly.
    let t = Instant::now();
    let mut rng = Rng(42);
    {
        let mut ids = Vec::new();
        for u in 0..USERS {
            let id: i64 = store
                .conn
                .query_row(
                    "INSERT INTO users (uid, name) VALUES (?1, ?2) RETURNING id",
                    params![2000 + u, format!("user{u:02}")],
                    |r| r.get(0),
                )
                .expect("user");
            ids.push(id);
        }
        let tx = store.conn.transaction().expect("tx");
        let mut bucket = T0;
        while bucket < raw_from {
            let mut sys = Point::<8>::zero(bucket, 12);
            for i in 0..8 {
                let v = (rng.unit() * 10_000.0).round();
                sys.min[i] = v / 2.0;
                sys.avg[i] = v;
                sys.max[i] = v * 1.5;
            }
            write_system(&tx, "system_1m", &[sys]).expect("system");
            for &id in &ids {
                let mut p = Point::<4>::zero(bucket, 12);
                p.present = 12;
                for i in 0..4 {
                    let v = (rng.unit() * 1_000.0).round();
                    p.min[i] = v / 2.0;
                    p.avg[i] = v;
                    p.max[i] = v * 1.5;
                }
                write_keyed(&tx, &series::USERS, "user_1m", id, &[p]).expect("user");
            }
            bucket += MIN;
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('rollup_1m_next', ?1)",
            [raw_from],
        )
        .expect("watermark");
        tx.commit().expect("commit");
    }
    println!(
        "BUDGET query: 28 days of minute rollups (51 series) written in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // 48 h of raw samples the daemon's way, then retention rolls them up.
    let t = Instant::now();
    let mut w = Workload::new(Kind::Typical);
    let mut at = raw_from;
    while at < now {
        put(&mut store, &w.snapshot(at), &[], &[]);
        at += INTERVAL;
    }
    println!(
        "BUDGET query: 48 h of raw samples (50 users) recorded in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let rep = store.run_retention(Timestamp(now), 30).expect("retention");
    println!(
        "BUDGET query: retention rolled {} minutes / {} hours up in {:.2} s",
        rep.minutes_rolled_up,
        rep.hours_rolled_up,
        t.elapsed().as_secs_f64()
    );
    println!("BUDGET query: file {:.1} MB", mb(file_bytes(&store) as f64));
    drop(store);

    let store = open(&path);
    let query = HistoryQuery {
        since: Timestamp(now - 30 * DAY),
        until: Timestamp(now),
        user: Some("user07".into()),
        max_points: None,
    };
    let mut times = Vec::new();
    let mut points = (0, 0);
    for _ in 0..7 {
        let t = Instant::now();
        let h = store.history(&query).expect("history");
        times.push(t.elapsed());
        points = (h.system.len(), h.user.len());
        assert_eq!(h.resolution_secs, 60);
    }
    let cold = times[0];
    let mut warm = times[1..].to_vec();
    warm.sort();
    let median = warm[warm.len() / 2];
    println!(
        "BUDGET query: 30 days, system + one user: {} + {} points at 1 min; first {:.1} ms, \
         median of 6 more {:.1} ms (budget 100 ms: {})",
        points.0,
        points.1,
        cold.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e3,
        if median < Duration::from_millis(100) {
            "met"
        } else {
            "NOT met"
        }
    );
    // 1,000 points: more than the 720 hours, so minutes thinned; 400 (the TUI's charts): hours.
    for max in [1000, 400] {
        let mut thin = query.clone();
        thin.max_points = Some(max);
        let t = Instant::now();
        let h = store.history(&thin).expect("history");
        println!(
            "BUDGET query: the same in at most {max} points: {} points every {} s in {:.1} ms",
            h.system.len(),
            h.resolution_secs,
            t.elapsed().as_secs_f64() * 1e3
        );
    }
    assert_eq!(points.0, 30 * 24 * 60);
    assert_eq!(points.1, points.0);
    if !cfg!(debug_assertions) {
        assert!(median < Duration::from_millis(100), "{median:?}");
    }
}
