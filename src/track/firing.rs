//! Which alerts fire in a sample, and how severe each one is.
//!
//! Severity follows what the situation means for the machine, not for one figure:
//! - a system figure over its limit is high, and critical while some user is persistent (the
//!   machine is overloaded and there is a known, lasting cause);
//! - a persistent user is medium, and critical while a system limit is exceeded, for the same
//!   reason seen from the user's side;
//! - a user over their limit is medium;
//! - a system figure above 90 % of its limit is low ("approaching"). Low applies to system
//!   figures only: a user below their own limit is using what they are allowed, while a machine
//!   nearing capacity is worth a warning before it gets there;
//! - a user holding GPU memory idle for their `gpu_idle_minutes` is medium: it is waste to act
//!   on, like a user over their limit, not a machine in trouble.
//!
//! A system figure's approaching and exceeded levels share one alert key, so the alert that
//! warned at low escalates to high instead of a second alert opening beside it.

use super::condition::{Limit, Run};
use super::details;
use super::idle::IdleDevice;
use super::persistence::Watch;
use super::scene::Scene;
use super::text;
use crate::model::{AlertDetails, AlertKey, AlertKind, Severity, Status, Timestamp};

/// An alert that should be open after this sample, as the tracker sees it now.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Firing {
    pub key: AlertKey,
    pub severity: Severity,
    pub value: f64,
    pub threshold: f64,
    pub peak: f64,
    pub message: String,
    pub details: AlertDetails,
}

/// The facts a firing alert is built from.
pub(crate) struct Facts {
    pub key: AlertKey,
    pub severity: Severity,
    pub value: f64,
    pub limit: Limit,
    pub since: Timestamp,
    pub peak: f64,
    /// For a held-idle alert, the devices held idle; empty otherwise.
    pub idle: Vec<IdleDevice>,
}

impl Facts {
    pub fn duration_secs(&self, at: Timestamp) -> u64 {
        text::millis_to_secs(at.0.saturating_sub(self.since.0))
    }
}

/// Every alert that fires in this sample, in key order.
pub(crate) fn collect(scene: &Scene, status: Status) -> Vec<Firing> {
    let mut facts = system_facts(scene);
    facts.extend(user_facts(scene));
    facts.extend(persistent_facts(scene));
    facts.extend(idle_facts(scene));
    facts.sort_by(|a, b| a.key.cmp(&b.key));
    facts.into_iter().map(|f| build(scene, status, f)).collect()
}

fn build(scene: &Scene, status: Status, facts: Facts) -> Firing {
    Firing {
        message: message(&facts, scene.at()),
        details: details::build(scene, status, &facts),
        key: facts.key,
        severity: facts.severity,
        value: facts.value,
        threshold: facts.limit.threshold,
        peak: facts.peak,
    }
}

fn system_facts(scene: &Scene) -> Vec<Facts> {
    let severe = if scene.any_persistent() {
        Severity::Critical
    } else {
        Severity::High
    };
    scene
        .watched()
        .filter_map(|(r, levels)| {
            let (severity, run) = match (levels.exceeded.run(), levels.approaching.run()) {
                (Some(run), _) => (severe, run),
                (None, Some(run)) => (Severity::Low, run),
                (None, None) => return None,
            };
            let peak = levels
                .approaching
                .run()
                .map_or(run.peak, |a| a.peak.max(run.peak));
            Some(facts(
                r.id.alert_key(),
                severity,
                r.value,
                r.limit,
                run,
                peak,
            ))
        })
        .collect()
}

fn user_facts(scene: &Scene) -> Vec<Facts> {
    per_user_metric(scene, |key, value, limit, _, run| {
        Some(facts(key, Severity::Medium, value, limit, run, run.peak))
    })
}

