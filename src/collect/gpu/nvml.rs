//! NVIDIA GPUs through NVML, behind a small trait.
//!
//! `NvmlSource` returns what NVML answered, call by call, in plain data; `map` turns those
//! answers into the collector's raw records. The split exists so the mapping (which process is
//! on which GPU, a pid that exited between the calls, MIG instances, a process listed both as
//! compute and graphics) is tested on recorded answers, since CI machines have no GPU.
//!
//! The library is opened with `dlopen` by `nvml-wrapper`: where `libnvidia-ml.so.1` is missing
//! (no driver) or fails to initialise, there is no source and a refresh costs nothing.

use std::collections::HashMap;
use std::sync::Arc;

use super::{GpuClientKind, MigPlacement, RawGpu, RawGpuClient, RawGpuDevice, start_of};
use crate::collect::RawProc;
use crate::sanitize;

/// One process in an NVML running-process list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NvmlProcess {
    pub pid: u32,
    /// None where NVML says "not available".
    pub used_bytes: Option<u64>,
}

/// One `nvmlProcessUtilizationSample_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NvmlUtilSample {
    pub pid: u32,
    /// CPU timestamp of the sample, in microseconds.
    pub timestamp_us: u64,
    pub sm_percent: u32,
}

/// What NVML answered for one MIG device handle.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NvmlMig {
    /// Position among the parent's MIG devices.
    pub index: u32,
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub memory: Option<(u64, u64)>,
    pub gpu_instance: Option<u32>,
    pub compute_instance: Option<u32>,
    pub compute: Vec<NvmlProcess>,
    pub graphics: Vec<NvmlProcess>,
}

/// What NVML answered for one physical device. A failed call is `None` or empty: NVML returns
/// NOT_SUPPORTED for many queries on many boards, and one missing figure must not hide the rest.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NvmlDevice {
    pub index: u32,
    pub name: Option<String>,
    pub uuid: Option<String>,
    /// `nvmlDeviceGetUtilizationRates`' gpu figure.
    pub utilization_percent: Option<u32>,
    /// (used, total) bytes.
    pub memory: Option<(u64, u64)>,
    pub temperature_celsius: Option<u32>,
    pub power_milliwatts: Option<u32>,
    pub compute: Vec<NvmlProcess>,
    pub graphics: Vec<NvmlProcess>,
    pub samples: Vec<NvmlUtilSample>,
    /// The MIG devices, when MIG mode is on; their processes are listed there, not here.
    pub mig: Vec<NvmlMig>,
}

/// NVML as the collector needs it: every device's answers for one refresh.
pub trait NvmlSource: Send {
    fn read(&mut self) -> Vec<NvmlDevice>;
}

/// Recorded answers, replayed on every refresh.
pub struct Recorded(pub Vec<NvmlDevice>);

impl NvmlSource for Recorded {
    fn read(&mut self) -> Vec<NvmlDevice> {
        self.0.clone()
    }
}

/// Turn NVML's answers into devices and clients. A pid absent from `procs` (it exited between
/// the scan and the call, or lives in another pid namespace) is kept with start time 0: its
/// memory is still held on the device, and `derive` reports it as no user's.
pub fn map(devices: &[NvmlDevice], procs: &[RawProc], out: &mut RawGpu) {
    for d in devices {
        let uuid: Arc<str> = Arc::from(
            d.uuid
                .as_deref()
                .map(sanitize::clean)
                .unwrap_or_else(|| format!("nvidia:{}", d.index)),
        );
        let name = clean_name(d.name.as_deref(), "NVIDIA GPU");
        out.devices.push(RawGpuDevice {
            id: uuid.clone(),
            index: d.index,
            name: name.clone(),
            driver: Arc::from("nvidia"),
            mig: None,
            utilization_percent: d.utilization_percent.map(|u| u.min(100) as f64),
            memory_used_bytes: d.memory.map(|m| m.0),
            memory_total_bytes: d.memory.map(|m| m.1),
            temperature_celsius: d.temperature_celsius.map(f64::from),
            power_watts: d.power_milliwatts.map(|mw| mw as f64 / 1000.0),
        });
        let util = latest_samples(&d.samples);
        push_clients(&uuid, &d.compute, &d.graphics, &util, procs, out);
        for m in &d.mig {
            let id: Arc<str> = Arc::from(
                m.uuid
                    .as_deref()
                    .map(sanitize::clean)
                    .unwrap_or_else(|| format!("{uuid}/mig{}", m.index)),
            );
            out.devices.push(RawGpuDevice {
                id: id.clone(),
                index: m.index,
                name: clean_name(m.name.as_deref(), &name),
                driver: Arc::from("nvidia"),
                mig: Some(MigPlacement {
                    parent_index: d.index,
                    gpu_instance: m.gpu_instance,
                    compute_instance: m.compute_instance,
                }),
                utilization_percent: None,
                memory_used_bytes: m.memory.map(|m| m.0),
                memory_total_bytes: m.memory.map(|m| m.1),
                temperature_celsius: None,
                power_watts: None,
            });
            push_clients(&id, &m.compute, &m.graphics, &HashMap::new(), procs, out);
        }
    }
}

