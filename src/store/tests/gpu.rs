//! GPU figures (schema v4, the devices' rows packed since v5): recorded per device and per user,
//! read back the same whether the rows are hot or packed, kept through retention, absent (no
//! row, no byte) on a machine without GPUs, and added to a file of the previous version.

use super::*;
use crate::store::compact::{self, BLOCK_MS};
use crate::store::{History, HistoryQuery, RecordedState};

const STEP: i64 = 5_000;
const GIB: u64 = 1 << 30;

fn count(store: &Store, sql: &str) -> i64 {
    store.conn.query_row(sql, [], |r| r.get(0)).expect(sql)
}

/// Alice (1001) holds GPU 0 and a MIG instance of GPU 1, bob (1002) a desktop and a job on GPU 1,
/// carol (1003) 2 GiB; dave (1004) holds none. Carol and dave are untracked and idle.
fn gpu_snap(t: i64) -> Snap {
    let i = (t - T0) / STEP;
    snap(t)
        .cpu(40.0)
        .mem(50.0)
        .user("alice", 1001, 20.0 + (i % 7) as f64, 5.0)
        .user("bob", 1002, 3.0, 2.0)
        .user("carol", 1003, 0.0, 0.1)
        .untracked()
        .user("dave", 1004, 0.0, 0.1)
        .untracked()
        .gpus()
        .gpu_load(i)
}

impl Snap {
    /// Moves GPU 0's utilization and alice's share with `i`, so rollups have something to
    /// average.
    fn gpu_load(mut self, i: i64) -> Self {
        let busy = (i % 10) as f64 * 10.0;
        self.0.gpu.devices[0].utilization_percent = Some(busy);
        if let Some(g) = self.0.users[0].gpu.as_mut() {
            g.utilization_percent = busy / 2.0;
        }
        self
    }
}

fn state(store: &Store, t: i64) -> RecordedState {
    store
        .state_at(Timestamp(t))
        .expect("state")
        .expect("a sample")
}

fn pack_all(store: &mut Store) -> u64 {
    let tx = store.conn.transaction().expect("tx");
    let n = compact::compact_until(&tx, i64::MAX - BLOCK_MS).expect("compact");
    tx.commit().expect("commit");
    n
}

