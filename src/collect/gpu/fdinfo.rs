//! AMD and Intel GPUs through DRM fdinfo.
//!
//! Since Linux 5.19 every DRM file's `/proc/PID/fdinfo/N` carries the driver's per-client
//! counters (`drm-driver`, `drm-client-id`, `drm-pdev`, `drm-engine-*` busy nanoseconds,
//! `drm-cycles-*`/`drm-total-cycles-*` on xe, `drm-memory-*` or `drm-total-*`/`drm-resident-*`
//! per memory region; see the kernel's drm-usage-stats). Any process may hold one, so the only
//! way to find the clients is to look at processes' descriptors, which nvtop and htop do for every
//! process on every refresh: a readdir per process plus a readlink per descriptor, the most
//! expensive part of their refresh on a busy server. Here:
//! - a process is looked at once, when it is new (pid and start time not seen before);
//! - known clients are looked at every refresh (their counters move, they open more files);
//! - every `RESCAN_EVERY` refreshes everything is looked at again, for a process that opened a
//!   GPU long after it started;
//! - on a machine without a DRM device of a driver that publishes these counters (none, only
//!   NVIDIA's, which NVML covers, or a VM's virtual display) there is no scanner at all.
//!
//! Several descriptors, and processes that inherited them, can share one DRM file; its counters
//! are the file's, so one (device, client id) is counted once, for the lowest pid holding it.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{DrmEngine, GpuClientKind, RawGpu, RawGpuClient, RawGpuDevice};
use crate::collect::RawProc;
use crate::sanitize;

/// Refreshes between full rescans (one minute at the default 2 s interval).
pub const RESCAN_EVERY: u64 = 30;

/// What one DRM file's fdinfo says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DrmFdinfo {
    pub driver: String,
    pub client_id: u64,
    /// PCI address of the device; empty when the driver does not say.
    pub pdev: String,
    /// Device memory the client holds (see [`parse`]).
    pub memory_bytes: Option<u64>,
    pub engines: Vec<DrmEngine>,
}

/// A value with an optional unit (`3292 KiB`, `16 MiB`, `0`) in bytes; `123 ns` in nanoseconds.
fn value(v: &str) -> Option<u64> {
    let mut it = v.split_whitespace();
    let n: u64 = it.next()?.parse().ok()?;
    let mult = match it.next() {
        None | Some("ns") => 1,
        Some("KiB") | Some("kB") => 1 << 10,
        Some("MiB") => 1 << 20,
        Some("GiB") => 1 << 30,
        Some(_) => return None,
    };
    n.checked_mul(mult)
}

fn device_local(region: &str) -> bool {
    region.starts_with("vram") || region.starts_with("local")
}

