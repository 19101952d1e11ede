//! The process list, htop-like: everyone's or one user's, sorted, filtered, optionally a tree.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{clean, fit, pane, right, scroll_offset};
use crate::format;
use crate::model::{GpuStats, MemorySource, UserGpu, UserStats};
use crate::ui::columns::{self, Column};
use crate::ui::gpu::{self, ProcGpu};
use crate::ui::procs::{ProcRow, shown_command};
use crate::ui::state::{AppState, ProcessView};
use crate::ui::theme::{Level, Theme};

/// Where the list's parts are inside the pane: the header line's y, the first row's y, how
/// many rows fit, and the first row index shown. Drawing and mouse clicks both use it.
pub struct ListGeometry {
    pub header_y: u16,
    pub first_y: u16,
    pub height: usize,
    pub offset: usize,
    pub x: u16,
    pub width: usize,
}

pub fn geometry(area: Rect, state: &AppState, pv: &ProcessView) -> ListGeometry {
    let inner = pane(String::new(), true, &super::theme(state)).inner(area);
    let mut above = 0u16;
    if let Some(u) = pv
        .user
        .as_deref()
        .and_then(|name| state.shown()?.snapshot.user(name))
    {
        above += 1 + u16::from(u.gpu.is_some());
    }
    if pv.editing || !pv.filter.is_empty() {
        above += 1;
    }
    if pv.searching || !pv.search.is_empty() {
        above += 1;
    }
    let height = (inner.height.saturating_sub(above + 1)) as usize;
    ListGeometry {
        header_y: inner.y + above,
        first_y: inner.y + above + 1,
        height,
        offset: scroll_offset(pv.selected, height),
        x: inner.x,
        width: inner.width as usize,
    }
}

