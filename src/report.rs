//! The `--once` and `--batch` text report: one snapshot as a table for people. Their JSON form
//! is [`crate::json::snapshot`], which the HTTP API serves as well.

use std::fmt::Write as _;

use crate::format;
use crate::model::{Snapshot, StatusReport};
use crate::sanitize;
use crate::time::rfc3339;

/// Options for the text table.
#[derive(Debug, Clone, Copy)]
pub struct TextOptions {
    /// Maximum line width for the command column; None: no limit.
    pub width: Option<usize>,
    /// Include users that own processes but use next to nothing.
    pub all_users: bool,
}

pub fn text(snap: &Snapshot, status: &StatusReport, opts: TextOptions) -> String {
    let mut out = String::new();
    let s = &snap.system;
    let c = &s.cpu.total;
    let m = &s.memory;
    let _ = writeln!(
        out,
        "{}  {}  up {}  load {:.2} {:.2} {:.2}  tasks {} ({} threads, {} running, {} blocked)",
        snap.host,
        rfc3339(snap.at),
        format::duration(s.uptime_secs as u64),
        s.load.one,
        s.load.five,
        s.load.fifteen,
        s.tasks.processes,
        s.tasks.threads,
        s.tasks.running,
        s.tasks.blocked
    );
    let _ = writeln!(
        out,
        "CPU   {:5.1}% busy of {} cores  (user {:.1}  sys {:.1}  iowait {:.1}  steal {:.1})",
        c.busy, s.cpu.count, c.user, c.system, c.iowait, c.steal
    );
    let _ = writeln!(
        out,
        "MEM   {:5.1}%  {} of {}  (buffers/cache {})  swap {} of {} ({:.1}%)",
        m.used_percent,
        format::bytes(m.used_bytes),
        format::bytes(m.total_bytes),
        format::bytes(m.buffers_bytes + m.cached_bytes),
        format::bytes(m.swap_used_bytes),
        format::bytes(m.swap_total_bytes),
        m.swap_used_percent
    );
    for d in &s.disks {
        if d.ok {
            let _ = writeln!(
                out,
                "DISK  {:5.1}%  {} of {}  {}",
                d.used_percent,
                format::bytes(d.used_bytes),
                format::bytes(d.total_bytes),
                d.path
            );
        } else {
            let _ = writeln!(out, "DISK     n/a  {} (cannot be examined)", d.path);
        }
    }
    for d in &s.disk_io {
        let _ = writeln!(
            out,
            "IO    {:<10} read {:>11}  write {:>11}  busy {:5.1}%",
            d.device,
            format::rate(d.read_bytes_per_sec),
            format::rate(d.write_bytes_per_sec),
            d.busy_percent
        );
    }
    for n in &s.net {
        let _ = writeln!(
            out,
            "NET   {:<10} rx {:>11}  tx {:>11}",
            n.interface,
            format::rate(n.rx_bytes_per_sec),
            format::rate(n.tx_bytes_per_sec)
        );
    }
    if let Some(p) = &s.pressure {
        let avg = |f: Option<crate::model::PressureFigures>| {
            f.map_or("-".to_string(), |f| format!("{:.1}", f.some_avg10))
        };
        let _ = writeln!(
            out,
            "PSI   some avg10: cpu {}  memory {}  io {}",
            avg(p.cpu),
            avg(p.memory),
            avg(p.io)
        );
    }
    gpu_lines(&mut out, snap);
    let _ = writeln!(out, "STATUS {}", status.status);
    for r in &status.reasons {
        let _ = writeln!(out, "  - {r}");
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<16} {:>7} {:>6} {:>6} {:>6} {:>10} {:>6} {:>7}  {:<7} TOP COMMAND",
        "USER", "UID", "CPU%", "CORES", "MEM%", "MEM", "PROCS", "THREADS", "TRACKED"
    );
    for u in &snap.users {
        if !opts.all_users && !u.tracked && u.cpu_percent < 0.05 && u.memory_percent < 0.05 {
            continue;
        }
        let top = u
            .top_processes
            .first()
            .map(|p| {
                if p.cmdline.is_empty() {
                    &p.name
                } else {
                    &p.cmdline
                }
            })
            .map(|c| sanitize::clean(c))
            .unwrap_or_default();
        let top = match opts.width {
            Some(w) => format::truncate(&top, w.saturating_sub(96).max(20), false),
            None => top,
        };
        let _ = writeln!(
            out,
            "{:<16} {:>7} {:>6.1} {:>6.2} {:>6.1} {:>10} {:>6} {:>7}  {:<7} {}",
            format::truncate(&sanitize::clean(&u.name), 16, false),
            u.uid,
            u.cpu_percent,
            u.cpu_cores,
            u.memory_percent,
            format::bytes(u.memory_bytes),
            u.processes,
            u.threads,
            if u.tracked { "yes" } else { "no" },
            top
        );
    }
    gpu_users(&mut out, snap);
    out
}

