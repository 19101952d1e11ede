//! The history charts: one sparkline chart per series over the chosen range, with alert marks
//! on a time axis underneath.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::bar;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Sparkline};

use super::{clean, pane};
use crate::format;
use crate::model::Timestamp;
use crate::ui::history::{HistoryData, Series, Unit};
use crate::ui::state::{AppState, HistoryView};
use crate::ui::theme::Theme;

const ASCII_BARS: bar::Set = bar::Set {
    full: "#",
    seven_eighths: "#",
    three_quarters: "=",
    five_eighths: "=",
    half: "-",
    three_eighths: "-",
    one_quarter: ".",
    one_eighth: ".",
    empty: " ",
};

pub fn draw(frame: &mut Frame<'_>, area: Rect, state: &AppState, hv: &HistoryView, theme: &Theme) {
    let range = state.range().0;
    let who = match hv.user.as_deref() {
        Some(u) => format!("user {}", clean(u)),
        None => "no user (u picks one)".to_string(),
    };
    let source = state
        .history
        .as_ref()
        .map(|h| format!(" - {}", h.source))
        .unwrap_or_default();
    let until = match &state.travel {
        Some(moment) => format!(" to {}", super::header::clock(state, moment.snapshot.at.0)),
        None => String::new(),
    };
    let block = pane(
        format!("History {range}{until} - {who}{source}"),
        true,
        theme,
    );
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(data) = &state.history else {
        frame.render_widget(Paragraph::new("Loading..."), inner);
        return;
    };
    // The axis with its alert marks, the time labels, then the latest alerts.
    let marks_h = (data.marks.len().min(4) + 2) as u16;
    let [charts, axis] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(marks_h)]).areas(inner);
    let n = data.series.len().max(1) as u16;
    let rows = Layout::vertical(vec![Constraint::Ratio(1, u32::from(n)); n as usize]).split(charts);
    for (series, rect) in data.series.iter().zip(rows.iter()) {
        chart(frame, *rect, series, data, theme);
    }
    marks(frame, axis, state, data, theme);
}

/// The user picker: the machine alone, then the users recorded in the range.
pub fn picker(frame: &mut Frame<'_>, area: Rect, state: &AppState, at: usize, theme: &Theme) {
    let choices = state.chart_choices();
    let w = area.width.saturating_sub(4).min(40);
    // The choices, a line saying there is no user when there is none, the key reminder.
    let listed = choices.len() + usize::from(choices.len() == 1);
    let h = u16::try_from(listed + 3)
        .unwrap_or(u16::MAX)
        .min(area.height);
    let rect = super::popup(frame, area, w, h);
    let block = pane(format!("Chart a user ({})", state.range().0), true, theme);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    // Room for the list above the key reminder; scroll so the highlighted row is on screen.
    let rows = usize::from(inner.height.saturating_sub(1));
    let first = super::scroll_offset(at, rows);
    let mut lines: Vec<Line<'_>> = choices
        .iter()
        .enumerate()
        .skip(first)
        .take(rows)
        .map(|(i, c)| {
            let text = match c {
                Some(u) => format!(" {}", clean(u)),
                None => " none: the machine only".to_string(),
            };
            let line = Line::raw(text);
            if i == at {
                line.patch_style(theme.selected())
            } else {
                line
            }
        })
        .collect();
    if choices.len() == 1 {
        lines.push(Line::styled(" no user recorded in this range", theme.dim()));
    }
    lines.push(Line::styled(" Enter chart   Esc cancel", theme.dim()));
    frame.render_widget(Paragraph::new(lines), inner);
}

