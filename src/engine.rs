//! The sampling loop's single step, shared by every front end.
//!
//! collect → derive → track, with the previous raw sample kept for the next rates. The `--once`
//! report, `--batch`, the TUI and the daemon differ only in how often they call `tick` and what
//! they do with its result, so the engine knows nothing about any of them.

use std::io;

use crate::collect::{Collector, RawSample};
use crate::config::Config;
use crate::derive::derive;
use crate::model::{Event, Snapshot, StatusReport, Timestamp};
use crate::track::Tracker;

/// What one step produced.
#[derive(Debug, Clone)]
pub struct Tick {
    pub snapshot: Snapshot,
    pub events: Vec<Event>,
}

pub struct Engine {
    collector: Collector,
    config: Config,
    tracker: Tracker,
    prev: Option<RawSample>,
}

impl Engine {
    pub fn new(config: Config, collector: Collector) -> Self {
        let tracker = Tracker::new(&config);
        Self::with_tracker(config, collector, tracker)
    }

    /// An engine that carries on from a restored tracker (the daemon after a restart).
    pub fn with_tracker(config: Config, collector: Collector, tracker: Tracker) -> Self {
        Engine {
            tracker,
            collector,
            config,
            prev: None,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    pub fn tracker_mut(&mut self) -> &mut Tracker {
        &mut self.tracker
    }

    pub fn status(&self) -> &StatusReport {
        self.tracker.status()
    }

    /// Apply a reloaded configuration without losing tracking state.
    pub fn set_config(&mut self, config: Config) {
        self.collector.set_disks(config.monitoring.disks.clone());
        self.tracker.set_config(&config);
        self.config = config;
    }

    /// Take a sample at `at`. The first call only primes the counters and returns None: rates
    /// need two samples.
    pub fn tick(&mut self, at: Timestamp) -> io::Result<Option<Tick>> {
        let cur = self.collector.sample(at)?;
        let Some(prev) = self.prev.take() else {
            self.prev = Some(cur);
            return Ok(None);
        };
        let snapshot = derive(&prev, &cur, &self.config.filtering);
        self.prev = Some(cur);
        let events = self.tracker.observe(&snapshot);
        Ok(Some(Tick { snapshot, events }))
    }

    /// One process in depth, read now (the TUI's details view); the environment only when
    /// `with_env`.
    pub fn process_details(
        &self,
        pid: u32,
        with_env: bool,
    ) -> io::Result<crate::model::ProcessDetails> {
        self.collector.details(pid, with_env)
    }

    /// Re-read the command lines of processes on screen.
    pub fn refresh_cmdlines(&mut self, pids: &[u32]) {
        self.collector.refresh_cmdlines(pids);
    }
}