fn clean_name(name: Option<&str>, fallback: &str) -> Arc<str> {
    match name.map(sanitize::clean) {
        Some(n) if !n.is_empty() => Arc::from(n),
        _ => Arc::from(fallback),
    }
}

/// Each pid's newest sample: NVML returns every sample since the last call, several per pid.
fn latest_samples(samples: &[NvmlUtilSample]) -> HashMap<u32, (u64, u32)> {
    let mut util: HashMap<u32, (u64, u32)> = HashMap::new();
    for s in samples {
        let e = util.entry(s.pid).or_insert((s.timestamp_us, s.sm_percent));
        if s.timestamp_us >= e.0 {
            *e = (s.timestamp_us, s.sm_percent);
        }
    }
    util
}

fn push_clients(
    device: &Arc<str>,
    compute: &[NvmlProcess],
    graphics: &[NvmlProcess],
    util: &HashMap<u32, (u64, u32)>,
    procs: &[RawProc],
    out: &mut RawGpu,
) {
    let first = out.clients.len();
    for (list, kind) in [
        (compute, GpuClientKind::Compute),
        (graphics, GpuClientKind::Graphics),
    ] {
        for p in list {
            // A process with both contexts is listed twice with the same memory: count it once.
            if let Some(c) = out.clients[first..].iter_mut().find(|c| c.pid == p.pid) {
                if c.kind != kind {
                    c.kind = GpuClientKind::ComputeGraphics;
                }
                c.memory_bytes = match (c.memory_bytes, p.used_bytes) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                continue;
            }
            out.clients.push(RawGpuClient {
                pid: p.pid,
                start_ticks: start_of(procs, p.pid).unwrap_or(0),
                device: device.clone(),
                kind,
                memory_bytes: p.used_bytes,
                utilization_percent: util.get(&p.pid).map(|&(_, u)| u.min(100) as f64),
                drm_client: None,
                engines: Vec::new(),
            });
        }
    }
}

/// The real library.
pub struct LiveNvml {
    nvml: nvml_wrapper::Nvml,
    /// Per device index, the newest process-utilization timestamp seen (NVML returns the
    /// samples newer than the one passed).
    last_sample: HashMap<u32, u64>,
}

impl LiveNvml {
    /// None when the library is missing or does not initialise (no driver, no device).
    pub fn open() -> Option<Self> {
        let nvml = nvml_wrapper::Nvml::init().ok()?;
        Some(LiveNvml {
            nvml,
            last_sample: HashMap::new(),
        })
    }
}

type ProcessList =
    Result<Vec<nvml_wrapper::struct_wrappers::device::ProcessInfo>, nvml_wrapper::error::NvmlError>;

/// GPU instance and compute instance ids, as NVML sets them on a MIG device's processes.
type Placement = (Option<u32>, Option<u32>);

/// The list as plain data, and the MIG placement its first entry names (there is no other
/// getter for a MIG device's instance ids).
fn processes(list: ProcessList) -> (Vec<NvmlProcess>, Option<Placement>) {
    use nvml_wrapper::enums::device::UsedGpuMemory;
    let Ok(list) = list else {
        return (Vec::new(), None);
    };
    let placement = list
        .first()
        .map(|p| (p.gpu_instance_id, p.compute_instance_id));
    let procs = list
        .into_iter()
        .map(|p| NvmlProcess {
            pid: p.pid,
            used_bytes: match p.used_gpu_memory {
                UsedGpuMemory::Used(b) => Some(b),
                UsedGpuMemory::Unavailable => None,
            },
        })
        .collect();
    (procs, placement)
}

