//! Range queries, resolution choice, aggregation with known numbers, and stepping in time.

use super::*;
use crate::model::Metric;
use crate::store::{HistoryQuery, Resolution};

fn q(since: i64, until: i64, user: Option<&str>) -> HistoryQuery {
    HistoryQuery {
        since: Timestamp(since),
        until: Timestamp(until),
        user: user.map(str::to_string),
        max_points: None,
    }
}

/// One sample every 15 s for `minutes` minutes from T0; CPU steps 10, 20, 30, 40 within each
/// minute; alice is busy only in the first two samples of each minute.
fn four_per_minute(store: &mut Store, minutes: i64) {
    for m in 0..minutes {
        for k in 0..4 {
            let t = T0 + m * MIN + k * 15_000;
            let mut s = snap(t)
                .cpu(10.0 * (k + 1) as f64)
                .mem(50.0)
                .net(100.0 * (k + 1) as f64, 0.0);
            if k < 2 {
                s = s
                    .user("alice", 1001, 20.0 * (k + 1) as f64, 1.0)
                    .untracked();
            }
            put(store, &s, &[], &[]);
        }
    }
}

#[test]
fn a_short_recent_range_is_raw() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    four_per_minute(&mut store, 3);
    let h = store
        .history(&q(T0, T0 + 3 * MIN, Some("alice")))
        .expect("history");
    assert_eq!(h.source, Resolution::Raw);
    assert_eq!(h.resolution_secs, 5, "the recorded interval");
    assert_eq!(h.system.len(), 12);
    assert_eq!(h.user.len(), 12, "one user point per sample");
    let p = &h.system[1];
    assert_eq!(p.at, Timestamp(T0 + 15_000));
    assert!(close(p.cpu.avg, 20.0) && close(p.cpu.min, 20.0) && close(p.cpu.max, 20.0));
    assert!(close(p.net_rx.avg, 200.0) && close(p.memory.avg, 50.0));
    assert!(close(h.user[1].cpu_percent.avg, 40.0));
    assert_eq!(h.user[2].present, 0);
    assert!(
        close(h.user[2].cpu_percent.avg, 0.0),
        "absent counts as zero"
    );
}

#[test]
fn minute_buckets_aggregate_min_avg_max_before_and_after_retention() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    four_per_minute(&mut store, 8 * 60);
    let query = q(T0, T0 + 8 * HOUR - 1, Some("alice"));
    let before = store.history(&query).expect("history");
    assert_eq!(before.source, Resolution::Minute, "8 h is too long for raw");
    assert_eq!(before.resolution_secs, 60);
    assert_eq!(before.system.len(), 8 * 60);
    let p = &before.system[7];
    assert_eq!((p.at, p.samples), (Timestamp(T0 + 7 * MIN), 4));
    assert!(close(p.cpu.min, 10.0) && close(p.cpu.avg, 25.0) && close(p.cpu.max, 40.0));
    assert!(close(p.net_rx.avg, 250.0) && close(p.net_rx.max, 400.0));
    let u = &before.user[7];
    assert_eq!((u.samples, u.present), (4, 2));
    assert!(close(u.cpu_percent.min, 0.0), "absent half the minute");
    assert!(close(u.cpu_percent.avg, 15.0), "(20 + 40 + 0 + 0) / 4");
    assert!(close(u.cpu_percent.max, 40.0));

    let report = store
        .run_retention(Timestamp(T0 + 8 * HOUR), 30)
        .expect("retention");
    assert_eq!(report.minutes_rolled_up, 8 * 60);
    assert_eq!(report.user_minutes_rolled_up, 8 * 60);
    assert_eq!(report.hours_rolled_up, 8);
    let after = store.history(&query).expect("history");
    same_within_rounding(&after, &before);
}

