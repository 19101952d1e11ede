//! Plain data shared by every stage of the pipeline.
//!
//! The collector, the pure `derive` step, the tracker and every sink (store, mail, UI, HTTP) speak
//! in these types, so this module imports nothing else from the crate: it is the one place where
//! the stages agree on what a sample *is*. Everything here is serialisable because the same shapes
//! are what `sysmon --once --json`, the history store and the HTTP API hand out.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

mod alerts;
mod gpu;
mod mail;
pub use alerts::*;
pub use gpu::*;
pub use mail::*;

/// Wall-clock time in milliseconds since the Unix epoch.
///
/// Time is data: the engine reads the clock once per tick and passes the value down, so the
/// derive and track stages are pure and tests choose their own times.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn from_secs(secs: i64) -> Self {
        Timestamp(secs * 1000)
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// Seconds from `earlier` to `self` (negative if `earlier` is later).
    pub fn secs_since(self, earlier: Timestamp) -> f64 {
        (self.0 - earlier.0) as f64 / 1000.0
    }

    pub fn plus_secs(self, secs: f64) -> Self {
        Timestamp(self.0 + (secs * 1000.0).round() as i64)
    }

    /// The current wall-clock time. Only the edges of the program (engine loop, CLI) call this.
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(d.as_millis() as i64)
    }
}

