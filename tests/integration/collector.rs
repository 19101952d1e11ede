//! The real collector on fixture /proc trees with known answers.

use std::collections::HashMap;
use std::sync::Arc;

use sysmon::collect::fixture::{FakeProc, FakeProcess, FakeSystem};
use sysmon::collect::{Collector, CollectorOptions, CpuTimes, RawSample, StaticUsers};
use sysmon::config::Filtering;
use sysmon::derive::derive;
use sysmon::model::{Snapshot, Timestamp};
use sysmon::sanitize;

struct Rig {
    _dir: tempfile::TempDir,
    fake: FakeProc,
    system: FakeSystem,
    collector: Collector,
}

fn users() -> StaticUsers {
    StaticUsers(HashMap::from([
        (0, "root".to_string()),
        (1001, "alice".to_string()),
        (1002, "bob".to_string()),
    ]))
}

impl Rig {
    fn new(procs: &[FakeProcess]) -> Rig {
        Self::with_budget(procs, 64)
    }

    fn with_budget(procs: &[FakeProcess], fd_budget: usize) -> Rig {
        let dir = tempfile::tempdir().expect("tempdir");
        let system = FakeSystem::default();
        let fake = FakeProc::create(dir.path(), &system).expect("fixture");
        for p in procs {
            fake.add_process(p).expect("add");
        }
        let mut opts = CollectorOptions::fixture(dir.path(), vec!["/".into()]);
        opts.fd_budget = fd_budget;
        let collector = Collector::new(opts, Box::new(users())).expect("collector");
        Rig {
            _dir: dir,
            fake,
            system,
            collector,
        }
    }

    /// Advance every core by `busy` busy and `idle` idle ticks.
    fn advance_cpu(&mut self, busy: u64, idle: u64) {
        for c in &mut self.system.cpu_cores {
            c.user += busy;
            c.idle += idle;
        }
        self.fake.set_system(&self.system).expect("system");
    }

    fn sample(&mut self, secs: i64) -> RawSample {
        self.collector
            .sample(Timestamp::from_secs(secs))
            .expect("sample")
    }
}

