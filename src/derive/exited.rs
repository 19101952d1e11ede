//! The CPU of processes that ended between two samples, given to the users who ran them.
//!
//! A monitor that sums the processes alive at each sample never sees a job that starts and ends
//! between two of them, so a build storm of short compiler runs reads as nobody's. Two sources
//! close the gap:
//!
//! - **The kernel's exit records** (`collect::exits`, root only): each ended thread group's
//!   exact CPU and uid. A group seen at the previous sample has the part counted there taken off.
//! - **`cutime` + `cstime`** otherwise (any user, no extra I/O: they are in the `stat` already
//!   read). For a process p let A(p) = own + children's ticks; a child's whole A lands in its
//!   reaper's children's ticks when it is reaped. So a reaper's growth in children's ticks, less
//!   the A last seen of the ended processes that landed there (their first living ancestor at
//!   the previous sample), is what ended processes used unseen during the interval. It goes to
//!   the reaper's user, unless the reaper is root (init, `sshd`, `sudo`, `runuser`, cron): then
//!   to the users of the ended processes seen there, weighted by their CPU, and what nobody was
//!   seen for stays unattributed rather than being given to root.
//!
//! Either way the result is per uid, in ticks; `derive` turns it into cores and shows what
//! remains of the machine's busy time as "unattributed".

use std::collections::HashMap;
use std::sync::Arc;

use crate::collect::{ExitLog, RawProc};

/// Ticks of ended processes per user, with the user's name.
pub type Exited = HashMap<u32, (Arc<str>, f64)>;

fn find(procs: &[RawProc], pid: u32) -> Option<&RawProc> {
    procs
        .binary_search_by_key(&pid, |p| p.pid)
        .ok()
        .map(|i| &procs[i])
}

fn same(a: &RawProc, b: &RawProc) -> bool {
    a.start_ticks == b.start_ticks
}

/// Whether `p` (from the previous sample) still runs in `cur`.
fn lives(cur: &[RawProc], p: &RawProc) -> bool {
    find(cur, p.pid).is_some_and(|c| same(c, p))
}

fn add(out: &mut Exited, uid: u32, name: &Arc<str>, ticks: f64) {
    if ticks > 0.0 {
        out.entry(uid).or_insert_with(|| (Arc::clone(name), 0.0)).1 += ticks;
    }
}

/// What processes that ended during the interval used, per uid. Both lists are sorted by pid.
pub fn exited_ticks(prev: &[RawProc], cur: &[RawProc], exits: Option<&ExitLog>, hz: f64) -> Exited {
    match exits {
        Some(log) if log.complete => from_exit_records(prev, log, hz),
        _ => from_children_ticks(prev, cur),
    }
}

fn from_exit_records(prev: &[RawProc], log: &ExitLog, hz: f64) -> Exited {
    let mut out = Exited::new();
    for g in &log.groups {
        let ticks = g.cpu_us as f64 * hz / 1e6;
        match find(prev, g.tgid) {
            Some(p) => add(&mut out, p.uid, &p.user, ticks - p.cpu_ticks as f64),
            None => add(&mut out, g.uid, &g.user, ticks),
        }
    }
    out
}

/// Ended processes that landed at one reaper: the CPU already counted for them, and who they
/// were, with their CPU as the weight for sharing what a root reaper received.
#[derive(Default)]
struct Landed<'a> {
    counted: u64,
    seen: Vec<(&'a RawProc, u64)>,
}

fn from_children_ticks(prev: &[RawProc], cur: &[RawProc]) -> Exited {
    let mut landed: HashMap<u32, Landed> = HashMap::new();
    for c in prev.iter().filter(|c| !lives(cur, c)) {
        // The first ancestor still running received c's ticks (through any that ended too).
        let mut ppid = c.ppid;
        let mut reaper = None;
        for _ in 0..64 {
            let Some(p) = find(prev, ppid) else { break };
            if lives(cur, p) {
                reaper = Some(p.pid);
                break;
            }
            ppid = p.ppid;
        }
        if let Some(r) = reaper {
            let l = landed.entry(r).or_default();
            l.counted += c.cpu_ticks + c.child_ticks;
            l.seen.push((c, c.cpu_ticks));
        }
    }
    let mut out = Exited::new();
    for r in cur {
        let received = match find(prev, r.pid).filter(|p| same(p, r)) {
            Some(p) => r.child_ticks.saturating_sub(p.child_ticks),
            None => r.child_ticks,
        };
        if received == 0 {
            continue;
        }
        let l = landed.get(&r.pid);
        let unseen = received.saturating_sub(l.map_or(0, |l| l.counted)) as f64;
        if r.uid != 0 {
            add(&mut out, r.uid, &r.user, unseen);
            continue;
        }
        let Some(l) = l.filter(|l| !l.seen.is_empty()) else {
            continue; // a root reaper and nobody seen: unattributed
        };
        let total: u64 = l.seen.iter().map(|(_, w)| w).sum();
        for (c, w) in &l.seen {
            let share = if total > 0 {
                *w as f64 / total as f64
            } else {
                1.0 / l.seen.len() as f64
            };
            add(&mut out, c.uid, &c.user, unseen * share);
        }
    }
    out
}
