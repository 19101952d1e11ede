//! One widget per view, each drawing from `AppState` only.
//!
//! Views never change state and never read anything but the state, which is what makes the
//! TestBackend snapshots a faithful picture of the real screen. Every string that came from
//! outside (process, command and user names, alert subjects) goes through [`clean`] before it
//! is drawn, even though the collector already sanitised it: data read back from the database,
//! or built by a test, must not be able to write escape sequences to an admin's terminal.

mod alert;
pub(crate) mod alerts;
mod details;
mod dialog;
pub(crate) mod header;
mod help;
mod hints;
mod history;
pub(crate) mod processes;
mod system;
pub(crate) mod users;

use std::borrow::Cow;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph};

use super::state::{AppState, Overlay, Pane, View};
use super::theme::Theme;
use crate::sanitize;

/// Text from outside, safe to draw.
pub fn clean(s: &str) -> Cow<'_, str> {
    if sanitize::is_clean(s) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(sanitize::clean(s))
    }
}

/// `s` cleaned and cut or padded to exactly `width` characters.
pub fn fit(s: &str, width: usize, theme: &Theme) -> String {
    let cut = crate::format::truncate(&clean(s), width, theme.ascii);
    format!("{cut:<width$}")
}

/// Right-aligned in `width` characters.
pub fn right(s: &str, width: usize) -> String {
    format!("{s:>width$}")
}

pub fn theme(state: &AppState) -> Theme {
    Theme {
        color: state.options.color,
        ascii: state.options.ascii,
    }
}

/// A bordered pane whose border shows whether it has the focus.
pub fn pane<'a>(title: String, focused: bool, theme: &Theme) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_set(theme.border_set())
        .border_style(theme.border(focused))
        .title(Line::styled(format!(" {title} "), theme.title()))
}

/// The first row to draw so that `selected` is on screen in `height` rows.
/// A `w` x `h` box centred in `area`, cleared, for a dialog drawn over the screen.
pub fn popup(frame: &mut Frame<'_>, area: Rect, w: u16, h: u16) -> Rect {
    let rect = Rect {
        x: area.x + area.width.saturating_sub(w) / 2,
        y: area.y + area.height.saturating_sub(h) / 2,
        width: w.min(area.width),
        height: h.min(area.height),
    };
    frame.render_widget(ratatui::widgets::Clear, rect);
    rect
}

pub fn scroll_offset(selected: usize, height: usize) -> usize {
    if height == 0 {
        0
    } else {
        selected.saturating_sub(height - 1)
    }
}

/// Draw the whole screen.
pub fn draw(frame: &mut Frame<'_>, state: &AppState) {
    let theme = theme(state);
    let area = frame.area();
    let [top, body, bottom] = Layout::vertical([
        Constraint::Length(header::height(state)),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    header::draw(frame, top, state, &theme);
    hints::draw(frame, bottom, state, &theme);
    if state.shown().is_none() {
        let msg = Paragraph::new("Collecting the first sample...").block(pane(
            "sysmon".into(),
            false,
            &theme,
        ));
        frame.render_widget(msg, body);
    } else {
        match &state.view {
            View::Main => draw_main(frame, body, state, &theme),
            View::Processes(pv) => processes::draw(frame, body, state, pv, &theme),
            View::Alert(key) => alert::draw(frame, body, state, key, &theme),
            View::History(hv) => history::draw(frame, body, state, hv, &theme),
            View::Details(dv) => details::draw(frame, body, state, dv, &theme),
        }
    }
    match &state.overlay {
        Some(Overlay::Signal(d)) => dialog::draw_signal(frame, area, d, &theme),
        Some(Overlay::Renice(d)) => dialog::draw_renice(frame, area, d, &theme),
        Some(Overlay::Columns(c)) => dialog::draw_columns(frame, area, c, &theme),
        Some(Overlay::Confirm(confirm)) => dialog::draw(frame, area, confirm, &theme),
        Some(Overlay::Help { scroll }) => help::draw(frame, area, *scroll, &theme),
        Some(Overlay::Picker(at)) => history::picker(frame, body, state, *at, &theme),
        // The time prompt replaces the hint bar.
        Some(Overlay::Goto(_)) | None => {}
    }
}

/// Where the main screen's panes are: system, users, alerts (a pane without room is None).
/// Wide terminals: system above alerts on the left, users on the right at full height.
/// Otherwise stacked, with the system pane cut to its key figures. Drawing and mouse clicks
/// both use it.
pub fn main_areas(state: &AppState, area: Rect) -> [Option<Rect>; 3] {
    if area.width >= 140 {
        let [left, rightp] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(area);
        let sys_h = system::wanted_height(state, left.width).min(left.height.saturating_sub(6));
        let [s, a] = Layout::vertical([Constraint::Length(sys_h), Constraint::Min(0)]).areas(left);
        return [Some(s), Some(rightp), Some(a)];
    }
    // The users pane keeps its heading and at least one row at any size.
    let alerts_h = alerts_height(state, area.height).min(area.height.saturating_sub(USERS_MIN));
    let [upper, lower] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(alerts_h)]).areas(area);
    if upper.height < USERS_MIN + SYSTEM_MIN {
        // No room for both: the header carries the status, and the system pane is drawn in the
        // users' place only while it has the focus.
        return if state.focus == Pane::System {
            [Some(upper), None, Some(lower)]
        } else {
            [None, Some(upper), Some(lower)]
        };
    }
    let sys_h = system::stacked_height(state, upper.height, upper.width);
    let [s, u] = Layout::vertical([Constraint::Length(sys_h), Constraint::Min(0)]).areas(upper);
    [Some(s), Some(u), Some(lower)]
}

fn draw_main(frame: &mut Frame<'_>, area: Rect, state: &AppState, theme: &Theme) {
    let [s, u, a] = main_areas(state, area);
    if let Some(s) = s {
        system::draw(frame, s, state, theme, state.focus == Pane::System);
    }
    if let Some(u) = u {
        users::draw(frame, u, state, theme, state.focus == Pane::Users);
    }
    if let Some(a) = a {
        alerts::draw(frame, a, state, theme, state.focus == Pane::Alerts);
    }
}

/// The body: everything between the header and the hint bar.
pub fn body_area(state: &AppState, area: Rect) -> Rect {
    let [_, body, _] = Layout::vertical([
        Constraint::Length(header::height(state)),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    body
}

/// Borders, the heading and one user.
const USERS_MIN: u16 = 4;
/// Borders and one line of figures.
const SYSTEM_MIN: u16 = 3;

/// Enough rows for the open alerts, within limits that leave room for the users.
fn alerts_height(state: &AppState, body: u16) -> u16 {
    let n = state.alerts().len() as u16 + u16::from(state.alerts_source.is_some());
    let max = (body / 3).max(4);
    (n.max(1) + 3).min(max)
}
