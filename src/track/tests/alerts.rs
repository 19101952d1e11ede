//! Alert kinds, severities, the lifecycle (repeat, acknowledge, resolve, escalate, recover) and
//! what each alert carries.

use super::{Harness, Snap, config, cpu_key, describe, every, severity_of, snap, strings};
use crate::model::{AlertKey, AlertState, Event, Metric, Severity, Status, Timestamp};

fn alice(at: i64, cpu: f64) -> Snap {
    snap(at).user("alice", 1001, cpu, 10.0)
}

#[test]
fn severity_of_each_kind_of_alert() {
    struct Case {
        name: &'static str,
        snaps: Vec<Snap>,
        open: &'static [&'static str],
    }
    let persistent_alice = |cpu: f64, disk: f64| {
        every(60, 0, 600).map(move |t| alice(t, 60.0).cpu(cpu).disk("/", disk))
    };
    let cases = [
        Case {
            name: "approaching a system limit is low",
            snaps: vec![snap(0).cpu(75.0)],
            open: &["system:cpu:system low"],
        },
        Case {
            name: "a system limit exceeded is high",
            snaps: vec![snap(0).mem(85.0)],
            open: &["system:memory:system high"],
        },
        Case {
            name: "a user over their limit is medium, and never low when approaching it",
            snaps: vec![alice(0, 60.0).user("bob", 1002, 48.0, 48.0)],
            open: &["user:cpu:alice medium"],
        },
        Case {
            name: "a persistent user is medium",
            snaps: persistent_alice(10.0, 50.0).collect(),
            open: &["user:cpu:alice medium", "persistent_user:cpu:alice medium"],
        },
        Case {
            name: "a system limit exceeded while a user is persistent is critical",
            snaps: persistent_alice(85.0, 50.0).collect(),
            open: &[
                "system:cpu:system critical",
                "user:cpu:alice medium",
                "persistent_user:cpu:alice critical",
            ],
        },
        Case {
            name: "any system limit counts, a disk included",
            snaps: persistent_alice(10.0, 95.0).collect(),
            open: &[
                "system:disk:/ critical",
                "user:cpu:alice medium",
                "persistent_user:cpu:alice critical",
            ],
        },
    ];
    for case in cases {
        let mut h = Harness::new(config());
        h.feed_all(case.snaps);
        assert_eq!(h.open(), strings(case.open), "{}", case.name);
    }
}

#[test]
fn low_escalates_to_high_on_the_same_key() {
    let mut h = Harness::new(config());
    assert_eq!(
        h.alerts(&snap(0).cpu(75.0)),
        strings(&["opened system:cpu:system low"])
    );
    let events = h.events(&snap(60).cpu(85.0));
    let escalated = events.iter().find_map(|e| match e {
        Event::AlertEscalated { alert, from } => Some((alert.clone(), *from)),
        _ => None,
    });
    let (alert, from) = escalated.expect("escalated");
    assert_eq!(from, Severity::Low);
    assert_eq!(alert.severity, Severity::High);
    assert_eq!(alert.opened_at, Timestamp::from_secs(0));
    assert_eq!(alert.last_notified_at, Timestamp::from_secs(60));
    assert_eq!(h.open(), strings(&["system:cpu:system high"]));
}

#[test]
fn medium_escalates_to_critical_when_the_machine_is_overloaded() {
    let mut h = Harness::new(config());
    h.feed_all(every(60, 0, 600).map(|t| alice(t, 60.0)));
    assert_eq!(
        h.alerts(&alice(660, 60.0).cpu(85.0)),
        strings(&[
            "opened system:cpu:system critical",
            "escalated persistent_user:cpu:alice medium->critical",
        ])
    );
}

#[test]
fn high_escalates_to_critical_when_a_user_becomes_persistent() {
    let mut h = Harness::new(config());
    h.feed_all(every(60, 0, 540).map(|t| alice(t, 60.0).cpu(85.0)));
    assert_eq!(
        h.open(),
        strings(&["system:cpu:system high", "user:cpu:alice medium"])
    );
    assert_eq!(
        h.alerts(&alice(600, 60.0).cpu(85.0)),
        strings(&[
            "escalated system:cpu:system high->critical",
            "opened persistent_user:cpu:alice critical",
        ])
    );
}