/// One line per GPU and MIG instance (none on a machine without GPUs). A figure the driver does
/// not give is `-`.
fn gpu_lines(out: &mut String, snap: &Snapshot) {
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    for d in &snap.gpu.devices {
        let memory = match (d.memory_used_bytes, d.memory_total_bytes) {
            (Some(u), Some(t)) => format!(
                "{} of {} ({:.1}%)",
                format::bytes(u),
                format::bytes(t),
                d.memory_percent.unwrap_or(0.0)
            ),
            (u, _) => or_dash(u.map(format::bytes)),
        };
        let _ = writeln!(
            out,
            "GPU   {:<7} busy {:>6}  mem {}  temp {}  power {}  {} process{}  {}",
            d.label(),
            or_dash(d.utilization_percent.map(|u| format!("{u:.1}%"))),
            memory,
            or_dash(d.temperature_celsius.map(|t| format!("{t:.0}C"))),
            or_dash(d.power_watts.map(|p| format!("{p:.0}W"))),
            d.processes,
            if d.processes == 1 { "" } else { "es" },
            sanitize::clean(&d.name)
        );
    }
}

/// What each user holds on the GPUs, after the users' table (only on a machine with GPUs).
fn gpu_users(out: &mut String, snap: &Snapshot) {
    if snap.gpu.devices.is_empty() {
        return;
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<16} {:>7} {:>4} {:>10} {:>8} {:>6} {:>6}  DEVICES",
        "GPU USER", "UID", "GPUS", "GPU MEM", "GPU MEM%", "GPU%", "PROCS"
    );
    for u in &snap.users {
        let Some(g) = &u.gpu else { continue };
        let devices: Vec<String> = g
            .device_ids
            .iter()
            .map(|id| snap.gpu.label_of(id).unwrap_or_else(|| id.to_string()))
            .collect();
        let _ = writeln!(
            out,
            "{:<16} {:>7} {:>4} {:>10} {:>8.1} {:>6.1} {:>6}  {}",
            format::truncate(&sanitize::clean(&u.name), 16, false),
            u.uid,
            g.devices,
            format::bytes(g.memory_bytes),
            g.memory_percent,
            g.utilization_percent,
            g.processes,
            devices.join(", ")
        );
    }
    let unseen: Vec<&crate::model::GpuProcess> = snap
        .gpu
        .processes
        .iter()
        .filter(|p| p.uid.is_none())
        .collect();
    if !unseen.is_empty() {
        let bytes: u64 = unseen.iter().filter_map(|p| p.memory_bytes).sum();
        // A pid on two GPUs has an entry on each.
        let pids: std::collections::BTreeSet<u32> = unseen.iter().map(|p| p.pid).collect();
        let _ = writeln!(
            out,
            "{} held by {} pid(s) the process scan did not see (exited, or in another pid namespace)",
            format::bytes(bytes),
            pids.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::tests::fixture;

    fn report(snap: &Snapshot) -> String {
        text(
            snap,
            &StatusReport::default(),
            TextOptions {
                width: None,
                all_users: false,
            },
        )
    }

    #[test]
    fn gpu_lines_for_the_machine_and_its_users_only_where_there_are_gpus() {
        let out = report(&fixture::gpu_snapshot());
        let line = |start: &str| {
            out.lines()
                .find(|l| l.starts_with(start))
                .unwrap_or_else(|| panic!("no line {start:?} in\n{out}"))
                .to_string()
        };
        assert_eq!(
            line("GPU   0 "),
            "GPU   0       busy  98.0%  mem 71.0 GiB of 80.0 GiB (88.8%)  temp 71C  power 650W  \
             1 process  NVIDIA H100 80GB HBM3"
        );
        assert!(line("GPU   3/mig0").contains("busy      -  mem 20.0 GiB of 40.0 GiB (50.0%)"));
        assert_eq!(out.lines().filter(|l| l.starts_with("GPU   ")).count(), 10);
        let gpu_table = out.split("GPU USER").nth(1).expect("a GPU users' table");
        let carol = gpu_table
            .lines()
            .find(|l| l.starts_with("carol "))
            .expect("carol holds GPUs");
        assert!(carol.ends_with("3/mig0, 4, 5"), "{carol}");
        assert!(carol.contains("100.0 GiB"), "{carol}");
        // Users holding no GPU are not in the GPU table; the exited pid's memory is told.
        assert!(!gpu_table.contains("bob "), "{gpu_table}");
        assert!(out.contains("2.0 GiB held by 1 pid(s) the process scan did not see"));
        // The same exited pid on a second GPU is still one pid.
        let mut twice = fixture::gpu_snapshot();
        let mut again = twice
            .gpu
            .processes
            .iter()
            .find(|p| p.uid.is_none())
            .expect("the fixture's exited pid")
            .clone();
        again.device_index = 7;
        twice.gpu.processes.push(again);
        let out2 = report(&twice);
        assert!(
            out2.contains("4.0 GiB held by 1 pid(s) the process scan did not see"),
            "{out2}"
        );

        let plain = report(&fixture::snapshot());
        assert!(!plain.contains("GPU"), "{plain}");
        // The hostile user's name is as the fixture wrote it, escapes and all.
        assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
    }
}
