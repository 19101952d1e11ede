//! Reading the machine: raw counters from a /proc tree, nothing computed.
//!
//! The collector can be rooted at any directory, so tests and benchmarks run it on fixture trees
//! (`fixture`) with known answers. It returns a [`RawSample`]; rates and per-user totals are the
//! pure `derive` step's job, which keeps this module about I/O and its failure modes only:
//! processes that vanish mid-scan, unreadable entries and optional files never fail a sample.

pub mod details;
pub mod exits;
pub mod fixture;
pub mod gpu;
pub mod memory;
pub mod processes;
pub mod procfile;
pub mod system;
pub mod users;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use exits::{ExitLog, ExitedGroup};
pub use gpu::{GpuOptions, RawGpu};
pub use memory::PssReading;
pub use processes::{RawProc, ScanStats};
pub use system::{CpuTimes, RawDiskIo, RawDiskUsage, RawMemory, RawNet, RawSystem};
pub use users::{StaticUsers, SystemUsers, UserDirectory, UserNames};

use crate::model::Timestamp;

/// One reading of the machine's counters.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawSample {
    pub at: Timestamp,
    pub host: Arc<str>,
    pub system: RawSystem,
    /// Sorted by pid.
    pub procs: Vec<RawProc>,
    pub ticks_per_second: u64,
    pub page_size: u64,
    pub scan: ScanStats,
    /// Exit records of the processes that ended since the previous sample, where the kernel's
    /// exact source is open to sysmon (see `exits`); None otherwise.
    pub exits: Option<ExitLog>,
    /// GPUs and their clients; empty on a machine without GPUs.
    pub gpu: RawGpu,
}

#[derive(Debug, Clone)]
pub struct CollectorOptions {
    pub proc_root: PathBuf,
    /// Paths whose file system usage is reported.
    pub disks: Vec<String>,
    /// Whether /proc/PID ownership can stand in for the effective uid (true only for a real
    /// procfs).
    pub trust_dir_owner: bool,
    pub ticks_per_second: u64,
    pub page_size: u64,
    /// How many per-process descriptors may stay open between samples (0: reopen every time).
    pub fd_budget: usize,
    pub host: String,
    /// Whether to listen for the kernel's exit records (needs CAP_NET_ADMIN; a failure to
    /// register is not an error).
    pub exit_records: bool,
    pub gpu: GpuOptions,
}

impl CollectorOptions {
    /// The running kernel's /proc.
    pub fn live(disks: Vec<String>) -> Self {
        CollectorOptions {
            proc_root: PathBuf::from("/proc"),
            disks,
            trust_dir_owner: true,
            ticks_per_second: rustix::param::clock_ticks_per_second(),
            page_size: rustix::param::page_size() as u64,
            fd_budget: processes::descriptor_budget(),
            host: crate::sanitize::clean(&rustix::system::uname().nodename().to_string_lossy()),
            exit_records: true,
            gpu: GpuOptions::live(),
        }
    }

    /// A fixture tree laid out like /proc, with Linux's usual 100 Hz ticks and 4 KiB pages.
    pub fn fixture(root: &Path, disks: Vec<String>) -> Self {
        CollectorOptions {
            proc_root: root.to_path_buf(),
            disks,
            trust_dir_owner: false,
            ticks_per_second: 100,
            page_size: 4096,
            fd_budget: 64,
            host: "fixture".to_string(),
            exit_records: false,
            gpu: GpuOptions::fixture(root),
        }
    }
}

pub struct Collector {
    opts: CollectorOptions,
    host: Arc<str>,
    system: system::SystemFiles,
    procs: processes::ProcessScanner,
    pss: memory::PssProbe,
    exits: Option<exits::ExitListener>,
    users: UserNames,
    gpu: gpu::GpuCollector,
    buf: Vec<u8>,
}

impl Collector {
    pub fn new(opts: CollectorOptions, users: Box<dyn UserDirectory>) -> io::Result<Self> {
        let system =
            system::SystemFiles::new(&opts.proc_root, opts.ticks_per_second, opts.page_size);
        let cannot_open = |e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("cannot open {}: {e}", opts.proc_root.display()),
            )
        };
        let procs =
            processes::ProcessScanner::new(&opts.proc_root, opts.trust_dir_owner, opts.fd_budget)
                .map_err(cannot_open)?;
        let pss = memory::PssProbe::new(&opts.proc_root).map_err(cannot_open)?;
        let exits = opts
            .exit_records
            .then(|| exits::ExitListener::open().ok())
            .flatten();
        let gpu = gpu::GpuCollector::new(&opts.gpu, &opts.proc_root);
        Ok(Collector {
            gpu,
            host: Arc::from(opts.host.as_str()),
            opts,
            system,
            procs,
            pss,
            exits,
            users: UserNames::new(users),
            buf: Vec::with_capacity(16 * 1024),
        })
    }

    /// The live machine with the system user database.
    pub fn live(disks: Vec<String>) -> io::Result<Self> {
        Self::new(CollectorOptions::live(disks), Box::new(SystemUsers))
    }

    /// The host name every sample carries.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn set_disks(&mut self, disks: Vec<String>) {
        self.opts.disks = disks;
    }

    /// Read everything once. `at` is the caller's clock reading for this sample.
    pub fn sample(&mut self, at: Timestamp) -> io::Result<RawSample> {
        self.users.tick();
        let system = self.system.read(&self.opts.disks, &mut self.buf)?;
        let mut procs = Vec::new();
        let scan = self.procs.scan(&mut self.users, &mut procs)?;
        self.pss
            .update(&mut procs, self.opts.page_size, system.memory.total, at);
        // After the scan: every record of a process missing from it is already queued.
        let exits = self.exits.as_ref().map(|l| {
            let mut log = l.take(&procs);
            for g in &mut log.groups {
                g.user = self.users.name(g.uid);
            }
            log
        });
        let gpu = if self.gpu.active() {
            self.gpu.read(&procs)
        } else {
            RawGpu::default()
        };
        Ok(RawSample {
            gpu,
            at,
            host: self.host.clone(),
            system,
            procs,
            ticks_per_second: self.opts.ticks_per_second,
            page_size: self.opts.page_size,
            scan,
            exits,
        })
    }

    /// Answer NVML queries from `source` instead of the library (recorded answers in tests).
    pub fn set_nvml(&mut self, source: Box<dyn gpu::nvml::NvmlSource>) {
        let g = std::mem::replace(&mut self.gpu, gpu::GpuCollector::none());
        self.gpu = g.with_nvml(source);
    }

    /// What finding DRM clients has cost since start; None where no DRM device is watched.
    pub fn drm_scan_cost(&self) -> Option<gpu::fdinfo::ScanCost> {
        self.gpu.drm_stats()
    }

    /// Whether the kernel's exit records are being received (CPU of processes that ended
    /// between samples is then exact, whoever reaped them).
    pub fn exact_exits(&self) -> bool {
        self.exits.is_some()
    }

    /// One process in depth (see `details`), for a viewer who asked; the environment only when
    /// `with_env`.
    pub fn details(&self, pid: u32, with_env: bool) -> io::Result<crate::model::ProcessDetails> {
        details::read(&self.opts.proc_root, pid, with_env)
    }

    /// Re-read the command lines of processes being shown; they are otherwise read once.
    pub fn refresh_cmdlines(&mut self, pids: &[u32]) {
        self.procs.refresh_cmdlines(pids);
    }
}
