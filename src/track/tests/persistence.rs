//! Persistent users: timing, episode records, per-user overrides and filtering.

use super::{Harness, Snap, config, every, snap, strings};
use crate::config::{Config, UserOverride};
use crate::model::{Event, Metric, PersistentEpisode, Timestamp};

fn alice(at: i64, cpu: f64) -> Snap {
    snap(at).user("alice", 1001, cpu, 10.0)
}

#[test]
fn persistence_is_reached_exactly_after_persistent_minutes() {
    // persistent_minutes = 10: at the first sample 600 s or more after the first sample over.
    struct Case {
        name: &'static str,
        times: Vec<i64>,
        persistent_at: i64,
    }
    let cases = [
        Case {
            name: "one sample a minute",
            times: every(60, 0, 720).collect(),
            persistent_at: 600,
        },
        Case {
            name: "a sample one second before",
            times: vec![0, 100, 200, 300, 400, 500, 599, 600, 660],
            persistent_at: 600,
        },
        Case {
            name: "no sample at exactly ten minutes",
            times: vec![0, 110, 220, 330, 440, 550, 660, 720],
            persistent_at: 660,
        },
        Case {
            name: "starting mid-minute",
            times: every(60, 30, 750).collect(),
            persistent_at: 630,
        },
    ];
    for case in cases {
        let mut h = Harness::new(config());
        for &t in &case.times {
            let got = h.feed(&alice(t, 60.0));
            let started = got.contains(&"persistent alice cpu".to_string());
            assert_eq!(
                started,
                t == case.persistent_at,
                "{}: at {t}: {got:?}",
                case.name
            );
            let persistent = h.tracker.persistent_users();
            assert_eq!(
                persistent.len(),
                usize::from(t >= case.persistent_at),
                "{}: at {t}",
                case.name
            );
        }
    }
}

#[test]
fn a_dip_below_the_band_ends_the_episode_with_its_record() {
    let mut h = Harness::new(config());
    let mut cpu_by_time: Vec<(i64, f64)> = every(60, 0, 600).map(|t| (t, 60.0)).collect();
    cpu_by_time.extend([(660, 90.0), (720, 46.0)]);
    for (t, cpu) in &cpu_by_time {
        h.feed(&alice(*t, *cpu));
    }
    assert_eq!(
        h.tracker.persistent_users().len(),
        1,
        "46% is inside the band"
    );

    let events = h.events(&alice(780, 44.0));
    let ended: Vec<&PersistentEpisode> = events
        .iter()
        .filter_map(|e| match e {
            Event::PersistentEnded(p) => Some(p),
            _ => None,
        })
        .collect();
    let samples = cpu_by_time.len() as u64;
    let average = cpu_by_time.iter().map(|(_, v)| v).sum::<f64>() / samples as f64;
    assert_eq!(ended.len(), 1, "{events:?}");
    let record = ended[0];
    assert_eq!(record.user, "alice");
    assert_eq!(record.metric, Metric::Cpu);
    assert_eq!(record.threshold, 50.0);
    assert_eq!(record.started_at, Timestamp::from_secs(0));
    assert_eq!(record.ended_at, Some(Timestamp::from_secs(780)));
    assert_eq!(record.duration_secs, 780);
    assert_eq!(record.peak, 90.0);
    assert_eq!(record.samples, samples);
    assert!(
        (record.average - average).abs() < 1e-9,
        "{}",
        record.average
    );
    assert!(h.tracker.persistent_users().is_empty());

    let described: Vec<String> = events.iter().map(super::describe).collect();
    assert_eq!(
        described,
        strings(&[
            "persistent-ended alice cpu",
            "status heavy->light",
            "resolved user:cpu:alice by recovered",
            "recovery user:cpu:alice",
            "resolved persistent_user:cpu:alice by recovered",
            "recovery persistent_user:cpu:alice",
        ])
    );
}

#[test]
fn a_new_episode_after_a_dip_starts_its_clock_again() {
    let mut h = Harness::new(config());
    h.feed_all(every(60, 0, 540).map(|t| alice(t, 60.0)));
    h.feed(&alice(600, 40.0));
    let later: Vec<String> = h.feed_all(every(60, 660, 1200).map(|t| alice(t, 60.0)));
    assert!(
        !later.contains(&"persistent alice cpu".to_string()),
        "{later:?}"
    );
    assert_eq!(
        h.feed(&alice(1260, 60.0)),
        strings(&[
            "persistent alice cpu",
            "status medium->heavy",
            "opened persistent_user:cpu:alice medium"
        ])
    );
}

#[test]
fn cpu_and_memory_are_tracked_apart() {
    let mut h = Harness::new(config());
    for t in every(60, 0, 600) {
        let mem = if t == 300 { 10.0 } else { 60.0 };
        h.feed(&snap(t).user("alice", 1001, 60.0, mem));
    }
    let persistent: Vec<(String, Metric, Timestamp)> = h
        .tracker
        .persistent_users()
        .into_iter()
        .map(|p| (p.user, p.metric, p.started_at))
        .collect();
    assert_eq!(
        persistent,
        vec![("alice".to_string(), Metric::Cpu, Timestamp::from_secs(0))]
    );
    let got = h.feed_all(every(60, 660, 960).map(|t| snap(t).user("alice", 1001, 60.0, 60.0)));
    assert_eq!(
        got,
        strings(&[
            "persistent alice memory",
            "opened persistent_user:memory:alice medium"
        ]),
        "memory restarted at 360 s, so it is persistent at 960 s"
    );
}

