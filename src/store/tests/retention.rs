//! Rollups and deletion: what goes, what stays, and that a second run changes nothing.

use rusqlite::types::Value;

use super::*;
use crate::mail::queue::Outbox;
use crate::model::{Metric, PersistentEpisode, ResolvedBy};
use crate::store::{HistoryQuery, Resolution};

/// Every row of every table, for comparing a file before and after.
fn contents(store: &Store) -> Vec<(String, Vec<Vec<Value>>)> {
    let mut tables: Vec<String> = store
        .conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("names");
    tables.retain(|t| t != "sqlite_sequence");
    tables
        .into_iter()
        .map(|t| {
            let rows = table_rows(store, &t);
            (t, rows)
        })
        .collect()
}

fn count(store: &Store, sql: &str) -> i64 {
    store.conn.query_row(sql, [], |r| r.get(0)).expect("count")
}

/// CPU of the sample at `t`: a saw tooth over the hour, so hour buckets have known figures.
fn cpu_at(t: i64) -> f64 {
    ((t - T0) / (2 * MIN) % 30) as f64 * 2.0
}

#[test]
fn rolls_up_then_deletes_and_a_second_run_changes_nothing() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    put_range(&mut store, T0, T0 + 3 * DAY, 2 * MIN, |t| {
        let job = if t < T0 + 12 * HOUR { "job A" } else { "job B" };
        snap(t)
            .cpu(cpu_at(t))
            .mem(30.0)
            .user("alice", 1001, cpu_at(t) / 2.0, 2.0)
            .top(77, "job", job, 50.0, 1 << 20)
    });
    let now = Timestamp(T0 + 3 * DAY);
    let rep = store.run_retention(now, 30).expect("retention");
    assert_eq!(
        rep.minutes_rolled_up,
        3 * 720,
        "one bucket per sampled minute"
    );
    assert_eq!(rep.user_minutes_rolled_up, 3 * 720);
    assert_eq!((rep.hours_rolled_up, rep.user_hours_rolled_up), (72, 72));
    assert_eq!(rep.samples_deleted, 720, "the first day is older than 48 h");
    assert_eq!(rep.user_samples_deleted, 720);
    assert_eq!(rep.commands_deleted, 1, "job A is no longer referenced");
    assert_eq!((rep.minute_rows_deleted, rep.hour_rows_deleted), (0, 0));
    assert_eq!(count(&store, "SELECT MIN(at) FROM samples"), T0 + DAY);
    assert!(
        store
            .state_at(Timestamp(T0 + DAY - 1))
            .expect("state")
            .is_none()
    );
    let kept = store
        .state_at(Timestamp(T0 + DAY))
        .expect("state")
        .expect("sample");
    assert_eq!(&*kept.users[0].top_processes[0].cmdline, "job B");

    // Hour 5: thirty samples with CPU 0, 2, ..., 58.
    let (h5_sys, h5_user): (Vec<i64>, Vec<i64>) = store
        .conn
        .query_row(
            "SELECT s.samples, s.cpu_min, s.cpu_avg, s.cpu_max, u.cpu_min, u.cpu_avg, u.cpu_max \
             FROM system_1h s JOIN user_1h u ON u.bucket = s.bucket WHERE s.bucket = ?1",
            [T0 + 5 * HOUR],
            |r| {
                Ok((
                    vec![r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?],
                    vec![r.get(4)?, r.get(5)?, r.get(6)?],
                ))
            },
        )
        .expect("hour row");
    assert_eq!(
        h5_sys,
        [30, 0, 2900, 5800],
        "samples, min, avg, max in hundredths"
    );
    assert_eq!(h5_user, [0, 1450, 2900]);

    let h = store
        .history(&HistoryQuery {
            since: Timestamp(T0),
            until: Timestamp(T0 + 3 * DAY - 1),
            user: Some("alice".into()),
            max_points: None,
        })
        .expect("history");
    assert_eq!(h.source, Resolution::Minute);
    assert_eq!(
        h.system.len(),
        3 * 720,
        "the deleted day is still there as minutes"
    );
    assert!(close(h.system[3].cpu.avg, cpu_at(T0 + 6 * MIN)));
    assert!(close(h.user[3].cpu_percent.avg, cpu_at(T0 + 6 * MIN) / 2.0));

    let before = contents(&store);
    let again = store.run_retention(now, 30).expect("retention");
    assert!(!again.changed_anything(), "{again:?}");
    assert_eq!(contents(&store), before);
    assert_eq!(store.integrity_check().expect("check"), "ok");
}