fn device_memory(st: &RecordedState, user: &str) -> Vec<(String, u64)> {
    st.users
        .iter()
        .find(|u| u.name == user)
        .and_then(|u| u.gpu.as_ref())
        .map(|g| {
            g.devices
                .iter()
                .map(|d| (d.id.clone(), d.memory_bytes / GIB))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn devices_and_users_round_trip_hot_and_packed() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    store.compact_due = i64::MAX;
    put_range(&mut store, T0, T0 + 20 * MIN, STEP, gpu_snap);
    let at = T0 + 3 * MIN;
    let hot = state(&store, at);
    let raw = |store: &Store| {
        store
            .history(&HistoryQuery {
                since: Timestamp(T0),
                until: Timestamp(T0 + 20 * MIN),
                user: Some("alice".into()),
                max_points: None,
            })
            .expect("history")
    };
    let hot_history = raw(&store);
    assert_eq!(hot_history.gpus.len(), 4);

    // Devices in nvidia-smi's order, MIG instances after their parent, figures as recorded.
    let live = gpu_snap(at).0;
    let ids: Vec<(&str, u32, Option<u32>)> = hot
        .gpus
        .iter()
        .map(|g| (g.id.as_str(), g.index, g.mig_parent))
        .collect();
    assert_eq!(
        ids,
        [
            ("GPU-0a1b", 0, None),
            ("GPU-9f8e", 1, None),
            ("MIG-aaaa", 0, Some(1)),
            ("MIG-bbbb", 1, Some(1))
        ]
    );
    for g in &hot.gpus {
        let d = live
            .gpu
            .devices
            .iter()
            .find(|d| *d.id == g.id)
            .expect("live");
        assert_eq!(g.name, &*d.name);
        assert_eq!(g.memory_used_bytes, d.memory_used_bytes, "{}", g.id);
        assert_eq!(g.memory_total_bytes, d.memory_total_bytes, "{}", g.id);
        assert_eq!(g.utilization_percent, d.utilization_percent, "{}", g.id);
        assert_eq!(g.temperature_celsius, d.temperature_celsius, "{}", g.id);
        assert_eq!(g.power_watts, d.power_watts, "{}", g.id);
        assert_eq!(g.processes, d.processes, "{}", g.id);
    }

    // Users: the figures the live snapshot had, and who held which device.
    for u in live.users.iter().filter(|u| u.gpu.is_some()) {
        let want = u.gpu.as_ref().expect("gpu");
        let got = hot
            .users
            .iter()
            .find(|r| r.uid == u.uid)
            .and_then(|r| r.gpu.as_ref())
            .unwrap_or_else(|| panic!("{} recorded with GPU figures", u.name));
        assert_eq!(got.memory_bytes, want.memory_bytes, "{}", u.name);
        assert!(close(
            got.memory_percent,
            (want.memory_percent * 100.0).round() / 100.0
        ));
        assert!(close(
            got.utilization_percent,
            (want.utilization_percent * 100.0).round() / 100.0
        ));
        assert_eq!(got.processes, want.processes);
        let devices: Vec<&str> = got.devices.iter().map(|d| d.id.as_str()).collect();
        let wanted: Vec<&str> = want.device_ids.iter().map(|d| &**d).collect();
        assert_eq!(devices, wanted, "{}", u.name);
    }
    assert_eq!(
        device_memory(&hot, "alice"),
        [("GPU-0a1b".to_string(), 20), ("MIG-aaaa".to_string(), 10)]
    );
    // Dave holds nothing: an idle untracked user is still not recorded.
    assert!(hot.users.iter().all(|u| u.name != "dave"));

    // Packed: the very same state.
    assert!(pack_all(&mut store) > 0);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM user_gpu_samples"), 0);
    let version: Vec<u8> = store
        .conn
        .query_row("SELECT data FROM user_blocks LIMIT 1", [], |r| r.get(0))
        .expect("a block");
    assert_eq!(version[0], 4, "a block with GPU figures");
    assert_eq!(state(&store, at), hot);
    // The devices' rows too: packed per window, every moment and series read back the same.
    assert_eq!(count(&store, "SELECT COUNT(*) FROM gpu_samples"), 0);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM gpu_blocks"), 2);
    assert_eq!(count(&store, "SELECT SUM(rows) FROM gpu_blocks"), 4 * 240);
    for t in [
        T0,
        T0 + 14 * MIN + 55_000,
        T0 + 15 * MIN,
        T0 + 20 * MIN - STEP,
    ] {
        assert_eq!(state(&store, t).gpus.len(), 4, "{t}");
    }
    assert_eq!(raw(&store), hot_history);
}

#[test]
fn a_user_holding_gpu_memory_is_recorded_however_idle() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    put(&mut store, &gpu_snap(T0), &[], &[]);
    let st = state(&store, T0);
    let carol = st
        .users
        .iter()
        .find(|u| u.name == "carol")
        .expect("carol holds 2 GiB on a GPU with no CPU and 0.1 % of memory");
    assert!(!carol.tracked);
    assert_eq!(carol.gpu.as_ref().map(|g| g.memory_bytes), Some(2 * GIB));
}

#[test]
fn a_machine_without_gpus_writes_nothing_new() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    store.compact_due = i64::MAX;
    put_range(&mut store, T0, T0 + 20 * MIN, STEP, |t| {
        snap(t)
            .user("alice", 1001, 20.0, 5.0)
            .top(7, "job", "job --x", 20.0, 1 << 20)
    });
    for table in ["gpu_devices", "gpu_samples", "user_gpu_samples"] {
        assert_eq!(count(&store, &format!("SELECT COUNT(*) FROM {table}")), 0);
    }
    pack_all(&mut store);
    let block: Vec<u8> = store
        .conn
        .query_row("SELECT data FROM user_blocks LIMIT 1", [], |r| r.get(0))
        .expect("a block");
    assert_eq!(block[0], 3, "the block format of before");
    assert_eq!(count(&store, "SELECT COUNT(*) FROM gpu_blocks"), 0);
    let st = state(&store, T0);
    assert!(st.gpus.is_empty() && st.users.iter().all(|u| u.gpu.is_none()));
    // And the JSON of the state says nothing about GPUs.
    let json = serde_json::to_string(&st).expect("json");
    assert!(!json.contains("gpu"), "{json}");
}

