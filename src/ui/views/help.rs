//! The `?` overlay, generated from the key table so it cannot drift from what the keys do.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::pane;
use crate::ui::keymap::{BINDINGS, HELP_SCOPES};
use crate::ui::theme::Theme;

const LABEL_W: usize = 11;

fn lines<'a>(theme: &Theme) -> Vec<Line<'a>> {
    let mut out = Vec::new();
    for scope in HELP_SCOPES {
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

/// One column when it fits, else two side by side; when even two do not fit (a small terminal),
/// one column that scrolls, with the title saying where it is.
pub fn draw(frame: &mut Frame<'_>, area: Rect, scroll: usize, theme: &Theme) {
    let all = lines(theme);
    let w = area.width.saturating_sub(2).min(76);
    let room = area.height.saturating_sub(3) as usize;
    let columns = crate::ui::keymap::help_columns(area.width, area.height);
    let rows = match columns {
        1 => all.len(),
        2 => all.len().div_ceil(2),
        _ => room,
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
    let title = if columns == 0 {
        let first = scroll.min(all.len().saturating_sub(room));
        let last = (first + room).min(all.len());
        format!("Help {}-{} of {}, Up/Down", first + 1, last, all.len())
    } else {
        "Help - any key closes".to_string()
    };
    let block = pane(title, true, theme);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    match columns {
        1 => frame.render_widget(Paragraph::new(all), inner),
        2 => {
            let half = all.len().div_ceil(2);
            let mut left = all;
            let rightl = left.split_off(half);
            let [l, r] =
                Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                    .areas(inner);
            frame.render_widget(Paragraph::new(left), l);
            frame.render_widget(Paragraph::new(rightl), r);
        }
        _ => {
            let first = scroll.min(all.len().saturating_sub(inner.height as usize));
            let shown: Vec<Line<'_>> = all.into_iter().skip(first).collect();
            frame.render_widget(Paragraph::new(shown), inner);
        }
    }
}