/// Parse one fdinfo file; None unless it is a DRM client with a client id.
///
/// A client's memory is what it holds in the device's own memory: the resident size of its
/// `vram*`/`local*` regions (`drm-total-*` where no resident figure is given; amdgpu's older
/// `drm-memory-vram`). On a GPU without memory of its own (integrated Intel, an APU) it is the
/// resident size of the system regions its buffers use.
pub fn parse(text: &str) -> Option<DrmFdinfo> {
    let mut f = DrmFdinfo::default();
    let mut client = None;
    let mut engines: Vec<DrmEngine> = Vec::new();
    let mut local_resident: Option<u64> = None;
    let mut local_total: Option<u64> = None;
    let mut legacy_vram: Option<u64> = None;
    let mut system_resident: Option<u64> = None;
    let mut legacy_gtt: Option<u64> = None;
    let add = |slot: &mut Option<u64>, v: u64| *slot = Some(slot.unwrap_or(0).saturating_add(v));
    fn engine<'a>(engines: &'a mut Vec<DrmEngine>, name: &str) -> &'a mut DrmEngine {
        let i = match engines.iter().position(|e| &*e.name == name) {
            Some(i) => i,
            None => {
                engines.push(DrmEngine {
                    name: Arc::from(name),
                    busy_ns: None,
                    cycles: None,
                    capacity: 1,
                });
                engines.len() - 1
            }
        };
        &mut engines[i]
    }
    for line in text.lines() {
        let Some((key, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        let Some(key) = key.trim().strip_prefix("drm-") else {
            continue;
        };
        if key == "driver" {
            f.driver = sanitize::clean(v);
        } else if key == "client-id" {
            client = v.parse::<u64>().ok();
        } else if key == "pdev" {
            f.pdev = sanitize::clean(v);
        } else if let Some(e) = key.strip_prefix("engine-capacity-") {
            if let Ok(n) = v.parse::<u32>() {
                engine(&mut engines, e).capacity = n.max(1);
            }
        } else if let Some(e) = key.strip_prefix("engine-") {
            if let Some(ns) = value(v) {
                engine(&mut engines, e).busy_ns = Some(ns);
            }
        } else if let Some(e) = key.strip_prefix("total-cycles-") {
            if let Some(n) = value(v) {
                let c = &mut engine(&mut engines, e).cycles;
                *c = Some((c.map_or(0, |c| c.0), n));
            }
        } else if let Some(e) = key.strip_prefix("cycles-") {
            if let Some(n) = value(v) {
                let c = &mut engine(&mut engines, e).cycles;
                *c = Some((n, c.map_or(0, |c| c.1)));
            }
        } else if let Some(r) = key.strip_prefix("resident-") {
            if let Some(b) = value(v) {
                if device_local(r) {
                    add(&mut local_resident, b);
                } else if !r.starts_with("stolen") {
                    add(&mut system_resident, b);
                }
            }
        } else if let Some(r) = key.strip_prefix("total-") {
            if device_local(r)
                && let Some(b) = value(v)
            {
                add(&mut local_total, b);
            }
        } else if key == "memory-vram" {
            legacy_vram = value(v);
        } else if key == "memory-gtt" {
            legacy_gtt = value(v);
        }
    }
    f.client_id = client?;
    if f.driver.is_empty() {
        return None;
    }
    f.memory_bytes = local_resident
        .or(local_total)
        .or(legacy_vram)
        .or(system_resident)
        .or(legacy_gtt);
    f.engines = engines;
    Some(f)
}

/// A DRM device found under `class/drm`.
#[derive(Debug, Clone)]
struct SysDevice {
    pdev: String,
    driver: String,
    dir: PathBuf,
}

/// GPU drivers that publish drm-usage-stats in fdinfo. NVIDIA's clients come from NVML; the
/// display-only devices of virtual machines (virtio_gpu, bochs-drm, simpledrm, …) are not GPUs
/// anyone computes on, and counting them would show a GPU on every VM.
const FDINFO_DRIVERS: [&str; 8] = [
    "amdgpu", "i915", "xe", "msm", "panfrost", "panthor", "v3d", "etnaviv",
];

/// Whether a driver's devices and clients are counted here.
fn counted(driver: &str) -> bool {
    FDINFO_DRIVERS.contains(&driver)
}

fn sys_devices(sys_root: &Path) -> Vec<SysDevice> {
    let Ok(rd) = fs::read_dir(sys_root.join("class/drm")) else {
        return Vec::new();
    };
    let mut out: Vec<SysDevice> = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        // card0 and renderD128 name the same device; connectors (card0-DP-1) are not devices.
        let Some(n) = name.strip_prefix("card") else {
            continue;
        };
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let dir = e.path().join("device");
        let (Ok(real), Ok(driver)) = (fs::canonicalize(&dir), fs::read_link(dir.join("driver")))
        else {
            continue;
        };
        let file_name = |p: &Path| {
            p.file_name()
                .map(|s| sanitize::clean(&s.to_string_lossy()))
                .unwrap_or_default()
        };
        let (pdev, driver) = (file_name(&real), file_name(&driver));
        if counted(&driver) && !out.iter().any(|d| d.pdev == pdev) {
            out.push(SysDevice { pdev, driver, dir });
        }
    }
    out.sort_by(|a, b| a.pdev.cmp(&b.pdev));
    out
}

fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The device's own figures where its driver exports them (amdgpu does; i915 and xe keep
/// utilization per client only).
fn read_device(d: &SysDevice, index: u32) -> RawGpuDevice {
    let name = fs::read_to_string(d.dir.join("product_name"))
        .ok()
        .map(|s| sanitize::clean(s.trim()))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("{} {}", d.driver, d.pdev));
    let hwmon = fs::read_dir(d.dir.join("hwmon"))
        .ok()
        .and_then(|mut rd| rd.find_map(|e| e.ok().map(|e| e.path())));
    let hw = |f: &str| hwmon.as_ref().and_then(|h| read_u64(&h.join(f)));
    RawGpuDevice {
        id: Arc::from(format!("drm:{}", d.pdev)),
        index,
        name: Arc::from(name),
        driver: Arc::from(d.driver.as_str()),
        mig: None,
        utilization_percent: read_u64(&d.dir.join("gpu_busy_percent")).map(|u| u.min(100) as f64),
        memory_used_bytes: read_u64(&d.dir.join("mem_info_vram_used")),
        memory_total_bytes: read_u64(&d.dir.join("mem_info_vram_total")),
        temperature_celsius: hw("temp1_input").map(|m| m as f64 / 1000.0),
        power_watts: hw("power1_average")
            .or_else(|| hw("power1_input"))
            .map(|uw| uw as f64 / 1e6),
    }
}