#[test]
fn severity_does_not_fall_while_the_alert_is_open() {
    let mut h = Harness::new(config());
    h.feed(&snap(0).cpu(85.0));
    assert!(h.alerts(&snap(60).cpu(73.0)).is_empty());
    assert_eq!(severity_of(&h, &cpu_key()), Some(Severity::High));
    assert!(
        h.alerts(&snap(120).cpu(85.0)).is_empty(),
        "no second escalation"
    );
}

#[test]
fn repeats_exactly_every_repeat_minutes() {
    struct Case {
        name: &'static str,
        repeat_minutes: u64,
        times: Vec<i64>,
        repeats_at: Vec<i64>,
    }
    let cases = [
        Case {
            name: "every 30 minutes",
            repeat_minutes: 30,
            times: every(60, 0, 3660).collect(),
            repeats_at: vec![1800, 3600],
        },
        Case {
            name: "not a second early",
            repeat_minutes: 30,
            times: every(60, 0, 1740).chain([1799, 1800, 1801]).collect(),
            repeats_at: vec![1800],
        },
        Case {
            name: "late samples push the next repeat back",
            repeat_minutes: 30,
            times: every(110, 0, 3960).collect(),
            repeats_at: vec![1870, 3740],
        },
        Case {
            name: "zero never repeats",
            repeat_minutes: 0,
            times: every(60, 0, 7200).collect(),
            repeats_at: vec![],
        },
    ];
    for case in cases {
        let mut c = config();
        c.alerts.repeat_minutes = case.repeat_minutes;
        let mut h = Harness::new(c);
        let mut repeats = Vec::new();
        for &t in &case.times {
            let got = h.alerts(&snap(t).cpu(90.0));
            if got.contains(&"repeated system:cpu:system".to_string()) {
                repeats.push(t);
            }
        }
        assert_eq!(repeats, case.repeats_at, "{}", case.name);
    }
}

#[test]
fn acknowledge_stops_repeats_until_the_severity_rises() {
    let mut h = Harness::new(config());
    h.feed(&snap(0).cpu(75.0));
    let ack = h.tracker.acknowledge(&cpu_key(), Timestamp::from_secs(30));
    let Some(Event::AlertAcknowledged(alert)) = ack else {
        panic!("expected an acknowledgement, got {ack:?}");
    };
    assert_eq!(alert.state, AlertState::Acknowledged);
    assert_eq!(alert.updated_at, Timestamp::from_secs(30));
    assert_eq!(
        h.tracker.acknowledge(&cpu_key(), Timestamp::from_secs(31)),
        None,
        "twice"
    );
    let unknown = AlertKey::system(Metric::Memory);
    assert_eq!(
        h.tracker.acknowledge(&unknown, Timestamp::from_secs(31)),
        None
    );

    let quiet = h.feed_all(every(60, 60, 3600).map(|t| snap(t).cpu(75.0)));
    assert!(quiet.is_empty(), "{quiet:?}");

    assert_eq!(
        h.alerts(&snap(3660).cpu(85.0)),
        strings(&["escalated system:cpu:system low->high"]),
        "a severity rise is notified even when acknowledged"
    );
    let state = h.tracker.open_alerts()[0].state;
    assert_eq!(state, AlertState::Open, "and repeats resume");
    assert_eq!(
        h.alerts(&snap(3660 + 1800).cpu(85.0).interval(1800.0)),
        strings(&["repeated system:cpu:system"])
    );
}

#[test]
fn an_operator_resolve_holds_until_the_condition_clears_and_returns() {
    let mut h = Harness::new(config());
    h.feed(&snap(0).cpu(90.0));
    let resolved = h.tracker.resolve(&cpu_key(), Timestamp::from_secs(30));
    let Some(Event::AlertResolved { alert, by }) = resolved else {
        panic!("expected a resolution, got {resolved:?}");
    };
    assert_eq!(by, crate::model::ResolvedBy::Operator);
    assert_eq!(alert.state, AlertState::Resolved);
    assert_eq!(alert.resolved_at, Some(Timestamp::from_secs(30)));
    assert!(h.tracker.open_alerts().is_empty());
    assert_eq!(
        h.tracker.resolve(&cpu_key(), Timestamp::from_secs(31)),
        None
    );

    let steps: &[(f64, &[&str])] = &[
        (90.0, &[]),
        (76.0, &[]),
        (70.0, &[]),
        (85.0, &[]),
        (66.0, &[]),
        (85.0, &["opened system:cpu:system high"]),
    ];
    for (i, (cpu, expected)) in steps.iter().enumerate() {
        let t = 60 * (i as i64 + 1);
        assert_eq!(
            h.alerts(&snap(t).cpu(*cpu)),
            strings(expected),
            "at {t}: cpu {cpu}"
        );
    }
}

