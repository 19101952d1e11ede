//! GPU figures from two raw samples: per-process utilization and per-user sums.
//!
//! NVML hands out percentages; a DRM client's utilization is the change of its engine counters
//! between two samples (busy nanoseconds over elapsed time, or busy cycles over elapsed cycles on
//! xe), divided by the engine class's capacity, its busiest engine taken as the figure, as nvtop
//! shows it. A client is the same client in both samples when its device, DRM client id, pid and
//! start time match; a new one has no figure for its first interval rather than a wrong one.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::collect::gpu::{DrmEngine, RawGpuClient, RawGpuDevice};
use crate::collect::{RawProc, RawSample};
use crate::model::{GpuDevice, GpuProcess, GpuStats, MigInfo, UserGpu, UserStats};

/// Devices, the processes on them, and each user's share (written into `users`).
pub fn gpu_stats(prev: &RawSample, cur: &RawSample, users: &mut [UserStats]) -> GpuStats {
    if cur.gpu.is_empty() {
        return GpuStats::default();
    }
    let elapsed_ns = cur.at.secs_since(prev.at) * 1e9;
    let before: HashMap<(&str, u64, u32, u64), &[DrmEngine]> = prev
        .gpu
        .clients
        .iter()
        .filter_map(|c| {
            let id = c.drm_client?;
            Some(((&*c.device, id, c.pid, c.start_ticks), c.engines.as_slice()))
        })
        .collect();
    let index_of: HashMap<&str, u32> = cur.gpu.devices.iter().map(|d| (&*d.id, d.index)).collect();
    let mut processes: Vec<GpuProcess> = cur
        .gpu
        .clients
        .iter()
        .map(|c| {
            let owner = owner(&cur.procs, c);
            let utilization_percent = c.utilization_percent.or_else(|| {
                let id = c.drm_client?;
                let prev = before.get(&(&*c.device, id, c.pid, c.start_ticks))?;
                drm_utilization(prev, &c.engines, elapsed_ns)
            });
            GpuProcess {
                pid: c.pid,
                uid: owner.map(|p| p.uid),
                user: owner.map(|p| p.user.clone()),
                name: owner.map(|p| p.name.clone()),
                device: c.device.clone(),
                device_index: index_of.get(&*c.device).copied().unwrap_or(u32::MAX),
                kind: Arc::from(c.kind.as_str()),
                memory_bytes: c.memory_bytes,
                utilization_percent,
            }
        })
        .collect();
    let position: HashMap<&str, usize> = cur
        .gpu
        .devices
        .iter()
        .enumerate()
        .map(|(i, d)| (&*d.id, i))
        .collect();
    processes.sort_by_key(|p| {
        (
            position.get(&*p.device).copied().unwrap_or(usize::MAX),
            p.pid,
        )
    });
    let devices: Vec<GpuDevice> = cur
        .gpu
        .devices
        .iter()
        .map(|d| device(d, &processes))
        .collect();
    user_sums(&devices, &processes, users);
    GpuStats { devices, processes }
}

/// The scanned process behind a client, if it is the same process (pid and start time).
fn owner<'a>(procs: &'a [RawProc], c: &RawGpuClient) -> Option<&'a RawProc> {
    let i = procs.binary_search_by_key(&c.pid, |p| p.pid).ok()?;
    let p = &procs[i];
    (c.start_ticks == 0 || p.start_ticks == c.start_ticks).then_some(p)
}

/// A DRM client's busiest engine over the interval, in percent of its engine class.
pub fn drm_utilization(prev: &[DrmEngine], cur: &[DrmEngine], elapsed_ns: f64) -> Option<f64> {
    let mut best: Option<f64> = None;
    for e in cur {
        let Some(p) = prev.iter().find(|p| p.name == e.name) else {
            continue;
        };
        let share = match (e.cycles, p.cycles, e.busy_ns, p.busy_ns) {
            (Some((c1, t1)), Some((c0, t0)), _, _) if t1 > t0 => {
                c1.saturating_sub(c0) as f64 / (t1 - t0) as f64
            }
            (_, _, Some(b1), Some(b0)) if elapsed_ns > 0.0 => {
                b1.saturating_sub(b0) as f64 / elapsed_ns
            }
            _ => continue,
        };
        let pct = (share * 100.0 / e.capacity.max(1) as f64).clamp(0.0, 100.0);
        best = Some(best.map_or(pct, |b: f64| b.max(pct)));
    }
    best
}

