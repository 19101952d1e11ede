//! Packing per-user rows into blocks: every read gives exactly what it gave from the hot rows,
//! late writes and retention work across the two forms, a damaged block is an error, and a v1
//! file is converted.

use rusqlite::types::Value;

use super::*;
use crate::store::compact::{self, BLOCK_MS, COMPACT_DELAY_MS};
use crate::store::{History, HistoryQuery, RecordedState, StoreError};

const STEP: i64 = 5_000;

fn count(store: &Store, sql: &str) -> i64 {
    store.conn.query_row(sql, [], |r| r.get(0)).expect("count")
}

/// Hot rows of samples before `t`.
fn hot_before(store: &Store, t: i64) -> i64 {
    store
        .conn
        .query_row(
            "SELECT COUNT(*) FROM user_samples u JOIN samples s ON s.id = u.sample_id \
             WHERE s.at < ?1",
            [t],
            |r| r.get(0),
        )
        .expect("count")
}

/// A varied sample: users come and go (untracked and idle ones are not recorded), top lists
/// reorder, processes are replaced, one user has no top processes, figures wander.
fn varied(t: i64) -> Snap {
    let i = (t - T0) / STEP;
    let mut s = snap(t).cpu(30.0 + (i % 17) as f64).mem(50.0);
    for u in 0..6u32 {
        let cpu = ((i * (i64::from(u) + 3)) % 23) as f64 / 4.0 + f64::from(u) * 0.37;
        if u >= 4 {
            // Untracked: recorded only while at or above the trivial threshold.
            s = s.user(&format!("user{u}"), 1000 + u, (cpu - 3.0).max(0.0), 0.2);
            s = s.untracked();
        } else {
            s = s.user(&format!("user{u}"), 1000 + u, cpu, 1.0 + f64::from(u) / 7.0);
        }
        s = s.processes(2 + (i as u64 + u64::from(u)) % 5);
        if u == 2 {
            continue;
        }
        let generation = (i / (11 + i64::from(u))) as u32;
        for p in 0..(1 + (u + i as u32) % 5) {
            let pid = 10_000 * (u + 1) + p + generation * 7;
            let pcpu = ((i * i64::from(p + 1) * 13) % 997) as f64 / 10.0;
            let pmem = ((i % 50) as u64 * 4096 + u64::from(p) * (1 << 20)) * 3;
            s = s.top(
                pid,
                "job",
                &format!("job --user {u} --part {p} --gen {}", generation % 3),
                pcpu,
                pmem,
            );
        }
    }
    s
}

/// Records [from, to) without the automatic compaction in `record`.
fn put_hot(store: &mut Store, from: i64, to: i64) {
    store.compact_due = i64::MAX;
    put_range(store, from, to, STEP, varied);
}

fn pack_all(store: &mut Store) -> u64 {
    let tx = store.conn.transaction().expect("tx");
    let n = compact::compact_until(&tx, i64::MAX - BLOCK_MS).expect("compact");
    tx.commit().expect("commit");
    n
}

type Observed = (
    Vec<(Option<RecordedState>, Option<Timestamp>, Option<Timestamp>)>,
    Vec<History>,
);

/// Everything the public reads say about [from, to]: the state at every step (and just after),
/// the step navigation, and several users' raw history over a few ranges.
fn observe(store: &Store, from: i64, to: i64) -> Observed {
    let mut states = Vec::new();
    let mut t = from - STEP;
    while t <= to + STEP {
        for at in [Timestamp(t), Timestamp(t + 1)] {
            states.push((
                store.state_at(at).expect("state"),
                store.prev_sample_time(at).expect("prev"),
                store.next_sample_time(at).expect("next"),
            ));
        }
        t += STEP;
    }
    let mut histories = Vec::new();
    for user in ["user0", "user1", "user2", "user4", "user5", "nobody"] {
        for (a, b) in [
            (from, to),
            (from + 7 * STEP, from + 7 * STEP),
            (to - HOUR, to),
        ] {
            histories.push(
                store
                    .history(&HistoryQuery {
                        since: Timestamp(a),
                        until: Timestamp(b),
                        user: Some(user.into()),
                        max_points: None,
                    })
                    .expect("history"),
            );
        }
    }
    (states, histories)
}