/// Exactly `width` bars from equally spaced points spanning the range, so the chart is as wide
/// as the time axis under it: with more points than columns each column is the highest of its
/// group, so peaks survive; with fewer, each point is stretched over its share of the columns.
/// One value per column, each point drawn where its time falls in [since, until]: a column shows
/// the highest of its points; a column without one carries the previous point on while the data
/// is continuous (less than two sampling steps since that point), so a coarse series draws as
/// a step line; columns before the data, after it, or across a gap stay empty. Without times
/// (one per point), the points are spread evenly over the width.
fn resample(points: &[f64], times: &[Timestamp], since: i64, until: i64, width: usize) -> Vec<f64> {
    let n = points.len();
    if n == 0 || width == 0 {
        return Vec::new();
    }
    if times.len() != n {
        return (0..width)
            .map(|col| {
                let from = col * n / width;
                let to = ((col + 1) * n / width).max(from + 1).min(n);
                points[from..to].iter().copied().fold(0.0, f64::max)
            })
            .collect();
    }
    let span = i128::from(until.saturating_sub(since).max(1));
    let cols = width as i128;
    // The sampling step: the shortest distance between two points (a gap must not widen it).
    let spacing = times
        .windows(2)
        .map(|w| w[1].0.saturating_sub(w[0].0))
        .filter(|&d| d > 0)
        .min()
        .unwrap_or(0);
    let mut out: Vec<f64> = vec![0.0; width];
    let mut latest: Vec<Option<i64>> = vec![None; width];
    for (&v, t) in points.iter().zip(times) {
        if t.0 < since || t.0 > until {
            continue;
        }
        let col = ((i128::from(t.0 - since) * cols) / span).min(cols - 1) as usize;
        out[col] = if latest[col].is_some() {
            out[col].max(v)
        } else {
            v
        };
        latest[col] = Some(latest[col].map_or(t.0, |l| l.max(t.0)));
    }
    let mut carried: Option<(f64, i64)> = None;
    for col in 0..width {
        if let Some(t) = latest[col] {
            carried = Some((out[col], t));
            continue;
        }
        let start = since.saturating_add((i128::from(col as u32) * span / cols) as i64);
        if let Some((v, t)) = carried
            && start.saturating_sub(t) < spacing.saturating_mul(2)
        {
            out[col] = v;
        }
    }
    out
}

fn figure(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Percent => format!("{v:.1}%"),
        Unit::Load => format!("{v:.2}"),
        Unit::BytesPerSec => format::rate(v),
    }
}