#[test]
fn old_records_go_but_unsent_mail_and_open_alerts_stay() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    let old = AlertKey::user("alice", Metric::Cpu);
    let open_key = AlertKey::system(Metric::Disk);
    let a = alert(&old, Severity::High, T0, 90.0);
    put(
        &mut store,
        &snap(T0),
        &[
            Event::AlertOpened(a.clone()),
            Event::AlertOpened(alert(&open_key, Severity::High, T0, 95.0)),
            Event::PersistentStarted(PersistentEpisode {
                user: "alice".into(),
                metric: Metric::Cpu,
                threshold: 50.0,
                started_at: Timestamp(T0 - HOUR),
                ended_at: None,
                duration_secs: 3600,
                peak: 90.0,
                average: 80.0,
                samples: 60,
            }),
        ],
        &[mail("sent", Some(&old)), mail("stuck", Some(&old))],
    );
    let ids = store.due(Timestamp(T0), 10).expect("due");
    store
        .mark_sent(&[ids[0].id], Timestamp(T0 + MIN))
        .expect("sent");
    let open_id = store.alerts(false, 10).expect("open")[0].id;
    assert!(
        store
            .acknowledge(open_id, Timestamp(T0 + MIN), "op")
            .expect("ack")
    );
    put(
        &mut store,
        &snap(T0 + 2 * MIN),
        &[
            Event::AlertResolved {
                alert: resolved(&a, T0 + 2 * MIN),
                by: ResolvedBy::Recovered,
            },
            Event::PersistentEnded(PersistentEpisode {
                user: "alice".into(),
                metric: Metric::Cpu,
                threshold: 50.0,
                started_at: Timestamp(T0 - HOUR),
                ended_at: Some(Timestamp(T0 + 2 * MIN)),
                duration_secs: 3720,
                peak: 90.0,
                average: 80.0,
                samples: 62,
            }),
        ],
        &[],
    );
    // 29 days later nothing is old enough yet.
    let early = store
        .run_retention(Timestamp(T0 + 29 * DAY), 30)
        .expect("retention");
    assert_eq!(
        (
            early.alerts_deleted,
            early.outbox_deleted,
            early.episodes_deleted
        ),
        (0, 0, 0)
    );
    let rep = store
        .run_retention(Timestamp(T0 + 31 * DAY), 30)
        .expect("retention");
    assert_eq!(rep.alerts_deleted, 1, "the resolved one");
    assert_eq!(rep.outbox_deleted, 1, "the sent one");
    assert_eq!(rep.episodes_deleted, 1);
    assert_eq!(rep.operator_actions_deleted, 1);
    let left = store.alerts(true, 10).expect("alerts");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, open_id);
    let stuck = store.due(Timestamp(T0 + 31 * DAY), 10).expect("due");
    assert_eq!(stuck.len(), 1, "unsent mail is never deleted");
    assert_eq!(stuck[0].mail.subject, "stuck");
    assert_eq!(stuck[0].mail.alert_id, None, "its alert row is gone");
    // The action sequence does not restart after its rows are deleted.
    assert_eq!(store.latest_operator_seq().expect("seq"), 1);
}

