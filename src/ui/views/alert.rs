//! One alert in full: what fired, how far over, for how long, who is behind it, what to do.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{clean, pane};
use crate::format;
use crate::model::{Alert, AlertKey, AlertKind, AlertState, Timestamp};
use crate::ui::state::AppState;
use crate::ui::theme::Theme;

pub fn draw(frame: &mut Frame<'_>, area: Rect, state: &AppState, key: &AlertKey, theme: &Theme) {
    let block = pane(format!("Alert {}", clean(&key.to_string())), true, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(row) = state.alerts().into_iter().find(|r| r.alert.key == *key) else {
        let msg = Line::styled("This alert is no longer open. Esc goes back.", theme.dim());
        frame.render_widget(Paragraph::new(msg), inner);
        return;
    };
    let a = row.alert;
    let d = &a.details;
    let now = state.shown().map_or(a.updated_at, |f| f.snapshot.at);
    let field = |name: &str, value: String| {
        Line::from(vec![
            Span::styled(format!("{name:<14}"), theme.heading()),
            Span::raw(value),
        ])
    };
    let state_text = match (a.state, row.acked_by) {
        (AlertState::Acknowledged, Some(by)) => format!("acknowledged by {}", clean(by)),
        (AlertState::Acknowledged, None) => "acknowledged".to_string(),
        (s, _) => format!("{s:?}").to_lowercase(),
    };
    let source = match row.id {
        Some(id) => format!("database, id {id}"),
        None => "this session's tracker".to_string(),
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("{:<14}", "Severity"), theme.heading()),
            Span::styled(a.severity.as_str(), theme.severity(a.severity)),
        ]),
        field("Message", clean(&a.message).into_owned()),
        field("State", state_text),
        field("Source", source),
        field(
            "Opened",
            format!(
                "{} ago at {}",
                format::duration(now.secs_since(a.opened_at).max(0.0) as u64),
                super::header::clock(state, a.opened_at.0)
            ),
        ),
        field("Figure", figure(state, a, now)),
        field(
            "Lasting",
            // Over the limit for `duration_secs` when last recorded, and since then until now.
            format::duration(d.duration_secs + now.secs_since(a.updated_at).max(0.0) as u64),
        ),
        field(
            "Machine",
            format!(
                "CPU {:.1}%  memory {:.1}%  load {:.2}  status {}",
                d.system_cpu_percent, d.system_memory_percent, d.load.one, d.status
            ),
        ),
    ];
    if !d.top_users.is_empty() {
        lines.push(Line::styled("Top users", theme.heading()));
        for u in d.top_users.iter().take(5) {
            let top = u
                .top_processes
                .first()
                .map(|p| {
                    format!(
                        "  top: {} ({}) {:.1}%",
                        clean(&p.name),
                        p.pid,
                        p.cpu_percent
                    )
                })
                .unwrap_or_default();
            lines.push(Line::raw(format!(
                "  {:<12} CPU {:5.1}%  memory {:5.1}%  {} processes{top}",
                clean(&u.name),
                u.cpu_percent,
                u.memory_percent,
                u.processes
            )));
        }
    }
    if !d.recommendation.is_empty() {
        lines.push(field("What to do", clean(&d.recommendation).into_owned()));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "a acknowledge   r resolve   Esc back",
        theme.dim(),
    ));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

/// The value recorded with the alert, labelled with when it was recorded, and the current one
/// from the sample on screen beside it: a stored alert's figure is written when it opens, so
/// "now" must come from the live data.
fn figure(state: &AppState, a: &Alert, now: Timestamp) -> String {
    let when = if a.updated_at == a.opened_at {
        "at opening".to_string()
    } else {
        format!("at {}", super::header::clock(state, a.updated_at.0))
    };
    if a.key.kind == AlertKind::GpuIdle {
        // The figure is the busiest of the GPUs held idle: low is the trouble here. Which GPUs
        // those were is not recorded with the alert, so there is no "now" beside it.
        return format!(
            "{:.1}% busy {when}; idle under {:.0}%",
            a.value, a.threshold
        );
    }
    let current = state
        .shown()
        .and_then(|f| crate::ui::alerts::current_value(&f.snapshot, &a.key));
    let current = match current {
        Some(v) if now != a.updated_at => format!(", {v:.1}% now"),
        Some(_) => String::new(),
        None => ", not in the current sample".to_string(),
    };
    format!(
        "{:.1}% {when}{current}; limit {:.0}%, peak {:.1}%",
        a.value, a.threshold, a.peak
    )
}
