//! Alert, event and status types produced by the tracker and consumed by every sink.
//!
//! The tracker decides; the store, mail, UI and HTTP sinks only record, send and show. They meet
//! in these values so that no sink needs to know how a decision was reached, and so that what the
//! store keeps is exactly what the API later hands out. Text in here (messages, reasons,
//! recommendations) is plain text: sinks that render HTML or a terminal escape it themselves.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{LoadAverage, Severity, Timestamp};

/// What an alert (or notice) is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A machine-wide figure: CPU, memory or one disk.
    System,
    /// A tracked user over one of their limits.
    User,
    /// A tracked user over a limit without a break for their `persistent_minutes`.
    PersistentUser,
    /// A user holding GPU memory on a device that stayed under `gpu_idle_percent` busy for their
    /// `gpu_idle_minutes`: memory no one else can use, doing nothing.
    GpuIdle,
    /// A notice that an alert's condition cleared by itself. It never opens as an alert of its
    /// own: it is the kind of the [`Event::Recovery`] notice.
    Recovery,
}

impl AlertKind {
    /// Every kind, in key order.
    pub const ALL: [AlertKind; 5] = [
        AlertKind::System,
        AlertKind::User,
        AlertKind::PersistentUser,
        AlertKind::GpuIdle,
        AlertKind::Recovery,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::System => "system",
            AlertKind::User => "user",
            AlertKind::PersistentUser => "persistent_user",
            AlertKind::GpuIdle => "gpu_idle",
            AlertKind::Recovery => "recovery",
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    Cpu,
    Memory,
    Disk,
    /// A user's GPU memory, in percent of all GPUs' memory.
    #[serde(rename = "gpu_memory")]
    GpuMemory,
    /// A GPU's busy share, in percent (what "held idle" compares with `gpu_idle_percent`).
    #[serde(rename = "gpu_utilization")]
    GpuUtilization,
}

impl Metric {
    /// Every metric, in key order.
    pub const ALL: [Metric; 5] = [
        Metric::Cpu,
        Metric::Memory,
        Metric::Disk,
        Metric::GpuMemory,
        Metric::GpuUtilization,
    ];

    /// The identifier used in keys and serialised data.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Cpu => "cpu",
            Metric::Memory => "memory",
            Metric::Disk => "disk",
            Metric::GpuMemory => "gpu_memory",
            Metric::GpuUtilization => "gpu_utilization",
        }
    }

    /// The word used in sentences ("system CPU 93.0% > 80%").
    pub fn label(self) -> &'static str {
        match self {
            Metric::Cpu => "CPU",
            Metric::Memory => "memory",
            Metric::Disk => "disk",
            Metric::GpuMemory => "GPU memory",
            Metric::GpuUtilization => "GPU utilization",
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The identity of an alert: at most one alert per key is open at any time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AlertKey {
    pub kind: AlertKind,
    /// [`AlertKey::SYSTEM`] for machine-wide CPU and memory, the disk's path for a disk, the user
    /// name for user and persistent-user alerts.
    pub subject: String,
    pub metric: Metric,
}

impl AlertKey {
    /// The subject of machine-wide CPU and memory alerts.
    pub const SYSTEM: &'static str = "system";

    pub fn new(kind: AlertKind, subject: impl Into<String>, metric: Metric) -> Self {
        AlertKey {
            kind,
            subject: subject.into(),
            metric,
        }
    }

    /// Machine-wide CPU or memory.
    pub fn system(metric: Metric) -> Self {
        AlertKey::new(AlertKind::System, Self::SYSTEM, metric)
    }

    pub fn disk(path: impl Into<String>) -> Self {
        AlertKey::new(AlertKind::System, path, Metric::Disk)
    }

    pub fn user(name: impl Into<String>, metric: Metric) -> Self {
        AlertKey::new(AlertKind::User, name, metric)
    }

    pub fn persistent_user(name: impl Into<String>, metric: Metric) -> Self {
        AlertKey::new(AlertKind::PersistentUser, name, metric)
    }

    /// A user holding GPU memory on idle devices.
    pub fn gpu_idle(name: impl Into<String>) -> Self {
        AlertKey::new(AlertKind::GpuIdle, name, Metric::GpuUtilization)
    }
}

impl fmt::Display for AlertKey {
    /// `kind:metric:subject`, e.g. `system:disk:/home` or `user:cpu:alice`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.kind, self.metric, self.subject)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// Firing and notifying every `repeat_minutes`.
    Open,
    /// Firing, but an operator has seen it: no repeats until its severity rises.
    Acknowledged,
    Resolved,
}

impl AlertState {
    /// Open or acknowledged: the alert still occupies its key.
    pub fn is_open(self) -> bool {
        !matches!(self, AlertState::Resolved)
    }
}

/// Who closed an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResolvedBy {
    /// The condition cleared by itself.
    Recovered,
    /// An operator closed it while it was still firing.
    Operator,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub key: AlertKey,
    /// The highest severity reached while open, so that a sink filtering on severity treats the
    /// alert's notices (repeats, recovery) the same way it treated the alert.
    pub severity: Severity,
    pub state: AlertState,
    pub opened_at: Timestamp,
    /// The last time the alert was opened, repeated or escalated.
    pub last_notified_at: Timestamp,
    /// The last sample (or operator action) that touched the alert.
    pub updated_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
    /// The figure at the last update, in percent.
    pub value: f64,
    /// The limit the figure is compared with, in percent.
    pub threshold: f64,
    /// The highest figure seen while the alert's condition lasted.
    pub peak: f64,
    /// One line, e.g. `system memory 91.2% > 80%`.
    pub message: String,
    pub details: AlertDetails,
}