pub fn draw(frame: &mut Frame<'_>, area: Rect, state: &AppState, pv: &ProcessView, theme: &Theme) {
    let rows = state.process_rows();
    let who = pv.user.as_deref().map_or("all users".into(), clean);
    let arrow = pv.sort.direction(pv.inverted);
    let mut title = format!(
        "Processes: {who} ({}) sort {} {arrow}",
        rows.len(),
        pv.sort.label()
    );
    if pv.tree {
        title.push_str(" tree");
    }
    let recorded = state.travel.is_some();
    if recorded {
        title.push_str(" - recorded: top processes, S THR TIME not recorded");
    }
    if pv.hscroll > 0 {
        title.push_str(&format!(" command from column {}", pv.hscroll + 1));
    }
    let block = pane(title, true, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let geo = geometry(area, state, pv);
    let width = geo.width;
    let mut lines = Vec::new();
    let snap = state.shown().map(|f| &f.snapshot);
    if let Some((u, snap)) = pv
        .user
        .as_deref()
        .and_then(|name| Some((snap?.user(name)?, snap?)))
    {
        lines.push(user_summary(u, theme, width));
        if let Some(g) = &u.gpu {
            lines.push(user_gpu(u.uid, g, &snap.gpu, theme, width));
        }
    }
    if pv.editing || !pv.filter.is_empty() {
        let cursor = if pv.editing { "_" } else { "" };
        lines.push(Line::from(vec![
            Span::styled("Filter: ", theme.key()),
            Span::raw(format!("{}{cursor}", clean(&pv.filter))),
            Span::styled("  (text, user=NAME, cmd=TEXT, pid=N)", theme.dim()),
        ]));
    }
    if pv.searching || !pv.search.is_empty() {
        let cursor = if pv.searching { "_" } else { "" };
        lines.push(Line::from(vec![
            Span::styled("Search: ", theme.key()),
            Span::raw(format!("{}{cursor}", clean(&pv.search))),
            Span::styled("  (F3 next match)", theme.dim()),
        ]));
    }
    let columns = state.columns();
    let layout = columns::layout(&columns, width);
    let mut header = Vec::new();
    for &(c, _, w) in &layout {
        let mut name = c.header().to_string();
        if c.sort() == pv.sort {
            name.push(if theme.ascii {
                '*'
            } else if pv.inverted {
                '▲'
            } else {
                '▼'
            });
        }
        header.push(Span::styled(
            cell(&name, w, c.right_aligned(), theme),
            if c.sort() == pv.sort {
                theme.key()
            } else {
                theme.heading()
            },
        ));
        header.push(Span::raw(" "));
    }
    lines.push(Line::from(header));
    let limit = state.config.users.cpu_threshold.max(1.0);
    let gpu = snap.map(|s| gpu::by_pid(&s.gpu)).unwrap_or_default();
    for (i, r) in rows.iter().enumerate().skip(geo.offset).take(geo.height) {
        let g = gpu::of(&gpu, r.process);
        let mut line = row(r, g, &layout, pv.hscroll, recorded, theme, limit);
        if i == pv.selected {
            line = line.patch_style(theme.selected());
        }
        lines.push(line);
    }
    if rows.is_empty() {
        lines.push(Line::styled("no process matches", theme.dim()));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// `s` fitted to `w` characters, aligned.
fn cell(s: &str, w: usize, right_aligned: bool, theme: &Theme) -> String {
    if right_aligned {
        let cut = crate::format::truncate(&clean(s), w, theme.ascii);
        right(&cut, w)
    } else {
        fit(s, w, theme)
    }
}

/// How the user's totals were obtained, where that differs from adding up the rows below.
fn user_summary<'a>(u: &UserStats, theme: &Theme, width: usize) -> Line<'a> {
    let mut text = format!("{:.2} cores", u.cpu_cores);
    if u.exited_cpu_cores >= 0.01 {
        text.push_str(&format!(
            " (incl. {:.2} of processes that ended between samples)",
            u.exited_cpu_cores
        ));
    }
    text.push_str(&format!("  memory {}", format::bytes(u.memory_bytes)));
    match u.memory_source {
        MemorySource::Rss => text.push_str(" (RSS summed)"),
        MemorySource::Pss | MemorySource::Partial => text.push_str(&format!(
            " (PSS{}: a page shared by several processes counted once; RSS summed {})",
            if u.memory_source == MemorySource::Partial {
                " for most"
            } else {
                ""
            },
            format::bytes(u.rss_bytes)
        )),
    }
    Line::styled(fit(&text, width, theme), theme.dim())
}

/// `GPU 3 devices, 70.0 GiB (13.7% of GPU memory), 36.0% of all GPUs busy: 0 70.0 GiB 95%, …`:
/// what the user holds, and on which devices (those only live: a recorded moment keeps the
/// totals).
fn user_gpu<'a>(uid: u32, g: &UserGpu, gpus: &GpuStats, theme: &Theme, width: usize) -> Line<'a> {
    let mut text = format!(
        "GPU {} device{}, {} ({:.1}% of GPU memory), {:.1}% of all GPUs busy",
        g.devices,
        if g.devices == 1 { "" } else { "s" },
        format::bytes(g.memory_bytes),
        g.memory_percent,
        g.utilization_percent
    );
    let on = gpu::user_devices(gpus, uid);
    if !on.is_empty() {
        text.push_str(": ");
        text.push_str(&on);
    } else if !g.device_ids.is_empty() {
        let labels: Vec<String> = g
            .device_ids
            .iter()
            .map(|id| gpus.label_of(id).unwrap_or_else(|| id.to_string()))
            .collect();
        text.push_str(": ");
        text.push_str(&labels.join(", "));
    }
    Line::styled(fit(&text, width, theme), theme.dim())
}

/// One process: each column's cell; COMMAND carries the tree's lines and starts `hscroll`
/// characters in (Left / Right scroll a long command line).
fn row<'a>(
    r: &ProcRow<'_>,
    gpu: Option<&ProcGpu<'_>>,
    layout: &[(Column, usize, usize)],
    hscroll: usize,
    recorded: bool,
    theme: &Theme,
    limit: f64,
) -> Line<'a> {
    let p = r.process;
    let mut spans = Vec::with_capacity(layout.len() * 2);
    for &(c, _, w) in layout {
        let span = match c {
            Column::Command => {
                let text = format!(
                    "{}{}{}",
                    r.branch(theme.ascii),
                    r.fold_mark(),
                    clean(shown_command(p))
                );
                let shifted: String = text.chars().skip(hscroll).collect();
                Span::raw(fit(&shifted, w, theme))
            }
            // What a recorded moment does not keep is a dash, not a made-up figure.
            Column::State | Column::Threads | Column::Time if recorded => {
                Span::styled(cell("-", w, c.right_aligned(), theme), theme.dim())
            }
            Column::Cpu => Span::styled(
                cell(&c.text(p, gpu), w, true, theme),
                theme.level(Level::of(p.cpu_percent, limit * 4.0)),
            ),
            _ => Span::raw(cell(&c.text(p, gpu), w, c.right_aligned(), theme)),
        };
        spans.push(span);
        spans.push(Span::raw(" "));
    }
    Line::from(spans)
}
