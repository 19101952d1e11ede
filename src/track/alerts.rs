//! The alert lifecycle: open, repeat, escalate, acknowledge, resolve.
//!
//! Each sample yields the set of alerts that should be firing; this module reconciles it with the
//! alerts already open so that a sink hears about a problem once, then again only when it matters:
//! - at most one alert is open per key, so a lasting problem is one alert, not one per sample;
//! - an open alert is re-notified every `repeat_minutes` (never when 0) until acknowledged;
//! - a severity rise is notified at once and re-opens an acknowledged alert, because the operator
//!   acknowledged something less serious;
//! - an alert whose condition cleared resolves by itself, with a recovery notice if configured;
//! - an alert an operator resolved stays closed until its condition has cleared and returned, or
//!   its severity rises above what the operator closed, so that "resolve" is not undone on the
//!   next sample.
//!
//! An alert's severity only rises while it is open: its notices are then filtered by sinks the
//! same way as the alert itself.

use serde::{Deserialize, Serialize};

use super::firing::{Firing, recovered_message};
use crate::config::Alerts;
use crate::model::{Alert, AlertKey, AlertState, Event, ResolvedBy, Severity, Timestamp};

/// The `[alerts]` settings the lifecycle needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Policy {
    /// None: notify once.
    repeat_ms: Option<i64>,
    notify_recovery: bool,
}

impl Policy {
    pub fn new(alerts: &Alerts) -> Self {
        let minutes = i64::try_from(alerts.repeat_minutes).unwrap_or(i64::MAX);
        Policy {
            repeat_ms: (minutes > 0).then(|| minutes.saturating_mul(60_000)),
            notify_recovery: alerts.notify_recovery,
        }
    }

    fn repeat_due(&self, alert: &Alert, at: Timestamp) -> bool {
        let Some(every) = self.repeat_ms else {
            return false;
        };
        alert.state == AlertState::Open && at.0.saturating_sub(alert.last_notified_at.0) >= every
    }
}

/// A key an operator resolved while it was firing at `severity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Silenced {
    key: AlertKey,
    severity: Severity,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct AlertBook {
    /// Open and acknowledged alerts, in key order.
    open: Vec<Alert>,
    silenced: Vec<Silenced>,
}

impl AlertBook {
    pub fn open(&self) -> &[Alert] {
        &self.open
    }

    /// Brings the open alerts in line with what fires now; `value_of` gives the current figure
    /// of an alert that stopped firing, for its recovery message.
    pub fn reconcile<V>(
        &mut self,
        firing: Vec<Firing>,
        at: Timestamp,
        policy: Policy,
        value_of: V,
    ) -> Vec<Event>
    where
        V: Fn(&AlertKey) -> Option<f64>,
    {
        let mut events = self.resolve_cleared(&firing, at, policy, value_of);
        self.silenced
            .retain(|s| firing.iter().any(|f| f.key == s.key));
        for f in firing {
            events.extend(self.apply(f, at, policy));
        }
        events
    }

    pub fn acknowledge(&mut self, key: &AlertKey, at: Timestamp) -> Option<Event> {
        let alert = self
            .open
            .iter_mut()
            .find(|a| a.key == *key && a.state == AlertState::Open)?;
        alert.state = AlertState::Acknowledged;
        alert.updated_at = at;
        Some(Event::AlertAcknowledged(alert.clone()))
    }

    pub fn resolve(&mut self, key: &AlertKey, at: Timestamp) -> Option<Event> {
        let pos = self.open.iter().position(|a| a.key == *key)?;
        let mut alert = self.open.remove(pos);
        close(&mut alert, at);
        self.silenced.push(Silenced {
            key: key.clone(),
            severity: alert.severity,
        });
        Some(Event::AlertResolved {
            alert,
            by: ResolvedBy::Operator,
        })
    }

    fn resolve_cleared<V>(
        &mut self,
        firing: &[Firing],
        at: Timestamp,
        policy: Policy,
        value_of: V,
    ) -> Vec<Event>
    where
        V: Fn(&AlertKey) -> Option<f64>,
    {
        let (still, cleared): (Vec<Alert>, Vec<Alert>) = std::mem::take(&mut self.open)
            .into_iter()
            .partition(|a| firing.iter().any(|f| f.key == a.key));
        self.open = still;
        cleared
            .into_iter()
            .flat_map(|mut alert| {
                let value = value_of(&alert.key);
                recover(&mut alert, value, at);
                recovered_events(alert, policy)
            })
            .collect()
    }

    fn apply(&mut self, f: Firing, at: Timestamp, policy: Policy) -> Option<Event> {
        if self.is_silenced(&f) {
            return None;
        }
        match self.open.iter_mut().find(|a| a.key == f.key) {
            Some(alert) => refresh(alert, f, at, policy),
            None => Some(self.open_new(f, at)),
        }
    }

    /// Whether an operator closed this key; a rise above the severity they closed lifts it.
    fn is_silenced(&mut self, f: &Firing) -> bool {
        let Some(pos) = self.silenced.iter().position(|s| s.key == f.key) else {
            return false;
        };
        if f.severity <= self.silenced[pos].severity {
            return true;
        }
        self.silenced.remove(pos);
        false
    }

    fn open_new(&mut self, f: Firing, at: Timestamp) -> Event {
        let alert = Alert {
            key: f.key,
            severity: f.severity,
            state: AlertState::Open,
            opened_at: at,
            last_notified_at: at,
            updated_at: at,
            resolved_at: None,
            value: f.value,
            threshold: f.threshold,
            peak: f.peak.max(f.value),
            message: f.message,
            details: f.details,
        };
        let pos = self.open.partition_point(|a| a.key < alert.key);
        self.open.insert(pos, alert.clone());
        Event::AlertOpened(alert)
    }
}

fn refresh(alert: &mut Alert, f: Firing, at: Timestamp, policy: Policy) -> Option<Event> {
    alert.value = f.value;
    alert.threshold = f.threshold;
    alert.peak = alert.peak.max(f.peak).max(f.value);
    alert.message = f.message;
    alert.details = f.details;
    alert.updated_at = at;
    if f.severity > alert.severity {
        let from = std::mem::replace(&mut alert.severity, f.severity);
        alert.state = AlertState::Open;
        alert.last_notified_at = at;
        return Some(Event::AlertEscalated {
            alert: alert.clone(),
            from,
        });
    }
    if policy.repeat_due(alert, at) {
        alert.last_notified_at = at;
        return Some(Event::AlertRepeated(alert.clone()));
    }
    None
}

fn close(alert: &mut Alert, at: Timestamp) {
    alert.state = AlertState::Resolved;
    alert.resolved_at = Some(at);
    alert.updated_at = at;
}

fn recover(alert: &mut Alert, value: Option<f64>, at: Timestamp) {
    close(alert, at);
    if let Some(v) = value {
        alert.value = v;
        alert.details.value = v;
    }
    alert.message = recovered_message(&alert.key, value, alert.threshold);
}

fn recovered_events(alert: Alert, policy: Policy) -> Vec<Event> {
    let notice = policy
        .notify_recovery
        .then(|| Event::Recovery(alert.clone()));
    let resolved = Event::AlertResolved {
        alert,
        by: ResolvedBy::Recovered,
    };
    std::iter::once(resolved).chain(notice).collect()
}