/// Share of CPU time over an interval, in percent of the CPUs it describes (one core, or all).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct CpuBreakdown {
    /// Everything but idle and iowait.
    pub busy: f64,
    pub user: f64,
    pub nice: f64,
    pub system: f64,
    pub iowait: f64,
    pub irq: f64,
    pub softirq: f64,
    pub steal: f64,
    pub guest: f64,
    pub idle: f64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CpuStats {
    /// The whole machine: 100 means every core busy.
    pub total: CpuBreakdown,
    /// One entry per online core, in the kernel's order.
    pub cores: Vec<CpuBreakdown>,
    /// Online cores counted in `/proc/stat`.
    pub count: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct MemoryStats {
    pub total_bytes: u64,
    /// MemTotal − MemAvailable: what applications hold and the kernel cannot reclaim.
    pub used_bytes: u64,
    pub available_bytes: u64,
    pub free_bytes: u64,
    pub buffers_bytes: u64,
    /// Page cache plus reclaimable slab.
    pub cached_bytes: u64,
    pub used_percent: f64,
    pub swap_total_bytes: u64,
    pub swap_used_bytes: u64,
    pub swap_used_percent: f64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DiskUsage {
    /// The configured path (usually a mount point).
    pub path: String,
    pub total_bytes: u64,
    pub used_bytes: u64,
    /// Space an unprivileged user can still write.
    pub available_bytes: u64,
    /// used / (used + available), as `df` computes it.
    pub used_percent: f64,
    /// False when the path could not be examined (missing, permission); figures are then zero.
    pub ok: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DiskIo {
    pub device: String,
    pub read_bytes_per_sec: f64,
    pub write_bytes_per_sec: f64,
    pub reads_per_sec: f64,
    pub writes_per_sec: f64,
    /// Share of the interval the device had I/O in flight (can exceed 100 on multi-queue devices).
    pub busy_percent: f64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NetIo {
    pub interface: String,
    pub rx_bytes_per_sec: f64,
    pub tx_bytes_per_sec: f64,
    pub rx_packets_per_sec: f64,
    pub tx_packets_per_sec: f64,
    pub rx_errors_per_sec: f64,
    pub tx_errors_per_sec: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LoadAverage {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct TaskCounts {
    pub processes: u64,
    pub threads: u64,
    /// Runnable threads right now (`procs_running`).
    pub running: u64,
    /// Threads blocked on I/O (`procs_blocked`).
    pub blocked: u64,
}

/// Pressure stall information: the share of time some (or all) tasks were stalled on a resource.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PressureFigures {
    pub some_avg10: f64,
    pub some_avg60: f64,
    pub some_avg300: f64,
    /// Absent for CPU on older kernels.
    pub full_avg10: Option<f64>,
    pub full_avg60: Option<f64>,
    pub full_avg300: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Pressure {
    pub cpu: Option<PressureFigures>,
    pub memory: Option<PressureFigures>,
    pub io: Option<PressureFigures>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SystemStats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub disks: Vec<DiskUsage>,
    pub disk_io: Vec<DiskIo>,
    pub net: Vec<NetIo>,
    pub load: LoadAverage,
    pub uptime_secs: f64,
    pub tasks: TaskCounts,
    /// None when the kernel has no /proc/pressure.
    pub pressure: Option<Pressure>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessStats {
    pub pid: u32,
    pub ppid: u32,
    /// Effective uid, as `ps` shows it.
    pub uid: u32,
    pub user: Arc<str>,
    /// The kernel's short name (`comm`), control characters removed.
    pub name: Arc<str>,
    /// Arguments joined by spaces, bounded in length, control characters removed. Empty for
    /// kernel threads and for processes whose command line could not be read.
    pub cmdline: Arc<str>,
    /// One-letter state as in `ps` (R, S, D, Z, T, I, …).
    pub state: char,
    /// Percent of one core over the interval (a process with four busy threads shows ~400).
    pub cpu_percent: f64,
    /// Resident memory (RSS), as `ps` and htop show it.
    pub memory_bytes: u64,
    /// Resident memory as a share of physical memory.
    pub memory_percent: f64,
    /// Proportional set size (a shared page divided among its mappers), where measured: only
    /// for users whose shared pages would otherwise be counted many times.
    #[serde(default)]
    pub pss_bytes: Option<u64>,
    pub threads: u64,
    pub start_time: Timestamp,
    /// Cumulative user+system CPU time in seconds since the process started.
    pub cpu_time_secs: f64,
}

/// A process as it appears in a user's "top processes" list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopProcess {
    pub pid: u32,
    pub name: Arc<str>,
    pub cmdline: Arc<str>,
    /// Percent of one core, as in [`ProcessStats::cpu_percent`].
    pub cpu_percent: f64,
    /// Resident memory.
    pub memory_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserStats {
    pub uid: u32,
    /// Login name, or the uid as a number when it has no passwd entry.
    pub name: Arc<str>,
    /// Percent of the whole machine (100 = every core busy).
    pub cpu_percent: f64,
    /// The same figure in cores (2.5 = two and a half cores busy).
    pub cpu_cores: f64,
    /// Of `cpu_cores`, what processes that ended between two samples used (the jobs of a build
    /// storm, which no sample sees alive).
    #[serde(default)]
    pub exited_cpu_cores: f64,
    /// Memory with a page shared by several of the user's processes counted once: the sum of
    /// their proportional set sizes (PSS) where they were measured, RSS where not (see
    /// `memory_source`). Thresholds, alerts and history use this figure.
    pub memory_bytes: u64,
    pub memory_percent: f64,
    /// Resident memory summed over the processes, as htop would add it up: a shared page
    /// counts once per process.
    #[serde(default)]
    pub rss_bytes: u64,
    #[serde(default)]
    pub memory_source: MemorySource,
    pub processes: u64,
    pub threads: u64,
    /// Whether the `[filtering]` rules count this user as a tracked, real user. Untracked users are
    /// still reported; the tracker ignores them.
    pub tracked: bool,
    /// Up to five processes, heaviest CPU first.
    pub top_processes: Vec<TopProcess>,
    pub pids: Vec<u32>,
    /// What the user holds on GPUs; None when they hold none (and on machines without GPUs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<UserGpu>,
}

impl UserStats {
    /// A user with nothing counted yet.
    pub fn new(uid: u32, name: Arc<str>) -> Self {
        UserStats {
            uid,
            name,
            cpu_percent: 0.0,
            cpu_cores: 0.0,
            exited_cpu_cores: 0.0,
            memory_bytes: 0,
            memory_percent: 0.0,
            rss_bytes: 0,
            memory_source: MemorySource::Rss,
            processes: 0,
            threads: 0,
            tracked: false,
            top_processes: Vec::new(),
            pids: Vec::new(),
            gpu: None,
        }
    }
}

/// How a user's `memory_bytes` was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemorySource {
    /// Summed RSS: one process, little memory, or PSS not readable (another user's processes
    /// without root).
    #[default]
    Rss,
    /// PSS for every process.
    Pss,
    /// PSS for some processes, RSS for the rest (new ones not measured yet).
    Partial,
}

impl MemorySource {
    pub fn as_str(self) -> &'static str {
        match self {
            MemorySource::Rss => "rss",
            MemorySource::Pss => "pss",
            MemorySource::Partial => "partial",
        }
    }
}

/// Where the CPU of processes that ended between samples came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitedSource {
    /// Reapers' `cutime`/`cstime`: exact for jobs a user's own process waits for; what root
    /// reapers received for nobody seen is left unattributed.
    #[default]
    ChildTimes,
    /// The kernel's taskstats exit records (root): exact whoever reaped the process.
    ExitRecords,
}

/// How the machine's busy CPU splits between users and what no user can be given.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct CpuAccounting {
    pub exited_source: ExitedSource,
    /// Cores of processes that ended between samples, over all users.
    pub exited_cores: f64,
    /// Busy cores no user is charged with: interrupts, and ended processes of unknown owner.
    /// Users plus this make the machine's busy CPU.
    pub unattributed_cores: f64,
    /// The same as a percentage of the machine.
    pub unattributed_percent: f64,
}

/// One derived sample of the machine: what every consumer downstream of `derive` sees.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub at: Timestamp,
    /// Seconds covered by the rates in this snapshot.
    pub interval_secs: f64,
    pub host: String,
    pub system: SystemStats,
    /// Every user that owns a process or whose processes ended in the interval, heaviest CPU
    /// first.
    pub users: Vec<UserStats>,
    #[serde(default)]
    pub accounting: CpuAccounting,
    /// Every process, heaviest CPU first.
    pub processes: Vec<ProcessStats>,
    /// GPUs and the processes on them; absent on a machine without GPUs.
    #[serde(default, skip_serializing_if = "GpuStats::is_empty")]
    pub gpu: GpuStats,
}

impl Snapshot {
    pub fn user(&self, name: &str) -> Option<&UserStats> {
        self.users.iter().find(|u| &*u.name == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    /// Padded like a string, so `{:<8}` lines up `sysmon alerts`' columns.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One process in depth, read on request for the details view. `None` is "not readable" (a
/// process of another user, a kernel without the file), never zero.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProcessDetails {
    pub pid: u32,
    /// The full command line, arguments joined by spaces, control characters removed.
    pub cmdline: Option<String>,
    pub priority: Option<i32>,
    pub nice: Option<i32>,
    pub cwd: Option<String>,
    pub open_files: Option<usize>,
    /// The cgroup v2 path (or the v1 lines).
    pub cgroup: Option<String>,
    pub io: Option<IoCounters>,
    /// `NAME=value` entries, read only for a viewer who may see them.
    pub environ: Option<Vec<String>>,
}

/// Cumulative I/O of one process, from /proc/PID/io.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoCounters {
    /// Bytes read and written through syscalls, page cache and pipes included.
    pub rchar: u64,
    pub wchar: u64,
    /// Bytes fetched from and sent to the storage layer.
    pub read_bytes: u64,
    pub write_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::Severity;

    /// `sysmon alerts` formats the severity with `{:<8}`; it was ignored, and the columns after
    /// it did not line up.
    #[test]
    fn severity_honours_width_and_alignment() {
        assert_eq!(format!("{:<8}|", Severity::Low), "low     |");
        assert_eq!(format!("{:>8}|", Severity::Critical), "critical|");
    }
}
