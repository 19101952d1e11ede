//! The process list's columns: what each shows, how wide it is, what sorting by it means.
//!
//! One table, so that the header, the rows, a click on a header and the `[ui] columns` setting
//! (which columns, in which order) cannot disagree about where a column is.

use super::action::SortKey;
use super::gpu::ProcGpu;
use crate::config::DEFAULT_COLUMNS;
use crate::format;
use crate::model::ProcessStats;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Pid,
    User,
    State,
    Cpu,
    MemPercent,
    Res,
    /// Device memory the process holds, over all its GPUs.
    GpuMem,
    /// Its busy share of its GPUs, summed over them.
    GpuUtil,
    Threads,
    Time,
    Command,
}

/// Every column, in the default order.
pub const ALL: [Column; 11] = [
    Column::Pid,
    Column::User,
    Column::State,
    Column::Cpu,
    Column::MemPercent,
    Column::Res,
    Column::GpuMem,
    Column::GpuUtil,
    Column::Threads,
    Column::Time,
    Column::Command,
];

/// A COMMAND column that is not the last one gets this many characters.
const COMMAND_INSIDE: usize = 30;

impl Column {
    /// The name `[ui] columns` uses (see `config::PROCESS_COLUMNS`).
    pub fn name(self) -> &'static str {
        match self {
            Column::Pid => "pid",
            Column::User => "user",
            Column::State => "state",
            Column::Cpu => "cpu",
            Column::MemPercent => "mem",
            Column::Res => "res",
            Column::GpuMem => "gpu_mem",
            Column::GpuUtil => "gpu_util",
            Column::Threads => "threads",
            Column::Time => "time",
            Column::Command => "command",
        }
    }

    pub fn parse(name: &str) -> Option<Column> {
        ALL.into_iter().find(|c| c.name() == name)
    }

    pub fn header(self) -> &'static str {
        match self {
            Column::Pid => "PID",
            Column::User => "USER",
            Column::State => "S",
            Column::Cpu => "CPU%",
            Column::MemPercent => "MEM%",
            Column::Res => "RES",
            Column::GpuMem => "GPU MEM",
            Column::GpuUtil => "GPU%",
            Column::Threads => "THR",
            Column::Time => "TIME",
            Column::Command => "COMMAND",
        }
    }

    /// Characters the column takes (COMMAND: what is left, when last).
    pub fn width(self) -> usize {
        match self {
            Column::Pid => 7,
            Column::User => 9,
            Column::State => 1,
            Column::Cpu => 6,
            Column::MemPercent => 5,
            Column::Res | Column::GpuMem => 10,
            Column::GpuUtil => 6,
            Column::Threads => 4,
            Column::Time => 9,
            Column::Command => COMMAND_INSIDE,
        }
    }

    /// Figures are right-aligned, text left-aligned.
    pub fn right_aligned(self) -> bool {
        !matches!(self, Column::User | Column::State | Column::Command)
    }

    pub fn sort(self) -> SortKey {
        match self {
            Column::Pid => SortKey::Pid,
            Column::User => SortKey::User,
            Column::State => SortKey::State,
            Column::Cpu => SortKey::Cpu,
            Column::MemPercent | Column::Res => SortKey::Memory,
            Column::GpuMem => SortKey::GpuMemory,
            Column::GpuUtil => SortKey::Gpu,
            Column::Threads => SortKey::Threads,
            Column::Time => SortKey::Time,
            Column::Command => SortKey::Name,
        }
    }

    /// Whether the column shows GPU figures (offered only on a machine with GPUs).
    pub fn is_gpu(self) -> bool {
        matches!(self, Column::GpuMem | Column::GpuUtil)
    }

    /// The cell's text for `p` holding `gpu`, before fitting (COMMAND is drawn by the view,
    /// with the tree). A GPU figure the process does not have is blank; one its driver does not
    /// give is `-`.
    pub fn text(self, p: &ProcessStats, gpu: Option<&ProcGpu<'_>>) -> String {
        match self {
            Column::Pid => p.pid.to_string(),
            Column::User => p.user.to_string(),
            Column::State => p.state.to_string(),
            Column::Cpu => format!("{:.1}", p.cpu_percent),
            Column::MemPercent => format!("{:.1}", p.memory_percent),
            Column::Res => format::bytes(p.memory_bytes),
            Column::GpuMem => gpu.map_or_else(String::new, |g| {
                g.memory_bytes.map_or_else(|| "-".into(), format::bytes)
            }),
            Column::GpuUtil => gpu.map_or_else(String::new, |g| {
                g.utilization_percent
                    .map_or_else(|| "-".into(), |u| format!("{u:.1}"))
            }),
            Column::Threads => p.threads.to_string(),
            Column::Time => cpu_time(p.cpu_time_secs),
            Column::Command => super::procs::shown_command(p).to_string(),
        }
    }
}