impl NvmlSource for LiveNvml {
    fn read(&mut self) -> Vec<NvmlDevice> {
        use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
        let count = self.nvml.device_count().unwrap_or(0);
        let mut out = Vec::with_capacity(count as usize);
        for index in 0..count {
            let Ok(dev) = self.nvml.device_by_index(index) else {
                continue;
            };
            let last = self.last_sample.get(&index).copied().unwrap_or(0);
            let samples: Vec<NvmlUtilSample> = dev
                .process_utilization_stats(last)
                .map(|v| {
                    v.into_iter()
                        .map(|s| NvmlUtilSample {
                            pid: s.pid,
                            timestamp_us: s.timestamp,
                            sm_percent: s.sm_util,
                        })
                        .collect()
                })
                .unwrap_or_default();
            if let Some(newest) = samples.iter().map(|s| s.timestamp_us).max() {
                self.last_sample.insert(index, newest);
            }
            let mig_on = matches!(dev.mig_mode(), Ok(m) if m.current == 1);
            let mut mig = Vec::new();
            if mig_on {
                let slots = dev.mig_device_count().unwrap_or(0);
                for slot in 0..slots {
                    let Ok(m) = dev.mig_device_by_index(slot) else {
                        continue;
                    };
                    let (compute, placed_c) = processes(m.running_compute_processes());
                    let (graphics, placed_g) = processes(m.running_graphics_processes());
                    let placement = placed_c.or(placed_g);
                    mig.push(NvmlMig {
                        index: slot,
                        uuid: m.uuid().ok(),
                        name: m.name().ok(),
                        memory: m.memory_info().ok().map(|i| (i.used, i.total)),
                        gpu_instance: placement.and_then(|p| p.0),
                        compute_instance: placement.and_then(|p| p.1),
                        compute,
                        graphics,
                    });
                }
            }
            let (compute, graphics) = if mig_on {
                (Vec::new(), Vec::new())
            } else {
                (
                    processes(dev.running_compute_processes()).0,
                    processes(dev.running_graphics_processes()).0,
                )
            };
            out.push(NvmlDevice {
                index,
                name: dev.name().ok(),
                uuid: dev.uuid().ok(),
                utilization_percent: dev.utilization_rates().ok().map(|u| u.gpu),
                memory: dev.memory_info().ok().map(|i| (i.used, i.total)),
                temperature_celsius: dev.temperature(TemperatureSensor::Gpu).ok(),
                power_milliwatts: dev.power_usage().ok(),
                compute,
                graphics,
                samples,
                mig,
            });
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn proc(pid: u32, uid: u32, start_ticks: u64) -> RawProc {
        RawProc {
            pid,
            ppid: 1,
            uid,
            user: Arc::from(uid.to_string()),
            name: Arc::from("python"),
            cmdline: Arc::from(""),
            state: 'R',
            cpu_ticks: 0,
            child_ticks: 0,
            rss_pages: 0,
            pss: None,
            threads: 1,
            start_ticks,
        }
    }

    const GIB: u64 = 1 << 30;

    /// Two A100s as NVML answered on a box with MIG on the second: GPU 0 has a training job
    /// (compute), a desktop (graphics) and a process that is both; pid 4242 exited between the
    /// process scan and the NVML call. GPU 1 is split into two MIG instances.
    pub(crate) fn two_gpus_one_mig() -> Vec<NvmlDevice> {
        vec![
            NvmlDevice {
                index: 0,
                name: Some("NVIDIA A100-SXM4-80GB".into()),
                uuid: Some("GPU-0a1b".into()),
                utilization_percent: Some(87),
                memory: Some((30 * GIB, 80 * GIB)),
                temperature_celsius: Some(64),
                power_milliwatts: Some(312_456),
                compute: vec![
                    NvmlProcess {
                        pid: 100,
                        used_bytes: Some(20 * GIB),
                    },
                    NvmlProcess {
                        pid: 300,
                        used_bytes: Some(GIB),
                    },
                    NvmlProcess {
                        pid: 4242,
                        used_bytes: Some(2 * GIB),
                    },
                ],
                graphics: vec![
                    NvmlProcess {
                        pid: 200,
                        used_bytes: None,
                    },
                    NvmlProcess {
                        pid: 300,
                        used_bytes: Some(GIB),
                    },
                ],
                samples: vec![
                    NvmlUtilSample {
                        pid: 100,
                        timestamp_us: 10,
                        sm_percent: 40,
                    },
                    NvmlUtilSample {
                        pid: 100,
                        timestamp_us: 20,
                        sm_percent: 85,
                    },
                ],
                mig: vec![],
            },
            NvmlDevice {
                index: 1,
                name: Some("NVIDIA A100-SXM4-80GB".into()),
                uuid: Some("GPU-9f8e".into()),
                utilization_percent: None,
                memory: Some((12 * GIB, 80 * GIB)),
                temperature_celsius: Some(41),
                power_milliwatts: Some(90_000),
                compute: vec![],
                graphics: vec![],
                samples: vec![],
                mig: vec![
                    NvmlMig {
                        index: 0,
                        uuid: Some("MIG-aaaa".into()),
                        name: Some("NVIDIA A100-SXM4-80GB MIG 3g.40gb".into()),
                        memory: Some((10 * GIB, 40 * GIB)),
                        gpu_instance: Some(1),
                        compute_instance: Some(0),
                        compute: vec![NvmlProcess {
                            pid: 100,
                            used_bytes: Some(10 * GIB),
                        }],
                        graphics: vec![],
                    },
                    NvmlMig {
                        index: 1,
                        uuid: Some("MIG-bbbb".into()),
                        name: None,
                        memory: Some((2 * GIB, 40 * GIB)),
                        gpu_instance: Some(2),
                        compute_instance: Some(0),
                        compute: vec![NvmlProcess {
                            pid: 500,
                            used_bytes: Some(2 * GIB),
                        }],
                        graphics: vec![],
                    },
                ],
            },
        ]
    }

    pub(crate) fn procs() -> Vec<RawProc> {
        vec![
            proc(100, 1001, 7000),
            proc(200, 1002, 7100),
            proc(300, 1002, 7200),
            proc(500, 1003, 7300),
        ]
    }

    #[test]
    fn devices_keep_index_uuid_and_figures() {
        let mut out = RawGpu::default();
        map(&two_gpus_one_mig(), &procs(), &mut out);
        let ids: Vec<&str> = out.devices.iter().map(|d| &*d.id).collect();
        assert_eq!(ids, ["GPU-0a1b", "GPU-9f8e", "MIG-aaaa", "MIG-bbbb"]);
        let d = &out.devices[0];
        assert_eq!((d.index, &*d.name), (0, "NVIDIA A100-SXM4-80GB"));
        assert_eq!(d.utilization_percent, Some(87.0));
        assert_eq!(d.memory_total_bytes, Some(80 * GIB));
        assert_eq!(d.temperature_celsius, Some(64.0));
        assert_eq!(d.power_watts, Some(312.456));
        assert_eq!(out.devices[1].mig, None);
    }

    #[test]
    fn mig_instances_are_slices_of_their_parent() {
        let mut out = RawGpu::default();
        map(&two_gpus_one_mig(), &procs(), &mut out);
        let m = &out.devices[2];
        assert_eq!(
            m.mig,
            Some(MigPlacement {
                parent_index: 1,
                gpu_instance: Some(1),
                compute_instance: Some(0)
            })
        );
        assert_eq!(&*m.name, "NVIDIA A100-SXM4-80GB MIG 3g.40gb");
        assert_eq!(m.memory_total_bytes, Some(40 * GIB));
        assert_eq!(m.utilization_percent, None);
        // No name of its own: the parent's.
        assert_eq!(&*out.devices[3].name, "NVIDIA A100-SXM4-80GB");
        let on_mig: Vec<(u32, &str)> = out
            .clients
            .iter()
            .filter(|c| c.device.starts_with("MIG"))
            .map(|c| (c.pid, &*c.device))
            .collect();
        assert_eq!(on_mig, [(100, "MIG-aaaa"), (500, "MIG-bbbb")]);
    }

    #[test]
    fn processes_map_to_scan_entries_once_per_device() {
        let mut out = RawGpu::default();
        map(&two_gpus_one_mig(), &procs(), &mut out);
        let on0: Vec<_> = out
            .clients
            .iter()
            .filter(|c| &*c.device == "GPU-0a1b")
            .map(|c| (c.pid, c.start_ticks, c.kind, c.memory_bytes))
            .collect();
        assert_eq!(
            on0,
            [
                (100, 7000, GpuClientKind::Compute, Some(20 * GIB)),
                // Listed twice by NVML with the same memory: one client, counted once.
                (300, 7200, GpuClientKind::ComputeGraphics, Some(GIB)),
                // Exited before the call: no start time, memory still held.
                (4242, 0, GpuClientKind::Compute, Some(2 * GIB)),
                (200, 7100, GpuClientKind::Graphics, None),
            ]
        );
        // The same pid on two devices is two clients.
        assert_eq!(out.clients.iter().filter(|c| c.pid == 100).count(), 2);
    }

    #[test]
    fn newest_utilization_sample_wins() {
        let mut out = RawGpu::default();
        map(&two_gpus_one_mig(), &procs(), &mut out);
        let util = |pid| {
            out.clients
                .iter()
                .find(|c| c.pid == pid && &*c.device == "GPU-0a1b")
                .and_then(|c| c.utilization_percent)
        };
        assert_eq!(util(100), Some(85.0));
        assert_eq!(util(300), None);
    }

    #[test]
    fn hostile_names_and_missing_answers() {
        let answers = vec![NvmlDevice {
            index: 3,
            name: Some("evil\x1b[2Jname".into()),
            ..Default::default()
        }];
        let mut out = RawGpu::default();
        map(&answers, &[], &mut out);
        let d = &out.devices[0];
        assert!(!d.name.contains('\x1b'));
        assert_eq!(&*d.id, "nvidia:3");
        assert_eq!(d.memory_total_bytes, None);
        assert!(out.clients.is_empty());
    }
}