/// A filter that tracks every user, system users included.
pub fn all_users() -> Filtering {
    Filtering {
        min_uid: 0,
        ignore_system_users: false,
        min_cpu_percent: 0.0,
        min_memory_percent: 0.0,
        excluded_users: vec![],
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

fn two_samples(rig: &mut Rig, change: impl FnOnce(&mut Rig)) -> Snapshot {
    let a = rig.sample(0);
    change(rig);
    let b = rig.sample(1);
    derive(&a, &b, &all_users())
}

#[test]
fn cpu_memory_and_per_user_sums_have_known_answers() {
    let alice1 = FakeProcess::new(100, 1001, "train").rss_pages(1024);
    let alice2 = FakeProcess::new(101, 1001, "train").rss_pages(1024);
    let bob = FakeProcess::new(200, 1002, "vim").rss_pages(512);
    let mut rig = Rig::new(&[alice1.clone(), alice2.clone(), bob.clone()]);
    let snap = two_samples(&mut rig, |rig| {
        // 4 cores, 100 ticks each: 400 ticks; 300 busy.
        rig.advance_cpu(75, 25);
        rig.fake
            .update_process(&alice1.clone().cpu(80, 20))
            .expect("update");
        rig.fake
            .update_process(&alice2.clone().cpu(100, 0))
            .expect("update");
        rig.fake
            .update_process(&bob.clone().cpu(5, 5))
            .expect("update");
    });
    let s = &snap.system;
    assert_eq!(s.cpu.count, 4);
    assert!(close(s.cpu.total.busy, 75.0), "{}", s.cpu.total.busy);
    assert!(close(s.memory.used_percent, 25.0), "(16-12)/16 GiB");
    assert_eq!(s.memory.total_bytes, 16 << 30);
    assert!(close(s.memory.swap_used_percent, 25.0));
    assert_eq!(s.tasks.processes, 3);

    let alice = snap.user("alice").expect("alice");
    assert!(close(alice.cpu_cores, 2.0), "{}", alice.cpu_cores);
    assert!(close(alice.cpu_percent, 50.0), "2 of 4 cores");
    assert_eq!(alice.memory_bytes, 2048 * 4096);
    assert_eq!(alice.processes, 2);
    assert_eq!(alice.pids, [100, 101]);
    let bob = snap.user("bob").expect("bob");
    assert!(close(bob.cpu_cores, 0.1));
    assert_eq!(snap.users[0].name.as_ref(), "alice");
    let pids: Vec<u32> = snap.processes.iter().map(|p| p.pid).collect();
    assert_eq!(pids, [100, 101, 200], "heaviest first, ties by pid");
}

#[test]
fn rates_come_from_the_fixture_counters() {
    let mut rig = Rig::new(&[FakeProcess::new(1, 0, "init")]);
    let snap = two_samples(&mut rig, |rig| {
        rig.system.net = vec![("eth0".into(), 2_000_000, 500_000)];
        rig.system.disks = vec![("sda".into(), 2048, 4096, 250), ("sda1".into(), 9, 9, 9)];
        rig.fake.set_system(&rig.system).expect("system");
    });
    let s = &snap.system;
    assert_eq!(s.net.len(), 1, "lo excluded");
    assert!(close(s.net[0].rx_bytes_per_sec, 2_000_000.0));
    assert!(close(s.net[0].tx_bytes_per_sec, 500_000.0));
    assert_eq!(s.disk_io.len(), 1, "partition excluded");
    assert!(close(s.disk_io[0].read_bytes_per_sec, 2048.0 * 512.0));
    assert!(close(s.disk_io[0].busy_percent, 25.0));
    assert!(close(s.load.one, 1.5));
    assert!(close(s.uptime_secs, 86_400.0));
    let psi = s.pressure.expect("pressure");
    assert!(close(psi.cpu.expect("cpu").some_avg10, 1.5));
    assert_eq!(s.tasks.running, 3);
    assert_eq!(s.tasks.blocked, 1);
}

#[test]
fn vanished_and_unreadable_processes_are_skipped_without_error() {
    let procs: Vec<_> = (300..310)
        .map(|pid| FakeProcess::new(pid, 1001, "job"))
        .collect();
    let mut rig = Rig::new(&procs);
    rig.fake.make_unreadable(305).expect("unreadable");
    let first = rig.sample(0);
    assert_eq!(first.procs.len(), 9);
    assert_eq!(first.scan.skipped, 1, "{:?}", first.scan);
    rig.fake.remove_process(303).expect("remove");
    let second = rig.sample(1);
    let pids: Vec<u32> = second.procs.iter().map(|p| p.pid).collect();
    assert!(!pids.contains(&303) && !pids.contains(&305), "{pids:?}");
    assert_eq!(pids.len(), 8);
    assert!(
        second.scan.skipped >= 1,
        "unreadable counted: {:?}",
        second.scan
    );
    let snap = derive(&first, &second, &all_users());
    assert_eq!(snap.user("alice").map(|u| u.processes), Some(8));
}

#[test]
fn hostile_names_never_carry_control_characters() {
    let nasty: [&[u8]; 5] = [
        b"evil\x1b]0;owned\x07",
        b"a) S 1 (b",
        b"new\nline",
        b"bad\xff\xfeutf8",
        b"x\x9b2J",
    ];
    let procs: Vec<_> = nasty
        .iter()
        .enumerate()
        .map(|(i, comm)| {
            let mut p = FakeProcess::new(400 + i as u32, 1001, "x");
            p.comm = comm.to_vec();
            p.cmdline = [*comm, b"\0--flag\x1b[2J\0"].concat();
            p
        })
        .collect();
    let mut rig = Rig::new(&procs);
    let snap = two_samples(&mut rig, |_| {});
    assert_eq!(snap.processes.len(), 5);
    for p in &snap.processes {
        assert!(sanitize::is_clean(&p.name), "{:?}", p.name);
        assert!(sanitize::is_clean(&p.cmdline), "{:?}", p.cmdline);
        assert!(p.cmdline.contains("--flag"), "{:?}", p.cmdline);
    }
    let by_pid = |pid: u32| snap.processes.iter().find(|p| p.pid == pid).expect("pid");
    assert_eq!(
        by_pid(401).name.as_ref(),
        "a) S 1 (b",
        "parens and spaces kept"
    );
    assert_eq!(by_pid(401).uid, 1001, "fields after the last paren parsed");
    assert_eq!(by_pid(403).name.as_ref(), "bad\u{fffd}\u{fffd}utf8");
    let json = serde_json::to_string(&snap).expect("json");
    assert!(!json.contains("\\u001b") && !json.contains("\\n"), "{json}");
}

#[test]
fn pid_reuse_and_exec_refresh_names() {
    let mut rig = Rig::new(&[
        FakeProcess::new(500, 1001, "bash"),
        FakeProcess::new(501, 1001, "sh"),
    ]);
    let first = rig.sample(0);
    assert_eq!(first.procs[0].name.as_ref(), "bash");
    // pid 500 exec'd python (same start time); pid 501 died and bob's process took the pid.
    rig.fake
        .update_process(&FakeProcess::new(500, 1001, "python3").cmdline(b"python3\0train.py\0"))
        .expect("exec");
    let mut reused = FakeProcess::new(501, 1002, "make");
    reused.start_ticks += 777;
    rig.fake.update_process(&reused).expect("reuse");
    let second = rig.sample(1);
    let p500 = &second.procs[0];
    assert_eq!(
        (p500.name.as_ref(), p500.cmdline.as_ref()),
        ("python3", "python3 train.py")
    );
    let p501 = &second.procs[1];
    assert_eq!((p501.user.as_ref(), p501.name.as_ref()), ("bob", "make"));
}

#[test]
fn unknown_uid_is_shown_by_number() {
    let mut rig = Rig::new(&[FakeProcess::new(600, 4242, "ghost")]);
    let s = rig.sample(0);
    assert_eq!(s.procs[0].user, Arc::from("4242"));
}

#[test]
fn without_held_descriptors_the_results_are_the_same() {
    let procs: Vec<_> = (700..720)
        .map(|pid| FakeProcess::new(pid, 1001 + pid % 2, "w"))
        .collect();
    let run = |budget: usize| {
        let mut rig = Rig::with_budget(&procs, budget);
        let snap = two_samples(&mut rig, |rig| {
            rig.advance_cpu(50, 50);
            for p in &procs {
                rig.fake
                    .update_process(&p.clone().cpu(p.pid as u64 % 7, 3))
                    .expect("update");
            }
        });
        serde_json::to_value(&snap.users).expect("json")
    };
    assert_eq!(run(0), run(64));
    assert_eq!(run(5), run(64), "budget exhausted part-way");
}

#[test]
fn missing_optional_files_still_give_a_sample() {
    let mut rig = Rig::new(&[FakeProcess::new(1, 0, "init")]);
    for f in [
        "diskstats",
        "net/dev",
        "pressure/cpu",
        "pressure/memory",
        "pressure/io",
    ] {
        std::fs::remove_file(rig.fake.root().join(f)).expect("rm");
    }
    let s = rig.sample(0);
    assert!(s.system.disk_io.is_empty() && s.system.net.is_empty());
    assert_eq!(s.system.pressure, None);
    assert_eq!(s.system.cpu_cores.len(), 4);
    assert_eq!(s.system.cpu_total.user, CpuTimes::default().user);
}

#[test]
fn resident_memory_is_statms_exact_figure_not_stats_approximation() {
    let p = FakeProcess::new(100, 1001, "job")
        .rss_pages(1000)
        .stat_rss_pages(920);
    let mut rig = Rig::new(&[p]);
    let snap = two_samples(&mut rig, |_| {});
    assert_eq!(snap.processes[0].memory_bytes, 1000 * 4096);
}

#[test]
fn children_cpu_reaches_the_user_whose_process_waited() {
    // make (alice) reaped 120 ticks of jobs nobody saw; 4 cores of 100 ticks.
    let make = FakeProcess::new(100, 1001, "make");
    let mut rig = Rig::new(std::slice::from_ref(&make));
    let snap = two_samples(&mut rig, |rig| {
        rig.advance_cpu(35, 65);
        rig.fake
            .update_process(&make.clone().cpu(2, 0).children_cpu(100, 20))
            .expect("update");
    });
    let alice = snap.user("alice").expect("alice");
    assert!(
        close(alice.exited_cpu_cores, 1.2),
        "{}",
        alice.exited_cpu_cores
    );
    assert!(close(alice.cpu_cores, 1.22));
    assert!(close(snap.accounting.unattributed_cores, 1.4 - 1.22));
}

#[test]
fn pss_is_read_only_for_users_whose_shared_pages_would_count_many_times() {
    // alice: a parent and three forked workers, 300 MiB resident each, 80 MiB PSS each.
    // bob: one process of 300 MiB (RSS is already right). carol: two small processes.
    let mib_pages = 256;
    let mut procs: Vec<FakeProcess> = (0..4)
        .map(|i| {
            FakeProcess::new(100 + i, 1001, "worker")
                .rss_pages(300 * mib_pages)
                .pss_kb(80 * 1024)
        })
        .collect();
    procs.push(
        FakeProcess::new(200, 1002, "db")
            .rss_pages(300 * mib_pages)
            .pss_kb(1),
    );
    procs.push(FakeProcess::new(300, 1003, "sh").pss_kb(1));
    procs.push(FakeProcess::new(301, 1003, "sh").pss_kb(1));
    let mut rig = Rig::new(&procs);
    // A refresh walks at most 512 MiB of page tables: the first reads two workers, the next
    // the other two.
    let measured = |s: &RawSample| {
        s.procs
            .iter()
            .filter(|p| p.uid == 1001 && p.pss.is_some())
            .count()
    };
    let a = rig.sample(0);
    assert_eq!(measured(&a), 2);
    let b = rig.sample(1);
    assert_eq!(measured(&b), 4);
    let snap = derive(&a, &b, &all_users());
    let alice = snap.user("alice").expect("alice");
    assert_eq!(alice.memory_bytes, 320 << 20);
    assert_eq!(alice.rss_bytes, 1200 << 20);
    assert_eq!(alice.memory_source, sysmon::model::MemorySource::Pss);
    let bob = snap.user("bob").expect("bob");
    assert_eq!(
        (bob.memory_bytes, bob.memory_source.as_str()),
        (300 << 20, "rss")
    );
    let carol = snap.user("1003").expect("carol by uid");
    assert_eq!(carol.memory_source.as_str(), "rss", "too little to matter");
    // The per-process figure stays RSS, as htop shows it; PSS is beside it.
    let w = snap
        .processes
        .iter()
        .find(|p| p.pid == 100)
        .expect("worker");
    assert_eq!((w.memory_bytes, w.pss_bytes), (300 << 20, Some(80 << 20)));
}

#[test]
fn an_unreadable_smaps_rollup_leaves_rss() {
    let procs: Vec<FakeProcess> = (0..2)
        .map(|i| FakeProcess::new(100 + i, 1001, "w").rss_pages(100 * 256))
        .collect();
    let mut rig = Rig::new(&procs);
    let snap = two_samples(&mut rig, |_| {});
    let alice = snap.user("alice").expect("alice");
    assert_eq!(alice.memory_bytes, 200 << 20);
    assert_eq!(alice.memory_source.as_str(), "rss");
}
