//! The machine-wide figures: CPU, memory and every readable disk.
//!
//! Each figure is watched at three levels because three decisions hang on it: above 60 % of its
//! limit the status becomes Medium, above 90 % a low "approaching" alert opens, above 100 % the
//! limit is exceeded. Each level is its own hysteresis condition, so that none of the three
//! decisions flaps when the figure hovers at its line.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::condition::{Condition, Limit, finite_or_zero};
use crate::config::Monitoring;
use crate::model::{AlertKey, Metric, Snapshot, Timestamp};

/// Share of the limit above which CPU and memory make the status Medium.
pub(crate) const ELEVATED: f64 = 0.6;
/// Share of the limit above which a figure is "approaching" it (a low alert; Medium status for
/// disks).
pub(crate) const APPROACHING: f64 = 0.9;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum FigureId {
    Cpu,
    Memory,
    Disk(String),
}

impl FigureId {
    pub fn metric(&self) -> Metric {
        match self {
            FigureId::Cpu => Metric::Cpu,
            FigureId::Memory => Metric::Memory,
            FigureId::Disk(_) => Metric::Disk,
        }
    }

    pub fn alert_key(&self) -> AlertKey {
        match self {
            FigureId::Cpu | FigureId::Memory => AlertKey::system(self.metric()),
            FigureId::Disk(path) => AlertKey::disk(path.as_str()),
        }
    }
}

/// One figure of one snapshot with the limit that applies to it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reading {
    pub id: FigureId,
    pub value: f64,
    pub limit: Limit,
}

/// The figures of a snapshot. Unreadable disks are left out: nothing is known about them.
pub(crate) fn readings(snap: &Snapshot, monitoring: &Monitoring) -> Vec<Reading> {
    let limit = |threshold| Limit::new(threshold, monitoring.hysteresis);
    let system = &snap.system;
    let mut out = vec![
        Reading {
            id: FigureId::Cpu,
            value: finite_or_zero(system.cpu.total.busy),
            limit: limit(monitoring.cpu_threshold),
        },
        Reading {
            id: FigureId::Memory,
            value: finite_or_zero(system.memory.used_percent),
            limit: limit(monitoring.memory_threshold),
        },
    ];
    out.extend(system.disks.iter().filter(|d| d.ok).map(|d| Reading {
        id: FigureId::Disk(d.path.clone()),
        value: finite_or_zero(d.used_percent),
        limit: limit(monitoring.disk_threshold),
    }));
    out
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct Levels {
    pub elevated: Condition,
    pub approaching: Condition,
    pub exceeded: Condition,
}

impl Levels {
    fn observe(&mut self, value: f64, limit: Limit, at: Timestamp) {
        self.elevated.observe(value, limit.scaled(ELEVATED), at);
        self.approaching
            .observe(value, limit.scaled(APPROACHING), at);
        self.exceeded.observe(value, limit, at);
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct SystemFigures {
    cpu: Levels,
    memory: Levels,
    disks: BTreeMap<String, Levels>,
}

impl SystemFigures {
    /// Updates every figure; a disk missing from `readings` is forgotten.
    pub fn observe(&mut self, readings: &[Reading], at: Timestamp) {
        self.disks.retain(|path, _| {
            readings
                .iter()
                .any(|r| matches!(&r.id, FigureId::Disk(p) if p == path))
        });
        for r in readings {
            self.levels_mut(&r.id).observe(r.value, r.limit, at);
        }
    }

    /// Forgets every ongoing condition.
    pub fn reset(&mut self) {
        *self = SystemFigures::default();
    }

    pub fn levels(&self, id: &FigureId) -> Option<&Levels> {
        match id {
            FigureId::Cpu => Some(&self.cpu),
            FigureId::Memory => Some(&self.memory),
            FigureId::Disk(path) => self.disks.get(path),
        }
    }

    fn levels_mut(&mut self, id: &FigureId) -> &mut Levels {
        match id {
            FigureId::Cpu => &mut self.cpu,
            FigureId::Memory => &mut self.memory,
            FigureId::Disk(path) => self.disks.entry(path.clone()).or_default(),
        }
    }
}
