//! Hysteresis conditions.
//!
//! A figure hovering at its limit would otherwise open and close alerts, flip the status and end
//! persistence episodes on every sample. So a condition starts only when the figure is strictly
//! above its threshold and ends only once it is `hysteresis` points below it; in between it holds.
//! While it lasts it keeps the samples' peak, sum and count, because persistence records and alert
//! details report them.

use serde::{Deserialize, Serialize};

use crate::model::Timestamp;

/// A threshold and the band below it in which a started condition holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limit {
    pub threshold: f64,
    pub hysteresis: f64,
}

impl Limit {
    pub fn new(threshold: f64, hysteresis: f64) -> Self {
        Limit {
            threshold,
            hysteresis,
        }
    }

    /// The same band below a fraction of the threshold (the "approaching" and "elevated" levels).
    pub fn scaled(self, factor: f64) -> Self {
        Limit::new(self.threshold * factor, self.hysteresis)
    }

    pub fn is_exceeded_by(self, value: f64) -> bool {
        value > self.threshold
    }

    pub fn clears_below(self) -> f64 {
        self.threshold - self.hysteresis
    }

    pub fn is_cleared_by(self, value: f64) -> bool {
        value < self.clears_below()
    }
}

/// The samples of one uninterrupted condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Run {
    pub started_at: Timestamp,
    pub last_at: Timestamp,
    pub peak: f64,
    pub sum: f64,
    pub samples: u64,
}

impl Run {
    pub fn begin(value: f64, at: Timestamp) -> Self {
        Run {
            started_at: at,
            last_at: at,
            peak: value,
            sum: value,
            samples: 1,
        }
    }

    pub fn record(&mut self, value: f64, at: Timestamp) {
        self.last_at = at;
        self.peak = self.peak.max(value);
        self.sum += value;
        self.samples += 1;
    }

    pub fn average(&self) -> f64 {
        if self.samples == 0 {
            0.0
        } else {
            self.sum / self.samples as f64
        }
    }

    /// Milliseconds from the first sample to `at`.
    pub fn elapsed_ms(&self, at: Timestamp) -> i64 {
        at.0.saturating_sub(self.started_at.0)
    }
}

/// What one sample did to a condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Change {
    /// Not active before, not active now.
    Quiet,
    Started,
    Held,
    /// Ended by this sample, which is not part of the run.
    Cleared(Run),
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct Condition {
    run: Option<Run>,
}

impl Condition {
    pub fn observe(&mut self, value: f64, limit: Limit, at: Timestamp) -> Change {
        let value = finite_or_zero(value);
        match self.run.take() {
            None if limit.is_exceeded_by(value) => {
                self.run = Some(Run::begin(value, at));
                Change::Started
            }
            None => Change::Quiet,
            Some(run) if limit.is_cleared_by(value) => Change::Cleared(run),
            Some(mut run) => {
                run.record(value, at);
                self.run = Some(run);
                Change::Held
            }
        }
    }

    /// Ends the condition without a sample (the figure is gone, or continuity was lost).
    pub fn clear(&mut self) -> Option<Run> {
        self.run.take()
    }

    pub fn run(&self) -> Option<&Run> {
        self.run.as_ref()
    }

    pub fn is_active(&self) -> bool {
        self.run.is_some()
    }
}

/// A figure that could not be computed counts as no load rather than as a permanent overload.
pub(crate) fn finite_or_zero(value: f64) -> f64 {
    if value.is_finite() { value } else { 0.0 }
}
