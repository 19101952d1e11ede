//! Status classification: every rule, with the reasons it gives.

use super::{Harness, Snap, config, every, snap, strings};
use crate::config::Config;
use crate::model::Status;

const LIGHT: &str = "no system figure near its limit and no user over their limit";

#[test]
fn every_status_rule_with_its_reasons() {
    struct Case {
        name: &'static str,
        snap: Snap,
        status: Status,
        reasons: &'static [&'static str],
    }
    let cases = [
        Case {
            name: "light",
            snap: snap(0)
                .cpu(40.0)
                .mem(40.0)
                .disk("/", 50.0)
                .user("alice", 1001, 40.0, 40.0),
            status: Status::Light,
            reasons: &[LIGHT],
        },
        Case {
            name: "a disk above 60% of its limit is still light",
            snap: snap(0).disk("/", 70.0),
            status: Status::Light,
            reasons: &[LIGHT],
        },
        Case {
            name: "medium: CPU above 60% of its limit",
            snap: snap(0).cpu(50.0),
            status: Status::Medium,
            reasons: &["system CPU 50.0% > 48%, 60% of its 80% limit"],
        },
        Case {
            name: "medium: memory above 60% of its limit",
            snap: snap(0).mem(60.0),
            status: Status::Medium,
            reasons: &["system memory 60.0% > 48%, 60% of its 80% limit"],
        },
        Case {
            name: "medium: a disk approaching its limit",
            snap: snap(0).disk("/home", 85.0),
            status: Status::Medium,
            reasons: &["disk /home 85.0% > 81%, 90% of its 90% limit"],
        },
        Case {
            name: "medium: a tracked user over their limit",
            snap: snap(0).user("alice", 1001, 60.0, 55.0),
            status: Status::Medium,
            reasons: &[
                "user alice CPU 60.0% > 50%",
                "user alice memory 55.0% > 50%",
            ],
        },
        Case {
            name: "an untracked user over a limit does not count",
            snap: snap(0).user("daemon", 2, 90.0, 90.0),
            status: Status::Light,
            reasons: &[LIGHT],
        },
        Case {
            name: "heavy: system CPU exceeded",
            snap: snap(0).cpu(93.0),
            status: Status::Heavy,
            reasons: &["system CPU 93.0% > 80%"],
        },
        Case {
            name: "heavy: system memory exceeded",
            snap: snap(0).mem(91.2),
            status: Status::Heavy,
            reasons: &["system memory 91.2% > 80%"],
        },
        Case {
            name: "heavy: a disk exceeded",
            snap: snap(0).disk("/", 95.0),
            status: Status::Heavy,
            reasons: &["disk / 95.0% > 90%"],
        },
        Case {
            name: "heavy lists every exceeded figure and no lesser reason",
            snap: snap(0)
                .cpu(93.0)
                .mem(85.0)
                .disk("/", 85.0)
                .user("alice", 1001, 60.0, 10.0),
            status: Status::Heavy,
            reasons: &["system CPU 93.0% > 80%", "system memory 85.0% > 80%"],
        },
    ];
    for case in cases {
        let mut h = Harness::new(config());
        h.feed(&case.snap);
        let report = h.tracker.status();
        assert_eq!(report.status, case.status, "{}", case.name);
        assert_eq!(report.reasons, strings(case.reasons), "{}", case.name);
    }
}

#[test]
fn heavy_when_a_user_is_persistent() {
    let mut c: Config = config();
    c.users.persistent_minutes = 60;
    let mut h = Harness::new(c);
    let alice = |t| snap(t).user("alice", 1001, 60.0, 10.0);
    h.feed_all(every(60, 0, 3540).map(alice));
    assert_eq!(h.tracker.status().status, Status::Medium, "59 minutes");
    assert_eq!(
        h.feed(&alice(3600)),
        strings(&[
            "persistent alice cpu",
            "status medium->heavy",
            "repeated user:cpu:alice",
            "opened persistent_user:cpu:alice medium",
        ])
    );
    assert_eq!(
        h.tracker.status().reasons,
        strings(&["alice persistent on CPU for 1h00m"])
    );
    h.feed_all(every(60, 3660, 4320).map(alice));
    assert_eq!(
        h.tracker.status().reasons,
        strings(&["alice persistent on CPU for 1h12m"])
    );
}

#[test]
fn a_system_limit_exceeded_for_persistent_minutes_is_sustained() {
    let mut c: Config = config();
    c.monitoring.persistent_minutes = 30;
    let mut h = Harness::new(c);
    h.feed_all(every(60, 0, 1740).map(|t| snap(t).cpu(93.0)));
    assert_eq!(
        h.tracker.status().reasons,
        strings(&["system CPU 93.0% > 80%"]),
        "29 minutes is not yet sustained"
    );
    h.feed(&snap(1800).cpu(93.0));
    assert_eq!(
        h.tracker.status().reasons,
        strings(&["system CPU 93.0% > 80%, sustained for 30m"])
    );
    h.feed(&snap(1860).cpu(70.0));
    h.feed(&snap(1920).cpu(93.0));
    assert_eq!(
        h.tracker.status().reasons,
        strings(&["system CPU 93.0% > 80%"]),
        "a clear starts the clock again"
    );
}

#[test]
fn a_figure_in_its_band_keeps_the_status_and_says_so() {
    let mut h = Harness::new(config());
    h.feed(&snap(0).cpu(93.0));
    assert!(h.feed(&snap(60).cpu(78.0)).is_empty());
    let report = h.tracker.status();
    assert_eq!(report.status, Status::Heavy);
    assert_eq!(
        report.reasons,
        strings(&["system CPU 78.0% (exceeded 80%, clears below 75%)"])
    );
}

#[test]
fn status_changed_is_emitted_only_when_the_level_changes() {
    let mut h = Harness::new(config());
    assert_eq!(
        h.feed(&snap(0).cpu(50.0)),
        strings(&["status light->medium"])
    );
    assert!(h.feed(&snap(60).cpu(55.0)).is_empty());
    assert_eq!(
        h.tracker.status().reasons,
        strings(&["system CPU 55.0% > 48%, 60% of its 80% limit"]),
        "reasons follow the figures even when the level stays"
    );
    let events = h.events(&snap(120).cpu(93.0));
    let (from, to) = events
        .iter()
        .find_map(|e| match e {
            crate::model::Event::StatusChanged { from, to } => Some((from, to)),
            _ => None,
        })
        .expect("status changed");
    assert_eq!(from.status, Status::Medium);
    assert_eq!(
        from.reasons,
        strings(&["system CPU 55.0% > 48%, 60% of its 80% limit"])
    );
    assert_eq!(to.status, Status::Heavy);
    assert_eq!(to.reasons, strings(&["system CPU 93.0% > 80%"]));
}

#[test]
fn status_labels() {
    let labels: Vec<String> = [Status::Light, Status::Medium, Status::Heavy]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        labels,
        strings(&["Light Usage", "Medium Usage", "Heavy Load"])
    );
}
