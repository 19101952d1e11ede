//! `GET /health`: is the engine sampling? For load balancers, uptime checks and systemd-less
//! supervisors, so it needs no token and answers from memory.
//!
//! Healthy means a sample within the last three intervals (counted from startup until the first
//! one): one late tick is normal under load, three in a row means sampling has stalled.

use std::time::{Duration, Instant};

/// Intervals without a sample after which the daemon reports itself unhealthy.
pub const STALE_AFTER_INTERVALS: u32 = 3;

/// The verdict on sampling at `now`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    pub healthy: bool,
    /// Seconds since the last sample; None before the first one.
    pub last_sample_age_secs: Option<f64>,
}

pub fn verdict(
    now: Instant,
    started: Instant,
    last_sample: Option<Instant>,
    interval: Duration,
) -> Verdict {
    let since = last_sample.unwrap_or(started);
    let age = now.saturating_duration_since(since);
    Verdict {
        healthy: age <= interval * STALE_AFTER_INTERVALS,
        last_sample_age_secs: last_sample.map(|t| now.saturating_duration_since(t).as_secs_f64()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_until_three_intervals_pass_without_a_sample() {
        let start = Instant::now();
        let i = Duration::from_secs(5);
        let at = |s: u64| start + Duration::from_secs(s);
        // Before the first sample, counted from startup.
        assert!(verdict(at(1), start, None, i).healthy);
        assert_eq!(verdict(at(1), start, None, i).last_sample_age_secs, None);
        assert!(!verdict(at(16), start, None, i).healthy);
        // After a sample at 10 s.
        let v = verdict(at(20), start, Some(at(10)), i);
        assert!(v.healthy);
        assert_eq!(v.last_sample_age_secs, Some(10.0));
        assert!(verdict(at(25), start, Some(at(10)), i).healthy);
        assert!(!verdict(at(26), start, Some(at(10)), i).healthy);
    }
}
