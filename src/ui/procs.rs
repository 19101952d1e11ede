//! The process list's rows: filter, sort, and the parent/child tree.
//!
//! Pure functions over the snapshot's processes so that the list a user sees can be tested
//! without a terminal. The filter understands `user=`, `cmd=` and `pid=` prefixes (several
//! terms separated by spaces must all match); anything else is a case-insensitive substring of
//! the user, name or command line.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, HashSet};

use super::action::SortKey;
use super::gpu::{self, ProcGpu};
use super::state::ProcessView;
use crate::model::ProcessStats;

/// What each process holds on GPUs (see [`gpu::by_pid`]).
pub type GpuByPid<'a> = HashMap<u32, ProcGpu<'a>>;

/// One line of the list: a process and, in tree mode, where it sits.
#[derive(Debug, Clone, Copy)]
pub struct ProcRow<'a> {
    pub process: &'a ProcessStats,
    pub depth: usize,
    /// Tree mode: the last of its siblings (`└─` rather than `├─`).
    pub last: bool,
    /// Tree mode: bit `k` (1 <= k < depth) set when the ancestor at depth `k` has siblings
    /// below it, so a `│` continues in that column.
    pub more: u64,
    /// Tree mode: how many descendants are folded away under this row.
    pub folded: usize,
}

impl ProcRow<'_> {
    fn flat(process: &ProcessStats) -> ProcRow<'_> {
        ProcRow {
            process,
            depth: 0,
            last: true,
            more: 0,
            folded: 0,
        }
    }

    /// `│  ├─ `: the tree's lines to the left of the command (empty for a root).
    pub fn branch(&self, ascii: bool) -> String {
        if self.depth == 0 {
            return String::new();
        }
        let (bar, tee, elbow) = if ascii {
            ("|  ", "|- ", "`- ")
        } else {
            ("│  ", "├─ ", "└─ ")
        };
        let mut out = String::new();
        for k in 1..self.depth {
            out.push_str(if k < 64 && self.more & (1 << k) != 0 {
                bar
            } else {
                "   "
            });
        }
        out.push_str(if self.last { elbow } else { tee });
        out
    }

    /// `[+12] ` before the command of a row whose 12 descendants are folded away.
    pub fn fold_mark(&self) -> String {
        if self.folded == 0 {
            String::new()
        } else {
            format!("[+{}] ", self.folded)
        }
    }
}

/// What the COMMAND column shows, and so what a sort by name orders by.
pub fn shown_command(p: &ProcessStats) -> &str {
    if p.cmdline.is_empty() {
        &p.name
    } else {
        &p.cmdline
    }
}

enum Term<'a> {
    User(&'a str),
    Cmd(String),
    Pid(Option<u32>),
    Text(String),
}

fn terms(filter: &str) -> Vec<Term<'_>> {
    filter
        .split_whitespace()
        .map(|t| {
            if let Some(v) = t.strip_prefix("user=") {
                Term::User(v)
            } else if let Some(v) = t.strip_prefix("cmd=") {
                Term::Cmd(v.to_lowercase())
            } else if let Some(v) = t.strip_prefix("pid=") {
                Term::Pid(v.parse().ok())
            } else {
                Term::Text(t.to_lowercase())
            }
        })
        .collect()
}

