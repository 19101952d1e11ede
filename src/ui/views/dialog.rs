//! The yes/no question in the middle of the screen.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Clear, Paragraph, Wrap};

use super::{clean, pane};
use crate::ui::state::Confirm;
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
    let block = pane(confirm.op.verb().to_string(), true, theme);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let lines = vec![
        Line::raw(clean(&confirm.question).into_owned()),
        Line::raw(""),
        Line::styled("y / Enter: yes    n / Esc: no", theme.key()),
    ];
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), inner);
}
