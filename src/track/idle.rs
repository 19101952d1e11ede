//! "Held idle": GPU memory a user keeps on a device that does nothing.
//!
//! On a shared GPU server the costly waste is not a busy GPU but a notebook or a crashed job that
//! keeps gigabytes of device memory while the GPU sits at 0 %: nobody else can use it. So for each
//! user and each device they hold memory on (their processes' `memory_bytes` summed, more than 0),
//! a clock runs while the device's utilization stays strictly under the user's
//! `gpu_idle_percent`; it restarts as soon as the device is busier than that or the user frees
//! the memory there. Once a clock has run for `gpu_idle_minutes` the user is holding the device
//! idle. Requiring a whole window of idleness is what keeps the alert from flapping: one busy
//! sample ends it, and it comes back only after another full window.
//!
//! A device with no utilization reading (a MIG instance: NVML gives none for it, and the parent
//! GPU's figure does not tell how busy one slice is) is never counted idle: nothing is known
//! about it, and a false "idle" would accuse a user who may be computing.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::condition::{Run, finite_or_zero};
use crate::config::Config;
use crate::model::{GpuDevice, Snapshot, Timestamp};

/// Memory a user holds on one device in one snapshot.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Holding {
    /// [`GpuDevice::id`].
    pub device: String,
    /// [`GpuDevice::label`].
    pub label: String,
    pub memory_bytes: u64,
    /// The device's utilization; None where the driver gives none.
    pub utilization: Option<f64>,
}

/// One user holding GPU memory in one snapshot, with their idle limits.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IdleReading {
    pub name: String,
    /// In device order.
    pub holdings: Vec<Holding>,
    pub idle_percent: f64,
    /// None: held-idle is not reported for this user (`gpu_idle_minutes = 0`).
    pub idle_after_ms: Option<i64>,
}

impl IdleReading {
    fn is_idle(&self, h: &Holding) -> bool {
        h.utilization
            .is_some_and(|u| finite_or_zero(u) < self.idle_percent)
    }
}

/// Who holds memory on which device, from the snapshot's GPU processes. Processes whose owner is
/// unknown (exited, another pid namespace) hold memory for no one.
pub(crate) fn idle_readings(snap: &Snapshot, config: &Config) -> Vec<IdleReading> {
    let gpu = &snap.gpu;
    if gpu.processes.is_empty() {
        return Vec::new();
    }
    let devices: HashMap<&str, &GpuDevice> = gpu.devices.iter().map(|d| (&*d.id, d)).collect();
    let mut held: BTreeMap<&str, BTreeMap<(u32, &str), u64>> = BTreeMap::new();
    for p in &gpu.processes {
        let (Some(uid), Some(user), Some(bytes)) = (p.uid, p.user.as_deref(), p.memory_bytes)
        else {
            continue;
        };
        if bytes == 0 || !config.filtering.tracks_gpu(uid, user) {
            continue;
        }
        *held
            .entry(user)
            .or_default()
            .entry((p.device_index, &*p.device))
            .or_default() += bytes;
    }
    held.into_iter()
        .map(|(user, by_device)| {
            let limits = config.limits_for(user);
            let minutes = i64::try_from(limits.gpu_idle_minutes).unwrap_or(i64::MAX);
            IdleReading {
                name: user.to_string(),
                holdings: by_device
                    .into_iter()
                    .map(|((index, id), memory_bytes)| {
                        let device = devices.get(id);
                        Holding {
                            device: id.to_string(),
                            label: device.map_or_else(|| index.to_string(), |d| d.label()),
                            memory_bytes,
                            utilization: device.and_then(|d| d.utilization_percent),
                        }
                    })
                    .collect(),
                idle_percent: limits.gpu_idle_percent,
                idle_after_ms: (minutes > 0).then(|| minutes.saturating_mul(60_000)),
            }
        })
        .collect()
}

/// The idle clocks of every user holding an idle device, by user then device id. A run's values
/// are the device's utilization, so its peak is the busiest the device was while idle.
///
/// It also remembers which devices each user had held idle for their whole window at the last
/// sample: those are what the user's held-idle alert is about, so when the alert clears, its
/// closing figure comes from them and not from the user's other, busy devices.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct IdleBook {
    users: BTreeMap<String, BTreeMap<String, Run>>,
    /// Device ids, by user; absent from states saved before it was kept.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    held: BTreeMap<String, Vec<String>>,
}

/// A device a user has held idle for their whole window.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IdleDevice {
    /// [`GpuDevice::id`].
    pub device: String,
    pub label: String,
    pub memory_bytes: u64,
    /// Utilization now, and the highest since the clock started.
    pub utilization: f64,
    pub peak: f64,
    pub since: Timestamp,
}

impl IdleBook {
    /// Starts, continues or ends each user's clock on each device.
    pub fn observe(&mut self, readings: &[IdleReading], at: Timestamp) {
        let mut next: BTreeMap<String, BTreeMap<String, Run>> = BTreeMap::new();
        for r in readings {
            let mut before = self.users.remove(&r.name).unwrap_or_default();
            let clocks: BTreeMap<String, Run> = r
                .holdings
                .iter()
                .filter(|h| r.is_idle(h))
                .map(|h| {
                    let value = h.utilization.map_or(0.0, finite_or_zero);
                    let run = match before.remove(&h.device) {
                        Some(mut run) => {
                            run.record(value, at);
                            run
                        }
                        None => Run::begin(value, at),
                    };
                    (h.device.clone(), run)
                })
                .collect();
            if !clocks.is_empty() {
                next.insert(r.name.clone(), clocks);
            }
        }
        self.users = next;
    }

    /// Forgets every clock (after a break in the samples). The devices held idle at the last
    /// sample are kept: an alert still open about them closes on their figures.
    pub fn reset(&mut self) {
        self.users.clear();
    }

    /// Records the devices each user holds idle for their whole window in this sample; call it
    /// once the sample's alerts are settled, which read the previous sample's with
    /// [`IdleBook::held_at_last_sample`].
    pub fn remember_held(&mut self, readings: &[IdleReading], at: Timestamp) {
        self.held = readings
            .iter()
            .filter_map(|r| {
                let ids: Vec<String> = self
                    .held_idle(r, at)
                    .into_iter()
                    .map(|d| d.device)
                    .collect();
                (!ids.is_empty()).then(|| (r.name.clone(), ids))
            })
            .collect();
    }

    /// The ids of the devices `user` held idle for their whole window at the last sample
    /// remembered; empty when none.
    pub fn held_at_last_sample(&self, user: &str) -> &[String] {
        self.held.get(user).map_or(&[], Vec::as_slice)
    }

    /// The devices `reading`'s user has held idle for at least their window, in device order.
    pub fn held_idle(&self, reading: &IdleReading, at: Timestamp) -> Vec<IdleDevice> {
        let Some(after) = reading.idle_after_ms else {
            return Vec::new();
        };
        let Some(clocks) = self.users.get(&reading.name) else {
            return Vec::new();
        };
        reading
            .holdings
            .iter()
            .filter_map(|holding| {
                let run = clocks.get(&holding.device)?;
                (run.elapsed_ms(at) >= after).then(|| IdleDevice {
                    device: holding.device.clone(),
                    label: holding.label.clone(),
                    memory_bytes: holding.memory_bytes,
                    utilization: holding.utilization.map_or(0.0, finite_or_zero),
                    peak: run.peak,
                    since: run.started_at,
                })
            })
            .collect()
    }
}
