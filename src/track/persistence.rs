//! Per-user conditions and persistence episodes.
//!
//! A short spike is what a shared machine is for; a user who stays over a limit for an hour is
//! what an administrator needs to hear about. So each tracked user's CPU, memory and GPU memory
//! are followed apart, each as a hysteresis condition, and the condition becomes a persistence episode once it
//! has lasted the user's `persistent_minutes`. "Continuously" means the condition did not clear: a
//! dip inside the hysteresis band is noise, not a break. When the condition clears the episode
//! ends and is returned as a record, because the store keeps the history of who was persistent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::condition::{Change, Condition, Limit, Run, finite_or_zero};
use crate::config::{Config, EffectiveUserLimits};
use crate::model::{Event, Metric, PersistentEpisode, Snapshot, Timestamp};

/// The figures followed per user. GPU memory is 0 for everyone on a machine without GPUs, so
/// its condition never starts there.
pub(crate) const USER_METRICS: [Metric; 3] = [Metric::Cpu, Metric::Memory, Metric::GpuMemory];

/// One followed user in one snapshot, with the limits that apply to them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UserReading {
    pub name: String,
    /// Whether `[filtering]` tracks the user's CPU and memory. A user below its minimums who
    /// holds GPU memory is followed on that alone.
    pub tracked: bool,
    pub cpu: f64,
    pub memory: f64,
    /// Percent of all GPUs' memory.
    pub gpu_memory: f64,
    pub limits: EffectiveUserLimits,
    pub hysteresis: f64,
}

impl UserReading {
    pub fn value(&self, metric: Metric) -> f64 {
        match metric {
            Metric::Memory => self.memory,
            Metric::GpuMemory | Metric::GpuUtilization => self.gpu_memory,
            Metric::Cpu | Metric::Disk => self.cpu,
        }
    }

    /// Whether `metric` is followed for this user in this sample.
    pub fn follows(&self, metric: Metric) -> bool {
        self.tracked || metric == Metric::GpuMemory
    }

    pub fn limit(&self, metric: Metric) -> Limit {
        let threshold = match metric {
            Metric::Memory => self.limits.memory_threshold,
            Metric::GpuMemory | Metric::GpuUtilization => self.limits.gpu_memory_threshold,
            Metric::Cpu | Metric::Disk => self.limits.cpu_threshold,
        };
        Limit::new(threshold, self.hysteresis)
    }

    fn persistent_after_ms(&self) -> i64 {
        let minutes = i64::try_from(self.limits.persistent_minutes).unwrap_or(i64::MAX);
        minutes.saturating_mul(60_000)
    }
}

/// The users `derive` marked as tracked, and the users `[filtering]` follows on the GPU memory
/// they hold; everyone else is never over a limit.
pub(crate) fn user_readings(snap: &Snapshot, config: &Config) -> Vec<UserReading> {
    snap.users
        .iter()
        .filter_map(|u| {
            let gpu = u
                .gpu
                .as_ref()
                .filter(|_| config.filtering.tracks_gpu(u.uid, &u.name));
            (u.tracked || gpu.is_some()).then(|| UserReading {
                name: u.name.to_string(),
                tracked: u.tracked,
                cpu: finite_or_zero(u.cpu_percent),
                memory: finite_or_zero(u.memory_percent),
                gpu_memory: gpu.map_or(0.0, |g| finite_or_zero(g.memory_percent)),
                limits: config.limits_for(&u.name),
                hysteresis: config.monitoring.hysteresis,
            })
        })
        .collect()
}

/// One user's condition on one metric.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct Watch {
    condition: Condition,
    persistent: bool,
    threshold: f64,
}

impl Watch {
    pub fn run(&self) -> Option<&Run> {
        self.condition.run()
    }

    pub fn is_persistent(&self) -> bool {
        self.persistent
    }

    fn observe(&mut self, user: &UserReading, metric: Metric, at: Timestamp) -> Option<Event> {
        let limit = user.limit(metric);
        self.threshold = limit.threshold;
        match self.condition.observe(user.value(metric), limit, at) {
            Change::Cleared(run) => self.end(&user.name, metric, &run, at),
            Change::Started | Change::Held => self.check_persistence(user, metric, at),
            Change::Quiet => None,
        }
    }

    fn check_persistence(
        &mut self,
        user: &UserReading,
        metric: Metric,
        at: Timestamp,
    ) -> Option<Event> {
        let run = self.condition.run()?;
        if self.persistent || run.elapsed_ms(at) < user.persistent_after_ms() {
            return None;
        }
        self.persistent = true;
        Some(Event::PersistentStarted(self.episode(&user.name, metric)?))
    }

