//! GPUs and the processes holding them: raw readings, nothing computed.
//!
//! Two sources, because no single one sees every GPU a shared server has:
//! - NVIDIA through NVML (`nvml`), loaded at run time: a machine without the driver has no
//!   library, and then no GPUs, no error and no cost after the one failed load at start.
//! - AMD and Intel through DRM fdinfo (`fdinfo`): the kernel's per-client counters under
//!   `/proc/PID/fdinfo`, as nvtop and htop read them. Finding which processes hold a DRM file is
//!   the expensive part, so it is done incrementally (see `fdinfo`).
//!
//! Utilization of a DRM client is a difference of counters, so it is left to `derive`; NVML
//! hands out its own percentages, which are passed on as they are.

pub mod fdinfo;
pub mod nvml;

use std::path::PathBuf;
use std::sync::Arc;

/// Everything the GPU sources read in one refresh. Empty on a machine without GPUs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawGpu {
    /// NVML devices by index (MIG instances after their parent), then DRM devices by PCI
    /// address.
    pub devices: Vec<RawGpuDevice>,
    /// One entry per process and device: a process on two GPUs has two.
    pub clients: Vec<RawGpuClient>,
}

impl RawGpu {
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty() && self.clients.is_empty()
    }
}

/// Where a MIG instance sits on its physical GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigPlacement {
    /// NVML index of the physical GPU.
    pub parent_index: u32,
    pub gpu_instance: Option<u32>,
    pub compute_instance: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RawGpuDevice {
    /// Stable key clients refer to: the NVML UUID (the MIG UUID for an instance), or
    /// `drm:<PCI address>`.
    pub id: Arc<str>,
    /// NVML's index (the one `nvidia-smi` and `CUDA_VISIBLE_DEVICES` use); DRM devices are
    /// numbered after the NVIDIA ones in PCI order. A MIG instance has its own index within its
    /// parent.
    pub index: u32,
    pub name: Arc<str>,
    /// `nvidia`, or the DRM driver (`amdgpu`, `i915`, `xe`, …).
    pub driver: Arc<str>,
    /// Set for a MIG instance: a slice of a GPU, not a GPU.
    pub mig: Option<MigPlacement>,
    /// The device's own reading over the driver's last sample period, where it gives one (NVML,
    /// amdgpu's `gpu_busy_percent`); none for a MIG instance or i915/xe.
    pub utilization_percent: Option<f64>,
    pub memory_used_bytes: Option<u64>,
    pub memory_total_bytes: Option<u64>,
    pub temperature_celsius: Option<f64>,
    pub power_watts: Option<f64>,
}

/// How a process uses a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuClientKind {
    /// An NVML compute context (CUDA, OpenCL).
    Compute,
    /// An NVML graphics context (OpenGL, Vulkan, a display server).
    Graphics,
    /// Both: listed by NVML as compute and graphics on one device ("C+G" in nvidia-smi).
    ComputeGraphics,
    /// A DRM file (render or card node).
    Drm,
}

impl GpuClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GpuClientKind::Compute => "compute",
            GpuClientKind::Graphics => "graphics",
            GpuClientKind::ComputeGraphics => "compute+graphics",
            GpuClientKind::Drm => "drm",
        }
    }
}

/// One engine's cumulative counters from a DRM client's fdinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrmEngine {
    pub name: Arc<str>,
    /// `drm-engine-<name>`: nanoseconds the client kept the engine busy.
    pub busy_ns: Option<u64>,
    /// `drm-cycles-<name>` and `drm-total-cycles-<name>` (xe): busy cycles and elapsed cycles.
    pub cycles: Option<(u64, u64)>,
    /// `drm-engine-capacity-<name>`: engines of this class (1 when not given).
    pub capacity: u32,
}

