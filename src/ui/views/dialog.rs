//! The yes/no question in the middle of the screen.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Clear, Paragraph, Wrap};

use super::{clean, pane};
use crate::ui::signal::SIGNALS;
use crate::ui::state::{ColumnChooser, Confirm, ReniceDialog, SignalDialog};
use crate::ui::theme::Theme;

pub fn draw(frame: &mut Frame<'_>, area: Rect, confirm: &Confirm, theme: &Theme) {
    let w = area.width.saturating_sub(4).min(70);
    let rect = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + area.height / 3,
        width: w,
        height: 6.min(area.height),
    };
    frame.render_widget(Clear, rect);
    let block = pane(clean(&confirm.title).into_owned(), true, theme);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let lines = vec![
        Line::raw(clean(&confirm.question).into_owned()),
        Line::raw(""),
        Line::styled("y / Enter: yes    n / Esc: no", theme.key()),
    ];
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), inner);
}

/// The signal menu: one line per signal, the chosen one highlighted, scrolled to keep it on
/// screen.
pub fn draw_signal(frame: &mut Frame<'_>, area: Rect, d: &SignalDialog, theme: &Theme) {
    let w = area.width.saturating_sub(4).min(60);
    let h = (SIGNALS.len() as u16 + 4).min(area.height).min(20);
    let rect = super::popup(frame, area, w, h);
    let title = format!("Signal {}", clean(&d.who));
    let block = pane(title, true, theme);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let rows = usize::from(inner.height.saturating_sub(1));
    let first = super::scroll_offset(d.selected, rows);
    let mut lines: Vec<Line<'_>> = SIGNALS
        .iter()
        .enumerate()
        .skip(first)
        .take(rows)
        .map(|(i, s)| {
            let line = Line::raw(format!(
                " {:>2} SIG{:<7} {}",
                s.signal.as_raw(),
                s.name,
                s.what
            ));
            if i == d.selected {
                line.patch_style(theme.selected())
            } else {
                line
            }
        })
        .collect();
    lines.push(Line::styled(" Enter choose   Esc cancel", theme.dim()));
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The renice dialog: the current nice value and the one chosen.
pub fn draw_renice(frame: &mut Frame<'_>, area: Rect, d: &ReniceDialog, theme: &Theme) {
    let w = area.width.saturating_sub(4).min(64);
    let rect = super::popup(frame, area, w, 7);
    let block = pane(format!("Renice {}", clean(&d.who)), true, theme);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let (now, to) = match (d.current, d.target()) {
        (Some(c), Some(t)) => (c.to_string(), t.to_string()),
        _ => ("reading...".to_string(), format!("{:+}", d.step)),
    };
    let lines = vec![
        Line::raw(format!(" nice now {now}   set to {to}")),
        Line::styled(
            " -20 runs first, 19 last; only root may go lower",
            theme.dim(),
        ),
        Line::raw(""),
        Line::styled(
            " F7/Up nice -1  F8/Down nice +1  Enter set  Esc cancel",
            theme.key(),
        ),
    ];
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The column chooser: every column, shown ones ticked, in the order the list would have them.
pub fn draw_columns(frame: &mut Frame<'_>, area: Rect, c: &ColumnChooser, theme: &Theme) {
    let w = area.width.saturating_sub(4).min(48);
    let h = (c.rows.len() as u16 + 4).min(area.height);
    let rect = super::popup(frame, area, w, h);
    let block = pane("Columns".into(), true, theme);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let rows = usize::from(inner.height.saturating_sub(1));
    let first = super::scroll_offset(c.at, rows);
    let mut lines: Vec<Line<'_>> = c
        .rows
        .iter()
        .enumerate()
        .skip(first)
        .take(rows)
        .map(|(i, (col, on))| {
            let tick = if *on { "[x]" } else { "[ ]" };
            let line = Line::raw(format!(" {tick} {:<8} {}", col.header(), col.name()));
            if i == c.at {
                line.patch_style(theme.selected())
            } else {
                line
            }
        })
        .collect();
    lines.push(Line::styled(
        " Space show/hide  F7/F8 move  Enter save",
        theme.dim(),
    ));
    frame.render_widget(Paragraph::new(lines), inner);
}