#[test]
fn reads_are_identical_before_and_after_packing() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    let (from, to) = (T0 + 3 * MIN, T0 + 2 * HOUR + 7 * MIN);
    put_hot(&mut store, from, to + 1);
    let hot_rows = count(&store, "SELECT COUNT(*) FROM user_samples");
    assert!(hot_rows > 5 * 1500, "{hot_rows}");
    let before = observe(&store, from, to);
    let users = before.0[10].0.as_ref().expect("state").users.len();
    assert!(users >= 4, "{users}");
    assert!(
        before
            .1
            .iter()
            .any(|h| h.user.iter().any(|p| p.present == 0))
    );

    assert_eq!(pack_all(&mut store), hot_rows as u64);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM user_samples"), 0);
    assert_eq!(count(&store, "SELECT SUM(rows) FROM user_blocks"), hot_rows);
    let after = observe(&store, from, to);
    assert_eq!(after.0, before.0);
    assert_eq!(after.1, before.1);

    // Reopened (another process) the same.
    drop(store);
    let store = open(&path);
    assert_eq!(observe(&store, from, to), before);
}

#[test]
fn record_packs_complete_windows_itself() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    let to = T0 + HOUR;
    put_range(&mut store, T0, to, STEP, varied);
    // Windows ending COMPACT_DELAY_MS before the last sample are packed; the rest is hot.
    let packed_until = compact::window_of(to - STEP - COMPACT_DELAY_MS);
    assert_eq!(
        count(&store, "SELECT MAX(block) FROM user_blocks"),
        packed_until - BLOCK_MS
    );
    let oldest_hot = count(
        &store,
        "SELECT MIN(s.at) FROM samples s JOIN user_samples u ON u.sample_id = s.id",
    );
    assert_eq!(oldest_hot, packed_until);

    // A second store with the same samples, never packed, reads the same.
    let (_dir2, path2) = temp_db();
    let mut hot = open(&path2);
    put_hot(&mut hot, T0, to);
    assert_eq!(observe(&store, T0, to - STEP), observe(&hot, T0, to - STEP));
}

#[test]
fn a_late_sample_in_a_packed_window_is_read_and_merged() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    // Every other sample, then the missing ones of the first window after it was packed.
    put_range(&mut store, T0, T0 + HOUR, 2 * STEP, varied);
    assert_eq!(
        hot_before(&store, T0 + BLOCK_MS),
        0,
        "the first window is packed"
    );
    let (_d2, p2) = temp_db();
    let mut reference = open(&p2);
    reference.compact_due = i64::MAX;
    put_range(&mut reference, T0, T0 + HOUR, 2 * STEP, varied);
    for t in (T0 + STEP..T0 + BLOCK_MS).step_by(2 * STEP as usize) {
        put(&mut store, &varied(t), &[], &[]);
        put(&mut reference, &varied(t), &[], &[]);
    }
    let late = hot_before(&store, T0 + BLOCK_MS);
    assert!(late > 0, "late rows are hot until the next compaction");
    let expected = observe(&reference, T0, T0 + 20 * MIN);
    // Mixed hot and packed rows in one window read like all-hot.
    let mut states = observe(&store, T0, T0 + 20 * MIN);
    assert_eq!(states, expected);
    // The next compaction (from retention) merges them into the block.
    store
        .run_retention(Timestamp(T0 + HOUR), 30)
        .expect("retention");
    assert_eq!(hot_before(&store, T0 + BLOCK_MS), 0);
    states = observe(&store, T0, T0 + 20 * MIN);
    assert_eq!(states, expected);
}

/// The rollup tables, row by row.
fn rollups(store: &Store) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    for t in ["system_1m", "user_1m", "system_1h", "user_1h"] {
        out.extend(table_rows(store, t));
    }
    out
}

