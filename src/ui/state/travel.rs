//! Time travel and the history charts: both look back over the selected range.

use super::overlay::Overlay;
use super::{AppState, Effect, Feed, Pane, TravelTo, View};
use crate::model::Timestamp;
use crate::ui::action::Action;
use crate::ui::history;

/// The history charts over [`AppState::range`], and optionally one user's series.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryView {
    pub user: Option<String>,
}

impl AppState {
    /// What the screen shows: the recorded moment while time travelling, else the live data.
    pub fn shown(&self) -> Option<&Feed> {
        self.travel.as_ref().or(self.feed.as_ref())
    }

    /// Show a recorded moment.
    pub fn arrive(&mut self, feed: Feed) {
        let pins = self.pins();
        self.travel = Some(feed);
        self.repin(pins, false);
    }

    /// Back to the live data.
    pub fn go_live(&mut self) {
        let pins = self.pins();
        self.travel = None;
        self.repin(pins, false);
    }

    /// The selected range's label and length in seconds.
    pub fn range(&self) -> (&'static str, i64) {
        history::RANGES[self.range.min(history::RANGES.len() - 1)]
    }

    /// How far `j` and `J` move in time travel: the selected history range.
    pub fn step_secs(&self) -> f64 {
        self.range().1 as f64
    }

    /// What the history view's user picker offers: the machine alone, then every user recorded
    /// in the loaded range.
    pub fn chart_choices(&self) -> Vec<Option<&str>> {
        let users = self.history.as_ref().map(|h| h.users.as_slice());
        std::iter::once(None)
            .chain(users.unwrap_or_default().iter().map(|u| Some(u.as_str())))
            .collect()
    }

    pub(super) fn open_history(&mut self) {
        let user = if self.focus == Pane::Users {
            self.visible_users()
                .get(self.user_selected)
                .map(|u| u.name.to_string())
        } else {
            None
        };
        self.view = View::History(HistoryView { user });
        self.history = None;
        self.load_history();
    }

    /// A longer or shorter range: the history view's span and the time-travel step.
    pub(super) fn change_range(&mut self, by: isize) {
        let last = history::RANGES.len() - 1;
        self.range = self.range.saturating_add_signed(by).min(last);
        self.load_history();
    }

    /// Open the history view's user picker on the user charted now.
    pub(super) fn open_picker(&mut self) {
        if self.history.is_none() {
            self.notify("the history is still loading", true);
            return;
        }
        let View::History(hv) = &self.view else {
            return;
        };
        let current = hv.user.as_deref();
        let at = self
            .chart_choices()
            .iter()
            .position(|c| *c == current)
            .unwrap_or(0);
        self.overlay = Some(Overlay::Picker(at));
    }

    /// Keys while the user picker is open: choose, chart the chosen one, or cancel.
    pub(super) fn picker_action(&mut self, mut at: usize, action: Action) -> Option<Overlay> {
        let last = self.chart_choices().len().saturating_sub(1);
        match action {
            Action::Up => at = at.saturating_sub(1),
            Action::Down => at = (at + 1).min(last),
            Action::Enter => {
                let chosen = self.chart_choices().get(at).map(|c| c.map(str::to_string));
                if let (Some(user), View::History(hv)) = (chosen, &mut self.view) {
                    hv.user = user;
                    self.history = None;
                    self.load_history();
                }
                return None;
            }
            Action::Back => return None,
            _ => {}
        }
        Some(Overlay::Picker(at))
    }

    /// Ask the run loop for the current history view's data, ending now, or at the recorded
    /// moment on screen while time travelling (the lead-up to what is being looked at).
    pub fn load_history(&mut self) {
        let (View::History(hv), Some(feed)) = (&self.view, self.shown()) else {
            return;
        };
        let until = feed.snapshot.at;
        let span = self.range().1;
        self.effects.push(Effect::LoadHistory {
            since: Timestamp(until.0 - span * 1000),
            until,
            user: hv.user.clone(),
        });
    }

    /// Time travel from the moment on screen (now, when live).
    pub(super) fn travel_to(&mut self, to: impl Fn(Timestamp) -> TravelTo) {
        if let Some(at) = self.shown().map(|f| f.snapshot.at) {
            self.effects.push(Effect::Travel(to(at)));
        }
    }

    /// Forward in time; only meaningful while travelling.
    pub(super) fn travel_forward(&mut self, to: impl Fn(Timestamp) -> TravelTo) {
        match &self.travel {
            Some(f) => {
                let at = f.snapshot.at;
                self.effects.push(Effect::Travel(to(at)));
            }
            None => self.notify("already live", true),
        }
    }
}
