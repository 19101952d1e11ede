//! Opening, migrating, failing to write, and sharing the file between processes.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use rusqlite::Connection;

use super::*;
use crate::store::StoreError;

fn pragma(store: &Store, name: &str) -> i64 {
    store
        .conn
        .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
        .expect("pragma")
}

#[test]
fn a_new_file_is_created_private_migrated_and_in_wal_mode() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("state/sysmon/history.db");
    let store = open(&path);
    let mode = std::fs::metadata(dir.path().join("state/sysmon"))
        .expect("dir")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    let journal: String = store
        .conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("mode");
    assert_eq!(journal, "wal");
    assert_eq!(pragma(&store, "auto_vacuum"), 2, "incremental");
    assert_eq!(pragma(&store, "synchronous"), 1, "normal");
    assert_eq!(pragma(&store, "foreign_keys"), 1);
    assert_eq!(pragma(&store, "busy_timeout"), 5000);
    let stats = store.stats().expect("stats");
    assert_eq!(stats.schema_version, crate::store::schema::LATEST);
    assert_eq!(
        (stats.samples, stats.open_alerts, stats.last_sample),
        (0, 0, None)
    );
    assert!(stats.db_bytes > 0);
    assert_eq!(store.path(), path);
    assert_eq!(store.integrity_check().expect("check"), "ok");
}

#[test]
fn reopening_keeps_data_and_applies_no_migration_twice() {
    let (_dir, path) = temp_db();
    {
        let mut store = open(&path);
        put(&mut store, &snap(T0).cpu(12.0), &[], &[]);
    }
    let store = open(&path);
    let versions: i64 = store
        .conn
        .query_row("SELECT COUNT(*) FROM schema_version", [], |r| r.get(0))
        .expect("count");
    assert_eq!(versions, crate::store::schema::LATEST);
    assert_eq!(store.last_sample_time().expect("last"), Some(Timestamp(T0)));
    let stats = store.stats().expect("stats");
    assert_eq!(stats.samples, 1);
}

#[test]
fn a_file_from_a_newer_sysmon_is_refused() {
    let (_dir, path) = temp_db();
    drop(open(&path));
    assert_newer_refused(&path, 99);
}

#[test]
fn unwritable_places_give_errors_not_panics() {
    let err = Store::open(std::path::Path::new("/proc/sysmon-test/history.db"))
        .expect_err("cannot create a directory in /proc");
    assert!(err.to_string().contains("/proc/sysmon-test"), "{err}");

    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").expect("write");
    let err = Store::open(&file.join("history.db")).expect_err("parent is a file");
    assert!(matches!(err, StoreError::CreateDir { .. }), "{err:?}");

    let err = Store::open(dir.path()).expect_err("a directory is no database");
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(
        err.to_string().contains("cannot open the database"),
        "{err}"
    );

    std::fs::write(dir.path().join("garbage.db"), vec![7u8; 8192]).expect("write");
    let err = Store::open(&dir.path().join("garbage.db")).expect_err("not SQLite");
    assert!(err.to_string().contains("garbage.db"), "{err}");
}

#[test]
fn a_full_disk_is_reported_as_such_and_writing_resumes() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    put(&mut store, &snap(T0), &[], &[]);
    let pages = pragma(&store, "page_count");
    store
        .conn
        .pragma_update(None, "max_page_count", pages)
        .expect("limit");
    let big = (0..200u32).fold(snap(T0 + 5000), |s, u| {
        s.user(&format!("u{u}"), u, 1.0, 1.0)
            .top(u, "x", &"y".repeat(200), 1.0, 0)
    });
    let tracker = TrackerState::default();
    let err = store
        .record(&Record {
            snapshot: &big.0,
            events: &[],
            mails: &[],
            tracker: &tracker,
        })
        .expect_err("full");
    assert!(err.is_disk_full(), "{err:?}");
    assert!(!err.is_busy());
    store
        .conn
        .pragma_update(None, "max_page_count", 1_000_000)
        .expect("unlimit");
    let out = put(&mut store, &big, &[], &[]);
    assert_eq!(out.users_recorded, 200);
}

#[test]
fn a_held_write_lock_is_reported_as_busy() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    store
        .conn
        .busy_timeout(Duration::from_millis(50))
        .expect("timeout");
    let other = Connection::open(&path).expect("raw");
    other.execute_batch("BEGIN IMMEDIATE").expect("lock");
    let tracker = TrackerState::default();
    let err = store
        .record(&Record {
            snapshot: &snap(T0).0,
            events: &[],
            mails: &[],
            tracker: &tracker,
        })
        .expect_err("locked");
    assert!(err.is_busy(), "{err:?}");
    // Readers are not blocked by the writer.
    assert_eq!(store.last_sample_time().expect("read"), None);
    other.execute_batch("ROLLBACK").expect("unlock");
    put(&mut store, &snap(T0), &[], &[]);
}