fn chart(frame: &mut Frame<'_>, rect: Rect, s: &Series, data: &HistoryData, theme: &Theme) {
    if rect.height == 0 {
        return;
    }
    let width = usize::from(rect.width);
    let points = resample(&s.points, &data.times, data.since.0, data.until.0, width);
    // The figures come from the points themselves, not the bars: a column's bar is the peak of
    // its group, or a point drawn twice, and neither should weigh on the average.
    let max = s.points.iter().copied().fold(0.0, f64::max);
    let avg = if s.points.is_empty() {
        0.0
    } else {
        s.points.iter().sum::<f64>() / s.points.len() as f64
    };
    // The scale: bars reach the top at 100 % for percentages, at the range's maximum otherwise.
    let top = match s.unit {
        Unit::Percent => 100.0,
        _ => max,
    };
    let title = format!(
        "{}  avg {}  max {}  (bars 0 to {})",
        clean(&s.label),
        figure(avg, s.unit),
        figure(max, s.unit),
        figure(top, s.unit)
    );
    let [head, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(rect);
    frame.render_widget(Paragraph::new(Line::styled(title, theme.heading())), head);
    // Sparkline takes integers: hundredths keep the shape of small figures.
    let scale = |v: f64| (v.max(0.0) * 100.0).round() as u64;
    let ceiling = match s.unit {
        Unit::Percent => scale(100.0),
        _ => scale(max).max(1),
    };
    let data: Vec<u64> = points.iter().map(|v| scale(*v)).collect();
    let bars = if theme.ascii {
        ASCII_BARS
    } else {
        bar::NINE_LEVELS
    };
    let spark = Sparkline::default()
        .data(&data)
        .max(ceiling)
        .bar_set(bars)
        .style(theme.level(crate::ui::theme::Level::Ok));
    frame.render_widget(spark, body);
}

/// A time axis with `^` where alerts opened, and the latest few alerts listed.
fn marks(frame: &mut Frame<'_>, rect: Rect, state: &AppState, data: &HistoryData, theme: &Theme) {
    let width = usize::from(rect.width);
    let span = (data.until.0 - data.since.0).max(1) as f64;
    let mut axis = vec![if theme.ascii { '-' } else { '─' }; width];
    for m in &data.marks {
        let x = ((m.at.0 - data.since.0) as f64 / span * width as f64).floor();
        if x >= 0.0 && (x as usize) < width {
            axis[x as usize] = '^';
        }
    }
    let mut lines = vec![
        Line::styled(axis.into_iter().collect::<String>(), theme.dim()),
        Line::styled(time_labels(state, data, width), theme.dim()),
    ];
    for m in data
        .marks
        .iter()
        .rev()
        .take(usize::from(rect.height.saturating_sub(2)))
    {
        lines.push(Line::from(vec![
            ratatui::text::Span::raw(format!("^ {} ", super::header::stamp(state, m.at.0))),
            ratatui::text::Span::styled(
                format!("{:<8} ", m.severity.as_str()),
                theme.severity(m.severity),
            ),
            ratatui::text::Span::raw(clean(&m.message).into_owned()),
        ]));
    }
    frame.render_widget(Paragraph::new(lines), rect);
}

/// Times under the axis: the start at the left edge, the end at the right, and quarter marks
/// between where they fit; `HH:MM` for a day or less, `MM-DD HH:MM` beyond.
fn time_labels(state: &AppState, data: &HistoryData, width: usize) -> String {
    let (since, until) = (data.since.0, data.until.0);
    let long = until - since > 86_400_000;
    let label = |ms: i64| {
        let stamp = super::header::stamp(state, ms);
        // `2026-11-22 03:00:00` -> `03:00` or `11-22 03:00`.
        let from = if long { 5 } else { 11 };
        stamp.get(from..16).unwrap_or(&stamp).to_string()
    };
    let mut out = vec![' '; width];
    let mut put = |x: usize, text: &str| {
        let x = x.min(width.saturating_sub(text.chars().count()));
        // Only where it does not run into a label already placed.
        let free = (x.saturating_sub(1)..(x + text.len() + 1).min(width)).all(|i| out[i] == ' ');
        if free {
            for (i, c) in text.chars().enumerate() {
                if let Some(slot) = out.get_mut(x + i) {
                    *slot = c;
                }
            }
        }
    };
    put(0, &label(since));
    let end = label(until);
    put(width.saturating_sub(end.len()), &end);
    for q in 1..4 {
        let at = since + (until - since) * q / 4;
        let text = label(at);
        put(
            (width * q as usize / 4).saturating_sub(text.len() / 2),
            &text,
        );
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use crate::model::Timestamp;

    /// Points without times: spread evenly over the width.
    fn resample(points: &[f64], width: usize) -> Vec<f64> {
        super::resample(points, &[], 0, 0, width)
    }

    #[test]
    fn points_are_drawn_where_their_time_falls() {
        let at = |min: i64| Timestamp(min * 60_000);
        // An hour over 60 columns, data only for the last 20 minutes, one point a minute.
        let times: Vec<Timestamp> = (40..60).map(at).collect();
        let points: Vec<f64> = (40..60).map(|m| m as f64).collect();
        let cols = super::resample(&points, &times, 0, 3_600_000, 60);
        assert!(
            cols[..40].iter().all(|&v| v == 0.0),
            "no data yet: {cols:?}"
        );
        assert_eq!(cols[40], 40.0);
        assert_eq!(cols[59], 59.0);
        // One point every 5 minutes over 60 columns: a step line, no holes.
        let times: Vec<Timestamp> = (0..12).map(|i| at(i * 5)).collect();
        let points: Vec<f64> = (0..12).map(f64::from).collect();
        let cols = super::resample(&points, &times, 0, 3_600_000, 60);
        assert_eq!(
            &cols[..11],
            &[0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0]
        );
        assert_eq!(cols[59], 11.0);
        // A gap of twenty minutes stays a gap.
        let times = [at(0), at(1), at(2), at(22), at(23)];
        let cols = super::resample(&[5.0; 5], &times, 0, 3_600_000, 60);
        assert_eq!(cols[3], 5.0, "carried over one spacing");
        assert!(cols[6..22].iter().all(|&v| v == 0.0), "{cols:?}");
        assert_eq!(cols[22], 5.0);
        assert!(cols[30..].iter().all(|&v| v == 0.0), "after the data");
        // Points outside the range are left out; two in one column show the higher.
        let times = [at(-5), at(10), Timestamp(10 * 60_000 + 1)];
        let cols = super::resample(&[9.0, 1.0, 3.0], &times, 0, 3_600_000, 60);
        assert_eq!((cols[0], cols[10]), (0.0, 3.0));
    }

    #[test]
    fn resampling_fills_every_column() {
        let few = [1.0, 2.0, 3.0];
        assert_eq!(resample(&few, 7), [1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0]);
        let wave: Vec<f64> = (0..120).map(f64::from).collect();
        let wide = resample(&wave, 158);
        assert_eq!(wide.len(), 158);
        assert_eq!((wide[0], wide[157]), (0.0, 119.0));
        assert!(wide.windows(2).all(|w| w[0] <= w[1]), "order kept");
        let narrow = resample(&wave, 78);
        assert_eq!(narrow.len(), 78);
        assert_eq!(narrow[77], 119.0, "the last peak survives");
        let mut spike = vec![0.0; 1000];
        spike[501] = 9.0;
        assert!(resample(&spike, 10).contains(&9.0));
        assert_eq!(resample(&[5.0], 4), [5.0; 4]);
        assert!(resample(&[], 80).is_empty());
        assert!(resample(&few, 0).is_empty());
    }
}
