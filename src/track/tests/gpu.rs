//! Per-user GPU conditions: GPU memory over a limit (with persistence) and memory held on an idle
//! GPU, on snapshots with explicit devices, processes and times.

use super::{Harness, Snap, config, every, snap, strings};
use crate::config::{Config, UserOverride};
use crate::model::{Alert, AlertKey, Event, Metric, Severity, Timestamp};
use crate::track::idle::IdleBook;
use crate::track::persistence::UserBook;
use crate::track::{Tracker, TrackerState};

/// The usual test limits, GPU memory over 50 %, idle under 5 % for 10 minutes.
fn gpu_config() -> Config {
    let mut c = config();
    c.users.gpu_memory_threshold = 50.0;
    c.users.gpu_idle_percent = 5.0;
    c.users.gpu_idle_minutes = 10;
    c
}

/// Two 80 GiB GPUs at the given utilizations.
fn two_gpus(at: i64, util0: f64, util1: f64) -> Snap {
    snap(at).gpu(0, Some(util0)).gpu(1, Some(util1))
}

fn alert(h: &Harness, key: &AlertKey) -> Alert {
    h.tracker
        .open_alerts()
        .into_iter()
        .find(|a| a.key == *key)
        .unwrap_or_else(|| panic!("no open {key}"))
}

fn idle_key() -> AlertKey {
    AlertKey::gpu_idle("alice")
}

#[test]
fn gpu_memory_over_the_limit_opens_persists_holds_in_the_band_and_recovers() {
    let mut h = Harness::new(gpu_config());
    // alice uses next to no CPU or memory (untracked by the minimums) but holds 100 of 160 GiB.
    let holding = |at: i64, gib: f64| {
        two_gpus(at, 90.0, 90.0)
            .holds("alice", 1001, "GPU-0", gib / 2.0)
            .holds("alice", 1001, "GPU-1", gib / 2.0)
    };
    assert_eq!(
        h.feed(&holding(0, 100.0)),
        strings(&[
            "status light->medium",
            "opened user:gpu_memory:alice medium"
        ])
    );
    let key = AlertKey::user("alice", Metric::GpuMemory);
    assert_eq!(alert(&h, &key).message, "user alice GPU memory 62.5% > 50%");
    assert!(
        h.feed_all(every(60, 60, 540).map(|t| holding(t, 100.0)))
            .is_empty()
    );
    assert_eq!(
        h.feed(&holding(600, 100.0)),
        strings(&[
            "persistent alice gpu_memory",
            "status medium->heavy",
            "opened persistent_user:gpu_memory:alice medium",
        ])
    );
    // 75 GiB is 46.9 %: under the limit, inside the 5-point band, so it holds.
    assert!(h.feed(&holding(660, 75.0)).is_empty());
    assert_eq!(
        h.feed(&holding(720, 70.0)),
        strings(&[
            "persistent-ended alice gpu_memory",
            "status heavy->light",
            "resolved user:gpu_memory:alice by recovered",
            "recovery user:gpu_memory:alice",
            "resolved persistent_user:gpu_memory:alice by recovered",
            "recovery persistent_user:gpu_memory:alice",
        ])
    );
}

