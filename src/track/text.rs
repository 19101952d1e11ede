//! How figures, limits and durations are written in messages, reasons and recommendations.
//!
//! One set of helpers so that a figure reads the same in the status line, the alert message and
//! the email: values with one decimal, limits without a trailing `.0`, durations as `1h12m`.

use super::condition::Limit;
use super::idle::IdleDevice;
use crate::model::{AlertKey, AlertKind, Metric, Timestamp};

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

pub(crate) use crate::format::{bytes, duration};

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
        (AlertKind::GpuIdle, _) => format!("user {} idle GPU", key.subject),
        (AlertKind::Recovery, m) => format!("{} {}", key.subject, m.label()),
    }
}

/// `user alice holds 12.0 GiB on idle GPU 0 (under 5% busy for 45m)`, or for several devices
/// `user alice holds 15.0 GiB on idle GPUs 0 (12.0 GiB for 45m), 2 (3.0 GiB for 31m), each under
/// 5% busy`.
pub(crate) fn held_idle(user: &str, idle: &[IdleDevice], threshold: f64, at: Timestamp) -> String {
    let total: u64 = idle.iter().map(|d| d.memory_bytes).sum();
    let idle_for = |d: &IdleDevice| duration(millis_to_secs(at.0.saturating_sub(d.since.0)));
    let under = limit(threshold);
    match idle {
        [d] => format!(
            "user {user} holds {} on idle GPU {} (under {under} busy for {})",
            bytes(total),
            d.label,
            idle_for(d)
        ),
        _ => {
            let each: Vec<String> = idle
                .iter()
                .map(|d| {
                    format!(
                        "{} ({} for {})",
                        d.label,
                        bytes(d.memory_bytes),
                        idle_for(d)
                    )
                })
                .collect();
            format!(
                "user {user} holds {} on idle GPUs {}, each under {under} busy",
                bytes(total),
                each.join(", ")
            )
        }
    }
}
