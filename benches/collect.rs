//! CPU cost of one refresh: collect + derive, on a synthetic tree and on this machine.
//!
//! Reports process CPU time (user + system, from CLOCK_PROCESS_CPUTIME_ID) per sample, which is
//! what a monitor costs the machine it watches; wall time would include sleeping on I/O.
//! `cargo bench --bench collect -- [SAMPLES]`.

use std::collections::HashMap;
use std::time::Duration;

use rustix::time::{ClockId, clock_gettime};
use sysmon::collect::fixture::{FakeProc, FakeProcess, FakeSystem};
use sysmon::collect::{Collector, CollectorOptions, StaticUsers};
use sysmon::config::Filtering;
use sysmon::derive::derive;
use sysmon::model::Timestamp;

fn cpu_time() -> Duration {
    let t = clock_gettime(ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

struct Cost {
    /// Mean CPU ms per refresh (collect + derive).
    mean: f64,
    best: f64,
    /// Mean CPU ms of the derive step alone.
    derive: f64,
    procs: usize,
}

fn measure(collector: &mut Collector, samples: u32) -> Cost {
    let filtering = Filtering::default();
    let mut prev = collector.sample(Timestamp(0)).expect("prime");
    let (mut total, mut best, mut derive_total) = (Duration::ZERO, Duration::MAX, Duration::ZERO);
    let mut procs = 0;
    for i in 1..=samples {
        let start = cpu_time();
        let cur = collector
            .sample(Timestamp(i as i64 * 1000))
            .expect("sample");
        let collected = cpu_time();
        let snap = derive(&prev, &cur, &filtering);
        let end = cpu_time();
        procs = snap.processes.len();
        std::hint::black_box(&snap);
        prev = cur;
        total += end - start;
        derive_total += end - collected;
        best = best.min(end - start);
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Cost {
        mean: ms(total) / samples as f64,
        best: ms(best),
        derive: ms(derive_total) / samples as f64,
        procs,
    }
}

fn print(kind: &str, held: bool, c: &Cost) {
    println!(
        "{kind:<10} {:>6} procs  fds held {:>3}  {:7.2} ms/refresh (best {:.2}; derive {:.2})",
        c.procs,
        if held { "yes" } else { "no" },
        c.mean,
        c.best,
        c.derive
    );
}

fn synthetic(n: u32, fd_budget: usize, samples: u32) {
    // tmpfs when there is one: an in-memory tree is closer to procfs than a disk file system.
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("tempdir");
    let fake = FakeProc::create(dir.path(), &FakeSystem::default()).expect("fixture");
    let mut names = HashMap::new();
    for u in 0..50u32 {
        names.insert(1000 + u, format!("user{u:02}"));
    }
    for pid in 1..=n {
        let p = FakeProcess::new(pid + 100, 1000 + pid % 50, "worker")
            .cpu(pid as u64 % 997, 3)
            .cmdline(format!("/usr/bin/worker --id {pid}\0").as_bytes());
        fake.add_process(&p).expect("add");
    }
    let mut opts = CollectorOptions::fixture(dir.path(), vec!["/".into()]);
    opts.fd_budget = fd_budget;
    let mut c = Collector::new(opts, Box::new(StaticUsers(names))).expect("collector");
    print("synthetic", fd_budget > 0, &measure(&mut c, samples));
}

/// `n` processes with four ordinary descriptors each, on a machine with an amdgpu card of which
/// `clients` processes are clients (0: the same tree with no DRM device, as before GPUs), every
/// process's descriptors looked at every `rescan_every` refreshes (1: every refresh, as nvtop and
/// htop do).
fn synthetic_drm(n: u32, clients: u32, rescan_every: u64, samples: u32) {
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("tempdir");
    let fake = FakeProc::create(dir.path(), &FakeSystem::default()).expect("fixture");
    if clients > 0 {
        fake.add_drm_device(0, "0000:03:00.0", "amdgpu")
            .expect("device");
    }
    let fdinfo = include_str!("../src/collect/gpu/fixtures/amdgpu.fdinfo");
    for pid in 1..=n {
        let p = FakeProcess::new(pid + 100, 1000 + pid % 50, "worker").cpu(pid as u64 % 997, 3);
        fake.add_process(&p).expect("add");
        for (fd, target) in ["/dev/null", "/dev/pts/0", "/dev/pts/0", "pipe:[1]"]
            .iter()
            .enumerate()
        {
            fake.add_fd(pid + 100, fd as u32, target, "pos:\t0\n")
                .expect("fd");
        }
        if pid <= clients {
            let info = fdinfo.replace("\t17\n", &format!("\t{pid}\n"));
            fake.add_fd(pid + 100, 5, "/dev/dri/renderD128", &info)
                .expect("drm fd");
        }
    }
    let mut opts = CollectorOptions::fixture(dir.path(), vec!["/".into()]);
    opts.gpu.fdinfo_rescan_every = rescan_every;
    let mut c = Collector::new(opts, Box::new(StaticUsers(HashMap::new()))).expect("collector");
    let cost = measure(&mut c, samples);
    print(&format!("drm {clients}/{rescan_every}"), true, &cost);
    if let Some(s) = c.drm_scan_cost() {
        println!(
            "           fd dirs listed {} links read {} fdinfo read {} over {} refreshes",
            s.fd_dirs, s.links, s.fdinfos, s.refreshes
        );
    }
}

fn live(fd_budget: Option<usize>, samples: u32) {
    let mut opts = CollectorOptions::live(vec!["/".into()]);
    if let Some(b) = fd_budget {
        opts.fd_budget = b;
    }
    let held = opts.fd_budget > 0;
    let mut c =
        Collector::new(opts, Box::new(sysmon::collect::SystemUsers)).expect("live collector");
    print("live", held, &measure(&mut c, samples));
}

fn main() {
    let samples: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20);
    println!("CPU time per refresh (collect + derive), mean over {samples} samples");
    synthetic(10_000, 1 << 16, samples);
    synthetic(10_000, 0, samples);
    // Samples past one full rescan (every 30 refreshes), so its cost is in the mean.
    let gpu_samples = samples.max(60);
    synthetic_drm(2_000, 0, 30, gpu_samples);
    synthetic_drm(2_000, 20, 30, gpu_samples);
    synthetic_drm(2_000, 20, 1, gpu_samples);
    live(None, samples);
    live(Some(0), samples);
}