/// What a process does on one device.
#[derive(Debug, Clone, PartialEq)]
pub struct RawGpuClient {
    pub pid: u32,
    /// With `pid`, tells a process from a later one with the same pid; 0 where unknown (NVML
    /// pids absent from the process scan: exited, or in another pid namespace).
    pub start_ticks: u64,
    /// [`RawGpuDevice::id`].
    pub device: Arc<str>,
    pub kind: GpuClientKind,
    /// Device memory the client holds. None where the driver does not say (NVML under some
    /// virtualisation).
    pub memory_bytes: Option<u64>,
    /// NVML's per-process SM utilization over its last sample window, where the driver gives it.
    pub utilization_percent: Option<f64>,
    /// The DRM client id (one open DRM file, however many fds or processes share it).
    pub drm_client: Option<u64>,
    /// DRM engine counters; utilization is their change between two samples.
    pub engines: Vec<DrmEngine>,
}

/// Where the GPU sources look.
#[derive(Debug, Clone)]
pub struct GpuOptions {
    /// Whether to load NVML (false in tests, which pass recorded answers instead).
    pub nvml: bool,
    /// The sysfs root whose `class/drm` lists DRM devices.
    pub sys_root: PathBuf,
    /// Refreshes between full rescans of every process's descriptors for DRM files.
    pub fdinfo_rescan_every: u64,
}

impl GpuOptions {
    pub fn live() -> Self {
        GpuOptions {
            nvml: true,
            sys_root: PathBuf::from("/sys"),
            fdinfo_rescan_every: fdinfo::RESCAN_EVERY,
        }
    }

    /// No NVML; DRM devices under `<root>/sys` if the fixture made any.
    pub fn fixture(root: &std::path::Path) -> Self {
        GpuOptions {
            nvml: false,
            sys_root: root.join("sys"),
            fdinfo_rescan_every: fdinfo::RESCAN_EVERY,
        }
    }
}

/// Both sources behind one call.
pub struct GpuCollector {
    nvml: Option<Box<dyn nvml::NvmlSource>>,
    drm: Option<fdinfo::DrmScanner>,
}

impl GpuCollector {
    pub fn new(opts: &GpuOptions, proc_root: &std::path::Path) -> Self {
        let nvml = if opts.nvml {
            nvml::LiveNvml::open().map(|n| Box::new(n) as Box<dyn nvml::NvmlSource>)
        } else {
            None
        };
        GpuCollector {
            nvml,
            drm: fdinfo::DrmScanner::new(proc_root, &opts.sys_root, opts.fdinfo_rescan_every),
        }
    }

    /// No source at all.
    pub fn none() -> Self {
        GpuCollector {
            nvml: None,
            drm: None,
        }
    }

    /// A collector answering from the given NVML source (recorded answers in tests).
    pub fn with_nvml(mut self, source: Box<dyn nvml::NvmlSource>) -> Self {
        self.nvml = Some(source);
        self
    }

    /// Whether any source is active: false means a refresh costs nothing here.
    pub fn active(&self) -> bool {
        self.nvml.is_some() || self.drm.is_some()
    }

    /// Read every source. `procs` is this refresh's process scan, sorted by pid.
    pub fn read(&mut self, procs: &[super::RawProc]) -> RawGpu {
        let mut out = RawGpu::default();
        if let Some(n) = &mut self.nvml {
            let answers = n.read();
            nvml::map(&answers, procs, &mut out);
        }
        if let Some(d) = &mut self.drm {
            d.read(procs, out.devices.len() as u32, &mut out);
        }
        out
    }

    /// What finding DRM clients cost so far.
    pub fn drm_stats(&self) -> Option<fdinfo::ScanCost> {
        self.drm.as_ref().map(|d| d.cost())
    }
}

/// The start time of `pid` in this refresh's scan (sorted by pid), if it is there.
fn start_of(procs: &[super::RawProc], pid: u32) -> Option<u64> {
    procs
        .binary_search_by_key(&pid, |p| p.pid)
        .ok()
        .map(|i| procs[i].start_ticks)
}