/// Rolled-up averages are stored rounded to the storage unit (0.01 %, 1 KiB, 1 process, 1 B/s):
/// the same points, figures within half a unit.
fn same_within_rounding(a: &crate::store::History, b: &crate::store::History) {
    use crate::store::Agg;
    let near = |x: &Agg, y: &Agg, unit: f64| {
        (x.avg - y.avg).abs() <= unit / 2.0 + 1e-9 && x.min == y.min && x.max == y.max
    };
    assert_eq!((a.source, a.resolution_secs), (b.source, b.resolution_secs));
    assert_eq!(a.system.len(), b.system.len());
    for (x, y) in a.system.iter().zip(&b.system) {
        assert_eq!((x.at, x.samples), (y.at, y.samples));
        assert!(
            near(&x.cpu, &y.cpu, 0.01) && near(&x.memory, &y.memory, 0.01),
            "{x:?} {y:?}"
        );
        assert!(near(&x.net_rx, &y.net_rx, 1.0) && near(&x.load1, &y.load1, 0.01));
    }
    assert_eq!(a.user.len(), b.user.len());
    for (x, y) in a.user.iter().zip(&b.user) {
        assert_eq!((x.at, x.samples, x.present), (y.at, y.samples, y.present));
        assert!(near(&x.cpu_percent, &y.cpu_percent, 0.01), "{x:?} {y:?}");
        assert!(near(&x.memory_bytes, &y.memory_bytes, 1024.0));
        assert!(near(&x.processes, &y.processes, 1.0));
    }
    assert_eq!(a.alerts, b.alerts);
}

#[test]
fn a_point_budget_reads_the_coarsest_level_that_fills_it() {
    // Two hours of data: a 30-day chart of 400 points gets the minutes there are, not two hours.
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    four_per_minute(&mut store, 120);
    store
        .run_retention(Timestamp(T0 + 2 * HOUR), 30)
        .expect("retention");
    let mut b = q(T0 + 2 * HOUR - 30 * DAY, T0 + 2 * HOUR, None);
    b.max_points = Some(400);
    let h = store.history(&b).expect("history");
    assert_eq!(h.source, Resolution::Minute);
    assert!(h.system.len() >= 100, "{} points", h.system.len());
}

#[test]
fn long_ranges_use_hours_and_max_points_thins() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    // Two samples per hour for 40 days: CPU 20 then 60.
    let mut t = T0;
    while t < T0 + 40 * DAY {
        put(&mut store, &snap(t).cpu(20.0), &[], &[]);
        put(&mut store, &snap(t + 30 * MIN).cpu(60.0), &[], &[]);
        t += HOUR;
    }
    store
        .run_retention(Timestamp(T0 + 40 * DAY), 30)
        .expect("retention");
    let h = store
        .history(&q(T0, T0 + 40 * DAY - 1, None))
        .expect("history");
    assert_eq!(h.source, Resolution::Hour);
    assert_eq!(h.resolution_secs, 3600);
    assert_eq!(h.system.len(), 40 * 24);
    let p = &h.system[0];
    assert!(close(p.cpu.min, 20.0) && close(p.cpu.avg, 40.0) && close(p.cpu.max, 60.0));
    assert_eq!(p.samples, 2);

    // A week inside the minute window reads minutes.
    let week = store
        .history(&q(T0 + 30 * DAY, T0 + 37 * DAY, None))
        .expect("history");
    assert_eq!(week.source, Resolution::Minute);
    // With a point budget the hours fill it: the same week as 168 of them for 100 points, but
    // minutes for 200 (the hours would not fill it) and for a day.
    let budget = |since: i64, until: i64, max: usize| {
        let mut b = q(since, until, None);
        b.max_points = Some(max);
        store.history(&b).expect("history")
    };
    let week = budget(T0 + 30 * DAY, T0 + 37 * DAY, 100);
    assert_eq!(week.source, Resolution::Hour);
    assert!(week.system.iter().all(|p| close(p.cpu.avg, 40.0)));
    assert_eq!(
        budget(T0 + 30 * DAY, T0 + 37 * DAY, 200).source,
        Resolution::Minute
    );
    assert_eq!(
        budget(T0 + 36 * DAY, T0 + 37 * DAY, 100).source,
        Resolution::Minute
    );
    // A range that starts before the data: only the data's span counts.
    assert_eq!(
        budget(T0 + 39 * DAY - 100 * DAY, T0 + 40 * DAY, 100).source,
        Resolution::Hour
    );

    let mut thin = q(T0, T0 + 40 * DAY - 1, None);
    thin.max_points = Some(100);
    let h = store.history(&thin).expect("history");
    assert!(
        h.system.len() <= 100 && h.system.len() >= 50,
        "{}",
        h.system.len()
    );
    assert_eq!(h.resolution_secs % 3600, 0);
    let total: u32 = h.system.iter().map(|p| p.samples).sum();
    assert_eq!(total, 40 * 24 * 2, "every sample is in exactly one point");
    assert!(h.system.iter().all(|p| close(p.cpu.avg, 40.0)));
}

