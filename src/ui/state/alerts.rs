//! The alerts' part of the state: the merged list, and asking before acknowledging or resolving.

use super::overlay::{Confirm, Overlay};
use super::{AppState, Effect, Pane, View};
use crate::model::AlertState;
use crate::store::StoredAlert;
use crate::ui::alerts::{self, AlertOp, AlertRow, AlertTarget};

impl AppState {
    /// Open and acknowledged alerts from the database and this session, newest first.
    pub fn alerts(&self) -> Vec<AlertRow<'_>> {
        match self.shown() {
            Some(feed) => alerts::merge(&feed.stored, &feed.alerts),
            None => Vec::new(),
        }
    }

    /// Replace the database's alerts (after an acknowledgement or resolution).
    pub fn set_stored(&mut self, stored: Vec<StoredAlert>) {
        let pins = self.pins();
        if let Some(feed) = &mut self.feed {
            feed.stored = stored;
        }
        self.repin(pins, false);
    }

    /// The alert `a` / `r` act on: the one whose details are open, else the alerts pane's
    /// selection when that pane has the focus.
    pub fn target_alert(&self) -> Option<AlertRow<'_>> {
        let rows = self.alerts();
        match &self.view {
            View::Alert(key) => rows.into_iter().find(|r| r.alert.key == *key),
            View::Main if self.focus == Pane::Alerts => rows.into_iter().nth(self.alert_selected),
            _ => None,
        }
    }

    /// Queue a question about acknowledging or resolving alerts.
    pub(super) fn ask(&mut self, op: AlertOp, all: bool) {
        if self.options.readonly {
            self.notify(
                "read-only session (--readonly): alerts cannot be changed",
                true,
            );
            return;
        }
        if self.travel.is_some() {
            self.notify(
                "this is a recorded moment: L returns to live to act on alerts",
                true,
            );
            return;
        }
        let (targets, question) = if all {
            let rows = self.alerts();
            let targets: Vec<AlertTarget> = rows.iter().map(AlertTarget::of).collect();
            let q = format!("{} all {} open alert(s)?", op.verb(), targets.len());
            (targets, q)
        } else {
            let Some(row) = self.target_alert() else {
                self.notify("select an alert first (Tab to the alerts pane)", true);
                return;
            };
            if op == AlertOp::Acknowledge && row.alert.state == AlertState::Acknowledged {
                self.notify("that alert is already acknowledged", true);
                return;
            }
            let q = format!(
                "{} {} alert: {}?",
                op.verb(),
                row.alert.severity,
                crate::sanitize::clean(&row.alert.message)
            );
            (vec![AlertTarget::of(&row)], q)
        };
        if targets.is_empty() {
            self.notify("no open alerts", true);
            return;
        }
        self.overlay = Some(Overlay::Confirm(Confirm {
            title: op.verb().to_string(),
            question,
            effect: Effect::Alerts(op, targets),
        }));
    }
}
