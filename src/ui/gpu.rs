//! GPU figures as the process list, the details view and a user's drill-down need them.
//!
//! The snapshot lists GPU use per process *and device*; the screens ask per process (one row)
//! or per user and device. Kept out of the views so that the rows, their sort order and the
//! details cannot disagree. On a machine without GPUs every lookup is of an empty list.

use std::collections::HashMap;

use crate::format;
use crate::model::{GpuProcess, GpuStats, ProcessStats};

/// What one process holds over all its devices.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcGpu<'a> {
    /// Device memory summed over its devices; None where the driver gives no figure.
    pub memory_bytes: Option<u64>,
    /// Busy share summed over its devices (200 = two GPUs kept fully busy), as a process's
    /// CPU% is summed over cores; None where the driver gives no figure.
    pub utilization_percent: Option<f64>,
    /// Its entries, one per device.
    pub on: Vec<&'a GpuProcess>,
}

/// Every process holding a GPU, by pid.
pub fn by_pid(gpu: &GpuStats) -> HashMap<u32, ProcGpu<'_>> {
    let mut out: HashMap<u32, ProcGpu<'_>> = HashMap::new();
    for g in &gpu.processes {
        let e = out.entry(g.pid).or_default();
        e.memory_bytes = sum(e.memory_bytes, g.memory_bytes);
        e.utilization_percent = sum(e.utilization_percent, g.utilization_percent);
        e.on.push(g);
    }
    out
}

fn sum<T: std::ops::Add<Output = T>>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    }
}

/// `p`'s figures, if the GPU entries under its pid are its own (the same user: a pid NVML
/// listed that the scan saw as another process is not charged to this one).
pub fn of<'m, 'a>(map: &'m HashMap<u32, ProcGpu<'a>>, p: &ProcessStats) -> Option<&'m ProcGpu<'a>> {
    map.get(&p.pid)
        .filter(|g| g.on.iter().all(|e| e.uid.is_none_or(|u| u == p.uid)))
}

/// `0 20.0 GiB 85%` for one device entry: its label, memory and busy share where known.
pub fn device_text(gpu: &GpuStats, device: &str, memory: Option<u64>, util: Option<f64>) -> String {
    let mut text = gpu.label_of(device).unwrap_or_else(|| "?".into());
    if let Some(m) = memory {
        text.push(' ');
        text.push_str(&format::bytes(m));
    }
    if let Some(u) = util {
        text.push_str(&format!(" {u:.0}%"));
    }
    text
}

/// What user `uid` holds on each device, in device order: `0 70.0 GiB 95%, 3/mig0 20.0 GiB`.
pub fn user_devices(gpu: &GpuStats, uid: u32) -> String {
    let mut per: Vec<(&str, Option<u64>, Option<f64>)> = Vec::new();
    for g in gpu.processes.iter().filter(|g| g.uid == Some(uid)) {
        match per.iter_mut().find(|(d, _, _)| *d == &*g.device) {
            Some(e) => {
                e.1 = sum(e.1, g.memory_bytes);
                e.2 = sum(e.2, g.utilization_percent);
            }
            None => per.push((&g.device, g.memory_bytes, g.utilization_percent)),
        }
    }
    per.iter()
        .map(|&(d, m, u)| device_text(gpu, d, m, u))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::tests::fixture;

    #[test]
    fn a_process_on_several_gpus_sums_its_figures_and_another_users_pid_is_not_its() {
        let snap = fixture::gpu_snapshot();
        let map = by_pid(&snap.gpu);
        let proc_of = |pid: u32| snap.processes.iter().find(|p| p.pid == pid).unwrap();
        let carol = of(&map, proc_of(5002)).expect("carol's worker holds two GPUs");
        assert_eq!(carol.memory_bytes, Some(80 << 30));
        assert_eq!(carol.utilization_percent, Some(65.0));
        assert_eq!(carol.on.len(), 2);
        assert!(
            of(&map, proc_of(3003)).is_none(),
            "bob's compiler holds no GPU"
        );
        // The same pid seen as another user's process is not given that GPU memory.
        let mut other = proc_of(5002).clone();
        other.uid = 1000;
        assert!(of(&map, &other).is_none());
        // A pid that exited is on the device and nobody's.
        assert!(map.get(&9999).is_some_and(|g| g.on[0].uid.is_none()));
    }

    #[test]
    fn a_users_devices_name_mig_instances_by_their_gpu() {
        let snap = fixture::gpu_snapshot();
        assert_eq!(
            user_devices(&snap.gpu, 1003),
            "3/mig0 20.0 GiB, 4 40.0 GiB 35%, 5 40.0 GiB 30%"
        );
        assert_eq!(user_devices(&snap.gpu, 1001), "");
    }
}