#[test]
fn alert_marks_cover_the_range_and_follow_the_user() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    let sys = AlertKey::system(Metric::Cpu);
    let alice = AlertKey::user("alice", Metric::Cpu);
    let bob = AlertKey::user("bob", Metric::Memory);
    let early = alert(&sys, Severity::High, T0 - HOUR, 95.0);
    put(
        &mut store,
        &snap(T0 - HOUR),
        &[Event::AlertOpened(early.clone())],
        &[],
    );
    put(
        &mut store,
        &snap(T0 - HOUR + MIN),
        &[Event::AlertResolved {
            alert: resolved(&early, T0 - HOUR + MIN),
            by: crate::model::ResolvedBy::Recovered,
        }],
        &[],
    );
    put(
        &mut store,
        &snap(T0 + MIN),
        &[
            Event::AlertOpened(alert(&alice, Severity::Medium, T0 + MIN, 60.0)),
            Event::AlertOpened(alert(&bob, Severity::Low, T0 + MIN, 55.0)),
            Event::AlertOpened(alert(&sys, Severity::High, T0 + MIN, 90.0)),
        ],
        &[],
    );
    let all = store.history(&q(T0, T0 + HOUR, None)).expect("history");
    let subjects: Vec<&str> = all.alerts.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(subjects, ["alice", "bob", "system"]);
    let for_alice = store
        .history(&q(T0, T0 + HOUR, Some("alice")))
        .expect("history");
    let subjects: Vec<&str> = for_alice
        .alerts
        .iter()
        .map(|m| m.subject.as_str())
        .collect();
    assert_eq!(subjects, ["alice", "system"]);
    assert_eq!(for_alice.alerts[0].severity, Severity::Medium);
    let earlier = store
        .history(&q(T0 - 2 * HOUR, T0 - HOUR + 30_000, None))
        .expect("history");
    assert_eq!(earlier.alerts.len(), 1);
    assert_eq!(
        earlier.alerts[0].resolved_at,
        Some(Timestamp(T0 - HOUR + MIN))
    );
}

#[test]
fn state_at_and_stepping_between_samples() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    let key = AlertKey::system(Metric::Memory);
    let a = alert(&key, Severity::High, T0 + 10_000, 91.0);
    put(&mut store, &snap(T0).mem(10.0), &[], &[]);
    put(
        &mut store,
        &snap(T0 + 10_000).mem(91.0),
        &[Event::AlertOpened(a)],
        &[],
    );
    put(&mut store, &snap(T0 + 20_000).mem(92.0), &[], &[]);
    let id = store.alerts(false, 1).expect("open")[0].id;
    assert!(
        store
            .acknowledge(id, Timestamp(T0 + 25_000), "op")
            .expect("ack")
    );

    assert!(store.state_at(Timestamp(T0 - 1)).expect("state").is_none());
    let s = store
        .state_at(Timestamp(T0 + 9_999))
        .expect("state")
        .expect("sample");
    assert_eq!(s.at, Timestamp(T0));
    assert!(s.alerts.is_empty(), "not open yet");
    let s = store
        .state_at(Timestamp(T0 + 15_000))
        .expect("state")
        .expect("sample");
    assert_eq!(s.at, Timestamp(T0 + 10_000));
    assert!(close(s.system.memory_percent, 91.0));
    assert_eq!(s.alerts.len(), 1);
    assert_eq!(
        s.alerts[0].alert.state,
        AlertState::Open,
        "acknowledged only later"
    );
    let s = store
        .state_at(Timestamp(T0 + HOUR))
        .expect("state")
        .expect("sample");
    assert_eq!(s.at, Timestamp(T0 + 20_000));
    assert_eq!(
        s.alerts[0].alert.state,
        AlertState::Open,
        "the ack came after this sample"
    );

    assert_eq!(
        store.prev_sample_time(Timestamp(T0 + 10_000)).expect("p"),
        Some(Timestamp(T0))
    );
    assert_eq!(store.prev_sample_time(Timestamp(T0)).expect("p"), None);
    assert_eq!(
        store.next_sample_time(Timestamp(T0 + 10_000)).expect("n"),
        Some(Timestamp(T0 + 20_000))
    );
    assert_eq!(
        store.next_sample_time(Timestamp(T0 + 20_000)).expect("n"),
        None
    );
    assert_eq!(
        store.next_sample_time(Timestamp(T0 - HOUR)).expect("n"),
        Some(Timestamp(T0))
    );
}