/// Each column with the x offset it starts at and its width, for a list `width` wide: one
/// space between columns, a last COMMAND column taking what is left.
pub fn layout(columns: &[Column], width: usize) -> Vec<(Column, usize, usize)> {
    let mut out = Vec::with_capacity(columns.len());
    let mut x = 0;
    for (i, &c) in columns.iter().enumerate() {
        let last = i + 1 == columns.len();
        let w = if c == Column::Command && last {
            width.saturating_sub(x)
        } else {
            c.width()
        };
        out.push((c, x, w));
        x += w + 1;
    }
    out
}

/// The column under x (a click on the header).
pub fn at(columns: &[Column], width: usize, x: usize) -> Option<Column> {
    layout(columns, width)
        .into_iter()
        .find(|&(_, start, w)| x >= start && x < start + w.max(1) + 1)
        .map(|(c, _, _)| c)
}

/// The columns a `[ui] columns` list names, in its order (the config was validated, so every
/// name is known; an unknown one is skipped rather than trusted). Without a list, the default
/// one, with the GPU columns after RES on a machine with GPUs; a list the admin chose (in the
/// file or with F2) is kept as it is, GPU columns left out included.
pub fn from_names(names: Option<&[String]>, gpus: bool) -> Vec<Column> {
    let mut chosen: Vec<Column> = names
        .unwrap_or_default()
        .iter()
        .filter_map(|n| Column::parse(n))
        .collect();
    if chosen.is_empty() {
        chosen = DEFAULT_COLUMNS
            .iter()
            .filter_map(|n| Column::parse(n))
            .collect();
        if gpus {
            let at = chosen
                .iter()
                .position(|&c| c == Column::Res)
                .map_or(chosen.len(), |i| i + 1);
            chosen.splice(at..at, [Column::GpuMem, Column::GpuUtil]);
        }
    }
    chosen
}

/// CPU time as htop shows it: `4:28.29` (minutes, seconds, hundredths) under an hour,
/// `12h03:07` under 100 hours, then whole hours.
pub fn cpu_time(secs: f64) -> String {
    let centis = (secs.max(0.0) * 100.0).round() as u64;
    let total = centis / 100;
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    match h {
        0 => format!("{m}:{s:02}.{:02}", centis % 100),
        1..=99 => format!("{h}h{m:02}:{s:02}"),
        _ => format!("{h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_config_name_is_a_column_and_back() {
        for name in crate::config::PROCESS_COLUMNS {
            let c = Column::parse(name).expect("a known column");
            assert_eq!(c.name(), *name);
        }
        assert_eq!(ALL.len(), crate::config::PROCESS_COLUMNS.len());
    }

    #[test]
    fn gpu_columns_join_the_default_list_only_on_a_machine_with_gpus() {
        let names = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(from_names(None, false).len(), 9);
        let with = from_names(None, true);
        assert_eq!(with[5..8], [Column::Res, Column::GpuMem, Column::GpuUtil]);
        // A list the admin chose is theirs, GPUs or not.
        let chosen = names(&["pid", "gpu_mem", "command"]);
        let want = [Column::Pid, Column::GpuMem, Column::Command];
        assert_eq!(from_names(Some(&chosen), false), want);
        assert_eq!(from_names(Some(&names(&["pid", "command"])), true).len(), 2);
        // The default nine named on purpose (F2 with the GPU columns unticked) stay nine.
        let nine = names(DEFAULT_COLUMNS);
        assert_eq!(from_names(Some(&nine), true).len(), 9);
    }

    #[test]
    fn a_click_finds_the_column_under_it() {
        let cols = ALL.to_vec();
        // PID 0..7, USER 8..17, S 18, CPU% 20..26 ...
        assert_eq!(at(&cols, 100, 0), Some(Column::Pid));
        assert_eq!(at(&cols, 100, 9), Some(Column::User));
        assert_eq!(at(&cols, 100, 18), Some(Column::State));
        assert_eq!(at(&cols, 100, 22), Some(Column::Cpu));
        assert_eq!(at(&cols, 100, 90), Some(Column::Command));
        let few = vec![Column::Command, Column::Pid];
        assert_eq!(layout(&few, 100)[1], (Column::Pid, 31, 7));
    }
}