#[test]
fn raw_gpu_rows_go_with_their_samples() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    put_range(&mut store, T0, T0 + 2 * MIN, STEP, gpu_snap);
    let later = T0 + 3 * DAY;
    put(&mut store, &gpu_snap(later), &[], &[]);
    store
        .run_retention(Timestamp(later), 30)
        .expect("retention");
    // Only the last sample's four devices are left raw; the devices themselves stay.
    assert_eq!(count(&store, "SELECT COUNT(*) FROM gpu_samples"), 4);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM gpu_blocks"), 0);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM gpu_devices"), 4);
    assert_eq!(
        device_memory(&state(&store, later), "alice"),
        [("GPU-0a1b".to_string(), 20), ("MIG-aaaa".to_string(), 10)]
    );
}

#[test]
fn a_version_3_file_gains_the_gpu_tables_and_keeps_its_data() {
    let (_dir, path) = temp_db();
    let before = {
        let mut store = open(&path);
        store.compact_due = i64::MAX;
        put_range(&mut store, T0, T0 + 20 * MIN, STEP, |t| {
            snap(t).user("alice", 1001, 20.0, 5.0)
        });
        pack_all(&mut store);
        let before = state(&store, T0 + MIN);
        store.conn.execute_batch(UNDO_V4).expect("downgrade");
        assert_eq!(store.stats().expect("stats").schema_version, 3);
        before
    };
    let mut store = open(&path);
    assert_eq!(
        store.stats().expect("stats").schema_version,
        crate::store::schema::LATEST
    );
    assert_eq!(state(&store, T0 + MIN), before);
    // The upgraded file records GPUs.
    put(&mut store, &gpu_snap(T0 + 21 * MIN), &[], &[]);
    let st = state(&store, T0 + 21 * MIN);
    assert_eq!(st.gpus.len(), 4);
    assert_eq!(device_memory(&st, "alice").len(), 2);
    drop(store);

    // A file from a sysmon that knows a version 6 is still refused.
    assert_newer_refused(&path, 6);
}

#[test]
fn packed_gpu_rows_expire_with_their_window() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    put_range(&mut store, T0, T0 + 20 * MIN, STEP, gpu_snap);
    // Raw rows are kept 48 hours: this cut falls inside the first window.
    let later = T0 + 2 * DAY + 10 * MIN;
    put(&mut store, &gpu_snap(later), &[], &[]);
    let kept = state(&store, T0 + 12 * MIN);
    store
        .run_retention(Timestamp(later), 30)
        .expect("retention");
    assert!(count(&store, "SELECT COUNT(*) FROM gpu_blocks") > 0);
    // Every sample left but the latest (hot) has its four devices packed, none from before.
    let packed_samples = count(&store, "SELECT COUNT(*) FROM samples") - 1;
    assert_eq!(packed_samples, 120, "10 minutes at 5 s");
    assert_eq!(
        count(&store, "SELECT SUM(rows) FROM gpu_blocks"),
        4 * packed_samples
    );
    assert_eq!(state(&store, T0 + 12 * MIN), kept);
    assert_eq!(state(&store, later).gpus.len(), 4);
    // And when the whole window is past the cut, its block goes: only the sample at `later` is
    // left, packed by now.
    let last = later + 2 * DAY;
    put(&mut store, &gpu_snap(last), &[], &[]);
    store.run_retention(Timestamp(last), 30).expect("retention");
    assert_eq!(count(&store, "SELECT SUM(rows) FROM gpu_blocks"), 4);
    assert_eq!(
        count(&store, "SELECT MIN(block) FROM gpu_blocks"),
        compact::window_of(later)
    );
}