#[test]
fn idle_clock_starts_fires_after_the_window_restarts_when_busy_and_recovers() {
    let mut h = Harness::new(gpu_config());
    let idle = |at: i64, util: f64| two_gpus(at, util, 90.0).holds("alice", 1001, "GPU-0", 10.0);
    assert!(
        h.feed_all(every(60, 0, 540).map(|t| idle(t, 2.0)))
            .is_empty()
    );
    assert_eq!(
        h.feed(&idle(600, 2.0)),
        strings(&["opened gpu_idle:gpu_utilization:alice medium"])
    );
    let a = alert(&h, &idle_key());
    assert_eq!(
        a.message,
        "user alice holds 10.0 GiB on idle GPU 0 (under 5% busy for 10m)"
    );
    assert_eq!((a.value, a.threshold), (2.0, 5.0));
    assert_eq!(a.details.duration_secs, 600);
    assert_eq!(a.details.top_users[0].name, "alice");
    assert!(
        a.details
            .recommendation
            .contains("their process python3 (pid 50000)"),
        "{}",
        a.details.recommendation
    );

    // One busy sample ends it and restarts the clock: a full window is needed again.
    assert_eq!(
        h.feed(&idle(660, 20.0)),
        strings(&[
            "resolved gpu_idle:gpu_utilization:alice by recovered",
            "recovery gpu_idle:gpu_utilization:alice",
        ])
    );
    let recovered = h.events(&idle(720, 1.0));
    assert!(recovered.is_empty(), "{recovered:?}");
    assert!(
        h.feed_all(every(60, 780, 1260).map(|t| idle(t, 1.0)))
            .is_empty()
    );
    assert_eq!(
        h.feed(&idle(1320, 1.0)),
        strings(&["opened gpu_idle:gpu_utilization:alice medium"])
    );
    // Exactly at the limit is not under it.
    assert_eq!(
        h.alerts(&idle(1380, 5.0)),
        strings(&[
            "resolved gpu_idle:gpu_utilization:alice by recovered",
            "recovery gpu_idle:gpu_utilization:alice",
        ])
    );
}

#[test]
fn freeing_the_memory_recovers_and_restarts_the_clock() {
    let mut h = Harness::new(gpu_config());
    let held = |at: i64| two_gpus(at, 0.0, 0.0).holds("alice", 1001, "GPU-0", 4.0);
    h.feed_all(every(60, 0, 600).map(held));
    assert_eq!(
        h.open(),
        strings(&["gpu_idle:gpu_utilization:alice medium"])
    );
    let events = h.events(&two_gpus(660, 0.0, 0.0));
    let recovery = events
        .iter()
        .find_map(|e| match e {
            Event::Recovery(a) => Some(a.message.clone()),
            _ => None,
        })
        .expect("a recovery notice");
    assert_eq!(
        recovery,
        "user alice idle GPU recovered: idle GPU memory freed"
    );
    // Holding again starts a new window.
    assert!(h.feed_all(every(60, 720, 1260).map(held)).is_empty());
    assert_eq!(
        h.feed(&held(1320)),
        strings(&["opened gpu_idle:gpu_utilization:alice medium"])
    );
}

#[test]
fn a_device_without_a_utilization_reading_is_never_idle() {
    let mut h = Harness::new(gpu_config());
    // A MIG instance of an idle GPU, and a GPU whose driver gives no utilization.
    let events = h.feed_all(every(60, 0, 7200).map(|t| {
        snap(t)
            .gpu(0, None)
            .gpu(1, Some(0.0))
            .mig(1, 0)
            .holds("alice", 1001, "MIG-1-0", 5.0)
            .holds("bob", 1002, "GPU-0", 5.0)
    }));
    assert!(events.is_empty(), "{events:?}");
}

#[test]
fn a_user_on_two_devices_idle_on_one_is_told_about_that_one() {
    let mut h = Harness::new(gpu_config());
    let both = |at: i64| {
        two_gpus(at, 1.0, 80.0)
            .holds("alice", 1001, "GPU-0", 8.0)
            .holds("alice", 1001, "GPU-1", 30.0)
    };
    h.feed_all(every(60, 0, 600).map(both));
    let a = alert(&h, &idle_key());
    assert_eq!(
        a.message,
        "user alice holds 8.0 GiB on idle GPU 0 (under 5% busy for 10m)"
    );
    assert_eq!(a.value, 1.0);

    // Both idle, for different times: both named, the longest sets the duration.
    let mut h = Harness::new(gpu_config());
    h.feed_all(every(60, 0, 240).map(both));
    h.feed_all(every(60, 300, 900).map(|t| {
        two_gpus(t, 1.0, 3.0)
            .holds("alice", 1001, "GPU-0", 8.0)
            .holds("alice", 1001, "GPU-1", 30.0)
    }));
    let a = alert(&h, &idle_key());
    assert_eq!(
        a.message,
        "user alice holds 38.0 GiB on idle GPUs 0 (8.0 GiB for 15m), 1 (30.0 GiB for 10m), each \
         under 5% busy"
    );
    assert_eq!((a.value, a.details.duration_secs), (3.0, 900));
}

