//! One alert list from two sources: the daemon's database and this session's own tracker.
//!
//! Both trackers judge the same machine with the same rules, so most alerts appear in both.
//! The database row wins (it has an id, who acknowledged it, and it is what an acknowledgement
//! must change so the daemon stops repeating its mail); a tracker alert is shown only when no
//! open database row has its key, e.g. when no daemon runs or the database is unreadable.

use std::collections::HashSet;

use crate::model::{Alert, AlertKey, AlertKind, Metric, Snapshot};
use crate::store::StoredAlert;

/// An alert as the alerts pane shows it.
#[derive(Debug, Clone, Copy)]
pub struct AlertRow<'a> {
    pub alert: &'a Alert,
    /// The database row, when the alert is recorded there.
    pub id: Option<i64>,
    pub acked_by: Option<&'a str>,
}

/// Open and acknowledged alerts, newest first, without duplicates.
pub fn merge<'a>(stored: &'a [StoredAlert], local: &'a [Alert]) -> Vec<AlertRow<'a>> {
    let mut rows: Vec<AlertRow<'a>> = stored
        .iter()
        .filter(|s| s.alert.state.is_open())
        .map(|s| AlertRow {
            alert: &s.alert,
            id: Some(s.id),
            acked_by: s.acknowledged_by.as_deref(),
        })
        .collect();
    let recorded: HashSet<&AlertKey> = rows.iter().map(|r| &r.alert.key).collect();
    let extra: Vec<AlertRow<'a>> = local
        .iter()
        .filter(|a| a.state.is_open() && !recorded.contains(&a.key))
        .map(|alert| AlertRow {
            alert,
            id: None,
            acked_by: None,
        })
        .collect();
    rows.extend(extra);
    rows.sort_by(|a, b| {
        b.alert
            .opened_at
            .cmp(&a.alert.opened_at)
            .then(a.alert.key.cmp(&b.alert.key))
    });
    rows
}

/// What an acknowledgement or resolution acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertTarget {
    pub id: Option<i64>,
    pub key: AlertKey,
}

impl AlertTarget {
    pub fn of(row: &AlertRow<'_>) -> Self {
        AlertTarget {
            id: row.id,
            key: row.alert.key.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertOp {
    Acknowledge,
    Resolve,
}

impl AlertOp {
    pub fn verb(self) -> &'static str {
        match self {
            AlertOp::Acknowledge => "Acknowledge",
            AlertOp::Resolve => "Resolve",
        }
    }

    pub fn past(self) -> &'static str {
        match self {
            AlertOp::Acknowledge => "acknowledged",
            AlertOp::Resolve => "resolved",
        }
    }
}

/// The figure `key` watches, in `snapshot`: what an alert's details show as "now" beside the
/// value recorded with the alert. None when the subject is not in the sample (a user who has
/// logged out, a disk that could not be examined), and for a held-idle alert: its figure comes
/// from the devices held idle, which the alert does not record, and the user's other devices
/// would give a wrong one.
pub fn current_value(snapshot: &Snapshot, key: &AlertKey) -> Option<f64> {
    let sys = &snapshot.system;
    match (key.kind, key.metric) {
        (AlertKind::System, Metric::Cpu) => Some(sys.cpu.total.busy),
        (AlertKind::System, Metric::Memory) => Some(sys.memory.used_percent),
        (AlertKind::System, Metric::Disk) => sys
            .disks
            .iter()
            .find(|d| d.ok && d.path == key.subject)
            .map(|d| d.used_percent),
        (AlertKind::System, Metric::GpuMemory | Metric::GpuUtilization) => None,
        (AlertKind::User | AlertKind::PersistentUser, m) => {
            let u = snapshot.user(&key.subject)?;
            Some(match m {
                Metric::Memory => u.memory_percent,
                Metric::GpuMemory | Metric::GpuUtilization => {
                    u.gpu.as_ref().map_or(0.0, |g| g.memory_percent)
                }
                Metric::Cpu | Metric::Disk => u.cpu_percent,
            })
        }
        (AlertKind::GpuIdle | AlertKind::Recovery, _) => None,
    }
}
