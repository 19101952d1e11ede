//! The process list, htop-like: everyone's or one user's, sorted, filtered, optionally a tree.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{clean, fit, pane, right, scroll_offset};
use crate::format;
use crate::model::{MemorySource, UserStats};
use crate::ui::procs::{ProcRow, shown_command};
use crate::ui::state::{AppState, ProcessView};
use crate::ui::theme::{Level, Theme};

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
    let block = pane(title, true, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let width = inner.width as usize;
    let mut lines = Vec::new();
    if let Some(line) = pv
        .user
        .as_deref()
        .and_then(|name| state.shown()?.snapshot.user(name))
        .map(|u| user_summary(u, theme, width))
    {
        lines.push(line);
    }
    if pv.editing || !pv.filter.is_empty() {
        let cursor = if pv.editing { "_" } else { "" };
        lines.push(Line::from(vec![
            Span::styled("Filter: ", theme.key()),
            Span::raw(format!("{}{cursor}", clean(&pv.filter))),
            Span::styled("  (text, user=NAME, cmd=TEXT, pid=N)", theme.dim()),
        ]));
    }
    lines.push(Line::styled(
        fit(
            &format!(
                "{:>7} {:<9} S {:>6}{:>6}{:>11}{:>5}{:>9} COMMAND",
                "PID", "USER", "CPU%", "MEM%", "RES", "THR", "TIME"
            ),
            width,
            theme,
        ),
        theme.heading(),
    ));
    let height = (inner.height as usize).saturating_sub(lines.len());
    let offset = scroll_offset(pv.selected, height);
    let limit = state.config.users.cpu_threshold.max(1.0);
    for (i, r) in rows.iter().enumerate().skip(offset).take(height) {
        let mut line = row(r, theme, width, limit);
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

fn row<'a>(r: &ProcRow<'_>, theme: &Theme, width: usize, limit: f64) -> Line<'a> {
    let p = r.process;
    let fixed = 7 + 1 + 9 + 3 + 6 + 6 + 11 + 5 + 9 + 1;
    let branch = r.branch(theme.ascii);
    let cmd = shown_command(p);
    let cpu_style = theme.level(Level::of(p.cpu_percent, limit * 4.0));
    Line::from(vec![
        Span::raw(right(&p.pid.to_string(), 7)),
        Span::raw(" "),
        Span::raw(fit(&p.user, 9, theme)),
        Span::raw(format!(" {} ", clean(&p.state.to_string()))),
        Span::styled(right(&format!("{:.1}", p.cpu_percent), 6), cpu_style),
        Span::raw(right(&format!("{:.1}", p.memory_percent), 6)),
        Span::raw(right(&format::bytes(p.memory_bytes), 11)),
        Span::raw(right(&p.threads.to_string(), 5)),
        Span::raw(right(&cpu_time(p.cpu_time_secs), 9)),
        Span::raw(" "),
        Span::raw(fit(
            &format!("{branch}{}", clean(cmd)),
            width.saturating_sub(fixed),
            theme,
        )),
    ])
}
