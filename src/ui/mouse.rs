//! Mouse events to actions: a click selects a pane or a row, or sorts by a column header; the
//! wheel scrolls.
//!
//! Pure, like the keymap: it takes the state and the terminal's size and recomputes where things
//! are with the same layout functions the views draw with, so a click lands on what is drawn
//! there. Nothing here changes state; the actions go through `AppState::apply` like keys.

use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Rect;

use super::action::Action;
use super::columns;
use super::state::{AppState, Pane, View};
use super::views;

/// Rows one notch of the wheel moves.
const WHEEL_ROWS: usize = 3;

fn contains(r: Rect, x: u16, y: u16) -> bool {
    x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height
}

/// The actions for a mouse event on a terminal of `size`.
pub fn actions(state: &AppState, size: Rect, ev: MouseEvent) -> Vec<Action> {
    let (x, y) = (ev.column, ev.row);
    match ev.kind {
        MouseEventKind::ScrollUp => return vec![Action::Up; WHEEL_ROWS],
        MouseEventKind::ScrollDown => return vec![Action::Down; WHEEL_ROWS],
        MouseEventKind::Down(MouseButton::Left) => {}
        _ => return Vec::new(),
    }
    // A dialog takes the keys; a click does not reach behind it.
    if state.overlay.is_some() || state.shown().is_none() {
        return Vec::new();
    }
    let body = views::body_area(state, size);
    match &state.view {
        View::Main => {
            let [sys, users, alerts] = views::main_areas(state, body);
            let hit = |r: Option<Rect>| r.filter(|r| contains(*r, x, y));
            if hit(sys).is_some() {
                return vec![Action::Focus(Pane::System)];
            }
            if let Some(r) = hit(users) {
                let mut out = vec![Action::Focus(Pane::Users)];
                out.extend(views::users::row_at(state, r, y).map(Action::Select));
                return out;
            }
            if let Some(r) = hit(alerts) {
                let mut out = vec![Action::Focus(Pane::Alerts)];
                out.extend(views::alerts::row_at(state, r, y).map(Action::Select));
                return out;
            }
            Vec::new()
        }
        View::Processes(pv) => {
            if !contains(body, x, y) {
                return Vec::new();
            }
            let geo = views::processes::geometry(body, state, pv);
            let rx = usize::from(x.saturating_sub(geo.x));
            if y == geo.header_y {
                return columns::at(&state.columns(), geo.width, rx)
                    .map(|c| vec![Action::SortToggle(c.sort())])
                    .unwrap_or_default();
            }
            let line = y.checked_sub(geo.first_y).map(usize::from);
            match line {
                Some(l) if l < geo.height && geo.offset + l < state.process_rows().len() => {
                    vec![Action::Select(geo.offset + l)]
                }
                _ => Vec::new(),
            }
        }
        View::Alert(_) | View::History(_) | View::Details(_) => Vec::new(),
    }
}