#[test]
fn an_unknown_user_or_empty_range_gives_empty_series() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    let empty = store
        .history(&q(T0, T0 + HOUR, Some("nobody")))
        .expect("history");
    assert!(empty.system.is_empty() && empty.user.is_empty());
    put(&mut store, &snap(T0).cpu(5.0), &[], &[]);
    let h = store
        .history(&q(T0, T0 + HOUR, Some("nobody")))
        .expect("history");
    assert_eq!(h.system.len(), 1);
    assert_eq!(h.user.len(), 1);
    assert_eq!(h.user[0].present, 0);
    let backwards = store.history(&q(T0 + HOUR, T0, None)).expect("history");
    assert!(backwards.system.is_empty());
}

#[test]
fn users_between_lists_who_was_recorded_in_the_range() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    put(
        &mut store,
        &snap(T0).user("carol", 1003, 5.0, 1.0),
        &[],
        &[],
    );
    put(
        &mut store,
        &snap(T0 + MIN)
            .user("bob", 1002, 5.0, 1.0)
            .user("alice", 1001, 1.0, 1.0),
        &[],
        &[],
    );
    let names = |since: i64, until: i64| {
        store
            .users_between(Timestamp(since), Timestamp(until))
            .expect("users")
    };
    assert_eq!(names(T0, T0 + HOUR), vec!["alice", "bob", "carol"]);
    assert_eq!(names(T0 + 1, T0 + HOUR), vec!["alice", "bob"]);
    assert!(names(T0 + 2 * MIN, T0 + HOUR).is_empty());
}

#[test]
fn users_between_finds_users_in_the_rollups_once_their_raw_rows_are_gone() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    put(&mut store, &snap(T0).user("erin", 1005, 5.0, 1.0), &[], &[]);
    let mut t = T0 + HOUR;
    while t <= T0 + 3 * DAY {
        put(&mut store, &snap(t), &[], &[]);
        t += HOUR;
    }
    store
        .run_retention(Timestamp(T0 + 3 * DAY), 30)
        .expect("retention");
    let raw: i64 = store
        .conn
        .query_row(
            "SELECT COUNT(*) FROM samples WHERE at < ?1",
            [T0 + DAY],
            |r| r.get(0),
        )
        .expect("raw");
    assert_eq!(raw, 0, "erin's sample is past the raw window");
    let names = |since: i64, until: i64| {
        store
            .users_between(Timestamp(since), Timestamp(until))
            .expect("users")
    };
    assert_eq!(names(T0, T0 + MIN), ["erin"], "from the minute rollups");
    assert!(names(T0 + 2 * MIN, T0 + HOUR).is_empty());
    // Once the minutes are gone too, the hours still know.
    store
        .conn
        .execute_batch("DELETE FROM user_1m; DELETE FROM system_1m;")
        .expect("drop the minutes");
    assert_eq!(names(T0, T0 + MIN), ["erin"], "from the hour rollups");
}

#[test]
fn users_between_finds_users_packed_but_not_rolled_up_yet() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    put(&mut store, &snap(T0).user("dave", 1004, 5.0, 1.0), &[], &[]);
    for m in 1..=40 {
        put(&mut store, &snap(T0 + m * MIN), &[], &[]);
    }
    let packed: i64 = store
        .conn
        .query_row("SELECT COUNT(*) FROM user_blocks", [], |r| r.get(0))
        .expect("blocks");
    assert!(packed > 0, "dave's window is packed");
    let names = store
        .users_between(Timestamp(T0), Timestamp(T0 + HOUR))
        .expect("users");
    assert_eq!(names, ["dave"]);
}

