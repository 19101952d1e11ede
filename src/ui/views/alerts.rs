//! Open and acknowledged alerts, newest first.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{fit, pane, scroll_offset};
use crate::format;
use crate::model::AlertState;
use crate::ui::state::AppState;
use crate::ui::theme::Theme;

pub fn draw(frame: &mut Frame<'_>, area: Rect, state: &AppState, theme: &Theme, focused: bool) {
    let alerts = state.alerts();
    // The title stays short so a narrow terminal keeps the count; why alerts come from this
    // session only is a line of its own.
    let title = match &state.alerts_source {
        Some(_) => format!("Alerts {} (this session)", alerts.len()),
        None => format!("Alerts {}", alerts.len()),
    };
    let block = pane(title, focused, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(feed) = state.shown() else { return };
    let now = feed.snapshot.at;
    let width = inner.width as usize;
    let mut lines = Vec::new();
    if let Some(src) = &state.alerts_source {
        lines.push(Line::styled(fit(src, width, theme), theme.dim()));
    }
    let rows = (inner.height as usize).saturating_sub(1 + lines.len());
    lines.push(Line::styled(
        fit(
            &format!(
                "{:<8} {:>6} {:<3} {:<12} MESSAGE",
                "SEVERITY", "AGE", "ACK", "SUBJECT"
            ),
            width,
            theme,
        ),
        theme.heading(),
    ));
    if alerts.is_empty() {
        lines.push(Line::styled("no open alerts", theme.dim()));
    }
    let offset = scroll_offset(state.alert_selected, rows);
    for (i, row) in alerts.iter().enumerate().skip(offset).take(rows) {
        let a = row.alert;
        let age = format::duration(now.secs_since(a.opened_at).max(0.0) as u64);
        let ack = if a.state == AlertState::Acknowledged {
            "ack"
        } else {
            ""
        };
        let fixed = 8 + 7 + 4 + 13 + 1;
        let mut line = Line::from(vec![
            Span::styled(
                fit(a.severity.as_str(), 8, theme),
                theme.severity(a.severity),
            ),
            Span::raw(format!(" {age:>6} {ack:<3} ")),
            Span::raw(fit(&a.key.subject, 12, theme)),
            Span::raw(" "),
            Span::raw(fit(&a.message, width.saturating_sub(fixed), theme)),
        ]);
        if focused && i == state.alert_selected {
            line = line.patch_style(theme.selected());
        }
        lines.push(line);
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The index of the alert drawn at screen row `y` of the pane at `area`, if any.
pub fn row_at(state: &AppState, area: Rect, y: u16) -> Option<usize> {
    let note = u16::from(state.alerts_source.is_some());
    let rows = (area.height as usize).saturating_sub(3 + usize::from(note));
    let line = usize::from(y.checked_sub(area.y + 2 + note)?);
    let i = scroll_offset(state.alert_selected, rows) + line;
    (line < rows && i < state.alerts().len()).then_some(i)
}