/// The recovery notice of `key` among `events`: its message and recorded value.
fn recovery(events: &[Event], key: &AlertKey) -> (String, f64) {
    events
        .iter()
        .find_map(|e| match e {
            Event::Recovery(a) if a.key == *key => Some((a.message.clone(), a.value)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no recovery of {key} in {events:?}"))
}

/// A held-idle alert is about the idle devices only: the user's busy GPU elsewhere tells
/// nothing about whether the idle one was freed or got busy.
#[test]
fn a_held_idle_alert_recovers_on_the_devices_it_is_about() {
    let both = |at: i64, util0: f64| {
        two_gpus(at, util0, 80.0)
            .holds("alice", 1001, "GPU-0", 8.0)
            .holds("alice", 1001, "GPU-1", 30.0)
    };
    // GPU 0 freed while GPU 1 stays busy.
    let mut h = Harness::new(gpu_config());
    h.feed_all(every(60, 0, 600).map(|t| both(t, 1.0)));
    assert_eq!(alert(&h, &idle_key()).value, 1.0);
    let freed = two_gpus(660, 1.0, 80.0).holds("alice", 1001, "GPU-1", 30.0);
    assert_eq!(
        recovery(&h.events(&freed), &idle_key()),
        (
            "user alice idle GPU recovered: idle GPU memory freed".to_string(),
            1.0
        )
    );

    // GPU 0 busy again: its figure, not GPU 1's.
    let mut h = Harness::new(gpu_config());
    h.feed_all(every(60, 0, 600).map(|t| both(t, 1.0)));
    assert_eq!(
        recovery(&h.events(&both(660, 20.0)), &idle_key()),
        (
            "user alice idle GPU recovered: busy again, 20.0% (idle under 5%)".to_string(),
            20.0
        )
    );

    // The devices remembered are those of the last sample, across a restart too.
    let mut h = Harness::new(gpu_config());
    h.feed_all(every(60, 0, 600).map(|t| both(t, 1.0)));
    let json = serde_json::to_string(&h.tracker.snapshot_state()).unwrap();
    let mut after = Harness {
        tracker: Tracker::restore(
            &h.config,
            serde_json::from_str(&json).unwrap(),
            Timestamp::from_secs(600),
        ),
        config: h.config.clone(),
    };
    assert_eq!(
        recovery(&after.events(&both(660, 20.0)), &idle_key()).0,
        "user alice idle GPU recovered: busy again, 20.0% (idle under 5%)"
    );
}

/// A user followed on GPU memory alone (below the CPU and memory minimums) who frees it all is
/// still on the machine: their GPU memory is 0 %, not unmeasured.
#[test]
fn freeing_all_gpu_memory_recovers_at_zero() {
    let mut h = Harness::new(gpu_config());
    h.feed_all(every(60, 0, 600).map(|t| {
        two_gpus(t, 90.0, 90.0)
            .user("alice", 1001, 0.0, 1.0)
            .holds("alice", 1001, "GPU-0", 50.0)
            .holds("alice", 1001, "GPU-1", 50.0)
    }));
    let events = h.events(&two_gpus(660, 0.0, 0.0).user("alice", 1001, 0.0, 1.0));
    assert_eq!(
        recovery(&events, &AlertKey::user("alice", Metric::GpuMemory)),
        (
            "user alice GPU memory recovered: 0.0% (limit 50%)".to_string(),
            0.0
        )
    );
    assert_eq!(
        recovery(
            &events,
            &AlertKey::persistent_user("alice", Metric::GpuMemory)
        )
        .0,
        "user alice GPU memory recovered: 0.0% (limit 50%)"
    );
    // Gone from the machine, nothing is measured.
    let mut h = Harness::new(gpu_config());
    h.feed_all(every(60, 0, 60).map(|t| {
        two_gpus(t, 90.0, 90.0)
            .user("alice", 1001, 0.0, 1.0)
            .holds("alice", 1001, "GPU-0", 90.0)
    }));
    assert_eq!(
        recovery(
            &h.events(&two_gpus(120, 0.0, 0.0)),
            &AlertKey::user("alice", Metric::GpuMemory)
        )
        .0,
        "user alice GPU memory recovered: no longer measured"
    );
}

/// A process holding memory on two idle GPUs is named once, in device order.
#[test]
fn held_idle_advice_names_each_process_once() {
    let mut h = Harness::new(gpu_config());
    h.feed_all(every(60, 0, 600).map(|t| {
        snap(t)
            .gpu(0, Some(0.0))
            .gpu(1, Some(90.0))
            .gpu(2, Some(0.0))
            .holds_by(7001, "alice", 1001, "GPU-0", 4.0)
            .holds_by(7002, "alice", 1001, "GPU-0", 4.0)
            .holds_by(7003, "alice", 1001, "GPU-1", 4.0)
            .holds_by(7001, "alice", 1001, "GPU-2", 4.0)
    }));
    let advice = alert(&h, &idle_key()).details.recommendation;
    assert!(
        advice.contains("end their processes python3 (pid 7001), python3 (pid 7002) (a forgotten"),
        "{advice}"
    );
}

#[test]
fn without_gpus_nothing_happens_and_nothing_is_kept() {
    let mut h = Harness::new(gpu_config());
    let events = h.feed_all(every(60, 0, 7200).map(|t| snap(t).user("alice", 1001, 1.0, 1.0)));
    assert!(events.is_empty(), "{events:?}");
    let state = h.tracker.snapshot_state();
    assert_eq!(state.idle, IdleBook::default());
    assert_eq!(state.users, UserBook::default());
}

#[test]
fn who_is_followed_and_per_user_settings() {
    let mut c = gpu_config();
    c.filtering.excluded_users = vec!["carol".into()];
    c.user_thresholds.insert(
        "bob".into(),
        UserOverride {
            gpu_idle_minutes: Some(0),
            ..UserOverride::default()
        },
    );
    c.user_thresholds.insert(
        "dave".into(),
        UserOverride {
            gpu_idle_minutes: Some(30),
            gpu_idle_percent: Some(1.0),
            ..UserOverride::default()
        },
    );
    let mut h = Harness::new(c);
    let s = |at: i64| {
        snap(at)
            .gpu(0, Some(0.5))
            .gpu(1, Some(2.0))
            .holds("alice", 1001, "GPU-0", 1.0)
            .holds("bob", 1002, "GPU-0", 1.0)
            .holds("carol", 1003, "GPU-0", 1.0)
            .holds("daemon", 2, "GPU-0", 1.0)
            .holds("dave", 1004, "GPU-1", 1.0)
    };
    h.feed_all(every(60, 0, 3600).map(s));
    // bob turned it off, carol is excluded, uid 2 is a system account, and GPU 1 is not under
    // dave's 1 %.
    assert_eq!(
        h.open(),
        strings(&["gpu_idle:gpu_utilization:alice medium"])
    );
}

#[test]
fn a_reload_applies_new_gpu_limits_from_the_next_sample() {
    let mut h = Harness::new(gpu_config());
    let s = |at: i64| two_gpus(at, 90.0, 2.0).holds("alice", 1001, "GPU-0", 60.0);
    h.feed_all(every(60, 0, 300).map(s));
    assert!(
        h.open().is_empty(),
        "37.5 % is under 50 %, and 5 minutes idle"
    );
    let mut c = gpu_config();
    c.users.gpu_memory_threshold = 30.0;
    c.users.gpu_idle_percent = 95.0;
    c.users.gpu_idle_minutes = 5;
    h.set_config(c);
    assert_eq!(
        h.alerts(&s(360)),
        strings(&["opened user:gpu_memory:alice medium"])
    );
    // GPU 0 at 90 % became idle under 95 %: its clock starts now, not back at 0.
    assert!(h.feed_all(every(60, 420, 600).map(s)).is_empty());
    let events = h.feed(&s(660));
    assert_eq!(
        events,
        strings(&["opened gpu_idle:gpu_utilization:alice medium"])
    );
}

#[test]
fn a_restart_carries_on_the_idle_clock_and_older_states_load() {
    let idle = |at: i64| two_gpus(at, 0.0, 50.0).holds("alice", 1001, "GPU-0", 10.0);
    let mut before = Harness::new(gpu_config());
    before.feed_all(every(60, 0, 300).map(idle));
    let json = serde_json::to_string(&before.tracker.snapshot_state()).unwrap();
    let state: TrackerState = serde_json::from_str(&json).unwrap();
    let mut after = Harness {
        tracker: Tracker::restore(&before.config, state, Timestamp::from_secs(300)),
        config: before.config.clone(),
    };
    assert!(after.feed_all(every(60, 360, 540).map(idle)).is_empty());
    assert_eq!(
        after.feed(&idle(600)),
        strings(&["opened gpu_idle:gpu_utilization:alice medium"])
    );

    // A state saved by a version without GPU tracking has neither `idle` nor `gpu_memory`.
    let mut old = Harness::new(config());
    old.feed_all(every(60, 0, 600).map(|t| snap(t).user("alice", 1001, 60.0, 60.0)));
    let mut value = serde_json::to_value(old.tracker.snapshot_state()).unwrap();
    let root = value.as_object_mut().unwrap();
    assert!(root.remove("idle").is_some());
    for watch in root["users"]["users"].as_object_mut().unwrap().values_mut() {
        assert!(
            watch
                .as_object_mut()
                .unwrap()
                .remove("gpu_memory")
                .is_some()
        );
    }
    let loaded: TrackerState = serde_json::from_value(value).expect("an older state loads");
    let restored = |state| Harness {
        tracker: Tracker::restore(&old.config, state, Timestamp::from_secs(600)),
        config: old.config.clone(),
    };
    let next = snap(660).user("alice", 1001, 40.0, 60.0);
    assert_eq!(
        restored(loaded).feed(&next),
        restored(old.tracker.snapshot_state()).feed(&next),
        "it carries on as the state it was saved from"
    );
    assert!(restored(old.tracker.snapshot_state()).feed(&next).len() >= 2);
}

#[test]
fn gpu_alerts_keep_their_severity_when_the_machine_is_in_trouble() {
    let mut h = Harness::new(gpu_config());
    h.feed_all(every(60, 0, 600).map(|t| {
        two_gpus(t, 0.0, 0.0)
            .cpu(95.0)
            .holds("alice", 1001, "GPU-0", 50.0)
            .holds("alice", 1001, "GPU-1", 50.0)
    }));
    let severity = |key: &AlertKey| alert(&h, key).severity;
    assert_eq!(severity(&idle_key()), Severity::Medium);
    assert_eq!(
        severity(&AlertKey::user("alice", Metric::GpuMemory)),
        Severity::Medium
    );
    // A persistent user while a system limit is exceeded is critical, GPU memory included.
    assert_eq!(
        severity(&AlertKey::persistent_user("alice", Metric::GpuMemory)),
        Severity::Critical
    );
}
