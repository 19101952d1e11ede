//! The `?` overlay, generated from the key table so it cannot drift from what the keys do.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::pane;
use crate::ui::keymap::{BINDINGS, Scope};
use crate::ui::state::AppState;
use crate::ui::theme::Theme;

const LABEL_W: usize = 11;

fn lines<'a>(theme: &Theme) -> Vec<Line<'a>> {
    let mut out = Vec::new();
    for scope in [
        Scope::Everywhere,
        Scope::Main,
        Scope::Travel,
        Scope::Processes,
        Scope::History,
    ] {
        out.push(Line::styled(scope.heading(), theme.heading()));
        // An empty help is covered by the line before it (`PgUp PgDn`).
        for b in BINDINGS
            .iter()
            .filter(|b| b.scope == scope && !b.help.is_empty())
        {
            out.push(Line::from(vec![
                Span::styled(format!("  {:<LABEL_W$}", b.label), theme.key()),
                Span::raw(b.help),
            ]));
        }
    }
    out
}

pub fn draw(frame: &mut Frame<'_>, area: Rect, _state: &AppState, theme: &Theme) {
    let all = lines(theme);
    let w = area.width.saturating_sub(2).min(76);
    let one_column = all.len() as u16 + 2 <= area.height.saturating_sub(1);
    let rows = if one_column {
        all.len()
    } else {
        all.len().div_ceil(2)
    };
    // Over the header too: on 80x24 every line needs the height.
    let h = (rows as u16 + 2).min(area.height.saturating_sub(1));
    let rect = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y,
        width: w,
        height: h,
    };
    frame.render_widget(Clear, rect);
    let block = pane("Help - any key closes".into(), true, theme);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    // One column when it fits, else two side by side.
    if all.len() <= inner.height as usize {
        frame.render_widget(Paragraph::new(all), inner);
        return;
    }
    let half = all.len().div_ceil(2);
    let mut left = all;
    let rightl = left.split_off(half);
    let [l, r] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(inner);
    frame.render_widget(Paragraph::new(left), l);
    frame.render_widget(Paragraph::new(rightl), r);
}
