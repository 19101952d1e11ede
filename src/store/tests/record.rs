//! The per-sample write and reading it back.

use super::*;
use crate::config::Config;
use crate::model::Metric;
use crate::track::Tracker;

#[test]
fn a_sample_reads_back_with_its_users_and_top_processes() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    let s = snap(T0)
        .cpu(93.25)
        .mem(41.5)
        .swap(2.0)
        .load(3.5)
        .net(1000.0, 200.0)
        .net(500.0, 50.0)
        .disk_io(4096.0, 8192.0)
        .disk("/", 71.3)
        .user("alice", 1001, 60.5, 12.25)
        .processes(7)
        .top(
            4242,
            "python3",
            "python3 train.py --epochs 10",
            380.5,
            2 << 30,
        )
        .top(4300, "sh", "sh -c make", 12.0, 4 << 20)
        .user("idle", 1002, 0.1, 0.2)
        .untracked()
        .user("quiet", 1003, 0.0, 0.1)
        .user("builder", 1004, 0.2, 0.7)
        .untracked();
    let out = put(&mut store, &s, &[], &[]);
    assert!(!out.already_recorded);
    assert_eq!(
        out.users_recorded, 3,
        "alice, quiet (tracked) and builder (memory)"
    );

    let st = store
        .state_at(Timestamp(T0))
        .expect("state")
        .expect("a sample");
    assert_eq!(st.at, Timestamp(T0));
    assert!(close(st.system.cpu_percent, 93.25));
    assert!(close(st.system.memory_percent, 41.5));
    assert!(close(st.system.swap_percent, 2.0));
    assert!(close(st.system.load.one, 3.5) && close(st.system.load.five, 1.75));
    assert!(
        close(st.system.net_rx_bytes_per_sec, 1500.0),
        "summed over interfaces"
    );
    assert!(close(st.system.net_tx_bytes_per_sec, 250.0));
    assert!(close(st.system.disk_write_bytes_per_sec, 8192.0));
    assert_eq!(st.system.cores, 8);
    assert!(close(st.system.interval_secs, 5.0));
    assert_eq!(st.system.disks.len(), 1);
    assert!(close(st.system.disks[0].used_percent, 71.3));

    let names: Vec<&str> = st.users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["alice", "builder", "quiet"], "heaviest CPU first");
    let alice = &st.users[0];
    assert_eq!((alice.uid, alice.tracked, alice.processes), (1001, true, 7));
    assert!(close(alice.cpu_percent, 60.5) && close(alice.memory_percent, 12.25));
    assert_eq!(alice.memory_bytes, s.0.users[0].memory_bytes);
    // Top processes at three significant figures (codec.rs), the user's own figures exact.
    let top: Vec<(u32, &str, f64, u64)> = alice
        .top_processes
        .iter()
        .map(|p| (p.pid, &*p.cmdline, p.cpu_percent, p.memory_bytes))
        .collect();
    assert_eq!(
        top,
        [
            (
                4242,
                "python3 train.py --epochs 10",
                381.0,
                2_100_000 * 1024
            ),
            (4300, "sh -c make", 12.0, 4_100 * 1024),
        ]
    );
    assert!(!st.users[1].tracked);
    assert!(st.users[2].top_processes.is_empty());
    assert_eq!(store.last_sample_time().expect("last"), Some(Timestamp(T0)));
}

#[test]
fn only_five_top_processes_are_kept() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    let mut s = snap(T0).user("alice", 1001, 50.0, 1.0);
    for i in 0..7 {
        s = s.top(100 + i, "w", &format!("worker {i}"), 10.0, 1 << 20);
    }
    put(&mut store, &s, &[], &[]);
    let st = store
        .state_at(Timestamp(T0))
        .expect("state")
        .expect("sample");
    let pids: Vec<u32> = st.users[0].top_processes.iter().map(|p| p.pid).collect();
    assert_eq!(pids, [100, 101, 102, 103, 104]);
}