fn device(d: &RawGpuDevice, processes: &[GpuProcess]) -> GpuDevice {
    let mine = || processes.iter().filter(|p| p.device == d.id);
    let drm = &*d.driver != "nvidia";
    // i915 and xe keep utilization per client only: the device is as busy as its clients.
    let utilization_percent = d.utilization_percent.or_else(|| {
        let sum: Option<f64> = mine()
            .filter_map(|p| p.utilization_percent)
            .reduce(|a, b| a + b);
        sum.filter(|_| drm).map(|s| s.min(100.0))
    });
    let memory_used_bytes = d.memory_used_bytes.or_else(|| {
        drm.then(|| mine().filter_map(|p| p.memory_bytes).sum::<u64>())
            .filter(|&b| b > 0)
    });
    let memory_percent = match (memory_used_bytes, d.memory_total_bytes) {
        (Some(u), Some(t)) if t > 0 => Some((u as f64 / t as f64 * 100.0).min(100.0)),
        _ => None,
    };
    GpuDevice {
        index: d.index,
        id: d.id.clone(),
        name: d.name.clone(),
        driver: d.driver.clone(),
        mig: d.mig.map(|m| MigInfo {
            parent_index: m.parent_index,
            gpu_instance: m.gpu_instance,
            compute_instance: m.compute_instance,
        }),
        utilization_percent,
        memory_used_bytes,
        memory_total_bytes: d.memory_total_bytes,
        memory_percent,
        temperature_celsius: d.temperature_celsius,
        power_watts: d.power_watts,
        processes: mine().count() as u64,
    }
}

/// The recorded NVML answers of two GPUs, the second split into two MIG instances
/// (`collect::gpu::nvml`), derived as the engine derives them: the GPUs, and the GPU figures of
/// `users` (uids 1001 to 1003 hold GPUs there). A GPU server for the sinks' tests.
#[cfg(test)]
pub(crate) fn recorded_nvidia(users: &mut [UserStats]) -> GpuStats {
    use crate::collect::gpu::{RawGpu, nvml};
    let procs = nvml::tests::procs();
    let mut raw = RawGpu::default();
    nvml::map(&nvml::tests::two_gpus_one_mig(), &procs, &mut raw);
    let sample = |secs| RawSample {
        at: crate::model::Timestamp::from_secs(secs),
        procs: procs.clone(),
        gpu: raw.clone(),
        ..RawSample::default()
    };
    gpu_stats(&sample(0), &sample(2), users)
}