fn matches(p: &ProcessStats, terms: &[Term<'_>]) -> bool {
    terms.iter().all(|t| match t {
        Term::User(u) => &*p.user == *u,
        Term::Cmd(c) => {
            p.name.to_lowercase().contains(c.as_str())
                || p.cmdline.to_lowercase().contains(c.as_str())
        }
        Term::Pid(pid) => Some(p.pid) == *pid,
        Term::Text(s) => {
            p.user.to_lowercase().contains(s.as_str())
                || p.name.to_lowercase().contains(s.as_str())
                || p.cmdline.to_lowercase().contains(s.as_str())
        }
    })
}

fn compare(a: &ProcessStats, b: &ProcessStats, key: SortKey, gpu: &GpuByPid<'_>) -> Ordering {
    let gpu_mem = |p: &ProcessStats| gpu::of(gpu, p).and_then(|g| g.memory_bytes).unwrap_or(0);
    let gpu_busy = |p: &ProcessStats| {
        gpu::of(gpu, p)
            .and_then(|g| g.utilization_percent)
            .unwrap_or(-1.0)
    };
    let by = match key {
        // Heaviest first is the natural order for figures; names read A to Z.
        SortKey::Cpu => b.cpu_percent.total_cmp(&a.cpu_percent),
        SortKey::Memory => b.memory_bytes.cmp(&a.memory_bytes),
        SortKey::Time => b.cpu_time_secs.total_cmp(&a.cpu_time_secs),
        SortKey::Name => shown_command(a).cmp(shown_command(b)),
        SortKey::Pid => a.pid.cmp(&b.pid),
        SortKey::User => a.user.cmp(&b.user),
        SortKey::State => a.state.cmp(&b.state),
        SortKey::Threads => b.threads.cmp(&a.threads),
        SortKey::GpuMemory => gpu_mem(b).cmp(&gpu_mem(a)),
        SortKey::Gpu => gpu_busy(b).total_cmp(&gpu_busy(a)),
    };
    by.then(a.pid.cmp(&b.pid))
}

/// The rows `view` shows, in order; `gpu` is what each process holds on GPUs.
pub fn rows<'a>(
    all: &'a [ProcessStats],
    view: &ProcessView,
    gpu: &GpuByPid<'_>,
) -> Vec<ProcRow<'a>> {
    let terms = terms(&view.filter);
    let mut picked: Vec<&ProcessStats> = all
        .iter()
        .filter(|p| view.user.as_deref().is_none_or(|u| &*p.user == u))
        .filter(|p| matches(p, &terms))
        .collect();
    let order = |a: &&ProcessStats, b: &&ProcessStats| {
        let o = compare(a, b, view.sort, gpu);
        if view.inverted { o.reverse() } else { o }
    };
    picked.sort_by(order);
    if !view.tree {
        return picked.into_iter().map(ProcRow::flat).collect();
    }
    tree(picked, &view.folded)
}

/// Children under their parents, siblings in the sorted order. A process whose parent is not in
/// the list is a root.
fn tree<'a>(sorted: Vec<&'a ProcessStats>, folded: &BTreeSet<u32>) -> Vec<ProcRow<'a>> {
    let present: HashSet<u32> = sorted.iter().map(|p| p.pid).collect();
    let mut children: HashMap<u32, Vec<&ProcessStats>> = HashMap::new();
    let mut roots = Vec::new();
    for p in &sorted {
        if p.ppid != p.pid && present.contains(&p.ppid) {
            children.entry(p.ppid).or_default().push(p);
        } else {
            roots.push(*p);
        }
    }
    let mut out = Vec::with_capacity(sorted.len());
    let mut seen = HashSet::new();
    let mut stack: Vec<ProcRow<'_>> = roots.into_iter().rev().map(ProcRow::flat).collect();
    while let Some(row) = stack.pop() {
        if !seen.insert(row.process.pid) {
            continue;
        }
        if folded.contains(&row.process.pid) {
            let hidden = descendants(row.process.pid, &children, &mut seen);
            out.push(ProcRow {
                folded: hidden,
                ..row
            });
            continue;
        }
        out.push(row);
        if let Some(kids) = children.get(&row.process.pid) {
            // Below this row, its own column continues while it has siblings after it.
            let more = if row.depth >= 1 && !row.last && row.depth < 64 {
                row.more | (1 << row.depth)
            } else {
                row.more
            };
            let n = kids.len();
            stack.extend(kids.iter().enumerate().rev().map(|(i, k)| ProcRow {
                process: k,
                depth: row.depth + 1,
                last: i + 1 == n,
                more,
                folded: 0,
            }));
        }
    }
    // A parent cycle (pid reuse races) leaves processes unreached: list them as roots.
    for p in sorted {
        if seen.insert(p.pid) {
            out.push(ProcRow::flat(p));
        }
    }
    out
}

/// Mark every descendant of `pid` as seen (folded away) and count them.
fn descendants(
    pid: u32,
    children: &HashMap<u32, Vec<&ProcessStats>>,
    seen: &mut HashSet<u32>,
) -> usize {
    let mut count = 0;
    let mut stack = vec![pid];
    while let Some(p) = stack.pop() {
        for k in children.get(&p).into_iter().flatten() {
            if seen.insert(k.pid) {
                count += 1;
                stack.push(k.pid);
            }
        }
    }
    count
}
