//! GPUs as the sinks see them: devices, the processes on them, and what each user holds.
//!
//! Kept apart from the CPU and memory figures because most machines have no GPU: every field
//! that carries GPU data is skipped when empty, so such a machine's JSON, API and screens are
//! exactly what they were before GPUs were counted.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Where a MIG instance sits on its physical GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigInfo {
    /// Index of the physical GPU.
    pub parent_index: u32,
    pub gpu_instance: Option<u32>,
    pub compute_instance: Option<u32>,
}

/// One GPU, or one MIG instance of one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuDevice {
    /// NVML's index (as `nvidia-smi` shows it); DRM devices follow NVIDIA's. A MIG instance's
    /// index is its place on its parent.
    pub index: u32,
    /// NVML's UUID (`GPU-…`, `MIG-…`), or `drm:<PCI address>`.
    pub id: Arc<str>,
    pub name: Arc<str>,
    /// `nvidia`, `amdgpu`, `i915`, `xe`, …
    pub driver: Arc<str>,
    /// Set for a MIG instance: a slice of the GPU `parent_index`, not a GPU of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mig: Option<MigInfo>,
    /// Busy share of the device: the driver's own reading, or for i915/xe the sum of its
    /// clients' engine shares. None where neither exists (a MIG instance).
    pub utilization_percent: Option<f64>,
    pub memory_used_bytes: Option<u64>,
    pub memory_total_bytes: Option<u64>,
    pub memory_percent: Option<f64>,
    pub temperature_celsius: Option<f64>,
    pub power_watts: Option<f64>,
    /// Processes holding the device.
    pub processes: u64,
}

impl GpuDevice {
    /// Whether this entry is a whole GPU, counted in machine totals (MIG instances are parts of
    /// one).
    pub fn is_physical(&self) -> bool {
        self.mig.is_none()
    }

    /// How people name it: `nvidia-smi`'s index (`0`), or `1/mig0` for MIG instance 0 of GPU 1.
    pub fn label(&self) -> String {
        match self.mig {
            Some(m) => format!("{}/mig{}", m.parent_index, self.index),
            None => self.index.to_string(),
        }
    }
}

/// One process on one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuProcess {
    pub pid: u32,
    /// None for a pid the process scan did not see (it exited, or runs in another pid
    /// namespace): its memory is on the device and in no user's sum.
    pub uid: Option<u32>,
    pub user: Option<Arc<str>>,
    /// The process's `comm`, when it was seen.
    pub name: Option<Arc<str>>,
    /// [`GpuDevice::id`] and its index.
    pub device: Arc<str>,
    pub device_index: u32,
    /// `compute`, `graphics`, `compute+graphics` (NVML) or `drm`.
    pub kind: Arc<str>,
    /// Device memory held; None where the driver does not tell.
    pub memory_bytes: Option<u64>,
    /// Share of the device kept busy by this process over the interval; None where the driver
    /// does not tell, or for a DRM client's first interval.
    pub utilization_percent: Option<f64>,
}

/// GPU figures of a machine in one snapshot. Empty without GPUs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GpuStats {
    pub devices: Vec<GpuDevice>,
    /// By device, then pid.
    pub processes: Vec<GpuProcess>,
}

impl GpuStats {
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty() && self.processes.is_empty()
    }

    /// Whole GPUs (not MIG instances).
    pub fn physical(&self) -> impl Iterator<Item = &GpuDevice> {
        self.devices.iter().filter(|d| d.is_physical())
    }

    /// The machine's whole GPUs as one figure, for a summary line.
    pub fn totals(&self) -> GpuTotals {
        let mut t = GpuTotals::default();
        let mut busy = Vec::new();
        for d in self.physical() {
            t.gpus += 1;
            t.memory_used_bytes += d.memory_used_bytes.unwrap_or(0);
            t.memory_total_bytes += d.memory_total_bytes.unwrap_or(0);
            busy.extend(d.utilization_percent);
        }
        t.utilization_percent =
            (!busy.is_empty()).then(|| busy.iter().sum::<f64>() / busy.len() as f64);
        t
    }

    /// [`GpuDevice::label`] of the device with this id.
    pub fn label_of(&self, id: &str) -> Option<String> {
        self.devices
            .iter()
            .find(|d| &*d.id == id)
            .map(|d| d.label())
    }

    /// The highest utilization among `devices` (ids) that `user` still holds memory on; None
    /// when they hold none of them, or none of those reports its utilization.
    pub fn busiest_held_by(&self, user: &str, devices: &[String]) -> Option<f64> {
        self.devices
            .iter()
            .filter(|d| devices.iter().any(|id| **id == *d.id))
            .filter(|d| {
                self.processes.iter().any(|p| {
                    p.device == d.id
                        && p.user.as_deref() == Some(user)
                        && p.memory_bytes.is_some_and(|b| b > 0)
                })
            })
            .filter_map(|d| d.utilization_percent)
            .reduce(f64::max)
    }
}

/// All whole GPUs of a machine together.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GpuTotals {
    pub gpus: usize,
    /// Mean over the GPUs that report one.
    pub utilization_percent: Option<f64>,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
}

/// What one user holds on the machine's GPUs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct UserGpu {
    /// Distinct devices (GPUs or MIG instances) the user's processes hold.
    pub devices: u32,
    /// Which: their [`GpuDevice::id`]s, in device order.
    pub device_ids: Vec<Arc<str>>,
    /// Device memory held, summed over the user's processes and devices.
    pub memory_bytes: u64,
    /// The same as a share of all GPUs' memory.
    pub memory_percent: f64,
    /// Share of all the machine's GPUs kept busy by the user (100 = every GPU fully busy),
    /// from the per-process figures where the driver gives them.
    pub utilization_percent: f64,
    /// Processes holding a GPU (a process on two GPUs counts once).
    pub processes: u64,
}