#[test]
fn a_version_4_file_gets_its_gpu_rows_packed() {
    let (_dir, path) = temp_db();
    let (before, history_before) = {
        let mut store = open(&path);
        store.compact_due = i64::MAX;
        // What sysmon 4 wrote: every GPU row plain, the users' rows packed.
        put_range(&mut store, T0, T0 + 40 * MIN, STEP, gpu_snap);
        let before: Vec<RecordedState> = (0..8)
            .map(|i| state(&store, T0 + i * 5 * MIN + 2 * STEP))
            .collect();
        let h = history(&store, T0, T0 + 40 * MIN, "alice");
        store.conn.execute_batch(UNDO_V5).expect("downgrade");
        assert_eq!(store.stats().expect("stats").schema_version, 4);
        let tx = store.conn.transaction().expect("tx");
        compact::compact(&tx).expect("compact");
        tx.commit().expect("commit");
        assert_eq!(count(&store, "SELECT COUNT(*) FROM gpu_samples"), 4 * 480);
        (before, h)
    };
    let store = open(&path);
    assert_eq!(store.stats().expect("stats").schema_version, 5);
    // The windows the users were packed in: every one but the last (the watermark's).
    assert_eq!(count(&store, "SELECT COUNT(*) FROM gpu_blocks"), 2);
    assert_eq!(count(&store, "SELECT SUM(rows) FROM gpu_blocks"), 4 * 360);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM gpu_samples"), 4 * 120);
    let after: Vec<RecordedState> = (0..8)
        .map(|i| state(&store, T0 + i * 5 * MIN + 2 * STEP))
        .collect();
    assert_eq!(after, before);
    assert_eq!(history(&store, T0, T0 + 40 * MIN, "alice"), history_before);
}

#[test]
fn a_renamed_or_renumbered_gpu_keeps_its_id() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    put(&mut store, &gpu_snap(T0), &[], &[]);
    let mut s = gpu_snap(T0 + STEP);
    s.0.gpu.devices[0].index = 7;
    put(&mut store, &s, &[], &[]);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM gpu_devices"), 4);
    assert_eq!(
        count(
            &store,
            "SELECT idx FROM gpu_devices WHERE uuid = 'GPU-0a1b'"
        ),
        7
    );
}

fn history(store: &Store, from: i64, to: i64, user: &str) -> History {
    store
        .history(&HistoryQuery {
            since: Timestamp(from),
            until: Timestamp(to),
            user: Some(user.into()),
            max_points: Some(24),
        })
        .expect("history")
}

/// The figures of two histories agree within the rounding of the rollups (integer averages).
fn same_figures(a: &History, b: &History) {
    let near = |x: f64, y: f64| (x - y).abs() <= 0.01 * x.abs().max(1.0);
    assert_eq!(a.gpus.len(), b.gpus.len());
    for (ga, gb) in a.gpus.iter().zip(&b.gpus) {
        assert_eq!((&ga.id, ga.points.len()), (&gb.id, gb.points.len()));
        for (pa, pb) in ga.points.iter().zip(&gb.points) {
            assert_eq!(
                (pa.at, pa.samples, pa.present),
                (pb.at, pb.samples, pb.present)
            );
            for (x, y) in [
                (pa.utilization_percent, pb.utilization_percent),
                (pa.memory_used_bytes, pb.memory_used_bytes),
                (pa.power_watts, pb.power_watts),
            ] {
                assert!(near(x.avg, y.avg) && near(x.max, y.max), "{x:?} {y:?}");
            }
        }
    }
    assert_eq!(a.user_gpu.len(), b.user_gpu.len());
    for (pa, pb) in a.user_gpu.iter().zip(&b.user_gpu) {
        assert_eq!((pa.at, pa.present), (pb.at, pb.present));
        assert!(near(pa.memory_bytes.avg, pb.memory_bytes.avg));
        assert!(near(pa.utilization_percent.avg, pb.utilization_percent.avg));
    }
}