/// The GPUs' mean utilization in history is the live summary's: over the GPUs there and with a
/// reading. GPU 0 busy 98 %; GPU 1 there for one of the point's two samples at 50 % (stored as
/// 25 averaged over both); GPU 3 split into a MIG instance (no reading, stored as 0). Before:
/// (98 + 25 + 0) / 3 = 41 %.
#[test]
fn gpu_mean_utilization_leaves_out_split_and_absent_gpus() {
    use crate::store::history::{Agg, GpuPoint, GpuSeries, History, SystemPoint};
    let a = |v: f64| Agg {
        avg: v,
        min: v,
        max: v,
    };
    let point = |present: u32, util: f64, used: f64| GpuPoint {
        at: Timestamp(T0),
        samples: 2,
        present,
        utilization_percent: a(util),
        memory_used_bytes: a(used),
        memory_total_bytes: a(100.0 * f64::from(present) / 2.0),
        temperature_celsius: a(0.0),
        power_watts: a(0.0),
    };
    let series = |index: u32, mig_parent: Option<u32>, p: GpuPoint| GpuSeries {
        id: format!("GPU-{index}-{mig_parent:?}"),
        index,
        mig_parent,
        name: "H100".into(),
        points: vec![p],
    };
    let h = History {
        source: Resolution::Minute,
        resolution_secs: 60,
        system: vec![SystemPoint {
            at: Timestamp(T0),
            samples: 2,
            cpu: a(0.0),
            memory: a(0.0),
            swap: a(0.0),
            load1: a(0.0),
            net_rx: a(0.0),
            net_tx: a(0.0),
            disk_read: a(0.0),
            disk_write: a(0.0),
        }],
        user: Vec::new(),
        user_gpu: Vec::new(),
        gpus: vec![
            series(0, None, point(2, 98.0, 50.0)),
            series(1, None, point(1, 25.0, 25.0)),
            series(3, None, point(2, 0.0, 20.0)),
            series(0, Some(3), point(2, 0.0, 20.0)),
        ],
        alerts: Vec::new(),
    };
    let t = h.gpu_totals();
    assert_eq!(t.len(), 1);
    assert!((t[0].utilization_percent - 74.0).abs() < 1e-9, "{t:?}");
    // Memory: (50 + 50 + 20) of (100 + 100 + 100) in use while there.
    assert!((t[0].memory_percent - 40.0).abs() < 1e-9, "{t:?}");
}

/// A GPU first recorded between the reads of the stored and the recent level, or missing from
/// the recent one, still has one point per system point (before: the new GPU's recent points
/// stood at the start of the range).
#[test]
fn gpu_series_stay_aligned_when_the_levels_differ_in_gpus() {
    use crate::store::history::{GpuPt, Levels, SysPt};
    use crate::store::series::Point;
    let sys = |at: i64| SysPt::raw(at, [1.0; 8], true);
    let gpu = |at: i64, v: f64| GpuPt::raw(at, [v; 5], true);
    let mut stored = Levels {
        system: vec![sys(0), sys(60_000)],
        user: Vec::new(),
        user_gpu: Vec::new(),
        gpus: [(1, vec![gpu(0, 10.0), gpu(60_000, 10.0)])].into(),
    };
    let tail = Levels {
        system: vec![sys(120_000)],
        user: Vec::new(),
        user_gpu: Vec::new(),
        gpus: [(2, vec![gpu(120_000, 50.0)])].into(),
    };
    stored.extend(&tail, 60_000);
    assert_eq!(stored.system.len(), 3);
    for (id, pts) in &stored.gpus {
        assert_eq!(pts.len(), 3, "GPU {id}");
        let at: Vec<i64> = pts.iter().map(|p: &Point<5>| p.at).collect();
        assert_eq!(at, [0, 60_000, 120_000], "GPU {id}");
    }
    assert_eq!(stored.gpus[&2][2].avg[0], 50.0);
    assert_eq!(stored.gpus[&2][0].present, 0);
    assert_eq!(stored.gpus[&1][2].present, 0);
}
