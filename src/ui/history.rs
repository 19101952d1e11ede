//! The series the history view charts, from the database or, without one, from what this
//! session has seen.
//!
//! Both sources are reduced to the same shape (labelled series of equally spaced points plus
//! alert marks) so the view does not care where they came from; the source is named on screen
//! because an hour of session memory and a month of daemon rollups mean different things.

use std::collections::VecDeque;

use crate::model::{Severity, Snapshot, Timestamp};
use crate::sanitize::clean;
use crate::store::History;

/// The ranges the history view offers, in seconds, with their labels.
pub const RANGES: [(&str, i64); 6] = [
    ("15m", 15 * 60),
    ("1h", 3600),
    ("6h", 6 * 3600),
    ("24h", 86_400),
    ("7d", 7 * 86_400),
    ("30d", 30 * 86_400),
];

/// Session samples kept for the history view when there is no database (an hour at 1 s).
pub const SESSION_POINTS: usize = 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Percent,
    BytesPerSec,
    Load,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub unit: Unit,
    pub points: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub at: Timestamp,
    pub severity: Severity,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryData {
    pub since: Timestamp,
    pub until: Timestamp,
    /// Where the points come from, for the title.
    pub source: String,
    pub series: Vec<Series>,
    pub marks: Vec<Mark>,
}

/// One live tick, remembered for the history view.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionPoint {
    pub at: Timestamp,
    pub cpu: f64,
    pub memory: f64,
    pub load1: f64,
    pub net: f64,
}

impl SessionPoint {
    pub fn of(s: &Snapshot) -> Self {
        SessionPoint {
            at: s.at,
            cpu: s.system.cpu.total.busy,
            memory: s.system.memory.used_percent,
            load1: s.system.load.one,
            net: s
                .system
                .net
                .iter()
                .map(|n| n.rx_bytes_per_sec + n.tx_bytes_per_sec)
                .sum(),
        }
    }
}

pub fn from_store(
    h: &History,
    since: Timestamp,
    until: Timestamp,
    user: Option<&str>,
) -> HistoryData {
    let sys = &h.system;
    let mut series = vec![
        Series {
            label: "CPU".into(),
            unit: Unit::Percent,
            points: sys.iter().map(|p| p.cpu.avg).collect(),
        },
        Series {
            label: "Memory".into(),
            unit: Unit::Percent,
            points: sys.iter().map(|p| p.memory.avg).collect(),
        },
        Series {
            label: "Load (1 min)".into(),
            unit: Unit::Load,
            points: sys.iter().map(|p| p.load1.avg).collect(),
        },
        Series {
            label: "Network rx+tx".into(),
            unit: Unit::BytesPerSec,
            points: sys.iter().map(|p| p.net_rx.avg + p.net_tx.avg).collect(),
        },
    ];
    if let Some(name) = user {
        let name = clean(name);
        series.push(Series {
            label: format!("{name} CPU"),
            unit: Unit::Percent,
            points: h.user.iter().map(|p| p.cpu_percent.avg).collect(),
        });
        series.push(Series {
            label: format!("{name} memory"),
            unit: Unit::Percent,
            points: h.user.iter().map(|p| p.memory_percent.avg).collect(),
        });
    }
    HistoryData {
        since,
        until,
        source: format!(
            "database, {:?} points every {}",
            h.source,
            crate::format::duration(h.resolution_secs)
        )
        .to_lowercase(),
        series,
        marks: h
            .alerts
            .iter()
            .map(|a| Mark {
                at: a.at,
                severity: a.severity,
                message: clean(&a.message),
            })
            .collect(),
    }
}

/// The session's own samples in [since, until], thinned to `width` points (the highest value
/// of each bucket, so short peaks stay visible).
pub fn from_session(
    points: &VecDeque<SessionPoint>,
    since: Timestamp,
    until: Timestamp,
    width: usize,
) -> HistoryData {
    let picked: Vec<&SessionPoint> = points
        .iter()
        .filter(|p| p.at >= since && p.at <= until)
        .collect();
    let per = picked.len().div_ceil(width.max(1)).max(1);
    let thin = |f: fn(&SessionPoint) -> f64| -> Vec<f64> {
        picked
            .chunks(per)
            .map(|c| c.iter().map(|p| f(p)).fold(0.0, f64::max))
            .collect()
    };
    HistoryData {
        since,
        until,
        source: "no database: this session's samples only".into(),
        series: vec![
            Series {
                label: "CPU".into(),
                unit: Unit::Percent,
                points: thin(|p| p.cpu),
            },
            Series {
                label: "Memory".into(),
                unit: Unit::Percent,
                points: thin(|p| p.memory),
            },
            Series {
                label: "Load (1 min)".into(),
                unit: Unit::Load,
                points: thin(|p| p.load1),
            },
            Series {
                label: "Network rx+tx".into(),
                unit: Unit::BytesPerSec,
                points: thin(|p| p.net),
            },
        ],
        marks: Vec::new(),
    }
}
