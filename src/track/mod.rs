//! The tracker: thresholds, persistent users, status and the alert lifecycle, as a pure state
//! machine over timestamped snapshots.
//!
//! It takes snapshots with the time they were taken and returns events; it never reads the clock,
//! does no I/O and draws no random numbers. That is what lets the TUI and the headless daemon make
//! the same decisions from the same samples, lets tests choose their own times, and lets a restart
//! carry on from a stored [`TrackerState`]. The sinks (store, mail, UI) act on the events.
//!
//! Continuity: "continuously over a limit" only means something if the samples were continuous.
//! When a snapshot comes more than two sampling intervals after the previous one (or before it),
//! whether after a restart or a stalled process, every ongoing condition starts afresh and
//! persistence episodes that were open end at their last sample. The interval is the larger of
//! `monitoring.interval_secs` and the snapshot's own `interval_secs`, so that a front end sampling
//! more slowly than the daemon does not break every episode.

mod alerts;
mod condition;
mod details;
mod figures;
mod firing;
mod idle;
mod persistence;
mod scene;
mod status;
mod text;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::model::{Alert, AlertKey, Event, PersistentEpisode, Snapshot, StatusReport, Timestamp};

use alerts::{AlertBook, Policy};
use figures::SystemFigures;
use idle::IdleBook;
use persistence::UserBook;
use scene::Scene;

/// Everything the tracker knows between two samples, in a form the store can persist.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TrackerState {
    last_sample: Option<Timestamp>,
    figures: SystemFigures,
    users: UserBook,
    alerts: AlertBook,
    status: StatusReport,
    /// Absent from states saved before GPUs were followed.
    #[serde(default)]
    idle: IdleBook,
}

impl TrackerState {
    /// The time of the last snapshot observed.
    pub fn last_sample(&self) -> Option<Timestamp> {
        self.last_sample
    }
}

#[derive(Debug, Clone)]
pub struct Tracker {
    config: Config,
    state: TrackerState,
}

impl Tracker {
    pub fn new(config: &Config) -> Self {
        Tracker {
            config: config.clone(),
            state: TrackerState::default(),
        }
    }

    /// Carries on from a stored state. `last_seen` is the time of the last sample the previous
    /// run observed, as the store recorded it; it counts when it is later than the state's own.
    pub fn restore(config: &Config, mut state: TrackerState, last_seen: Timestamp) -> Self {
        state.last_sample = Some(state.last_sample.map_or(last_seen, |t| t.max(last_seen)));
        Tracker {
            config: config.clone(),
            state,
        }
    }

    /// Applies a reloaded configuration from the next snapshot on; ongoing conditions, episodes
    /// and alerts are kept.
    pub fn set_config(&mut self, config: &Config) {
        self.config = config.clone();
    }

    pub fn observe(&mut self, snap: &Snapshot) -> Vec<Event> {
        let mut events = self.start_afresh_after_a_gap(snap);
        let readings = figures::readings(snap, &self.config.monitoring);
        let users = persistence::user_readings(snap, &self.config);
        let idle = idle::idle_readings(snap, &self.config);
        self.state.figures.observe(&readings, snap.at);
        events.extend(self.state.users.observe(&users, snap.at));
        self.state.idle.observe(&idle, snap.at);

        let state = &mut self.state;
        let scene = Scene::new(
            snap,
            &readings,
            &state.figures,
            &users,
            &state.users,
            &idle,
            &state.idle,
        );
        let report = status::classify(&scene, self.config.monitoring.persistent_minutes * 60);
        let firing = firing::collect(&scene, report.status);
        events.extend(change_status(&mut state.status, report));
        let policy = Policy::new(&self.config.alerts);
        events.extend(
            state
                .alerts
                .reconcile(firing, snap.at, policy, |key| scene.value_of(key)),
        );
        state.idle.remember_held(&idle, snap.at);
        state.last_sample = Some(snap.at);
        events
    }

    /// Silences an open alert's repeats until its severity rises. None when no open,
    /// unacknowledged alert has this key.
    pub fn acknowledge(&mut self, key: &AlertKey, at: Timestamp) -> Option<Event> {
        self.state.alerts.acknowledge(key, at)
    }

    /// Closes an open alert; it opens again only once its condition has cleared and returned, or
    /// its severity rises. None when no alert with this key is open.
    pub fn resolve(&mut self, key: &AlertKey, at: Timestamp) -> Option<Event> {
        self.state.alerts.resolve(key, at)
    }

    /// Open and acknowledged alerts, in key order.
    pub fn open_alerts(&self) -> Vec<Alert> {
        self.state.alerts.open().to_vec()
    }

    pub fn status(&self) -> &StatusReport {
        &self.state.status
    }

    /// Ongoing persistence episodes, by user then metric.
    pub fn persistent_users(&self) -> Vec<PersistentEpisode> {
        self.state.users.persistent()
    }

    pub fn snapshot_state(&self) -> TrackerState {
        self.state.clone()
    }

    /// Ends every ongoing condition when `snap` does not follow on from the last sample.
    fn start_afresh_after_a_gap(&mut self, snap: &Snapshot) -> Vec<Event> {
        if !self.breaks_continuity(snap) {
            return Vec::new();
        }
        self.state.figures.reset();
        self.state.idle.reset();
        self.state.users.end_all()
    }

    fn breaks_continuity(&self, snap: &Snapshot) -> bool {
        let Some(last) = self.state.last_sample else {
            return false;
        };
        let interval_secs = (self.config.monitoring.interval_secs as f64).max(snap.interval_secs);
        let gap_ms = snap.at.0.saturating_sub(last.0);
        gap_ms < 0 || gap_ms as f64 > 2.0 * interval_secs * 1000.0
    }
}

/// Records the new report; a change of level is an event, new reasons alone are not.
fn change_status(current: &mut StatusReport, report: StatusReport) -> Option<Event> {
    if report.status == current.status {
        *current = report;
        return None;
    }
    let from = std::mem::replace(current, report.clone());
    Some(Event::StatusChanged { from, to: report })
}
