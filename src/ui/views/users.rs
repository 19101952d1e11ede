//! One row per user: who is using the machine, how much, and for how long.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{fit, pane, right, scroll_offset};
use crate::format;
use crate::model::{ExitedSource, MemorySource, Metric, UserGpu, UserStats};
use crate::ui::state::AppState;
use crate::ui::theme::{Level, Theme};

pub fn draw(frame: &mut Frame<'_>, area: Rect, state: &AppState, theme: &Theme, focused: bool) {
    let users = state.visible_users();
    let total = state.shown().map_or(0, |f| f.snapshot.users.len());
    let hidden = total - users.len();
    let mut title = if hidden > 0 {
        format!("Users {} ({hidden} system hidden, u shows)", users.len())
    } else {
        format!("Users {}", users.len())
    };
    if users.iter().any(|u| u.memory_source != MemorySource::Rss) {
        title.push_str(", MEM counts a shared page once (PSS)");
    }
    let block = pane(title, focused, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let width = inner.width as usize;
    let rows = (inner.height as usize).saturating_sub(1);
    let gpus = state.has_gpus();
    let gpu_heading = if gpus {
        format!(" {:>9} {:>5}", "GPU MEM", "GPU%")
    } else {
        String::new()
    };
    let mut lines = vec![Line::styled(
        fit(
            &format!(
                "{:<10} {:>6} {:>5} {:>6} {:>9}{gpu_heading} {:>5} {:<14} TOP COMMAND",
                "USER", "CPU%", "CORES", "MEM%", "MEM", "PROCS", "PERSISTENT"
            ),
            width,
            theme,
        ),
        theme.heading(),
    )];
    // With room for every user and their top processes (a large terminal), show those too.
    let with_top = users.len() * (1 + TOP_SHOWN) <= rows;
    let offset = scroll_offset(state.user_selected, rows);
    for (i, u) in users.iter().enumerate().skip(offset).take(rows) {
        let mut line = row(u, state, gpus, theme, width);
        if focused && i == state.user_selected {
            line = line.patch_style(theme.selected());
        }
        lines.push(line);
        if with_top {
            lines.extend(top_lines(u, theme, width));
        }
    }
    if users.is_empty() {
        lines.push(Line::styled("no users to show", theme.dim()));
    }
    if let Some(line) = unattributed_line(state, &gpu_heading, theme, width)
        && lines.len() <= rows
    {
        lines.push(line);
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The index of the user drawn at screen row `y` of the pane at `area`, if any: the same
/// layout `draw` uses, top-process lines included.
pub fn row_at(state: &AppState, area: Rect, y: u16) -> Option<usize> {
    let users = state.visible_users();
    let inner = Rect {
        y: area.y + 1,
        height: area.height.saturating_sub(2),
        ..area
    };
    let rows = (inner.height as usize).saturating_sub(1);
    let with_top = users.len() * (1 + TOP_SHOWN) <= rows;
    let offset = scroll_offset(state.user_selected, rows);
    let mut line = usize::from(y.checked_sub(inner.y + 1)?);
    for (i, u) in users.iter().enumerate().skip(offset) {
        let taken = 1 + if with_top {
            u.top_processes.len().min(TOP_SHOWN)
        } else {
            0
        };
        if line < taken {
            return Some(i);
        }
        line -= taken;
    }
    None
}

/// Busy CPU no user can be charged with, so that the rows add up to the machine's figure.
fn unattributed_line<'a>(
    state: &AppState,
    gpu_heading: &str,
    theme: &Theme,
    width: usize,
) -> Option<Line<'a>> {
    let feed = state.shown()?;
    let a = &feed.snapshot.accounting;
    if a.unattributed_cores < 0.01 {
        return None;
    }
    let why = match a.exited_source {
        ExitedSource::ExitRecords => "interrupts and kernel work, no user's",
        ExitedSource::ChildTimes => {
            "interrupts, and ended processes whose owner only root can know"
        }
    };
    let text = format!(
        "{:<10} {:>6.1} {:>5.2} {:>6} {:>9}{:gpu$} {:>5} {:<14} {why}",
        "unattrib.",
        a.unattributed_percent,
        a.unattributed_cores,
        "",
        "",
        "",
        "",
        "",
        gpu = gpu_heading.len()
    );
    Some(Line::styled(fit(&text, width, theme), theme.dim()))
}

/// "incl. 2.10 cores of ended processes" where that is a tenth or more of the user's CPU.
pub fn exited_note(u: &UserStats) -> Option<String> {
    (u.exited_cpu_cores >= 0.01 && u.exited_cpu_cores * 10.0 >= u.cpu_cores)
        .then(|| format!("incl. {:.2} cores of ended processes", u.exited_cpu_cores))
}

/// Top processes listed under each user when everything fits.
const TOP_SHOWN: usize = 3;

fn top_lines<'a>(u: &UserStats, theme: &Theme, width: usize) -> Vec<Line<'a>> {
    let (tee, elbow) = if theme.ascii {
        ("|-", "`-")
    } else {
        ("├─", "└─")
    };
    let shown = u.top_processes.len().min(TOP_SHOWN);
    u.top_processes
        .iter()
        .take(TOP_SHOWN)
        .enumerate()
        .map(|(i, p)| {
            let mark = if i + 1 == shown { elbow } else { tee };
            let cmd = if p.cmdline.is_empty() {
                &p.name
            } else {
                &p.cmdline
            };
            // Cores, like the CORES column above: a process's CPU% is of one core, a user's
            // of the whole machine, and the two side by side unlabelled read as the same.
            let head = format!(
                "  {mark} {:>7} {:>5.2} cores {:>10} ",
                p.pid,
                p.cpu_percent / 100.0,
                format::bytes(p.memory_bytes)
            );
            let rest = width.saturating_sub(head.chars().count());
            Line::styled(format!("{head}{}", fit(cmd, rest, theme)), theme.dim())
        })
        .collect()
}

fn row<'a>(u: &UserStats, state: &AppState, gpus: bool, theme: &Theme, width: usize) -> Line<'a> {
    let limits = state.config.limits_for(&u.name);
    let cpu = theme.level(Level::of(u.cpu_percent, limits.cpu_threshold));
    let mem = theme.level(Level::of(u.memory_percent, limits.memory_threshold));
    let flags = persistent_flags(state, &u.name);
    let top = u
        .top_processes
        .first()
        .map(|p| {
            if p.cmdline.is_empty() {
                p.name.to_string()
            } else {
                p.cmdline.to_string()
            }
        })
        .unwrap_or_default();
    let top = match exited_note(u) {
        Some(note) if top.is_empty() => note,
        Some(note) => format!("{note}: {top}"),
        None => top,
    };
    let mut fixed = 10 + 7 + 6 + 7 + 10 + 6 + 15;
    let mut spans = vec![
        Span::raw(fit(&u.name, 10, theme)),
        Span::styled(right(&format!("{:.1}", u.cpu_percent), 7), cpu),
        Span::styled(right(&format!("{:.2}", u.cpu_cores), 6), cpu),
        Span::styled(right(&format!("{:.1}", u.memory_percent), 7), mem),
        Span::styled(right(&format::bytes(u.memory_bytes), 10), mem),
    ];
    if gpus {
        fixed += GPU_COLUMNS;
        spans.extend(gpu_cells(u.gpu.as_ref()));
    }
    spans.extend([
        Span::raw(right(&u.processes.to_string(), 6)),
        Span::raw(" "),
        // Red only with something in it: an empty styled cell is a red bar on the selected row.
        if flags.is_empty() {
            Span::raw(" ".repeat(14))
        } else {
            Span::styled(fit(&flags, 14, theme), theme.level(Level::Crit))
        },
    ]);
    if width > fixed {
        spans.push(Span::raw(" "));
        spans.push(Span::raw(fit(&top, width - fixed - 1, theme)));
    }
    Line::from(spans)
}

/// Characters the GPU MEM and GPU% columns take.
const GPU_COLUMNS: usize = 10 + 6;

/// GPU MEM and GPU% (blank for a user holding no GPU).
fn gpu_cells<'a>(g: Option<&UserGpu>) -> [Span<'a>; 2] {
    match g {
        Some(g) => [
            Span::raw(right(&format::bytes(g.memory_bytes), 10)),
            Span::raw(right(&format!("{:.1}", g.utilization_percent), 6)),
        ],
        None => [Span::raw(" ".repeat(10)), Span::raw(" ".repeat(6))],
    }
}

/// `CPU 1h12m MEM 20m` for the user's ongoing persistence episodes.
fn persistent_flags(state: &AppState, user: &str) -> String {
    let Some(feed) = state.shown() else {
        return String::new();
    };
    feed.persistent
        .iter()
        .filter(|e| e.user == user && e.ended_at.is_none())
        .map(|e| {
            let what = match e.metric {
                Metric::Cpu => "CPU",
                Metric::Memory => "MEM",
                Metric::Disk => "DISK",
                Metric::GpuMemory | Metric::GpuUtilization => "GPU",
            };
            format!("{what} {}", format::duration(e.duration_secs))
        })
        .collect::<Vec<_>>()
        .join(" ")
}