#[test]
fn per_user_overrides_apply_to_thresholds_and_minutes() {
    let mut c = config();
    let o = |cpu: Option<f64>, mem: Option<f64>, minutes: Option<u64>| UserOverride {
        cpu_threshold: cpu,
        memory_threshold: mem,
        persistent_minutes: minutes,
        ..UserOverride::default()
    };
    c.user_thresholds
        .insert("bob".into(), o(Some(90.0), None, None));
    c.user_thresholds
        .insert("carol".into(), o(None, None, Some(2)));
    c.user_thresholds
        .insert("dave".into(), o(None, Some(20.0), None));
    let mut h = Harness::new(c);
    let at = |t: i64| {
        snap(t)
            .user("alice", 1001, 85.0, 10.0)
            .user("bob", 1002, 85.0, 10.0)
            .user("carol", 1003, 60.0, 10.0)
            .user("dave", 1004, 10.0, 30.0)
    };
    assert_eq!(
        h.alerts(&at(0)),
        strings(&[
            "opened user:cpu:alice medium",
            "opened user:cpu:carol medium",
            "opened user:memory:dave medium",
        ]),
        "bob's own cpu limit is 90, dave's memory limit 20"
    );
    assert_eq!(h.feed(&at(60)), Vec::<String>::new());
    assert_eq!(
        h.feed(&at(120)),
        strings(&[
            "persistent carol cpu",
            "status medium->heavy",
            "opened persistent_user:cpu:carol medium",
        ])
    );
    let alice_record = h.feed_all(every(60, 180, 600).map(at));
    assert!(alice_record.contains(&"persistent alice cpu".to_string()));
    assert!(
        !alice_record.iter().any(|e| e.contains("bob")),
        "{alice_record:?}"
    );
}

#[test]
fn filtering_decides_who_can_be_over_a_limit() {
    struct Case {
        name: &'static str,
        filtering: fn(&mut Config),
        uid: u32,
        cpu: f64,
        mem: f64,
        tracked: bool,
    }
    let cases = [
        Case {
            name: "a regular user is tracked",
            filtering: |_| {},
            uid: 1001,
            cpu: 90.0,
            mem: 10.0,
            tracked: true,
        },
        Case {
            name: "an excluded user is not",
            filtering: |c| c.filtering.excluded_users = vec!["alice".into()],
            uid: 1001,
            cpu: 90.0,
            mem: 10.0,
            tracked: false,
        },
        Case {
            name: "a system uid is not",
            filtering: |_| {},
            uid: 999,
            cpu: 90.0,
            mem: 10.0,
            tracked: false,
        },
        Case {
            name: "a system uid is when system users are not ignored",
            filtering: |c| c.filtering.ignore_system_users = false,
            uid: 999,
            cpu: 90.0,
            mem: 10.0,
            tracked: true,
        },
        Case {
            name: "below both minimum percents is not",
            filtering: |c| {
                c.filtering.min_cpu_percent = 95.0;
                c.filtering.min_memory_percent = 95.0;
            },
            uid: 1001,
            cpu: 90.0,
            mem: 10.0,
            tracked: false,
        },
        Case {
            name: "above one minimum percent is",
            filtering: |c| {
                c.filtering.min_cpu_percent = 95.0;
                c.filtering.min_memory_percent = 5.0;
            },
            uid: 1001,
            cpu: 90.0,
            mem: 10.0,
            tracked: true,
        },
    ];
    for case in cases {
        let mut c = config();
        (case.filtering)(&mut c);
        let mut h = Harness::new(c);
        let got = h.feed_all(
            every(60, 0, 660).map(|t| snap(t).user("alice", case.uid, case.cpu, case.mem)),
        );
        let expected = if case.tracked {
            strings(&[
                "status light->medium",
                "opened user:cpu:alice medium",
                "persistent alice cpu",
                "status medium->heavy",
                "opened persistent_user:cpu:alice medium",
            ])
        } else {
            Vec::new()
        };
        assert_eq!(got, expected, "{}", case.name);
        assert_eq!(
            h.tracker.persistent_users().len(),
            usize::from(case.tracked),
            "{}",
            case.name
        );
    }
}

#[test]
fn a_user_who_stops_being_tracked_ends_their_episode() {
    let mut h = Harness::new(config());
    h.feed_all(every(60, 0, 660).map(|t| alice(t, 60.0)));
    let mut c = config();
    c.filtering.excluded_users = vec!["alice".into()];
    h.set_config(c);
    let events = h.events(&alice(720, 60.0));
    let ended = events.iter().find_map(|e| match e {
        Event::PersistentEnded(p) => Some(p.clone()),
        _ => None,
    });
    let ended = ended.expect("episode ended");
    assert_eq!(ended.ended_at, Some(Timestamp::from_secs(720)));
    assert_eq!(ended.duration_secs, 720);
    assert!(h.tracker.open_alerts().is_empty());
}

#[test]
fn a_user_who_leaves_ends_their_episode() {
    let mut h = Harness::new(config());
    h.feed_all(every(60, 0, 600).map(|t| alice(t, 60.0)));
    let got = h.feed(&snap(660));
    assert_eq!(got[0], "persistent-ended alice cpu");
    assert!(h.tracker.persistent_users().is_empty());
}