/// Each user's GPUs, memory, utilization share and processes. Memory is a share of all whole
/// GPUs' memory (a MIG instance's is part of its parent's); utilization a share of all whole
/// GPUs, so a user keeping one of four GPUs fully busy has 25 %.
fn user_sums(devices: &[GpuDevice], processes: &[GpuProcess], users: &mut [UserStats]) {
    let physical = devices.iter().filter(|d| d.is_physical());
    let total_memory: u64 = physical.clone().filter_map(|d| d.memory_total_bytes).sum();
    let gpus = physical.count().max(1) as f64;
    struct Sum<'a> {
        devices: BTreeSet<usize>,
        memory: u64,
        util: f64,
        pids: BTreeSet<u32>,
        ids: &'a [GpuDevice],
    }
    let mut by_uid: HashMap<u32, Sum> = HashMap::new();
    for p in processes {
        let Some(uid) = p.uid else {
            continue;
        };
        let s = by_uid.entry(uid).or_insert_with(|| Sum {
            devices: BTreeSet::new(),
            memory: 0,
            util: 0.0,
            pids: BTreeSet::new(),
            ids: devices,
        });
        if let Some(i) = devices.iter().position(|d| d.id == p.device) {
            s.devices.insert(i);
        }
        s.memory += p.memory_bytes.unwrap_or(0);
        s.util += p.utilization_percent.unwrap_or(0.0) / gpus;
        s.pids.insert(p.pid);
    }
    for u in users.iter_mut() {
        let Some(s) = by_uid.remove(&u.uid) else {
            continue;
        };
        u.gpu = Some(UserGpu {
            devices: s.devices.len() as u32,
            device_ids: s.devices.iter().map(|&i| s.ids[i].id.clone()).collect(),
            memory_bytes: s.memory,
            memory_percent: if total_memory > 0 {
                (s.memory as f64 / total_memory as f64 * 100.0).min(100.0)
            } else {
                0.0
            },
            utilization_percent: s.util.min(100.0),
            processes: s.pids.len() as u64,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::gpu::nvml::{self, tests as recorded};
    use crate::collect::gpu::{GpuClientKind, RawGpu};
    use crate::model::Timestamp;

    const GIB: u64 = 1 << 30;

    fn user(uid: u32) -> UserStats {
        UserStats::new(uid, Arc::from(uid.to_string()))
    }

    fn sample(at: i64, procs: Vec<RawProc>, gpu: RawGpu) -> RawSample {
        RawSample {
            at: Timestamp::from_secs(at),
            procs,
            gpu,
            ..Default::default()
        }
    }

    fn nvidia() -> (RawSample, RawSample) {
        let mut raw = RawGpu::default();
        nvml::map(&recorded::two_gpus_one_mig(), &recorded::procs(), &mut raw);
        (
            sample(0, recorded::procs(), raw.clone()),
            sample(2, recorded::procs(), raw),
        )
    }

    #[test]
    fn per_user_sums_over_devices_and_mig_instances() {
        let (prev, cur) = nvidia();
        let mut users = vec![user(1001), user(1002), user(1003), user(1004)];
        let g = gpu_stats(&prev, &cur, &mut users);
        // uid 1001: 20 GiB on GPU 0 and 10 GiB on a MIG instance of GPU 1.
        let alice = users[0].gpu.as_ref().expect("alice holds GPUs");
        assert_eq!(alice.devices, 2);
        let ids: Vec<&str> = alice.device_ids.iter().map(|s| &**s).collect();
        assert_eq!(ids, ["GPU-0a1b", "MIG-aaaa"]);
        assert_eq!(alice.memory_bytes, 30 * GIB);
        // Of the two whole GPUs' 160 GiB (the MIG instances' 40 GiB are part of GPU 1's 80).
        assert!((alice.memory_percent - 30.0 / 160.0 * 100.0).abs() < 1e-9);
        // 85 % of one of two GPUs.
        assert!((alice.utilization_percent - 42.5).abs() < 1e-9);
        assert_eq!(alice.processes, 1);
        // uid 1002: a desktop (memory not given) and a C+G process counted once.
        let bob = users[1].gpu.as_ref().unwrap();
        assert_eq!((bob.devices, bob.processes, bob.memory_bytes), (1, 2, GIB));
        assert_eq!(users[2].gpu.as_ref().unwrap().memory_bytes, 2 * GIB);
        assert_eq!(users[3].gpu, None);
        // The exited pid keeps its memory on the device, in nobody's sum.
        let gone = g.processes.iter().find(|p| p.pid == 4242).unwrap();
        assert_eq!((gone.uid, gone.memory_bytes), (None, Some(2 * GIB)));
        let summed: u64 = users
            .iter()
            .filter_map(|u| u.gpu.as_ref())
            .map(|g| g.memory_bytes)
            .sum();
        assert_eq!(summed, 33 * GIB);
    }

    #[test]
    fn devices_count_their_processes_and_memory_share() {
        let (prev, cur) = nvidia();
        let g = gpu_stats(&prev, &cur, &mut []);
        assert_eq!(g.devices.len(), 4);
        assert_eq!(g.physical().count(), 2);
        let d0 = &g.devices[0];
        assert_eq!(d0.processes, 4);
        assert!((d0.memory_percent.unwrap() - 37.5).abs() < 1e-9);
        assert_eq!(g.devices[2].mig.unwrap().parent_index, 1);
        // Processes ordered by device, then pid.
        let order: Vec<(u32, u32)> = g
            .processes
            .iter()
            .map(|p| (p.device_index, p.pid))
            .collect();
        assert_eq!(
            order,
            [(0, 100), (0, 200), (0, 300), (0, 4242), (0, 100), (1, 500)]
        );
    }

    fn drm_client(pid: u32, busy_ns: u64, cycles: Option<(u64, u64)>, cap: u32) -> RawGpuClient {
        RawGpuClient {
            pid,
            start_ticks: 5,
            device: Arc::from("drm:0000:03:00.0"),
            kind: GpuClientKind::Drm,
            memory_bytes: Some(GIB),
            utilization_percent: None,
            drm_client: Some(pid as u64),
            engines: vec![
                DrmEngine {
                    name: Arc::from("render"),
                    busy_ns: Some(busy_ns),
                    cycles,
                    capacity: 1,
                },
                DrmEngine {
                    name: Arc::from("video"),
                    busy_ns: Some(busy_ns / 2),
                    cycles: None,
                    capacity: cap,
                },
            ],
        }
    }

    fn drm_device() -> RawGpuDevice {
        RawGpuDevice {
            id: Arc::from("drm:0000:03:00.0"),
            index: 0,
            name: Arc::from("xe 0000:03:00.0"),
            driver: Arc::from("xe"),
            mig: None,
            utilization_percent: None,
            memory_used_bytes: None,
            memory_total_bytes: Some(16 * GIB),
            temperature_celsius: None,
            power_watts: None,
        }
    }

    fn proc(pid: u32, uid: u32) -> RawProc {
        let mut p = recorded::procs()[0].clone();
        p.pid = pid;
        p.uid = uid;
        p.start_ticks = 5;
        p
    }

    #[test]
    fn drm_utilization_from_engine_nanoseconds_and_cycles() {
        let gpu = |a: u64, b: u64| RawGpu {
            devices: vec![drm_device()],
            clients: vec![
                drm_client(10, a, None, 2),
                drm_client(11, b, Some((b, b * 4)), 1),
            ],
        };
        let procs = vec![proc(10, 1001), proc(11, 1001)];
        let prev = sample(0, procs.clone(), gpu(0, 1_000));
        // Two seconds later: pid 10's render engine was busy 0.5 s (25 %); pid 11's cycles
        // moved by 1000 of 4000 elapsed (25 %) though its nanoseconds say otherwise.
        let cur = sample(2, procs, gpu(500_000_000, 2_000));
        let mut users = vec![user(1001)];
        let g = gpu_stats(&prev, &cur, &mut users);
        let util: Vec<Option<f64>> = g.processes.iter().map(|p| p.utilization_percent).collect();
        assert_eq!(util, [Some(25.0), Some(25.0)]);
        // The device has no figure of its own: the sum of its clients.
        assert_eq!(g.devices[0].utilization_percent, Some(50.0));
        assert_eq!(g.devices[0].memory_used_bytes, Some(2 * GIB));
        let u = users[0].gpu.as_ref().unwrap();
        assert_eq!((u.devices, u.processes, u.memory_bytes), (1, 2, 2 * GIB));
        assert!((u.utilization_percent - 50.0).abs() < 1e-9);
    }

    #[test]
    fn a_new_or_replaced_drm_client_has_no_figure_yet() {
        let procs = vec![proc(10, 1001)];
        let prev = sample(0, procs.clone(), RawGpu::default());
        let cur = sample(
            2,
            procs,
            RawGpu {
                devices: vec![drm_device()],
                clients: vec![drm_client(10, 900_000_000, None, 1)],
            },
        );
        let g = gpu_stats(&prev, &cur, &mut []);
        assert_eq!(g.processes[0].utilization_percent, None);

        // Same pid, another process (start time differs): not compared with the old one.
        let mut other = cur.clone();
        other.at = Timestamp::from_secs(4);
        other.gpu.clients[0].start_ticks = 6;
        other.procs[0].start_ticks = 6;
        let g = gpu_stats(&cur, &other, &mut []);
        assert_eq!(g.processes[0].utilization_percent, None);
    }

    #[test]
    fn counters_going_backwards_or_capacity_never_exceed_bounds() {
        let e = |busy| DrmEngine {
            name: Arc::from("video"),
            busy_ns: Some(busy),
            cycles: None,
            capacity: 2,
        };
        // Both video engines busy the whole second: 100 %, not 200.
        assert_eq!(
            drm_utilization(&[e(0)], &[e(2_000_000_000)], 1e9),
            Some(100.0)
        );
        assert_eq!(drm_utilization(&[e(5)], &[e(1)], 1e9), Some(0.0));
        assert_eq!(drm_utilization(&[e(0)], &[e(1)], 0.0), None);
    }

    #[test]
    fn no_gpu_no_figures() {
        let s = sample(0, vec![proc(10, 1001)], RawGpu::default());
        let mut users = vec![user(1001)];
        assert!(gpu_stats(&s, &s, &mut users).is_empty());
        assert_eq!(users[0].gpu, None);
    }

    /// The `--once --json` contract: GPU fields where there are GPUs, nothing new where not.
    #[test]
    fn json_has_gpu_fields_only_on_a_machine_with_gpus() {
        use crate::model::{Snapshot, StatusReport};
        let (prev, cur) = nvidia();
        let mut users = vec![user(1001), user(1005)];
        let gpu = gpu_stats(&prev, &cur, &mut users);
        let snap = Snapshot {
            users,
            gpu,
            ..Snapshot::default()
        };
        let doc: serde_json::Value =
            serde_json::from_str(&crate::json::snapshot(&snap, &StatusReport::default())).unwrap();
        assert_eq!(doc["schema"], 2);
        assert_eq!(doc["gpu"]["devices"][0]["id"], "GPU-0a1b");
        assert_eq!(doc["gpu"]["devices"][0]["power_watts"], 312.456);
        assert_eq!(doc["gpu"]["devices"][2]["mig"]["parent_index"], 1);
        assert!(doc["gpu"]["devices"][0].get("mig").is_none());
        assert_eq!(doc["gpu"]["processes"][0]["kind"], "compute");
        assert_eq!(doc["users"][0]["gpu"]["memory_bytes"], 30 * GIB);
        assert_eq!(doc["users"][0]["gpu"]["devices"], 2);
        assert!(doc["users"][1].get("gpu").is_none());

        let plain = Snapshot {
            users: vec![user(1001)],
            ..Snapshot::default()
        };
        let text = crate::json::snapshot(&plain, &StatusReport::default());
        assert!(!text.contains("gpu"), "{text}");
    }
}