#[test]
fn an_operator_resolve_gives_way_to_a_higher_severity() {
    let mut h = Harness::new(config());
    h.feed(&snap(0).cpu(75.0));
    h.tracker.resolve(&cpu_key(), Timestamp::from_secs(10));
    assert!(h.alerts(&snap(60).cpu(76.0)).is_empty());
    assert_eq!(
        h.alerts(&snap(120).cpu(85.0)),
        strings(&["opened system:cpu:system high"])
    );
}

#[test]
fn an_operator_resolve_sends_no_recovery_notice() {
    let mut h = Harness::new(config());
    h.feed(&snap(0).cpu(90.0));
    h.tracker.resolve(&cpu_key(), Timestamp::from_secs(10));
    assert!(h.alerts(&snap(60).cpu(10.0)).is_empty());
}

#[test]
fn recovery_notice_follows_notify_recovery() {
    for notify in [true, false] {
        let mut c = config();
        c.alerts.notify_recovery = notify;
        let mut h = Harness::new(c);
        h.feed(&snap(0).cpu(90.0));
        let events = h.events(&snap(60).cpu(40.0));
        let described: Vec<String> = events.iter().map(describe).collect();
        let mut expected = vec![
            "status heavy->light",
            "resolved system:cpu:system by recovered",
        ];
        if notify {
            expected.push("recovery system:cpu:system");
        }
        assert_eq!(described, strings(&expected), "notify_recovery = {notify}");
        let resolved = events.iter().find_map(|e| e.alert()).expect("an alert");
        assert_eq!(resolved.state, AlertState::Resolved);
        assert_eq!(resolved.resolved_at, Some(Timestamp::from_secs(60)));
        assert_eq!(resolved.value, 40.0);
        assert_eq!(resolved.peak, 90.0);
        assert_eq!(resolved.message, "system CPU recovered: 40.0% (limit 80%)");
        if notify {
            assert_eq!(
                events.last().and_then(|e| e.kind()),
                Some(crate::model::AlertKind::Recovery)
            );
        }
    }
}

#[test]
fn never_two_open_alerts_for_one_key() {
    let mut h = Harness::new(config());
    let got =
        h.feed_all(every(60, 0, 1200).map(|t| snap(t).cpu(if t % 120 == 0 { 85.0 } else { 78.0 })));
    let opened = got.iter().filter(|e| e.starts_with("opened")).count();
    assert_eq!(opened, 1, "{got:?}");
    assert_eq!(h.open(), strings(&["system:cpu:system high"]));
}

#[test]
fn alerts_carry_what_an_admin_needs() {
    let mut h = Harness::new(config());
    let at = |t: i64| {
        snap(t)
            .cpu(93.0)
            .mem(40.0)
            .user("alice", 1001, 60.0, 10.0)
            .user("bob", 1002, 20.0, 30.0)
            .user("root", 0, 12.0, 5.0)
    };
    h.feed_all(every(60, 0, 120).map(at));
    let alert = h
        .tracker
        .open_alerts()
        .into_iter()
        .find(|a| a.key == cpu_key())
        .expect("system cpu alert");
    assert_eq!(alert.message, "system CPU 93.0% > 80%");
    assert_eq!((alert.value, alert.threshold), (93.0, 80.0));
    let d = &alert.details;
    assert_eq!(d.host, "node1");
    assert_eq!(d.metric, Metric::Cpu);
    assert_eq!((d.value, d.threshold), (93.0, 80.0));
    assert_eq!(d.duration_secs, 120);
    assert_eq!(d.status, Status::Heavy);
    assert_eq!(
        (d.system_cpu_percent, d.system_memory_percent),
        (93.0, 40.0)
    );
    assert_eq!((d.load.one, d.load.five, d.load.fifteen), (3.5, 2.25, 1.0));
    assert_eq!(d.uptime_secs, 86_400.0);
    let users: Vec<(&str, bool, u64)> = d
        .top_users
        .iter()
        .map(|u| (u.name.as_str(), u.tracked, u.processes))
        .collect();
    assert_eq!(
        users,
        vec![("alice", true, 3), ("bob", true, 3), ("root", false, 3)]
    );
    let p = &d.top_users[0].top_processes[0];
    assert_eq!((p.name.as_str(), p.pid), ("alice-job", 10010));
    assert!(
        (p.memory_percent - 10.0).abs() < 1e-6,
        "{}",
        p.memory_percent
    );
    assert_eq!(
        d.recommendation,
        "CPU use is high (93.0%). The heaviest user is alice (60.0% CPU, 10.0% memory); check \
         their process alice-job (pid 10010) and renice it (F7/F8 in sysmon's process list), \
         limit or stop it if it is runaway.",
        "93 % is high, not saturated, and sysmon itself can renice"
    );
}