#[test]
fn rollups_and_deletion_are_the_same_from_blocks_and_hot_rows() {
    let (_d1, p1) = temp_db();
    let (_d2, p2) = temp_db();
    let mut packed = open(&p1);
    let mut hot = open(&p2);
    let (from, to) = (T0 + 2 * MIN, T0 + 3 * HOUR + 11 * MIN);
    put_hot(&mut packed, from, to);
    put_hot(&mut hot, from, to);
    pack_all(&mut packed);
    // Retention packs what is complete in `hot` too, but its last windows stay hot.
    let now = Timestamp(to + MIN);
    let retain = |s: &mut Store, now| crate::store::RetentionReport {
        pages_freed: 0,
        ..s.run_retention(now, 30).expect("retention")
    };
    assert_eq!(retain(&mut packed, now), retain(&mut hot, now));
    assert!(count(&hot, "SELECT COUNT(*) FROM user_samples") > 0);
    assert_eq!(rollups(&packed), rollups(&hot));
    assert!(!rollups(&packed).is_empty());

    // 48 h later everything before the cut is deleted, the straddling block trimmed.
    let later = Timestamp(from + RAW + 37 * MIN + 2_500);
    let a = retain(&mut packed, later);
    assert_eq!(a, retain(&mut hot, later));
    let kept = count(&packed, "SELECT COUNT(*) FROM samples");
    assert!(kept > 0 && a.user_samples_deleted > 0);
    assert_eq!(
        observe(&packed, later.0 - RAW + 2_500, to - STEP),
        observe(&hot, later.0 - RAW + 2_500, to - STEP)
    );
    assert!(
        packed
            .state_at(Timestamp(later.0 - RAW - 1))
            .expect("state")
            .is_none()
    );
    assert_eq!(
        count(&packed, "SELECT SUM(rows) FROM user_blocks"),
        count(&hot, "SELECT SUM(rows) FROM user_blocks")
            + count(&hot, "SELECT COUNT(*) FROM user_samples")
    );
}

const RAW: i64 = crate::store::RAW_RETENTION_MS;

#[test]
fn a_damaged_block_is_an_error_not_a_panic() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    put_hot(&mut store, T0, T0 + 20 * MIN);
    pack_all(&mut store);
    for garbage in [vec![], vec![2u8, 1, 2, 3], vec![9u8; 40]] {
        store
            .conn
            .execute(
                "UPDATE user_blocks SET data = ?1 WHERE block = ?2",
                rusqlite::params![garbage, T0],
            )
            .expect("damage");
        let err = store.state_at(Timestamp(T0 + MIN)).expect_err("damaged");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        let q = HistoryQuery {
            since: Timestamp(T0),
            until: Timestamp(T0 + 10 * MIN),
            user: Some("user1".into()),
            max_points: None,
        };
        assert!(matches!(store.history(&q), Err(StoreError::Corrupt { .. })));
        assert!(store.run_retention(Timestamp(T0 + 20 * MIN), 30).is_err());
        // The other window is fine.
        assert!(
            store
                .state_at(Timestamp(T0 + 16 * MIN))
                .expect("state")
                .is_some()
        );
    }
}

#[test]
fn a_version_1_file_is_converted() {
    let (_dir, path) = temp_db();
    let (from, to) = (T0, T0 + HOUR + 3 * MIN);
    let expected = {
        let mut store = open(&path);
        put_hot(&mut store, from, to);
        // Make it what sysmon 1 wrote: no blocks table, no compaction watermark.
        store.conn.execute_batch(UNDO_V4).expect("downgrade");
        store.conn.execute_batch(UNDO_V3).expect("downgrade");
        store
            .conn
            .execute_batch(
                "DROP TABLE user_blocks; DELETE FROM schema_version WHERE version = 2; \
                 DELETE FROM meta WHERE key = 'compact_next';",
            )
            .expect("downgrade");
        assert_eq!(store.stats().expect("stats").schema_version, 1);
        let hot = count(&store, "SELECT COUNT(*) FROM user_samples");
        drop(store);
        let store = open(&path);
        assert_eq!(
            store.stats().expect("stats").schema_version,
            crate::store::schema::LATEST
        );
        let packed = count(&store, "SELECT SUM(rows) FROM user_blocks");
        let left = count(&store, "SELECT COUNT(*) FROM user_samples");
        assert_eq!(packed + left, hot);
        // All but the windows within COMPACT_DELAY_MS of the last sample.
        assert_eq!(
            count(
                &store,
                "SELECT MIN(s.at) FROM samples s JOIN user_samples u ON u.sample_id = s.id"
            ),
            compact::window_of(to - STEP - COMPACT_DELAY_MS)
        );
        observe(&store, from, to - STEP)
    };
    let (_d2, p2) = temp_db();
    let mut reference = open(&p2);
    put_hot(&mut reference, from, to);
    assert_eq!(expected, observe(&reference, from, to - STEP));
}
