//! The one-line reminder of the keys that matter in the current view.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::ui::keymap;
use crate::ui::state::{AppState, Overlay};
use crate::ui::theme::Theme;

pub fn draw(frame: &mut Frame<'_>, area: Rect, state: &AppState, theme: &Theme) {
    if let Some(Overlay::Goto(text)) = &state.overlay {
        let line = Line::from(vec![
            Span::styled(" Go to: ", theme.key()),
            Span::raw(format!("{}_", super::clean(text))),
            Span::styled(
                "  (6h, 30m, 2026-11-22T03:00; Enter go, Esc cancel)",
                theme.dim(),
            ),
        ]);
        frame.render_widget(Paragraph::new(line), area);
        return;
    }
    if let Some(n) = &state.notice {
        let style = if n.error {
            theme.level(crate::ui::theme::Level::Crit)
        } else {
            theme.level(crate::ui::theme::Level::Ok)
        };
        let line = Line::styled(format!(" {}", super::clean(&n.text)), style);
        frame.render_widget(Paragraph::new(line), area);
        return;
    }
    let mut hints = keymap::hints(state.input_mode(), state.options.readonly);
    if state.input_mode() == keymap::InputMode::Help
        && keymap::help_columns(frame.area().width, frame.area().height) != 0
    {
        hints = vec![("any key", "closes the help")];
    }
    let mut spans = Vec::new();
    for (key, what) in hints {
        spans.push(Span::styled(format!(" {key}"), theme.key()));
        spans.push(Span::raw(format!(" {what} ")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