#[test]
fn gpu_history_reads_the_same_from_raw_samples_and_rollups() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    let to = T0 + 2 * HOUR;
    put_range(&mut store, T0, to, STEP, gpu_snap);
    let raw = history(&store, T0, to - 1, "alice");
    assert_eq!(raw.gpus.len(), 4, "every GPU has a series");
    assert_eq!(raw.gpus[0].id, "GPU-0a1b");
    // GPU 0 goes 0, 10, ..., 90 %: 45 % on average, 90 % at most, in every 5-minute point.
    let p = &raw.gpus[0].points[3];
    assert!((p.utilization_percent.avg - 45.0).abs() < 1e-9, "{p:?}");
    assert_eq!(p.utilization_percent.max, 90.0);
    assert_eq!(p.memory_used_bytes.avg, (30 * GIB) as f64);
    // Alice holds 30 GiB all along.
    assert_eq!(raw.user_gpu.len(), raw.system.len());
    assert!(
        raw.user_gpu
            .iter()
            .all(|p| p.memory_bytes.min == (30 * GIB) as f64)
    );
    // Dave held none: no GPU series for him, his CPU and memory as before.
    assert!(history(&store, T0, to - 1, "dave").user_gpu.is_empty());

    // Half rolled up: the minutes of the first hour, then raw samples.
    store
        .run_retention(Timestamp(T0 + HOUR), 30)
        .expect("retention");
    let half = history(&store, T0, to - 1, "alice");
    assert_eq!(half.source, crate::store::Resolution::Minute);
    same_figures(&raw, &half);

    let rep = store.run_retention(Timestamp(to), 30).expect("retention");
    assert!(
        rep.minutes_rolled_up > 0 && rep.hours_rolled_up > 0,
        "{rep:?}"
    );
    let rows = |store: &Store, t: &str| count(store, &format!("SELECT COUNT(*) FROM {t}"));
    assert_eq!(rows(&store, "gpu_1m"), 4 * 120);
    assert_eq!(rows(&store, "gpu_1h"), 4 * 2);
    // Alice, bob and carol held GPUs.
    assert_eq!(rows(&store, "user_gpu_1m"), 3 * 120);
    let rolled = history(&store, T0, to - 1, "alice");
    assert_eq!(rolled.source, crate::store::Resolution::Minute);
    same_figures(&raw, &rolled);

    // Retention: minutes go after the retention days, hours stay a year.
    let later = to + 40 * DAY;
    put(&mut store, &snap(later), &[], &[]);
    store
        .run_retention(Timestamp(later), 30)
        .expect("retention");
    assert_eq!(
        (rows(&store, "gpu_1m"), rows(&store, "user_gpu_1m")),
        (0, 0)
    );
    assert_eq!(
        (rows(&store, "gpu_1h"), rows(&store, "user_gpu_1h")),
        (4 * 2, 3 * 2)
    );
    let hours = history(&store, T0, to - 1, "alice");
    assert_eq!(hours.source, crate::store::Resolution::Hour);
    assert_eq!(hours.gpus.len(), 4);
    assert!(
        hours
            .user_gpu
            .iter()
            .all(|p| (p.memory_bytes.avg - (30 * GIB) as f64).abs() < 1024.0)
    );
}

#[test]
fn a_late_gpu_sample_in_a_packed_window_is_merged_into_its_block() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    store.compact_due = i64::MAX;
    // Every other sample, then the window is packed; the missing ones arrive late.
    put_range(&mut store, T0, T0 + 20 * MIN, 2 * STEP, gpu_snap);
    pack_all(&mut store);
    let late = T0 + STEP;
    put(&mut store, &gpu_snap(late), &[], &[]);
    let hot = state(&store, late);
    assert_eq!(device_memory(&hot, "alice").len(), 2);
    pack_all(&mut store);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM user_gpu_samples"), 0);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM gpu_samples"), 0);
    assert_eq!(
        state(&store, late),
        hot,
        "the same once merged into the block"
    );
}
