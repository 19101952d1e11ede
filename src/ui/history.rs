//! The series the history view charts, from the database or, without one, from what this
//! session has seen.
//!
//! Both sources are reduced to the same shape (labelled series of equally spaced points plus
//! alert marks) so the view does not care where they came from; the source is named on screen
//! because an hour of session memory and a month of daemon rollups mean different things.

use std::collections::VecDeque;
use std::sync::Arc;

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
    /// The users recorded in the range, in name order: what the user picker offers. Raw names
    /// (they go back into the query); the view cleans them.
    pub users: Vec<String>,
}

/// One live tick, remembered for the history view.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionPoint {
    pub at: Timestamp,
    pub cpu: f64,
    pub memory: f64,
    pub load1: f64,
    pub net: f64,
    /// The users the daemon would record (tracked, or not idle), so a session without a
    /// database can chart one of them too.
    pub users: Vec<SessionUser>,
}

/// One user's figures at one tick. The name is the snapshot's shared string, not a copy.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionUser {
    pub name: Arc<str>,
    pub cpu: f32,
    pub memory: f32,
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
            users: s
                .users
                .iter()
                .filter(|u| {
                    u.tracked
                        || u.cpu_percent >= crate::store::TRIVIAL_PERCENT
                        || u.memory_percent >= crate::store::TRIVIAL_PERCENT
                })
                .map(|u| SessionUser {
                    name: Arc::clone(&u.name),
                    cpu: u.cpu_percent as f32,
                    memory: u.memory_percent as f32,
                })
                .collect(),
        }
    }
}

pub fn from_store(
    h: &History,
    since: Timestamp,
    until: Timestamp,
    user: Option<&str>,
    users: Vec<String>,
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
        users,
    }
}

/// The session's own samples in [since, until], thinned to `width` points (the highest value
/// of each bucket, so short peaks stay visible), with `user`'s series when one is chosen (zero
/// where the user was not seen).
pub fn from_session(
    points: &VecDeque<SessionPoint>,
    since: Timestamp,
    until: Timestamp,
    width: usize,
    user: Option<&str>,
) -> HistoryData {
    let picked: Vec<&SessionPoint> = points
        .iter()
        .filter(|p| p.at >= since && p.at <= until)
        .collect();
    let per = picked.len().div_ceil(width.max(1)).max(1);
    let thin = |f: &dyn Fn(&SessionPoint) -> f64| -> Vec<f64> {
        picked
            .chunks(per)
            .map(|c| c.iter().map(|p| f(p)).fold(0.0, f64::max))
            .collect()
    };
    let mut series = vec![
        Series {
            label: "CPU".into(),
            unit: Unit::Percent,
            points: thin(&|p| p.cpu),
        },
        Series {
            label: "Memory".into(),
            unit: Unit::Percent,
            points: thin(&|p| p.memory),
        },
        Series {
            label: "Load (1 min)".into(),
            unit: Unit::Load,
            points: thin(&|p| p.load1),
        },
        Series {
            label: "Network rx+tx".into(),
            unit: Unit::BytesPerSec,
            points: thin(&|p| p.net),
        },
    ];
    if let Some(name) = user {
        fn of<'a>(p: &'a SessionPoint, name: &str) -> Option<&'a SessionUser> {
            p.users.iter().find(|u| &*u.name == name)
        }
        let label = clean(name);
        series.push(Series {
            label: format!("{label} CPU"),
            unit: Unit::Percent,
            points: thin(&|p| of(p, name).map_or(0.0, |u| f64::from(u.cpu))),
        });
        series.push(Series {
            label: format!("{label} memory"),
            unit: Unit::Percent,
            points: thin(&|p| of(p, name).map_or(0.0, |u| f64::from(u.memory))),
        });
    }
    let mut users: Vec<String> = picked
        .iter()
        .flat_map(|p| p.users.iter().map(|u| u.name.to_string()))
        .collect();
    users.sort();
    users.dedup();
    HistoryData {
        since,
        until,
        source: "no database: this session's samples only".into(),
        series,
        marks: Vec::new(),
        users,
    }
}
