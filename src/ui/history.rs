//! The series the history view charts, from the database or, without one, from what this
//! session has seen.
//!
//! Both sources are reduced to the same shape (labelled series of equally spaced points plus
//! alert marks) so the view does not care where they came from; the source is named on screen
//! because an hour of session memory and a month of daemon rollups mean different things.

use std::collections::{HashMap, VecDeque};
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

/// Users remembered per session sample: the heaviest this many of those the daemon would record.
///
/// Why a cap and fixed point: the TUI's peak memory is held below htop's and btop's, and a
/// per-user series grows with users times ticks. Uncapped, 50 busy users kept as name plus two
/// `f32` (24 bytes) for [`SESSION_POINTS`] ticks is over 4 MiB, more than the rest of the TUI.
/// As a uid and two `u16` hundredths of a percent (8 bytes, the precision the database keeps)
/// for at most this many users, the whole session history stays under 1 MiB whatever the number
/// of users ([`SessionHistory::bound_bytes`]). A user below the cut at a tick was lighter than
/// this many others then, and counts as zero there, as an idle user does in the database.
pub const SESSION_USERS: usize = 24;

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
    /// The time of each point (every series has one point per time), so the view can place
    /// them on the time axis: data may cover only part of the range.
    pub times: Vec<Timestamp>,
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
    /// The heaviest [`SESSION_USERS`] of the users the daemon would record (tracked, or not
    /// idle), so a session without a database can chart one of them too.
    pub users: Box<[SessionUser]>,
}

/// One user's figures at one tick, in hundredths of a percent of the machine; the name is in
/// [`SessionHistory`]'s table, by uid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionUser {
    pub uid: u32,
    pub cpu: u16,
    pub memory: u16,
}

/// A percent in hundredths, saturating (a user's share of the machine is at most 100%).
fn hundredths(percent: f64) -> u16 {
    if percent.is_finite() {
        (percent * 100.0).round().clamp(0.0, f64::from(u16::MAX)) as u16
    } else {
        0
    }
}

impl SessionUser {
    pub fn cpu_percent(&self) -> f64 {
        f64::from(self.cpu) / 100.0
    }

    pub fn memory_percent(&self) -> f64 {
        f64::from(self.memory) / 100.0
    }
}

/// This session's samples, at most [`SESSION_POINTS`], and the names of the users in them.
#[derive(Debug, Clone, Default)]
pub struct SessionHistory {
    points: VecDeque<SessionPoint>,
    names: HashMap<u32, Arc<str>>,
    /// Ticks since the name table was last pruned.
    since_prune: usize,
}

impl SessionHistory {
    /// Remember one tick, forgetting the oldest beyond [`SESSION_POINTS`].
    pub fn push(&mut self, s: &Snapshot) {
        // The whole window at once: growing by doubling would end at 4,096 slots, and briefly
        // hold the old buffer and the new.
        if self.points.capacity() == 0 {
            self.points.reserve_exact(SESSION_POINTS);
        }
        if self.points.len() == SESSION_POINTS {
            self.points.pop_front();
        }
        let mut users: Vec<&crate::model::UserStats> = s
            .users
            .iter()
            .filter(|u| crate::store::worth_recording(u))
            .collect();
        let weight = |u: &crate::model::UserStats| u.cpu_percent.max(u.memory_percent);
        users.sort_by(|a, b| weight(b).total_cmp(&weight(a)));
        users.truncate(SESSION_USERS);
        for u in &users {
            if self.names.get(&u.uid).is_none_or(|n| **n != *u.name) {
                self.names.insert(u.uid, Arc::clone(&u.name));
            }
        }
        self.points.push_back(SessionPoint {
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
            users: users
                .iter()
                .map(|u| SessionUser {
                    uid: u.uid,
                    cpu: hundredths(u.cpu_percent),
                    memory: hundredths(u.memory_percent),
                })
                .collect(),
        });
        // Forget the names of users no longer in any kept tick, once per window, so the table
        // is bounded by the users of the last two windows.
        self.since_prune += 1;
        if self.since_prune >= SESSION_POINTS {
            self.since_prune = 0;
            let seen: std::collections::HashSet<u32> = self
                .points
                .iter()
                .flat_map(|p| p.users.iter().map(|u| u.uid))
                .collect();
            self.names.retain(|uid, _| seen.contains(uid));
        }
    }

    pub fn points(&self) -> &VecDeque<SessionPoint> {
        &self.points
    }

    pub fn name(&self, uid: u32) -> Option<&str> {
        self.names.get(&uid).map(|n| &**n)
    }

    /// The most the kept ticks can take, table of names aside: [`SESSION_POINTS`] ticks of
    /// [`SESSION_USERS`] users each.
    pub const fn bound_bytes() -> usize {
        SESSION_POINTS
            * (std::mem::size_of::<SessionPoint>()
                + SESSION_USERS * std::mem::size_of::<SessionUser>())
    }

    /// What the kept ticks take now (the deque's buffer and each tick's users).
    pub fn tick_bytes(&self) -> usize {
        self.points.capacity() * std::mem::size_of::<SessionPoint>()
            + self
                .points
                .iter()
                .map(|p| std::mem::size_of_val(&*p.users))
                .sum::<usize>()
    }

    pub fn names_len(&self) -> usize {
        self.names.len()
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
    // GPU charts only where the range has GPU figures: a machine without GPUs shows what it
    // always showed.
    let gpus = h.gpu_totals();
    if !gpus.is_empty() {
        let whole = h.gpus.iter().filter(|g| g.mig_parent.is_none()).count();
        series.push(Series {
            label: format!("GPU utilization ({whole} GPUs, mean)"),
            unit: Unit::Percent,
            points: gpus.iter().map(|g| g.utilization_percent).collect(),
        });
        series.push(Series {
            label: "GPU memory".into(),
            unit: Unit::Percent,
            points: gpus.iter().map(|g| g.memory_percent).collect(),
        });
    }
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
        if !h.user_gpu.is_empty() {
            series.push(Series {
                label: format!("{name} GPU memory (of all GPUs)"),
                unit: Unit::Percent,
                points: h.user_gpu.iter().map(|p| p.memory_percent.avg).collect(),
            });
        }
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
        times: sys.iter().map(|p| p.at).collect(),
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
    session: &SessionHistory,
    since: Timestamp,
    until: Timestamp,
    width: usize,
    user: Option<&str>,
) -> HistoryData {
    let picked: Vec<&SessionPoint> = session
        .points()
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
        let uids: Vec<u32> = session
            .names
            .iter()
            .filter(|(_, n)| &***n == name)
            .map(|(uid, _)| *uid)
            .collect();
        let of = |p: &SessionPoint| -> Option<SessionUser> {
            p.users.iter().copied().find(|u| uids.contains(&u.uid))
        };
        let label = clean(name);
        series.push(Series {
            label: format!("{label} CPU"),
            unit: Unit::Percent,
            points: thin(&|p| of(p).map_or(0.0, |u| u.cpu_percent())),
        });
        series.push(Series {
            label: format!("{label} memory"),
            unit: Unit::Percent,
            points: thin(&|p| of(p).map_or(0.0, |u| u.memory_percent())),
        });
    }
    let mut users: Vec<String> = picked
        .iter()
        .flat_map(|p| p.users.iter().filter_map(|u| session.name(u.uid)))
        .map(str::to_string)
        .collect();
    users.sort();
    users.dedup();
    HistoryData {
        since,
        until,
        source: "no database: this session's samples only".into(),
        series,
        times: picked.chunks(per).map(|c| c[0].at).collect(),
        marks: Vec::new(),
        users,
    }
}