    /// Ends the condition without a clearing sample; the record ends at `ended_at`, or at the
    /// last sample seen over the limit when None.
    fn abandon(
        &mut self,
        user: &str,
        metric: Metric,
        ended_at: Option<Timestamp>,
    ) -> Option<Event> {
        let run = self.condition.clear()?;
        let end = ended_at.unwrap_or(run.last_at);
        self.end(user, metric, &run, end)
    }

    fn end(&mut self, user: &str, metric: Metric, run: &Run, at: Timestamp) -> Option<Event> {
        if !std::mem::take(&mut self.persistent) {
            return None;
        }
        Some(Event::PersistentEnded(record(
            user,
            metric,
            self.threshold,
            run,
            Some(at),
        )))
    }

    /// The ongoing episode, if the condition has become persistent.
    pub fn episode(&self, user: &str, metric: Metric) -> Option<PersistentEpisode> {
        let run = self.condition.run().filter(|_| self.persistent)?;
        Some(record(user, metric, self.threshold, run, None))
    }
}

fn record(
    user: &str,
    metric: Metric,
    threshold: f64,
    run: &Run,
    ended_at: Option<Timestamp>,
) -> PersistentEpisode {
    let until = ended_at.unwrap_or(run.last_at);
    PersistentEpisode {
        user: user.to_string(),
        metric,
        threshold,
        started_at: run.started_at,
        ended_at,
        duration_secs: u64::try_from(run.elapsed_ms(until) / 1000).unwrap_or(0),
        peak: run.peak,
        average: run.average(),
        samples: run.samples,
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct UserWatch {
    cpu: Watch,
    memory: Watch,
    /// Absent from states saved before GPUs were followed.
    #[serde(default)]
    gpu_memory: Watch,
}

impl UserWatch {
    pub fn get(&self, metric: Metric) -> &Watch {
        match metric {
            Metric::Memory => &self.memory,
            Metric::GpuMemory | Metric::GpuUtilization => &self.gpu_memory,
            Metric::Cpu | Metric::Disk => &self.cpu,
        }
    }

    fn get_mut(&mut self, metric: Metric) -> &mut Watch {
        match metric {
            Metric::Memory => &mut self.memory,
            Metric::GpuMemory | Metric::GpuUtilization => &mut self.gpu_memory,
            Metric::Cpu | Metric::Disk => &mut self.cpu,
        }
    }

    fn is_active(&self) -> bool {
        USER_METRICS
            .iter()
            .any(|&m| self.get(m).condition.is_active())
    }

    fn abandon(&mut self, user: &str, ended_at: Option<Timestamp>) -> Vec<Event> {
        USER_METRICS
            .iter()
            .filter_map(|&m| self.get_mut(m).abandon(user, m, ended_at))
            .collect()
    }
}

/// Every user with an active condition, by name.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct UserBook {
    users: BTreeMap<String, UserWatch>,
}

impl UserBook {
    /// Updates every tracked user; users no longer tracked (or gone) end their conditions now.
    pub fn observe(&mut self, readings: &[UserReading], at: Timestamp) -> Vec<Event> {
        let mut events = self.end_missing(readings, at);
        for user in readings {
            let watch = self.users.entry(user.name.clone()).or_default();
            for metric in USER_METRICS {
                let w = watch.get_mut(metric);
                events.extend(if user.follows(metric) {
                    w.observe(user, metric, at)
                } else {
                    w.abandon(&user.name, metric, Some(at))
                });
            }
        }
        self.users.retain(|_, w| w.is_active());
        events
    }

    /// Ends every condition after a break in the samples; episodes end at their last sample.
    pub fn end_all(&mut self) -> Vec<Event> {
        let events = self
            .users
            .iter_mut()
            .flat_map(|(name, w)| w.abandon(name, None))
            .collect();
        self.users.clear();
        events
    }

    fn end_missing(&mut self, readings: &[UserReading], at: Timestamp) -> Vec<Event> {
        self.users
            .iter_mut()
            .filter(|(name, _)| !readings.iter().any(|r| &r.name == *name))
            .flat_map(|(name, w)| w.abandon(name, Some(at)))
            .collect()
    }

    /// The watches of `reading`'s user over a limit in this sample, by metric (one lookup for
    /// all of them: this runs for every user every sample).
    pub fn over_limit<'a>(
        &'a self,
        reading: &'a UserReading,
    ) -> impl Iterator<Item = (Metric, &'a Watch, &'a Run)> + 'a {
        let watches = self.users.get(&reading.name);
        USER_METRICS.iter().filter_map(move |&m| {
            let watch = watches?.get(m);
            let run = watch.run().filter(|_| reading.follows(m))?;
            Some((m, watch, run))
        })
    }

    /// The ongoing persistence episodes, by user then metric.
    pub fn persistent(&self) -> Vec<PersistentEpisode> {
        self.users
            .iter()
            .flat_map(|(name, w)| {
                USER_METRICS
                    .iter()
                    .filter_map(|&m| w.get(m).episode(name, m))
            })
            .collect()
    }
}
