//! The one overlay on screen at a time, and what keys do while it is open.
//!
//! Help, a yes/no question, the signal menu, the time prompt and the history's user picker are
//! all modal: while one is open it takes every key. So the state holds at most one
//! ([`AppState::overlay`]), and the three places that care (where keys go, [`Overlay::mode`];
//! what a key does, [`AppState::overlay_action`]; what is drawn, `views::draw`) each match on
//! this enum. Adding a dialog is adding a variant; the compiler points at the rest.

use super::{AppState, Effect, TravelTo};
use crate::model::Timestamp;
use crate::ui::action::Action;
use crate::ui::columns::Column;
use crate::ui::keymap::InputMode;

#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    /// The key table, scrolled down by `scroll` lines.
    Help { scroll: usize },
    /// A yes/no question.
    Confirm(Confirm),
    /// The signal menu for one process or all of a user's.
    Signal(SignalDialog),
    /// Choosing a nice value for one process.
    Renice(ReniceDialog),
    /// The time being typed after `b`.
    Goto(String),
    /// The history view's user picker: the highlighted row of [`AppState::chart_choices`].
    Picker(usize),
    /// Choosing the process list's columns and their order.
    Columns(ColumnChooser),
}

/// Every column, shown or not, in the order chosen; the cursor's row.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnChooser {
    pub rows: Vec<(Column, bool)>,
    pub at: usize,
}

impl ColumnChooser {
    /// The chosen columns first, in their order, then the others (the GPU ones only on a
    /// machine with `gpus`).
    pub fn new(shown: &[Column], gpus: bool) -> Self {
        let mut rows: Vec<(Column, bool)> = shown.iter().map(|c| (*c, true)).collect();
        rows.extend(
            crate::ui::columns::ALL
                .iter()
                .filter(|c| !shown.contains(c) && (gpus || !c.is_gpu()))
                .map(|c| (*c, false)),
        );
        ColumnChooser { rows, at: 0 }
    }

    pub fn chosen(&self) -> Vec<String> {
        self.rows
            .iter()
            .filter(|(_, on)| *on)
            .map(|(c, _)| c.name().to_string())
            .collect()
    }
}

impl Overlay {
    /// Where keys go while this overlay is open.
    pub fn mode(&self) -> InputMode {
        match self {
            Overlay::Help { .. } => InputMode::Help,
            Overlay::Confirm(_) => InputMode::Confirm,
            Overlay::Signal(_) => InputMode::Signal,
            Overlay::Renice(_) => InputMode::Renice,
            Overlay::Goto(_) => InputMode::Goto,
            Overlay::Picker(_) => InputMode::UserPicker,
            Overlay::Columns(_) => InputMode::Columns,
        }
    }
}

/// A yes/no question before an action that changes shared state or hits a process.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirm {
    pub title: String,
    pub question: String,
    /// What a yes does.
    pub effect: Effect,
}

/// The signal menu for one process, or for every process of one user.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalDialog {
    /// `process 2002 (python3, user alice)` or `all 4 processes of user bob`, cleaned.
    pub who: String,
    /// Pid and start time of each process: a pid whose start time has changed by the time the
    /// signal goes out is another process, and is left alone.
    pub targets: Vec<(u32, Timestamp)>,
    /// Index into [`crate::ui::signal::SIGNALS`].
    pub selected: usize,
}

/// The nice value chosen for one process.
#[derive(Debug, Clone, PartialEq)]
pub struct ReniceDialog {
    pub who: String,
    pub pid: u32,
    pub start_time: Timestamp,
    /// What the process has now, once read (see [`AppState::details`]).
    pub current: Option<i32>,
    /// What was chosen, relative to `current` until that is known.
    pub step: i32,
}

impl ReniceDialog {
    /// The nice value a yes would set, when the current one is known.
    pub fn target(&self) -> Option<i32> {
        let range = crate::ui::signal::NICE_RANGE;
        self.current
            .map(|c| (c + self.step).clamp(*range.start(), *range.end()))
    }
}

impl AppState {
    /// A key while `overlay` is open. The overlay has been taken out of the state; each arm
    /// returns what is open next (itself, another overlay, or nothing).
    pub(super) fn overlay_action(&mut self, overlay: Overlay, action: Action) {
        let keep = match overlay {
            // Only an explicit yes acts; any other key is a no.
            Overlay::Confirm(confirm) => {
                if action == Action::Confirm {
                    self.effects.push(confirm.effect);
                }
                None
            }
            Overlay::Help { scroll } => self.help_action(scroll, action),
            Overlay::Signal(d) => self.signal_action(d, action),
            Overlay::Renice(d) => self.renice_action(d, action),
            Overlay::Goto(text) => self.goto_action(text, action),
            Overlay::Picker(at) => self.picker_action(at, action),
            Overlay::Columns(c) => self.columns_action(c, action),
        };
        self.overlay = keep;
    }

