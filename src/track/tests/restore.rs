//! Continuity: restoring a stored state, gaps in the samples, and reloading the configuration.

use super::{Harness, Snap, config, describe, every, snap, strings};
use crate::model::{Event, PersistentEpisode, Timestamp};
use crate::track::{Tracker, TrackerState};

fn alice(at: i64, cpu: f64) -> Snap {
    snap(at).user("alice", 1001, cpu, 10.0)
}

/// A harness fed `times`, then saved as JSON and restored with `last_seen`, the way the store
/// hands state to a new process.
fn restarted(times: impl Iterator<Item = i64>, last_seen: i64) -> (Harness, Harness) {
    let mut before = Harness::new(config());
    before.feed_all(times.map(|t| alice(t, 60.0)));
    let json = serde_json::to_string(&before.tracker.snapshot_state()).unwrap();
    let state: TrackerState = serde_json::from_str(&json).unwrap();
    assert_eq!(
        state,
        before.tracker.snapshot_state(),
        "the state survives JSON"
    );
    let after = Harness {
        tracker: Tracker::restore(&before.config, state, Timestamp::from_secs(last_seen)),
        config: before.config.clone(),
    };
    (before, after)
}

fn ended(events: &[Event]) -> Vec<PersistentEpisode> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::PersistentEnded(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn restore_continues_within_two_intervals_and_starts_afresh_beyond() {
    struct Case {
        gap: i64,
        persistent_at: i64,
    }
    // interval_secs = 60; alice is over her limit from 0 s, persistent after 10 minutes.
    let cases = [
        Case {
            gap: 60,
            persistent_at: 600,
        },
        Case {
            gap: 120,
            persistent_at: 600,
        },
        Case {
            gap: 121,
            persistent_at: 421 + 600,
        },
    ];
    for case in cases {
        let (before, mut after) = restarted(every(60, 0, 300), 300);
        assert_eq!(after.tracker.open_alerts(), before.tracker.open_alerts());
        assert_eq!(after.tracker.status(), before.tracker.status());
        let first = 300 + case.gap;
        assert_eq!(
            after.feed(&alice(first, 60.0)),
            Vec::<String>::new(),
            "gap {}: the user alert neither resolves nor reopens",
            case.gap
        );
        let mut started_at = None;
        for t in every(60, first + 60, 1200) {
            if after
                .feed(&alice(t, 60.0))
                .contains(&"persistent alice cpu".to_string())
            {
                started_at.get_or_insert(t);
            }
        }
        let expected = every(60, first + 60, 1200).find(|&t| t >= case.persistent_at);
        assert_eq!(started_at, expected, "gap {}", case.gap);
    }
}

#[test]
fn a_long_gap_ends_open_episodes_at_their_last_sample() {
    let (_, mut after) = restarted(every(60, 0, 720), 720);
    assert_eq!(after.tracker.persistent_users().len(), 1);
    let events = after.events(&alice(1000, 60.0));
    let records = ended(&events);
    assert_eq!(records.len(), 1, "{events:?}");
    assert_eq!(records[0].started_at, Timestamp::from_secs(0));
    assert_eq!(records[0].ended_at, Some(Timestamp::from_secs(720)));
    assert_eq!(records[0].duration_secs, 720);
    assert_eq!(records[0].samples, 13);
    let described: Vec<String> = events.iter().map(describe).collect();
    assert_eq!(
        described,
        strings(&[
            "persistent-ended alice cpu",
            "status heavy->medium",
            "resolved persistent_user:cpu:alice by recovered",
            "recovery persistent_user:cpu:alice",
        ])
    );
    assert!(after.tracker.persistent_users().is_empty());
}

#[test]
fn restore_counts_from_the_later_of_the_state_and_last_seen() {
    for (last_seen, continues) in [(300, false), (500, true)] {
        let (_, mut after) = restarted(every(60, 0, 300), last_seen);
        let got = after.feed(&alice(600, 60.0));
        assert_eq!(
            got.contains(&"persistent alice cpu".to_string()),
            continues,
            "last seen at {last_seen}: {got:?}"
        );
    }
}

#[test]
fn gaps_and_clock_steps_while_running_start_afresh() {
    struct Case {
        name: &'static str,
        next: Snap,
        afresh: bool,
    }
    let cases = [
        Case {
            name: "two intervals later continues",
            next: alice(780, 60.0),
            afresh: false,
        },
        Case {
            name: "one second more starts afresh",
            next: alice(781, 60.0),
            afresh: true,
        },
        Case {
            name: "the clock stepping back starts afresh",
            next: alice(659, 60.0),
            afresh: true,
        },
        Case {
            name: "a snapshot covering a longer interval continues",
            next: alice(900, 60.0).interval(120.0),
            afresh: false,
        },
    ];
    for case in cases {
        let mut h = Harness::new(config());
        h.feed_all(every(60, 0, 660).map(|t| alice(t, 60.0)));
        let events = h.events(&case.next);
        assert_eq!(
            !ended(&events).is_empty(),
            case.afresh,
            "{}: {events:?}",
            case.name
        );
        let started = h.tracker.persistent_users().first().map(|p| p.started_at);
        let expected = (!case.afresh).then_some(Timestamp::from_secs(0));
        assert_eq!(started, expected, "{}", case.name);
    }
}

#[test]
fn set_config_changes_thresholds_and_keeps_state() {
    let mut h = Harness::new(config());
    let at = |t: i64| alice(t, 60.0).cpu(70.0);
    h.feed_all(every(60, 0, 240).map(at));
    assert_eq!(h.open(), strings(&["user:cpu:alice medium"]));

    let mut lower = config();
    lower.monitoring.cpu_threshold = 60.0;
    h.set_config(lower.clone());
    assert_eq!(
        h.feed(&at(300)),
        strings(&["status medium->heavy", "opened system:cpu:system high"])
    );
    h.feed_all(every(60, 360, 540).map(at));
    assert_eq!(
        h.alerts(&at(600)),
        strings(&[
            "escalated system:cpu:system high->critical",
            "opened persistent_user:cpu:alice critical",
        ]),
        "the episode started before the reload carried on through it"
    );

    let mut higher = lower;
    higher.monitoring.cpu_threshold = 95.0;
    h.set_config(higher);
    assert_eq!(
        h.alerts(&at(660)),
        strings(&[
            "resolved system:cpu:system by recovered",
            "recovery system:cpu:system",
        ])
    );
    assert_eq!(h.tracker.persistent_users().len(), 1);
}

#[test]
fn set_config_repeat_minutes_applies_to_open_alerts() {
    let mut h = Harness::new(config());
    let hot = |t: i64| snap(t).cpu(90.0);
    h.feed_all(every(60, 0, 540).map(hot));
    let mut c = config();
    c.alerts.repeat_minutes = 10;
    h.set_config(c.clone());
    assert_eq!(
        h.alerts(&hot(600)),
        strings(&["repeated system:cpu:system"])
    );
    c.alerts.repeat_minutes = 0;
    h.set_config(c);
    let later = h.feed_all(every(60, 660, 3600).map(hot));
    assert!(later.is_empty(), "{later:?}");
}