#[test]
fn the_tracker_state_round_trips() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    assert_eq!(store.load_tracker_state().expect("load"), None);
    let mut cfg = Config::default();
    cfg.monitoring.cpu_threshold = 80.0;
    let mut tracker = Tracker::new(&cfg);
    let s = snap(T0).cpu(97.0).user("alice", 1001, 90.0, 10.0);
    let events = tracker.observe(&s.0);
    let state = tracker.snapshot_state();
    store
        .record(&Record {
            snapshot: &s.0,
            events: &events,
            mails: &[],
            tracker: &state,
        })
        .expect("record");
    drop(store);
    let store = open(&path);
    let loaded = store.load_tracker_state().expect("load").expect("saved");
    assert_eq!(loaded, state);
    assert_eq!(loaded.last_sample(), Some(Timestamp(T0)));
}

#[test]
fn a_retried_sample_is_not_written_twice() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    let key = AlertKey::system(Metric::Cpu);
    let a = alert(&key, Severity::High, T0, 95.0);
    let s = snap(T0).cpu(95.0);
    let events = [Event::AlertOpened(a)];
    let mails = [mail("cpu", Some(&key))];
    let first = put(&mut store, &s, &events, &mails);
    let second = put(&mut store, &s, &events, &mails);
    assert!(second.already_recorded);
    assert_eq!(second.sample_id, first.sample_id);
    assert!(second.mail_ids.is_empty() && second.opened.is_empty());
    use crate::mail::queue::Outbox;
    assert_eq!(store.backlog().expect("backlog"), 1);
    assert_eq!(store.alerts(true, 10).expect("alerts").len(), 1);
}

#[test]
fn a_failed_sample_leaves_nothing_behind_and_no_stale_ids() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    store
        .conn
        .execute_batch(
            "CREATE TEMP TRIGGER boom BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'boom'); END;",
        )
        .expect("trigger");
    let key = AlertKey::user("alice", Metric::Cpu);
    let s = snap(T0)
        .user("alice", 1001, 90.0, 1.0)
        .top(1, "yes", "yes", 99.0, 4096);
    let tracker = TrackerState::default();
    let err = store
        .record(&Record {
            snapshot: &s.0,
            events: &[Event::AlertOpened(alert(&key, Severity::High, T0, 90.0))],
            mails: &[mail("alice", Some(&key))],
            tracker: &tracker,
        })
        .expect_err("the trigger aborts the insert");
    assert!(err.to_string().contains("queueing a mail"), "{err}");
    assert_eq!(store.last_sample_time().expect("last"), None);
    assert!(store.alerts(true, 10).expect("alerts").is_empty());
    assert_eq!(store.load_tracker_state().expect("state"), None);

    store.conn.execute_batch("DROP TRIGGER boom").expect("drop");
    // A user and command first seen in the failed transaction get fresh ids now.
    put(
        &mut store,
        &snap(T0 + 5000).user("bob", 1002, 50.0, 1.0),
        &[],
        &[],
    );
    put(&mut store, &s, &[], &[]);
    let st = store
        .state_at(Timestamp(T0))
        .expect("state")
        .expect("sample");
    assert_eq!(st.users.len(), 1);
    assert_eq!(st.users[0].name, "alice");
    assert_eq!(&*st.users[0].top_processes[0].cmdline, "yes");
}

#[test]
fn interned_names_survive_a_reopen() {
    let (_dir, path) = temp_db();
    {
        let mut store = open(&path);
        put(
            &mut store,
            &snap(T0)
                .user("alice", 1001, 50.0, 1.0)
                .top(1, "a", "a --x", 1.0, 0),
            &[],
            &[],
        );
    }
    let mut store = open(&path);
    put(
        &mut store,
        &snap(T0 + 5000)
            .user("alice", 1001, 40.0, 1.0)
            .top(1, "a", "a --x", 2.0, 0)
            .user("carol", 1005, 30.0, 1.0)
            .top(2, "b", "b", 3.0, 0),
        &[],
        &[],
    );
    let users: i64 = store
        .conn
        .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
        .expect("count");
    let commands: i64 = store
        .conn
        .query_row("SELECT COUNT(*) FROM commands", [], |r| r.get(0))
        .expect("count");
    assert_eq!((users, commands), (2, 2));
    let st = store
        .state_at(Timestamp(T0 + 5000))
        .expect("state")
        .expect("sample");
    assert_eq!(&*st.users[0].top_processes[0].cmdline, "a --x");
    assert_eq!(&*st.users[1].top_processes[0].name, "b");
}
