//! Log lines for tracker events: what happened, to what, and how bad.

use crate::log::Level;
use crate::model::{Event, ResolvedBy, Severity};

fn level_for(s: Severity) -> Level {
    match s {
        Severity::Critical | Severity::High => Level::Warning,
        Severity::Medium => Level::Notice,
        Severity::Low => Level::Info,
    }
}

pub fn describe(e: &Event) -> (Level, String) {
    match e {
        Event::AlertOpened(a) => (
            level_for(a.severity),
            format!("alert opened [{}] {}: {}", a.severity, a.key, a.message),
        ),
        Event::AlertRepeated(a) => (
            level_for(a.severity),
            format!(
                "alert still firing [{}] {}: {}",
                a.severity, a.key, a.message
            ),
        ),
        Event::AlertEscalated { alert, from } => (
            level_for(alert.severity),
            format!(
                "alert escalated {from} -> {} {}: {}",
                alert.severity, alert.key, alert.message
            ),
        ),
        Event::AlertResolved { alert, by } => (
            Level::Notice,
            format!(
                "alert resolved ({}) {}: {}",
                match by {
                    ResolvedBy::Recovered => "recovered",
                    ResolvedBy::Operator => "by an operator",
                },
                alert.key,
                alert.message
            ),
        ),
        Event::AlertAcknowledged(a) => (
            Level::Info,
            format!("alert acknowledged {}: {}", a.key, a.message),
        ),
        Event::Recovery(a) => (
            Level::Info,
            format!("recovery notice {}: {}", a.key, a.message),
        ),
        Event::PersistentStarted(p) => (
            Level::Notice,
            format!(
                "user {} persistent on {} (over {:.0}% since {})",
                p.user,
                p.metric.label(),
                p.threshold,
                crate::time::rfc3339(p.started_at)
            ),
        ),
        Event::PersistentEnded(p) => (
            Level::Info,
            format!(
                "user {} no longer over their {} limit after {} (peak {:.1}%, average {:.1}%)",
                p.user,
                p.metric.label(),
                crate::format::duration(p.duration_secs),
                p.peak,
                p.average
            ),
        ),
        Event::StatusChanged { from, to } => (
            Level::Notice,
            format!(
                "status {} -> {}: {}",
                from.status,
                to.status,
                to.reasons.join("; ")
            ),
        ),
    }
}
