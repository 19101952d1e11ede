//! The `--once` and `--batch` text report: one snapshot as a table for people. Their JSON form
//! is [`crate::json::snapshot`], which the HTTP API serves as well.

use std::fmt::Write as _;

use crate::format;
use crate::model::{Snapshot, StatusReport};
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
            .map(|c| c.to_string())
            .unwrap_or_default();
        let top = match opts.width {
            Some(w) => format::truncate(&top, w.saturating_sub(96).max(20), false),
            None => top,
        };
        let _ = writeln!(
            out,
            "{:<16} {:>7} {:>6.1} {:>6.2} {:>6.1} {:>10} {:>6} {:>7}  {:<7} {}",
            format::truncate(&u.name, 16, false),
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
    out
}