    /// Scroll keys move the help; anything else closes it and does nothing else, because a
    /// stray key while reading must not act on a row the user cannot see.
    fn help_action(&mut self, scroll: usize, action: Action) -> Option<Overlay> {
        if crate::ui::keymap::help_columns(self.screen.0, self.screen.1) != 0 {
            // It all fits: nothing to scroll, so every key closes it.
            return None;
        }
        let last = crate::ui::keymap::help_len().saturating_sub(1);
        let page = self.page.max(1);
        let scroll = match action {
            Action::Up => scroll.saturating_sub(1),
            Action::Down => scroll + 1,
            Action::PageUp => scroll.saturating_sub(page),
            Action::PageDown => scroll + page,
            Action::Top => 0,
            Action::Bottom => last,
            _ => return None,
        };
        Some(Overlay::Help {
            scroll: scroll.min(last),
        })
    }

    /// Keys while the signal menu is open: choose, send (after a confirmation), or cancel.
    fn signal_action(&mut self, mut d: SignalDialog, action: Action) -> Option<Overlay> {
        let last = crate::ui::signal::SIGNALS.len() - 1;
        let page = self.page.max(1);
        match action {
            Action::Up => d.selected = d.selected.saturating_sub(1),
            Action::Down => d.selected = (d.selected + 1).min(last),
            Action::PageUp => d.selected = d.selected.saturating_sub(page),
            Action::PageDown => d.selected = (d.selected + page).min(last),
            Action::Top => d.selected = 0,
            Action::Bottom => d.selected = last,
            Action::Enter => {
                let sig = &crate::ui::signal::SIGNALS[d.selected.min(last)];
                return Some(Overlay::Confirm(Confirm {
                    title: format!("Send SIG{}", sig.name),
                    question: format!("Send SIG{} to {}?", sig.name, d.who),
                    effect: Effect::Signal {
                        targets: d.targets,
                        signal: d.selected,
                    },
                }));
            }
            Action::Back => return None,
            _ => {}
        }
        Some(Overlay::Signal(d))
    }

    /// Keys while the renice dialog is open: F7 / Up for a higher priority (lower nice), F8 /
    /// Down for a lower one, Enter to ask, Esc to cancel.
    fn renice_action(&mut self, mut d: ReniceDialog, action: Action) -> Option<Overlay> {
        match action {
            Action::Up => d.step -= 1,
            Action::Down => d.step += 1,
            Action::Renice(by) => d.step += by,
            Action::Enter => {
                let (Some(current), Some(target)) = (d.current, d.target()) else {
                    self.notify("the current nice value is not known yet", true);
                    return Some(Overlay::Renice(d));
                };
                if target == current {
                    self.notify(format!("{} already has nice {current}", d.who), true);
                    return None;
                }
                return Some(Overlay::Confirm(Confirm {
                    title: "Renice".to_string(),
                    question: format!("Renice {} from {current} to {target}?", d.who),
                    effect: Effect::Renice {
                        pid: d.pid,
                        start_time: d.start_time,
                        nice: target,
                    },
                }));
            }
            Action::Back => return None,
            _ => {}
        }
        // Within -20..=19 of where it started.
        if let Some(c) = d.current {
            let range = crate::ui::signal::NICE_RANGE;
            d.step = d.step.clamp(range.start() - c, range.end() - c);
        }
        Some(Overlay::Renice(d))
    }

    /// Keys while choosing columns: Space shows or hides one, F7/F8 move it, Enter keeps the
    /// choice (and saves it to the config file), Esc leaves everything as it was.
    fn columns_action(&mut self, mut c: ColumnChooser, action: Action) -> Option<Overlay> {
        let last = c.rows.len().saturating_sub(1);
        match action {
            Action::Up => c.at = c.at.saturating_sub(1),
            Action::Down => c.at = (c.at + 1).min(last),
            Action::ToggleItem => {
                let shown = c.rows.iter().filter(|(_, on)| *on).count();
                if let Some(row) = c.rows.get_mut(c.at) {
                    // At least one column stays.
                    if !(row.1 && shown == 1) {
                        row.1 = !row.1;
                    }
                }
            }
            Action::MoveItem(by) => {
                let to = c.at.saturating_add_signed(by as isize).min(last);
                c.rows.swap(c.at, to);
                c.at = to;
            }
            Action::Enter => {
                let chosen = c.chosen();
                self.config.ui.columns = Some(chosen.clone());
                self.effects.push(Effect::SaveColumns(chosen));
                return None;
            }
            Action::Back => return None,
            _ => {}
        }
        Some(Overlay::Columns(c))
    }

    /// Keys while a time is typed: `6h`, `30m` back from now, or `2026-11-22T03:00`.
    fn goto_action(&mut self, mut text: String, action: Action) -> Option<Overlay> {
        match action {
            Action::FilterChar(c) => text.push(c),
            Action::FilterBackspace => {
                text.pop();
            }
            Action::FilterErase => text.clear(),
            Action::FilterAccept => {
                let now = self.feed.as_ref().map(|f| f.snapshot.at)?;
                match crate::ui::when::parse(&text, now, &self.options.tz) {
                    Ok(t) => self.effects.push(Effect::Travel(TravelTo::At(t))),
                    Err(e) => self.notify(e, true),
                }
                return None;
            }
            Action::FilterClear => return None,
            _ => {}
        }
        Some(Overlay::Goto(text))
    }
}