#[test]
fn readers_see_committed_samples_only_and_are_never_blocked() {
    let (_dir, path) = temp_db();
    let mut writer = open(&path);
    put(
        &mut writer,
        &snap(T0)
            .user("alice", 1001, 10.0, 1.0)
            .top(1, "a", "a", 1.0, 0),
        &[],
        &[],
    );
    let reader = open(&path);
    // A write transaction in progress elsewhere is invisible and does not block the reader.
    let raw = Connection::open(&path).expect("raw");
    raw.execute_batch(
        "BEGIN IMMEDIATE; INSERT INTO samples (at, interval_ms, cpu, iowait, memory, swap, \
         mem_used_kib, mem_total_kib, load1, load5, load15, net_rx, net_tx, disk_read, \
         disk_write, processes, threads, cores) \
         VALUES (1, 5000, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);",
    )
    .expect("uncommitted write");
    assert_eq!(reader.stats().expect("stats").samples, 1);
    raw.execute_batch("ROLLBACK").expect("rollback");

    let path2 = path.clone();
    let reading = std::thread::spawn(move || {
        let reader = open(&path2);
        let mut seen = 0u64;
        let mut reads = 0;
        while seen < 201 {
            let n = reader.stats().expect("stats").samples;
            assert!(n >= seen, "never goes back: {n} < {seen}");
            seen = n;
            if let Some(t) = reader.last_sample_time().expect("last") {
                let st = reader.state_at(t).expect("state").expect("sample");
                assert_eq!(st.users.len(), 1, "a sample is seen whole");
            }
            reads += 1;
        }
        reads
    });
    put_range(&mut writer, T0 + 5000, T0 + 5000 * 201, 5000, |t| {
        snap(t)
            .user("alice", 1001, 10.0, 1.0)
            .top(1, "a", "a", 1.0, 0)
    });
    let reads = reading.join().expect("reader thread");
    assert!(reads > 0);
}

#[test]
fn a_version_2_file_gets_its_disk_figures_interned() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    for i in 0..10 {
        // Two sets of figures, each in five samples.
        let home = if i < 5 { 78.25 } else { 78.5 };
        let s = snap(T0 + i * 5_000).disk("/", 61.5).disk("/home", home);
        put(&mut store, &s, &[], &[]);
    }
    store.conn.execute_batch(UNDO_V4).expect("downgrade");
    store.conn.execute_batch(UNDO_V3).expect("downgrade");
    assert_eq!(store.stats().expect("stats").schema_version, 2);
    drop(store);

    let store = open(&path);
    assert_eq!(
        store.stats().expect("stats").schema_version,
        crate::store::schema::LATEST
    );
    let count = |sql: &str| -> i64 { store.conn.query_row(sql, [], |r| r.get(0)).expect(sql) };
    assert_eq!(count("SELECT COUNT(*) FROM disk_sets"), 2);
    assert_eq!(
        count("SELECT COUNT(*) FROM samples WHERE disks IS NOT NULL"),
        0
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM samples WHERE disk_set IS NULL"),
        0
    );
    for (i, home) in [(0, 78.25), (9, 78.5)] {
        let st = store
            .state_at(Timestamp(T0 + i * 5_000))
            .expect("state")
            .expect("a sample");
        let disks: Vec<(&str, f64)> = st
            .system
            .disks
            .iter()
            .map(|d| (d.path.as_str(), d.used_percent))
            .collect();
        assert_eq!(disks, [("/", 61.5), ("/home", home)]);
    }
}

#[test]
fn retention_drops_disk_figures_no_sample_refers_to() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    put(&mut store, &snap(T0).disk("/", 10.0), &[], &[]);
    let later = T0 + 3 * DAY;
    put(&mut store, &snap(later).disk("/", 20.0), &[], &[]);
    store
        .run_retention(Timestamp(later), 30)
        .expect("retention");
    let sets = table_rows(&store, "disk_sets");
    assert_eq!(sets.len(), 1, "{sets:?}");
    assert_eq!(
        sets[0][1],
        rusqlite::types::Value::Text(r#"[["/",2000]]"#.into())
    );
}
