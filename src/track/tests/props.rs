//! Properties over random sequences of samples, times and operator actions.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::{Harness, config, snap};
use crate::model::{AlertKey, AlertState, Event, Metric, ResolvedBy, Severity, Timestamp};
use crate::track::condition::{Condition, Limit};

#[derive(Debug, Clone)]
enum Step {
    Sample {
        dt: i64,
        cpu: f64,
        mem: f64,
        disk: f64,
        alice: f64,
        bob: f64,
    },
    Acknowledge(usize),
    Resolve(usize),
    Reload {
        repeat_minutes: u64,
        cpu_threshold: f64,
    },
}

fn keys() -> Vec<AlertKey> {
    vec![
        AlertKey::system(Metric::Cpu),
        AlertKey::system(Metric::Memory),
        AlertKey::disk("/"),
        AlertKey::user("alice", Metric::Cpu),
        AlertKey::user("alice", Metric::Memory),
        AlertKey::persistent_user("alice", Metric::Cpu),
        AlertKey::persistent_user("bob", Metric::Memory),
        AlertKey::user("bob", Metric::Memory),
    ]
}

/// Figures clustered around every line (48, 72, 80 for the system; 45, 50 for users) so that
/// crossings, bands and clearings all happen often.
fn figure() -> impl Strategy<Value = f64> {
    prop_oneof![
        prop::sample::select(vec![
            0.0, 40.0, 44.0, 46.0, 49.0, 51.0, 66.0, 70.0, 73.0, 76.0, 80.0, 81.0, 95.0,
        ]),
        0.0..100.0f64,
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (1i64..150, figure(), figure(), figure(), figure(), figure()).prop_map(
            |(dt, cpu, mem, disk, alice, bob)| Step::Sample { dt, cpu, mem, disk, alice, bob }
        ),
        1 => (0..keys().len()).prop_map(Step::Acknowledge),
        1 => (0..keys().len()).prop_map(Step::Resolve),
        1 => (0u64..3, prop::sample::select(vec![60.0, 80.0, 90.0])).prop_map(
            |(repeat_minutes, cpu_threshold)| Step::Reload { repeat_minutes, cpu_threshold }
        ),
    ]
}

/// What the event stream says is open, checked event by event against the lifecycle rules.
#[derive(Default)]
struct Ledger {
    open: BTreeMap<AlertKey, (Severity, AlertState)>,
}

impl Ledger {
    fn apply(&mut self, events: &[Event]) -> Result<(), TestCaseError> {
        for (i, e) in events.iter().enumerate() {
            match e {
                Event::AlertOpened(a) => {
                    prop_assert!(
                        !self.open.contains_key(&a.key),
                        "second open alert for {}",
                        a.key
                    );
                    self.open.insert(a.key.clone(), (a.severity, a.state));
                }
                Event::AlertEscalated { alert, from } => {
                    let (severity, _) = self.known(&alert.key)?;
                    prop_assert_eq!(severity, *from);
                    prop_assert!(alert.severity > *from);
                    self.open
                        .insert(alert.key.clone(), (alert.severity, alert.state));
                }
                Event::AlertRepeated(a) => {
                    let (_, state) = self.known(&a.key)?;
                    prop_assert_eq!(state, AlertState::Open, "repeat of an acknowledged alert");
                }
                Event::AlertAcknowledged(a) => {
                    self.known(&a.key)?;
                    self.open.insert(a.key.clone(), (a.severity, a.state));
                }
                Event::AlertResolved { alert, .. } => {
                    self.known(&alert.key)?;
                    prop_assert_eq!(alert.state, AlertState::Resolved);
                    self.open.remove(&alert.key);
                }
                Event::Recovery(a) => {
                    let follows = matches!(
                        i.checked_sub(1).map(|p| &events[p]),
                        Some(Event::AlertResolved { alert, by: ResolvedBy::Recovered }) if alert.key == a.key
                    );
                    prop_assert!(follows, "recovery notice without its resolution");
                }
                Event::PersistentStarted(_)
                | Event::PersistentEnded(_)
                | Event::StatusChanged { .. } => {}
            }
        }
        Ok(())
    }

    fn known(&self, key: &AlertKey) -> Result<(Severity, AlertState), TestCaseError> {
        match self.open.get(key) {
            Some(v) => Ok(*v),
            None => Err(TestCaseError::fail(format!(
                "event for {key}, which is not open"
            ))),
        }
    }
}

fn run(h: &mut Harness, at: &mut i64, step: Step) -> Vec<Event> {
    let keys = keys();
    match step {
        Step::Sample {
            dt,
            cpu,
            mem,
            disk,
            alice,
            bob,
        } => {
            *at += dt;
            let s = snap(*at)
                .cpu(cpu)
                .mem(mem)
                .disk("/", disk)
                .user("alice", 1001, alice, alice / 2.0)
                .user("bob", 1002, bob / 2.0, bob);
            h.events(&s)
        }
        Step::Acknowledge(k) => h
            .tracker
            .acknowledge(&keys[k], Timestamp::from_secs(*at))
            .into_iter()
            .collect(),
        Step::Resolve(k) => h
            .tracker
            .resolve(&keys[k], Timestamp::from_secs(*at))
            .into_iter()
            .collect(),
        Step::Reload {
            repeat_minutes,
            cpu_threshold,
        } => {
            let mut c = h.config.clone();
            c.alerts.repeat_minutes = repeat_minutes;
            c.monitoring.cpu_threshold = cpu_threshold;
            h.set_config(c);
            Vec::new()
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn never_two_open_alerts_for_one_key(steps in prop::collection::vec(step(), 1..120)) {
        let mut c = config();
        c.users.persistent_minutes = 2;
        c.alerts.repeat_minutes = 1;
        let mut h = Harness::new(c);
        let mut ledger = Ledger::default();
        let mut at = 0;
        for step in steps {
            let events = run(&mut h, &mut at, step);
            ledger.apply(&events)?;
            let open = h.tracker.open_alerts();
            let keys: Vec<&AlertKey> = open.iter().map(|a| &a.key).collect();
            prop_assert!(
                keys.windows(2).all(|w| w[0] < w[1]),
                "open alerts are unique and in key order: {:?}",
                keys
            );
            prop_assert!(open.iter().all(|a| a.state.is_open()));
            let from_events: Vec<&AlertKey> = ledger.open.keys().collect();
            prop_assert_eq!(from_events, keys, "the events account for every open alert");
        }
    }

    #[test]
    fn a_started_condition_holds_while_inside_its_band(
        values in prop::collection::vec(75.0..=100.0f64, 1..60),
    ) {
        let limit = Limit::new(80.0, 5.0);
        let mut c = Condition::default();
        c.observe(80.5, limit, Timestamp::from_secs(0));
        for (i, v) in values.iter().enumerate() {
            c.observe(*v, limit, Timestamp::from_secs(i as i64 + 1));
            prop_assert!(c.is_active(), "cleared at {} inside the band", v);
        }
        let run = c.run().expect("active");
        prop_assert_eq!(run.samples, values.len() as u64 + 1);
        prop_assert!(values.iter().all(|v| *v <= run.peak));
    }
}