#[test]
fn user_alerts_put_their_user_first_and_say_what_to_do() {
    let mut h = Harness::new(config());
    let at = |t: i64| {
        snap(t)
            .user("alice", 1001, 60.0, 10.0)
            .user("bob", 1002, 70.0, 10.0)
    };
    h.feed_all(every(60, 0, 600).map(at));
    let find = |key: &AlertKey| {
        h.tracker
            .open_alerts()
            .into_iter()
            .find(|a| a.key == *key)
            .expect("alert open")
    };
    let user = find(&AlertKey::user("alice", Metric::Cpu));
    assert_eq!(user.message, "user alice CPU 60.0% > 50%");
    assert_eq!(
        user.details.top_users[0].name, "alice",
        "alice first though bob uses more"
    );
    assert_eq!(
        user.details.recommendation,
        "alice is using 60.0% CPU (limit 50%). If that is not expected, ask them about their \
         process alice-job (pid 10010)."
    );
    let persistent = find(&AlertKey::persistent_user("alice", Metric::Cpu));
    assert_eq!(
        persistent.message,
        "user alice over CPU limit 50% for 10m (now 60.0%)"
    );
    assert_eq!(persistent.details.duration_secs, 600);
    let names: Vec<&str> = persistent
        .details
        .persistent_users
        .iter()
        .map(|p| p.user.as_str())
        .collect();
    assert_eq!(names, vec!["alice", "bob"]);
    assert!(
        persistent
            .details
            .recommendation
            .starts_with("alice has stayed over their CPU limit for 10m."),
        "{}",
        persistent.details.recommendation
    );
}

#[test]
fn an_approaching_alert_says_it_is_approaching() {
    let mut h = Harness::new(config());
    h.feed(&snap(0).mem(74.0));
    let alert = &h.tracker.open_alerts()[0];
    assert_eq!(alert.message, "system memory 74.0% approaching 80%");
    assert_eq!(
        alert.details.recommendation,
        "System memory is nearing its limit; nothing to do yet, but watch the users listed below."
    );
}

#[test]
fn a_disk_that_vanishes_recovers_as_no_longer_measured() {
    let mut h = Harness::new(config());
    h.feed(&snap(0).disk("/data", 95.0));
    let events = h.events(&snap(60).unreadable_disk("/data"));
    let messages: Vec<&str> = events
        .iter()
        .filter_map(|e| e.alert())
        .map(|a| a.message.as_str())
        .collect();
    assert_eq!(
        messages,
        vec!["disk /data recovered: no longer measured"; 2]
    );
}

#[test]
fn events_round_trip_through_json_with_their_tag() {
    let mut h = Harness::new(config());
    let mut events = Vec::new();
    for t in every(60, 0, 600) {
        events.extend(h.events(&alice(t, 60.0).cpu(if t < 120 { 75.0 } else { 85.0 })));
    }
    events.extend(h.tracker.acknowledge(&cpu_key(), Timestamp::from_secs(610)));
    events.extend(h.events(&alice(660, 10.0)));
    let mut tags: Vec<String> = Vec::new();
    for e in &events {
        let json = serde_json::to_value(e).unwrap();
        let back: Event = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(&back, e);
        let tag = json["event"].as_str().unwrap().to_string();
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    tags.sort();
    assert_eq!(
        tags,
        strings(&[
            "alert_acknowledged",
            "alert_escalated",
            "alert_opened",
            "alert_resolved",
            "persistent_ended",
            "persistent_started",
            "recovery",
            "status_changed",
        ])
    );
}