/// What finding clients has cost, summed since start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScanCost {
    pub refreshes: u64,
    /// `/proc/PID/fd` directories listed.
    pub fd_dirs: u64,
    /// Descriptor links read.
    pub links: u64,
    /// fdinfo files read.
    pub fdinfos: u64,
}

/// Finds and reads DRM clients incrementally (see the module docs).
pub struct DrmScanner {
    proc_root: PathBuf,
    sys_root: PathBuf,
    devices: Vec<SysDevice>,
    rescan_every: u64,
    /// Processes looked at, by pid, with their start time.
    looked: HashMap<u32, u64>,
    /// Known clients: pid → (start time, descriptors that are DRM files).
    clients: HashMap<u32, (u64, Vec<u32>)>,
    cost: ScanCost,
    buf: String,
}

impl DrmScanner {
    /// None when the machine has no DRM device whose clients are counted here.
    pub fn new(proc_root: &Path, sys_root: &Path, rescan_every: u64) -> Option<Self> {
        let devices = sys_devices(sys_root);
        if devices.is_empty() {
            return None;
        }
        Some(DrmScanner {
            proc_root: proc_root.to_path_buf(),
            sys_root: sys_root.to_path_buf(),
            devices,
            rescan_every: rescan_every.max(1),
            looked: HashMap::new(),
            clients: HashMap::new(),
            cost: ScanCost::default(),
            buf: String::new(),
        })
    }

    pub fn cost(&self) -> ScanCost {
        self.cost
    }

    /// Append this refresh's DRM devices (numbered from `first_index`) and clients to `out`.
    pub fn read(&mut self, procs: &[RawProc], first_index: u32, out: &mut RawGpu) {
        self.cost.refreshes += 1;
        let full = self.cost.refreshes % self.rescan_every == 1 || self.rescan_every == 1;
        if full {
            // Devices come and go rarely (eGPU, a driver reload): re-listed at the slow cadence.
            self.devices = sys_devices(&self.sys_root);
        }
        let mut looked = HashMap::with_capacity(procs.len());
        let mut clients = HashMap::new();
        let mut seen: HashSet<(String, u64)> = HashSet::new();
        let mut found: Vec<(u32, u64, DrmFdinfo)> = Vec::new();
        for p in procs {
            let known = self
                .clients
                .get(&p.pid)
                .filter(|c| c.0 == p.start_ticks)
                .is_some();
            let new = self.looked.get(&p.pid) != Some(&p.start_ticks);
            looked.insert(p.pid, p.start_ticks);
            if !(full || new || known) {
                continue;
            }
            let fds = self.drm_fds(p.pid);
            if fds.is_empty() {
                continue;
            }
            let mut kept = Vec::with_capacity(fds.len());
            for fd in fds {
                let Some(info) = self.fdinfo(p.pid, fd) else {
                    continue;
                };
                if !counted(&info.driver) {
                    continue;
                }
                kept.push(fd);
                if seen.insert((info.pdev.clone(), info.client_id)) {
                    found.push((p.pid, p.start_ticks, info));
                }
            }
            if !kept.is_empty() {
                clients.insert(p.pid, (p.start_ticks, kept));
            }
        }
        self.looked = looked;
        self.clients = clients;

        let mut pdevs: Vec<String> = self.devices.iter().map(|d| d.pdev.clone()).collect();
        for (_, _, info) in &found {
            if !pdevs.contains(&info.pdev) {
                pdevs.push(info.pdev.clone());
            }
        }
        pdevs.sort();
        for (i, pdev) in pdevs.iter().enumerate() {
            let index = first_index + i as u32;
            let dev = match self.devices.iter().find(|d| &d.pdev == pdev) {
                Some(d) => read_device(d, index),
                None => {
                    let driver = found
                        .iter()
                        .find(|f| &f.2.pdev == pdev)
                        .map(|f| f.2.driver.clone())
                        .unwrap_or_default();
                    RawGpuDevice {
                        id: Arc::from(format!("drm:{pdev}")),
                        index,
                        name: Arc::from(format!("{driver} {pdev}").trim()),
                        driver: Arc::from(driver),
                        mig: None,
                        utilization_percent: None,
                        memory_used_bytes: None,
                        memory_total_bytes: None,
                        temperature_celsius: None,
                        power_watts: None,
                    }
                }
            };
            out.devices.push(dev);
        }
        for (pid, start_ticks, info) in found {
            out.clients.push(RawGpuClient {
                pid,
                start_ticks,
                device: Arc::from(format!("drm:{}", info.pdev)),
                kind: GpuClientKind::Drm,
                memory_bytes: info.memory_bytes,
                utilization_percent: None,
                drm_client: Some(info.client_id),
                engines: info.engines,
            });
        }
    }

