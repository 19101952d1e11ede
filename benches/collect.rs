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

/// Mean and best CPU milliseconds per collect + derive over `samples` refreshes.
fn measure(collector: &mut Collector, samples: u32) -> (f64, f64, usize) {
    let filtering = Filtering::default();
    let mut prev = collector.sample(Timestamp(0)).expect("prime");
    let (mut total, mut best) = (Duration::ZERO, Duration::MAX);
    let mut procs = 0;
    for i in 1..=samples {
        let start = cpu_time();
        let cur = collector
            .sample(Timestamp(i as i64 * 1000))
            .expect("sample");
        let snap = derive(&prev, &cur, &filtering);
        let spent = cpu_time() - start;
        procs = snap.processes.len();
        std::hint::black_box(&snap);
        prev = cur;
        total += spent;
        best = best.min(spent);
    }
    (
        total.as_secs_f64() * 1000.0 / samples as f64,
        best.as_secs_f64() * 1000.0,
        procs,
    )
}

fn synthetic(n: u32, fd_budget: usize, samples: u32) {
    let dir = tempfile::tempdir().expect("tempdir");
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
    let (mean, best, procs) = measure(&mut c, samples);
    println!(
        "synthetic  {procs:>6} procs  fds held {:>5}  {mean:7.2} ms/sample (best {best:.2})",
        if fd_budget > 0 { "yes" } else { "no" }
    );
}

fn live(fd_budget: Option<usize>, samples: u32) {
    let mut opts = CollectorOptions::live(vec!["/".into()]);
    if let Some(b) = fd_budget {
        opts.fd_budget = b;
    }
    let held = opts.fd_budget > 0;
    let mut c =
        Collector::new(opts, Box::new(sysmon::collect::SystemUsers)).expect("live collector");
    let (mean, best, procs) = measure(&mut c, samples);
    println!(
        "live       {procs:>6} procs  fds held {:>5}  {mean:7.2} ms/sample (best {best:.2})",
        if held { "yes" } else { "no" }
    );
}

fn main() {
    let samples: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20);
    println!("CPU time per refresh (collect + derive), mean over {samples} samples");
    synthetic(10_000, 1 << 16, samples);
    synthetic(10_000, 0, samples);
    live(None, samples);
    live(Some(0), samples);
}
