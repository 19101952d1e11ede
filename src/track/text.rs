//! How figures, limits and durations are written in messages, reasons and recommendations.
//!
//! One set of helpers so that a figure reads the same in the status line, the alert message and
//! the email: values with one decimal, limits without a trailing `.0`, durations as `1h12m`.

use super::condition::Limit;
use crate::model::{AlertKey, AlertKind, Metric};

/// A measured figure: `93.0%`.
pub(crate) fn percent(value: f64) -> String {
    format!("{value:.1}%")
}

/// A configured limit: `80%`, `72.5%`.
pub(crate) fn limit(threshold: f64) -> String {
    let s = format!("{threshold:.1}");
    format!("{}%", s.strip_suffix(".0").unwrap_or(&s))
}

/// A figure against a limit: `93.0% > 80%`, or, inside the hysteresis band where the condition
/// still holds, `78.0% (exceeded 80%, clears below 75%)`.
pub(crate) fn against(value: f64, l: Limit) -> String {
    if l.is_exceeded_by(value) {
        format!("{} > {}", percent(value), limit(l.threshold))
    } else {
        format!(
            "{} (exceeded {}, clears below {})",
            percent(value),
            limit(l.threshold),
            limit(l.clears_below())
        )
    }
}

pub(crate) use crate::format::duration;

pub(crate) fn millis_to_secs(ms: i64) -> u64 {
    u64::try_from(ms / 1000).unwrap_or(0)
}

/// What an alert is about, as the start of a sentence: `system CPU`, `disk /home`,
/// `user alice memory`.
pub(crate) fn subject(key: &AlertKey) -> String {
    match (key.kind, key.metric) {
        (AlertKind::System, Metric::Disk) => format!("disk {}", key.subject),
        (AlertKind::System, m) => format!("system {}", m.label()),
        (AlertKind::User | AlertKind::PersistentUser, m) => {
            format!("user {} {}", key.subject, m.label())
        }
        (AlertKind::Recovery, m) => format!("{} {}", key.subject, m.label()),
    }
}
