//! Machine-wide counters: /proc/stat, meminfo, loadavg, uptime, diskstats, net/dev, pressure, and
//! statvfs of the monitored paths.
//!
//! Parsing is done by procfs-core from bytes we read ourselves through held-open descriptors, so
//! the parsers are the well-tested upstream ones and the I/O stays cheap. Each file is optional
//! except /proc/stat and /proc/meminfo: a kernel without pressure stall information, or a
//! container without diskstats, still gets a sample.

use std::io;
use std::path::Path;

use procfs_core::{
    CpuPressure, DiskStat, ExplicitSystemInfo, FromBufRead, FromBufReadSI, FromRead, IoPressure,
    KernelStats, LoadAverage, Meminfo, MemoryPressure, PressureRecord, net::InterfaceDeviceStatus,
};

use super::procfile::ProcFile;
use crate::model::{Pressure, PressureFigures};

/// Cumulative CPU time of one CPU line of /proc/stat, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    /// Includes guest time, as the kernel reports it.
    pub user: u64,
    /// Includes guest_nice time.
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
    pub guest: u64,
}

impl CpuTimes {
    /// All ticks that passed, each counted once (guest time is already inside user).
    pub fn total(&self) -> u64 {
        self.user
            + self.nice
            + self.system
            + self.idle
            + self.iowait
            + self.irq
            + self.softirq
            + self.steal
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawMemory {
    pub total: u64,
    pub free: u64,
    pub available: u64,
    pub buffers: u64,
    pub cached: u64,
    pub sreclaimable: u64,
    pub swap_total: u64,
    pub swap_free: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawDiskUsage {
    pub path: String,
    pub total: u64,
    pub free: u64,
    pub available: u64,
    pub ok: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawDiskIo {
    pub device: String,
    pub reads: u64,
    pub sectors_read: u64,
    pub writes: u64,
    pub sectors_written: u64,
    /// Milliseconds the device had I/O in flight.
    pub io_ticks_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawNet {
    pub interface: String,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
}

/// Everything machine-wide in one sample, as raw counters.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawSystem {
    /// The aggregate "cpu" line.
    pub cpu_total: CpuTimes,
    /// One entry per "cpuN" line.
    pub cpu_cores: Vec<CpuTimes>,
    /// Boot time, seconds since the epoch.
    pub boot_time: i64,
    pub procs_running: u64,
    pub procs_blocked: u64,
    pub memory: RawMemory,
    pub load: [f64; 3],
    pub uptime_secs: f64,
    pub disks: Vec<RawDiskUsage>,
    pub disk_io: Vec<RawDiskIo>,
    pub net: Vec<RawNet>,
    pub pressure: Option<Pressure>,
}

/// The held-open system files under one /proc root.
pub struct SystemFiles {
    stat: ProcFile,
    meminfo: ProcFile,
    loadavg: ProcFile,
    uptime: ProcFile,
    diskstats: ProcFile,
    net_dev: ProcFile,
    psi: [ProcFile; 3],
    sysinfo: ExplicitSystemInfo,
}

impl SystemFiles {
    pub fn new(root: &Path, ticks_per_second: u64, page_size: u64) -> Self {
        let f = |name: &str| ProcFile::new(root.join(name));
        SystemFiles {
            stat: f("stat"),
            meminfo: f("meminfo"),
            loadavg: f("loadavg"),
            uptime: f("uptime"),
            diskstats: f("diskstats"),
            net_dev: f("net/dev"),
            psi: [f("pressure/cpu"), f("pressure/memory"), f("pressure/io")],
            sysinfo: ExplicitSystemInfo {
                boot_time_secs: 0,
                ticks_per_second,
                page_size,
                is_little_endian: cfg!(target_endian = "little"),
            },
        }
    }

    /// Read every system file. /proc/stat and /proc/meminfo are required; the rest degrade to
    /// empty figures when missing or unreadable.
    pub fn read(&mut self, disks: &[String], buf: &mut Vec<u8>) -> io::Result<RawSystem> {
        let mut sys = RawSystem::default();

        self.stat.read(buf)?;
        let ks = KernelStats::from_buf_read(&buf[..], &self.sysinfo).map_err(invalid)?;
        sys.cpu_total = cpu_times(&ks.total);
        sys.cpu_cores = ks.cpu_time.iter().map(cpu_times).collect();
        sys.boot_time = ks.btime as i64;
        sys.procs_running = ks.procs_running.unwrap_or(0) as u64;
        sys.procs_blocked = ks.procs_blocked.unwrap_or(0) as u64;

        self.meminfo.read(buf)?;
        sys.memory = parse_meminfo(buf)?;

        if self.loadavg.read(buf).is_ok()
            && let Ok(l) = LoadAverage::from_read(&buf[..])
        {
            sys.load = [l.one as f64, l.five as f64, l.fifteen as f64];
        }
        if self.uptime.read(buf).is_ok()
            && let Ok(u) = procfs_core::Uptime::from_read(&buf[..])
        {
            sys.uptime_secs = u.uptime;
        }
        if self.diskstats.read(buf).is_ok() {
            sys.disk_io = parse_diskstats(buf);
        }
        if self.net_dev.read(buf).is_ok() {
            sys.net = parse_net_dev(buf);
        }
        sys.pressure = self.read_pressure(buf);
        sys.disks = disks.iter().map(|d| disk_usage(d)).collect();
        Ok(sys)
    }

    fn read_pressure(&mut self, buf: &mut Vec<u8>) -> Option<Pressure> {
        let [cpu, mem, io] = &mut self.psi;
        let mut p = Pressure::default();
        if cpu.read(buf).is_ok() {
            p.cpu = CpuPressure::from_buf_read(&buf[..])
                .ok()
                .map(|c| figures(&c.some, Some(&c.full)));
        }
        if mem.read(buf).is_ok() {
            p.memory = MemoryPressure::from_buf_read(&buf[..])
                .ok()
                .map(|m| figures(&m.some, Some(&m.full)));
        }
        if io.read(buf).is_ok() {
            p.io = IoPressure::from_buf_read(&buf[..])
                .ok()
                .map(|m| figures(&m.some, Some(&m.full)));
        }
        (p.cpu.is_some() || p.memory.is_some() || p.io.is_some()).then_some(p)
    }
}

fn invalid(e: procfs_core::ProcError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

fn cpu_times(c: &procfs_core::CpuTime) -> CpuTimes {
    CpuTimes {
        user: c.user,
        nice: c.nice,
        system: c.system,
        idle: c.idle,
        iowait: c.iowait.unwrap_or(0),
        irq: c.irq.unwrap_or(0),
        softirq: c.softirq.unwrap_or(0),
        steal: c.steal.unwrap_or(0),
        guest: c.guest.unwrap_or(0),
    }
}

fn figures(some: &PressureRecord, full: Option<&PressureRecord>) -> PressureFigures {
    PressureFigures {
        some_avg10: some.avg10 as f64,
        some_avg60: some.avg60 as f64,
        some_avg300: some.avg300 as f64,
        full_avg10: full.map(|f| f.avg10 as f64),
        full_avg60: full.map(|f| f.avg60 as f64),
        full_avg300: full.map(|f| f.avg300 as f64),
    }
}

pub fn parse_meminfo(buf: &[u8]) -> io::Result<RawMemory> {
    let m = Meminfo::from_buf_read(buf).map_err(invalid)?;
    // Kernels before 3.14 have no MemAvailable; estimate it the way `free` did then.
    let available = m
        .mem_available
        .unwrap_or(m.mem_free + m.buffers + m.cached + m.s_reclaimable.unwrap_or(0));
    Ok(RawMemory {
        total: m.mem_total,
        free: m.mem_free,
        available,
        buffers: m.buffers,
        cached: m.cached,
        sreclaimable: m.s_reclaimable.unwrap_or(0),
        swap_total: m.swap_total,
        swap_free: m.swap_free,
    })
}

/// Whole physical disks only: partitions, device-mapper, loop and RAM devices would count the
/// same bytes twice (or count bytes that never touch a disk).
pub fn parse_diskstats(buf: &[u8]) -> Vec<RawDiskIo> {
    let text = String::from_utf8_lossy(buf);
    let all: Vec<DiskStat> = text
        .lines()
        .filter_map(|l| DiskStat::from_line(l).ok())
        .collect();
    let names: Vec<&str> = all.iter().map(|d| d.name.as_str()).collect();
    all.iter()
        .filter(|d| is_physical_disk(&d.name, &names))
        .map(|d| RawDiskIo {
            device: crate::sanitize::clean(&d.name),
            reads: d.reads,
            sectors_read: d.sectors_read,
            writes: d.writes,
            sectors_written: d.sectors_written,
            io_ticks_ms: d.time_in_progress,
        })
        .collect()
}

fn is_physical_disk(name: &str, all: &[&str]) -> bool {
    const VIRTUAL: [&str; 6] = ["loop", "ram", "dm-", "zram", "sr", "fd"];
    if VIRTUAL.iter().any(|p| name.starts_with(p)) {
        return false;
    }
    // A partition is its disk's name plus a number (sda1) or plus "p" and a number (nvme0n1p1).
    !all.iter().any(|&parent| {
        parent != name
            && name.strip_prefix(parent).is_some_and(|rest| {
                let digits = rest.strip_prefix('p').unwrap_or(rest);
                !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
            })
    })
}

pub fn parse_net_dev(buf: &[u8]) -> Vec<RawNet> {
    let Ok(devs) = InterfaceDeviceStatus::from_buf_read(buf) else {
        return Vec::new();
    };
    let mut out: Vec<RawNet> = devs
        .0
        .values()
        .filter(|d| d.name != "lo")
        .map(|d| RawNet {
            interface: crate::sanitize::clean(&d.name),
            rx_bytes: d.recv_bytes,
            tx_bytes: d.sent_bytes,
            rx_packets: d.recv_packets,
            tx_packets: d.sent_packets,
            rx_errors: d.recv_errs,
            tx_errors: d.sent_errs,
        })
        .collect();
    out.sort_by(|a, b| a.interface.cmp(&b.interface));
    out
}

fn disk_usage(path: &str) -> RawDiskUsage {
    match rustix::fs::statvfs(path) {
        Ok(s) => RawDiskUsage {
            path: path.to_string(),
            total: s.f_blocks * s.f_frsize,
            free: s.f_bfree * s.f_frsize,
            available: s.f_bavail * s.f_frsize,
            ok: true,
        },
        Err(_) => RawDiskUsage {
            path: path.to_string(),
            ..Default::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_and_virtual_devices_are_skipped() {
        let text = b"   8       0 sda 10 0 80 5 20 0 160 9 0 7 14 0 0 0 0 0 0\n\
   8       1 sda1 10 0 80 5 20 0 160 9 0 7 14 0 0 0 0 0 0\n\
 259       0 nvme0n1 1 0 8 1 2 0 16 1 0 1 2 0 0 0 0 0 0\n\
 259       1 nvme0n1p1 1 0 8 1 2 0 16 1 0 1 2 0 0 0 0 0 0\n\
   7       0 loop0 1 0 8 1 2 0 16 1 0 1 2 0 0 0 0 0 0\n\
 253       0 dm-0 1 0 8 1 2 0 16 1 0 1 2 0 0 0 0 0 0\n";
        let d = parse_diskstats(text);
        let names: Vec<_> = d.iter().map(|d| d.device.as_str()).collect();
        assert_eq!(names, ["sda", "nvme0n1"]);
        assert_eq!(d[0].sectors_read, 80);
        assert_eq!(d[0].sectors_written, 160);
        assert_eq!(d[0].io_ticks_ms, 7);
    }

    #[test]
    fn loopback_interface_is_excluded() {
        let text = b"Inter-|   Receive                                                |  Transmit\n\
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n\
    lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n\
  eth0: 5000 50 1 0 0 0 0 0 7000 70 2 0 0 0 0 0\n";
        let n = parse_net_dev(text);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].interface, "eth0");
        assert_eq!((n[0].rx_bytes, n[0].tx_bytes), (5000, 7000));
        assert_eq!((n[0].rx_errors, n[0].tx_errors), (1, 2));
    }

    #[test]
    fn missing_disk_path_is_reported_not_fatal() {
        let d = disk_usage("/nonexistent/sysmon-test-path");
        assert!(!d.ok);
        assert_eq!(d.total, 0);
    }
}