/// Everything an administrator needs to act on an alert without opening a terminal first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertDetails {
    pub host: String,
    pub metric: Metric,
    pub value: f64,
    pub threshold: f64,
    /// How long the condition has lasted so far.
    pub duration_secs: u64,
    pub status: Status,
    pub system_cpu_percent: f64,
    pub system_memory_percent: f64,
    /// The heaviest users for the alert's metric (for a user alert, that user first).
    pub top_users: Vec<UserSummary>,
    /// Users currently persistent on any metric.
    pub persistent_users: Vec<PersistentEpisode>,
    pub load: LoadAverage,
    pub uptime_secs: f64,
    /// One or two sentences on what to do.
    pub recommendation: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserSummary {
    pub name: String,
    pub uid: u32,
    /// Whether `[filtering]` counts the user; untracked users are listed for context only.
    pub tracked: bool,
    /// Percent of the whole machine.
    pub cpu_percent: f64,
    pub memory_percent: f64,
    pub processes: u64,
    pub top_processes: Vec<ProcessSummary>,
    /// What the user holds on GPUs; absent without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<super::UserGpu>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessSummary {
    pub pid: u32,
    pub name: String,
    /// As the snapshot reports a process's CPU (percent of one core, as `ps` shows it).
    pub cpu_percent: f64,
    pub memory_bytes: u64,
    /// Share of physical memory.
    pub memory_percent: f64,
}

/// How loaded the machine is, at a glance.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Light,
    Medium,
    Heavy,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Light => "Light Usage",
            Status::Medium => "Medium Usage",
            Status::Heavy => "Heavy Load",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A status and the reasons behind it, e.g. `system CPU 93.0% > 80%`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StatusReport {
    pub status: Status,
    pub reasons: Vec<String>,
}

/// A stretch of time a user spent over one limit, reported once it has lasted the user's
/// `persistent_minutes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersistentEpisode {
    pub user: String,
    pub metric: Metric,
    /// The user's limit for the metric, in percent.
    pub threshold: f64,
    /// The first sample over the limit.
    pub started_at: Timestamp,
    /// When the condition cleared; None while it lasts.
    pub ended_at: Option<Timestamp>,
    /// From the start to the end, or to the latest sample while it lasts.
    pub duration_secs: u64,
    pub peak: f64,
    pub average: f64,
    pub samples: u64,
}

/// What the tracker tells the sinks, in the order it happened within one sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    AlertOpened(Alert),
    /// Still firing after `repeat_minutes`.
    AlertRepeated(Alert),
    /// The severity rose; notified at once, even if the alert was acknowledged.
    AlertEscalated {
        alert: Alert,
        from: Severity,
    },
    AlertResolved {
        alert: Alert,
        by: ResolvedBy,
    },
    AlertAcknowledged(Alert),
    /// The recovery notice for an alert that resolved by itself, sent when `notify_recovery` is
    /// set. It carries the resolved alert.
    Recovery(Alert),
    PersistentStarted(PersistentEpisode),
    /// The episode's record, with its end.
    PersistentEnded(PersistentEpisode),
    StatusChanged {
        from: StatusReport,
        to: StatusReport,
    },
}

impl Event {
    /// The alert the event is about, if any.
    pub fn alert(&self) -> Option<&Alert> {
        match self {
            Event::AlertOpened(a)
            | Event::AlertRepeated(a)
            | Event::AlertAcknowledged(a)
            | Event::Recovery(a)
            | Event::AlertEscalated { alert: a, .. }
            | Event::AlertResolved { alert: a, .. } => Some(a),
            Event::PersistentStarted(_)
            | Event::PersistentEnded(_)
            | Event::StatusChanged { .. } => None,
        }
    }

    /// The kind a notification of this event has: the alert's kind, or
    /// [`AlertKind::Recovery`] for a recovery notice.
    pub fn kind(&self) -> Option<AlertKind> {
        match self {
            Event::Recovery(_) => Some(AlertKind::Recovery),
            other => other.alert().map(|a| a.key.kind),
        }
    }
}
