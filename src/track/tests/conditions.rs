//! Threshold crossing and hysteresis, on a bare condition and through the tracker.

use super::{Harness, config, snap, strings};
use crate::model::Timestamp;
use crate::track::condition::{Condition, Limit};

#[test]
fn condition_starts_above_threshold_and_clears_below_the_band() {
    struct Case {
        name: &'static str,
        hysteresis: f64,
        values: &'static [f64],
        active: &'static [bool],
    }
    let cases = [
        Case {
            name: "exactly at the line does not start",
            hysteresis: 5.0,
            values: &[80.0],
            active: &[false],
        },
        Case {
            name: "just above the line starts",
            hysteresis: 5.0,
            values: &[80.01],
            active: &[true],
        },
        Case {
            name: "inside the band holds, down to the band's edge",
            hysteresis: 5.0,
            values: &[81.0, 79.0, 76.0, 75.0],
            active: &[true, true, true, true],
        },
        Case {
            name: "below the band clears",
            hysteresis: 5.0,
            values: &[81.0, 74.99],
            active: &[true, false],
        },
        Case {
            name: "hovering at the line does not flap",
            hysteresis: 5.0,
            values: &[80.5, 79.5, 80.5, 79.5, 80.2, 79.9],
            active: &[true, true, true, true, true, true],
        },
        Case {
            name: "cleared, then back above, starts again",
            hysteresis: 5.0,
            values: &[81.0, 70.0, 78.0, 81.0],
            active: &[true, false, false, true],
        },
        Case {
            name: "no hysteresis clears just below the line",
            hysteresis: 0.0,
            values: &[81.0, 80.0, 79.99],
            active: &[true, true, false],
        },
        Case {
            name: "a figure that could not be computed counts as zero",
            hysteresis: 5.0,
            values: &[81.0, f64::NAN],
            active: &[true, false],
        },
    ];
    for case in cases {
        let mut c = Condition::default();
        let limit = Limit::new(80.0, case.hysteresis);
        let seen: Vec<bool> = case
            .values
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                c.observe(v, limit, Timestamp::from_secs(i as i64));
                c.is_active()
            })
            .collect();
        assert_eq!(seen, case.active, "{}", case.name);
    }
}

#[test]
fn condition_keeps_start_peak_average_and_count_of_its_samples() {
    let mut c = Condition::default();
    let limit = Limit::new(80.0, 5.0);
    for (t, v) in [(0, 50.0), (60, 82.0), (120, 90.0), (180, 76.0), (240, 84.0)] {
        c.observe(v, limit, Timestamp::from_secs(t));
    }
    let run = c.run().expect("active");
    assert_eq!(run.started_at, Timestamp::from_secs(60));
    assert_eq!(run.last_at, Timestamp::from_secs(240));
    assert_eq!(run.peak, 90.0);
    assert_eq!(run.samples, 4);
    assert!((run.average() - 83.0).abs() < 1e-9, "{}", run.average());
}

#[test]
fn system_cpu_crossing_levels_with_hysteresis() {
    // cpu limit 80: elevated above 48 (clears below 43), approaching above 72 (clears below 67),
    // exceeded above 80 (clears below 75).
    let steps: &[(f64, &[&str])] = &[
        (40.0, &[]),
        (50.0, &["status light->medium"]),
        (73.0, &["opened system:cpu:system low"]),
        (80.0, &[]),
        (
            80.5,
            &[
                "status medium->heavy",
                "escalated system:cpu:system low->high",
            ],
        ),
        (79.0, &[]),
        (80.5, &[]),
        (75.0, &[]),
        (74.9, &["status heavy->medium"]),
        (68.0, &[]),
        (
            66.9,
            &[
                "resolved system:cpu:system by recovered",
                "recovery system:cpu:system",
            ],
        ),
        (44.0, &[]),
        (42.9, &["status medium->light"]),
    ];
    let mut h = Harness::new(config());
    for (i, (cpu, expected)) in steps.iter().enumerate() {
        let got = h.feed(&snap(i as i64 * 60).cpu(*cpu));
        assert_eq!(got, strings(expected), "step {i}: cpu {cpu}");
    }
}

#[test]
fn memory_and_each_disk_cross_independently() {
    let mut h = Harness::new(config());
    let got = h.feed(
        &snap(0)
            .mem(91.2)
            .disk("/", 50.0)
            .disk("/home", 95.0)
            .disk("/scratch", 82.0),
    );
    assert_eq!(
        got,
        strings(&[
            "status light->heavy",
            "opened system:disk:/home high",
            "opened system:disk:/scratch low",
            "opened system:memory:system high",
        ])
    );
    let messages: Vec<String> = h
        .tracker
        .open_alerts()
        .into_iter()
        .map(|a| a.message)
        .collect();
    assert_eq!(
        messages,
        strings(&[
            "disk /home 95.0% > 90%",
            "disk /scratch 82.0% approaching 90%",
            "system memory 91.2% > 80%",
        ])
    );
}

#[test]
fn a_disk_that_becomes_unreadable_resolves_its_alert() {
    let mut h = Harness::new(config());
    h.feed(&snap(0).disk("/data", 95.0));
    let got = h.alerts(&snap(60).unreadable_disk("/data"));
    assert_eq!(
        got,
        strings(&[
            "resolved system:disk:/data by recovered",
            "recovery system:disk:/data",
        ])
    );
    let events = h.events(&snap(120).unreadable_disk("/data"));
    assert!(events.is_empty(), "{events:?}");
}