#[test]
fn a_late_sample_is_rolled_up_again() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    put_range(&mut store, T0, T0 + 10 * MIN, MIN, |t| snap(t).cpu(10.0));
    let now = Timestamp(T0 + 10 * MIN);
    assert_eq!(
        store.run_retention(now, 30).expect("r").minutes_rolled_up,
        10
    );
    put(&mut store, &snap(T0 + 2 * MIN + 30_000).cpu(50.0), &[], &[]);
    let query = HistoryQuery {
        since: Timestamp(T0),
        until: Timestamp(T0 + 10 * MIN - 1),
        user: None,
        max_points: Some(10),
    };
    let check = |store: &Store| {
        let h = store.history(&query).expect("history");
        assert_eq!(h.resolution_secs, 60);
        let m2 = h
            .system
            .iter()
            .find(|p| p.at == Timestamp(T0 + 2 * MIN))
            .expect("minute 2")
            .clone();
        assert_eq!(m2.samples, 2);
        assert!(close(m2.cpu.avg, 30.0) && close(m2.cpu.max, 50.0) && close(m2.cpu.min, 10.0));
    };
    check(&store);
    let rep = store.run_retention(now, 30).expect("retention");
    assert_eq!(rep.minutes_rolled_up, 8, "minutes 2 to 9 again");
    check(&store);
    let stored: (i64, i64, i64) = store
        .conn
        .query_row(
            "SELECT samples, cpu_avg, cpu_max FROM system_1m WHERE bucket = ?1",
            [T0 + 2 * MIN],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("row");
    assert_eq!(stored, (2, 3000, 5000));
}

#[test]
fn rollups_expire_minutes_after_retention_days_and_hours_after_a_year() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    put_range(&mut store, T0, T0 + 3 * DAY, HOUR, |t| snap(t).cpu(40.0));
    let rep = store
        .run_retention(Timestamp(T0 + 3 * DAY), 1)
        .expect("retention");
    assert_eq!(rep.minutes_rolled_up, 72);
    assert_eq!(rep.minute_rows_deleted, 48, "two of the three days");
    assert_eq!(count(&store, "SELECT COUNT(*) FROM system_1h"), 72);
    let rep = store
        .run_retention(Timestamp(T0 + 3 * DAY + 366 * DAY), 1)
        .expect("retention");
    assert_eq!(rep.hour_rows_deleted, 72);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM system_1m"), 0);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM samples"), 0);
}

#[test]
fn deleted_data_is_returned_to_the_file_system() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    put_range(&mut store, T0, T0 + 12 * HOUR, MIN, |t| {
        let mut s = snap(t).cpu(20.0);
        for u in 0..20u32 {
            s = s.user(&format!("user{u}"), 2000 + u, 5.0, 1.0).top(
                u,
                "cmd",
                &format!("cmd --long-argument {u} {t}"),
                5.0,
                1 << 20,
            );
        }
        s
    });
    let size = |store: &Store| {
        store
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .expect("checkpoint");
        std::fs::metadata(store.path()).expect("meta").len()
    };
    let before = size(&store);
    let rep = store
        .run_retention(Timestamp(T0 + 5 * DAY), 30)
        .expect("retention");
    assert_eq!(rep.samples_deleted, 720);
    assert!(rep.pages_freed > 0, "{rep:?}");
    let after = size(&store);
    assert!(after < before, "{before} -> {after}");
    assert_eq!(store.integrity_check().expect("check"), "ok");
}

#[test]
fn a_sample_older_than_the_deleted_raw_data_does_not_rebuild_rollups() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    put_range(&mut store, T0, T0 + 3 * DAY, 10 * MIN, |t| {
        snap(t).cpu(20.0)
    });
    let now = Timestamp(T0 + 3 * DAY);
    store.run_retention(now, 30).expect("retention");
    let minutes = count(&store, "SELECT COUNT(*) FROM system_1m");
    assert_eq!(minutes, 3 * 144);
    // Written very late: its minute was rolled up and its raw neighbours deleted long ago.
    put(
        &mut store,
        &snap(T0 + 12 * HOUR + 30_000).cpu(99.0),
        &[],
        &[],
    );
    let rep = store.run_retention(now, 30).expect("retention");
    assert_eq!(
        rep.samples_deleted, 1,
        "the late sample is past raw retention"
    );
    assert_eq!(count(&store, "SELECT COUNT(*) FROM system_1m"), minutes);
    let kept: (i64, i64) = store
        .conn
        .query_row(
            "SELECT samples, cpu_max FROM system_1m WHERE bucket = ?1",
            [T0 + 12 * HOUR],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("row");
    assert_eq!(kept, (1, 2000), "not rebuilt from the late sample alone");
}
