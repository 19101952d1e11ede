//! The top lines: where, when, how loaded, and what sysmon itself costs.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::clean;
use crate::format;
use crate::ui::state::AppState;
use crate::ui::theme::Theme;

/// Two lines, plus one per status reason while they are shown.
pub fn height(state: &AppState) -> u16 {
    if state.travel.is_some() {
        return 2;
    }
    let reasons = match (state.shown(), state.reasons) {
        (Some(f), true) => f.status.reasons.len().max(1),
        _ => 0,
    };
    2 + reasons as u16
}

/// `HH:MM:SS` in the state's time zone.
pub fn clock(state: &AppState, ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| {
            t.to_zoned(state.options.tz.clone())
                .strftime("%H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| "--:--:--".into())
}

pub fn draw(frame: &mut Frame<'_>, area: Rect, state: &AppState, theme: &Theme) {
    let Some(feed) = state.shown() else {
        let line = Line::styled(" sysmon - starting", theme.title());
        frame.render_widget(Paragraph::new(line), area);
        return;
    };
    let snap = &feed.snapshot;
    let sys = &snap.system;
    let status = feed.status.status;
    if state.travel.is_some() {
        let live = state.feed.as_ref().map_or(snap.at, |f| f.snapshot.at);
        let ago = format::duration(live.secs_since(snap.at).max(0.0) as u64);
        let lines = vec![
            Line::from(vec![
                Span::styled(format!(" {} ", clean(&snap.host)), theme.title()),
                Span::styled(
                    format!(" HISTORY {} ({ago} ago) ", stamp(state, snap.at.0)),
                    theme.banner(),
                ),
                Span::raw(format!(
                    "  load {:.2} {:.2} {:.2}",
                    sys.load.one, sys.load.five, sys.load.fifteen
                )),
            ]),
            // The step first: it is what j and J do.
            Line::from(vec![
                Span::raw(" "),
                Span::styled(format!(" step {} ", state.range().0), theme.banner()),
                Span::styled(
                    " j/J back/forward  [ ] step  t/T prev/next sample  b go to  L/Esc live",
                    theme.dim(),
                ),
            ]),
        ];
        frame.render_widget(Paragraph::new(lines), area);
        return;
    }
    // The status right after the host: on a narrow terminal the line is cut from the right, and
    // Light / Medium / Heavy is the one word that must survive.
    let first = Line::from(vec![
        Span::styled(format!(" {} ", clean(&snap.host)), theme.title()),
        Span::styled(format!(" {} ", status.label()), theme.status(status)),
        Span::raw(format!(
            " up {} ",
            format::duration(sys.uptime_secs.max(0.0) as u64)
        )),
        Span::raw(format!(" {} ", clock(state, snap.at.0))),
        Span::raw(format!(
            " load {:.2} {:.2} {:.2} ",
            sys.load.one, sys.load.five, sys.load.fifteen
        )),
        Span::raw(format!(" {} cores ", sys.cpu.count)),
    ]);
    let own = match state.own_process() {
        Some(p) => format!(
            " sysmon {:.1}% CPU {} ",
            p.cpu_percent,
            format::bytes(p.memory_bytes)
        ),
        None => " sysmon -".to_string(),
    };
    let mut second = Vec::new();
    if state.options.readonly {
        second.push(Span::styled(" READ-ONLY ", theme.banner()));
    }
    second.extend([
        Span::styled(own, theme.dim()),
        Span::raw(format!(" every {}s ", trim_secs(state.refresh_secs))),
    ]);
    if state.paused {
        second.push(Span::styled(" PAUSED ", theme.banner()));
    }
    if !state.reasons && !feed.status.reasons.is_empty() {
        second.push(Span::styled(
            format!(" {} reason(s): s ", feed.status.reasons.len()),
            theme.dim(),
        ));
    }
    let mut lines = vec![first, Line::from(second)];
    if state.reasons {
        if feed.status.reasons.is_empty() {
            lines.push(Line::styled("   no limit is exceeded", theme.dim()));
        }
        for r in &feed.status.reasons {
            lines.push(Line::raw(format!("   - {}", clean(r))));
        }
    }
    frame.render_widget(Paragraph::new(lines), area);
}

/// `2026-11-22 03:00:00` in the state's time zone.
pub fn stamp(state: &AppState, ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| {
            t.to_zoned(state.options.tz.clone())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| "?".into())
}

/// `2`, `0.5`: the refresh interval without trailing zeros.
pub fn trim_secs(s: f64) -> String {
    let t = format!("{s:.1}");
    t.strip_suffix(".0").map(str::to_string).unwrap_or(t)
}