    /// Descriptors of `pid` that are DRM device files.
    fn drm_fds(&mut self, pid: u32) -> Vec<u32> {
        let dir = self.proc_root.join(pid.to_string()).join("fd");
        self.cost.fd_dirs += 1;
        let Ok(rd) = fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut fds = Vec::new();
        for e in rd.flatten() {
            let Some(fd) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            self.cost.links += 1;
            if let Ok(target) = fs::read_link(e.path())
                && target.starts_with("/dev/dri/")
            {
                fds.push(fd);
            }
        }
        fds.sort_unstable();
        fds
    }

    fn fdinfo(&mut self, pid: u32, fd: u32) -> Option<DrmFdinfo> {
        use std::io::Read;
        let path = self
            .proc_root
            .join(pid.to_string())
            .join("fdinfo")
            .join(fd.to_string());
        self.cost.fdinfos += 1;
        self.buf.clear();
        fs::File::open(path)
            .ok()?
            .take(64 * 1024)
            .read_to_string(&mut self.buf)
            .ok()?;
        parse(&self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AMDGPU: &str = include_str!("fixtures/amdgpu.fdinfo");
    const AMDGPU_OLD: &str = include_str!("fixtures/amdgpu-5.19.fdinfo");
    const I915: &str = include_str!("fixtures/i915.fdinfo");
    const XE: &str = include_str!("fixtures/xe.fdinfo");

    fn eng<'a>(f: &'a DrmFdinfo, name: &str) -> &'a DrmEngine {
        f.engines.iter().find(|e| &*e.name == name).unwrap()
    }

    #[test]
    fn amdgpu_counts_resident_vram_and_engine_nanoseconds() {
        let f = parse(AMDGPU).unwrap();
        assert_eq!(f.driver, "amdgpu");
        assert_eq!(f.client_id, 17);
        assert_eq!(f.pdev, "0000:03:00.0");
        // drm-resident-vram, not drm-total-vram nor the gtt/cpu regions.
        assert_eq!(f.memory_bytes, Some(3_292 * 1024));
        assert_eq!(eng(&f, "gfx").busy_ns, Some(1_234_567_890));
        assert_eq!(eng(&f, "compute").busy_ns, Some(55_000));
        assert_eq!(eng(&f, "gfx").capacity, 1);
    }

    #[test]
    fn amdgpu_before_6_8_has_drm_memory_vram() {
        let f = parse(AMDGPU_OLD).unwrap();
        assert_eq!(f.memory_bytes, Some(1_024 * 1024));
        assert_eq!(eng(&f, "gfx").busy_ns, Some(987_654));
    }

    #[test]
    fn i915_integrated_counts_system_region_and_engine_capacity() {
        let f = parse(I915).unwrap();
        assert_eq!(f.driver, "i915");
        assert_eq!(f.client_id, 7);
        // No local memory: the resident system0 region (stolen is the firmware's, not counted).
        assert_eq!(f.memory_bytes, Some(8_192 * 1024));
        assert_eq!(eng(&f, "render").busy_ns, Some(25_662_044_495));
        assert_eq!(eng(&f, "video").capacity, 2);
    }

    #[test]
    fn xe_reads_cycles_and_vram_in_mixed_units() {
        let f = parse(XE).unwrap();
        assert_eq!(f.driver, "xe");
        assert_eq!(f.client_id, 10);
        assert_eq!(f.memory_bytes, Some(23_992 * 1024 + 16 * 1024 * 1024));
        assert_eq!(eng(&f, "rcs").cycles, Some((28_257_900, 7_655_183_225)));
        assert_eq!(eng(&f, "rcs").busy_ns, None);
        assert_eq!(eng(&f, "vcs").capacity, 2);
    }

    #[test]
    fn not_a_drm_client() {
        assert_eq!(parse("pos:\t0\nflags:\t02\nmnt_id:\t24\n"), None);
        // A driver without a client id cannot be told from another client.
        assert_eq!(parse("drm-driver:\ti915\n"), None);
        assert_eq!(value("12 parsecs"), None);
        assert_eq!(value("18446744073709551615 GiB"), None);
    }
}