fn persistent_facts(scene: &Scene) -> Vec<Facts> {
    let severity = if scene.any_exceeded() {
        Severity::Critical
    } else {
        Severity::Medium
    };
    per_user_metric(scene, |key, value, limit, watch, run| {
        if !watch.is_persistent() {
            return None;
        }
        let key = AlertKey::persistent_user(key.subject, key.metric);
        Some(facts(key, severity, value, limit, run, run.peak))
    })
}

/// Applies `f` to every followed user's watch that is over its limit, with the user alert's key.
fn per_user_metric<F>(scene: &Scene, f: F) -> Vec<Facts>
where
    F: Fn(AlertKey, f64, Limit, &Watch, &Run) -> Option<Facts>,
{
    scene
        .users
        .iter()
        .flat_map(|u| {
            scene.book.over_limit(u).filter_map(|(m, watch, run)| {
                f(
                    AlertKey::user(u.name.as_str(), m),
                    u.value(m),
                    u.limit(m),
                    watch,
                    run,
                )
            })
        })
        .collect()
}

/// Users holding memory on a device idle for their whole window: one alert per user, naming
/// every such device; its figure is the busiest of them now, against `gpu_idle_percent`.
fn idle_facts(scene: &Scene) -> Vec<Facts> {
    scene
        .idle
        .iter()
        .filter_map(|r| {
            let idle = scene.idle_book.held_idle(r, scene.at());
            let first = idle.first()?;
            let max = |f: fn(&IdleDevice) -> f64| idle.iter().map(f).fold(0.0, f64::max);
            Some(Facts {
                key: AlertKey::gpu_idle(r.name.as_str()),
                severity: Severity::Medium,
                value: max(|d| d.utilization),
                limit: Limit::new(r.idle_percent, 0.0),
                since: idle.iter().map(|d| d.since).min().unwrap_or(first.since),
                peak: max(|d| d.peak),
                idle,
            })
        })
        .collect()
}

fn facts(
    key: AlertKey,
    severity: Severity,
    value: f64,
    limit: Limit,
    run: &Run,
    peak: f64,
) -> Facts {
    Facts {
        key,
        severity,
        value,
        limit,
        since: run.started_at,
        peak,
        idle: Vec::new(),
    }
}

/// One line: `system memory 91.2% > 80%`, `system CPU 74.0% approaching 80%`,
/// `user alice over CPU limit 80% for 1h01m (now 93.0%)`,
/// `user alice holds 12.0 GiB on idle GPU 0 (under 5% busy for 45m)`.
fn message(f: &Facts, at: Timestamp) -> String {
    let subject = text::subject(&f.key);
    match (f.key.kind, f.severity) {
        (AlertKind::GpuIdle, _) => text::held_idle(&f.key.subject, &f.idle, f.limit.threshold, at),
        (AlertKind::PersistentUser, _) => format!(
            "user {} over {} limit {} for {} (now {})",
            f.key.subject,
            f.key.metric.label(),
            text::limit(f.limit.threshold),
            text::duration(f.duration_secs(at)),
            text::percent(f.value)
        ),
        (_, Severity::Low) => format!(
            "{subject} {} approaching {}",
            text::percent(f.value),
            text::limit(f.limit.threshold)
        ),
        _ => format!("{subject} {}", text::against(f.value, f.limit)),
    }
}

/// The message of an alert whose condition cleared: `system CPU recovered: 70.0% (limit 80%)`.
pub(crate) fn recovered_message(key: &AlertKey, value: Option<f64>, threshold: f64) -> String {
    let subject = text::subject(key);
    if key.kind == AlertKind::GpuIdle {
        return match value {
            Some(v) if v >= threshold => format!(
                "{subject} recovered: busy again, {} (idle under {})",
                text::percent(v),
                text::limit(threshold)
            ),
            _ => format!("{subject} recovered: idle GPU memory freed"),
        };
    }
    match value {
        Some(v) => format!(
            "{subject} recovered: {} (limit {})",
            text::percent(v),
            text::limit(threshold)
        ),
        None => format!("{subject} recovered: no longer measured"),
    }
}
