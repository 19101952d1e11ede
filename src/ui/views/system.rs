//! The machine: CPU (total, per core, recent history), memory, swap, disks, network and disk I/O.
//!
//! Lines carry a priority so that a short pane keeps the figures that matter most (CPU and
//! memory) and drops the rest, instead of clipping whatever happens to come last.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{fit, pane};
use crate::format;
use crate::model::{GpuDevice, GpuStats, Snapshot};
use crate::ui::state::AppState;
use crate::ui::theme::{Level, Theme};

/// Width of one per-core cell: `12 ████░░░░ 100%`.
const CORE_CELL: usize = 18;

/// Narrowest per-core graph cell: `12 ▁▂▃▅▇█▇▅▃▂▁▂▃▅▇█▇▅ 100%`.
const GRAPH_CELL: usize = 36;

/// Rows the pane wants when stacked above the users: its figures, within a third of the screen.
/// A GPU server's pane grows to hold a line per GPU, up to half the rows; where that is not
/// enough, its GPUs take one summary line of the rows it has anyway.
pub fn stacked_height(state: &AppState, available: u16, width: u16) -> u16 {
    let disks = state
        .feed
        .as_ref()
        .map_or(0, |f| f.snapshot.system.disks.len());
    let mut want = 2 + 5 + disks.min(3) as u16;
    if state.has_gpus() {
        want = wanted_height(state, width).min(available / 2).max(want);
    }
    want.min(available.saturating_sub(5)).max(3)
}

/// Rows for every line the pane has (borders included) when there is room for all of them.
pub fn wanted_height(state: &AppState, width: u16) -> u16 {
    let Some(feed) = state.shown() else { return 3 };
    let theme = super::theme(state);
    let n = lines(
        &feed.snapshot,
        state,
        &theme,
        usize::from(width.saturating_sub(2)),
        usize::MAX,
    )
    .len();
    u16::try_from(n + 2).unwrap_or(u16::MAX)
}

pub fn draw(frame: &mut Frame<'_>, area: Rect, state: &AppState, theme: &Theme, focused: bool) {
    let block = pane("System".into(), focused, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(feed) = state.shown() else { return };
    let lines = lines(
        &feed.snapshot,
        state,
        theme,
        inner.width as usize,
        inner.height as usize,
    );
    frame.render_widget(Paragraph::new(lines), inner);
}

fn lines<'a>(
    snap: &Snapshot,
    state: &AppState,
    theme: &Theme,
    width: usize,
    height: usize,
) -> Vec<Line<'a>> {
    let sys = &snap.system;
    let mon = &state.config.monitoring;
    let bar_w = (width / 3).clamp(8, 30);
    let gauge = |label: &str, pct: f64, limit: f64, tail: String| {
        Line::from(vec![
            Span::raw(format!("{label:<5}")),
            Span::styled(theme.bar(pct, bar_w), theme.level(Level::of(pct, limit))),
            Span::styled(format!(" {pct:5.1}% "), theme.level(Level::of(pct, limit))),
            Span::raw(tail),
        ])
    };
    // (priority: lower is kept first, line)
    let mut out: Vec<(u8, Line<'a>)> = Vec::new();
    let spark_w = width.saturating_sub(5 + bar_w + 8);
    out.push((
        0,
        gauge(
            "CPU",
            sys.cpu.total.busy,
            mon.cpu_threshold,
            // The live history would mislead next to a recorded moment.
            if state.travel.is_some() {
                String::new()
            } else {
                theme.sparkline(state.cpu_history.iter(), spark_w)
            },
        ),
    ));
    let t = &sys.cpu.total;
    let recorded = state.travel.is_some();
    out.push((
        3,
        Line::styled(
            format!(
                "     user {:.1}  sys {:.1}  nice {:.1}  iowait {:.1}  steal {:.1}",
                t.user, t.system, t.nice, t.iowait, t.steal
            ),
            theme.dim(),
        ),
    ));
    if recorded {
        // Only busy and iowait are recorded.
        out.pop();
    }
    // A GPU server's GPUs come before per-core detail: a line each when they fit beside the
    // lines kept first (CPU, memory, swap, network, disks), else one line for all of them; the
    // cores get the rows left.
    let gpu_n = snap.gpu.devices.len();
    let gpu_each = gpu_n > 0 && 4 + sys.disks.len() + gpu_n <= height;
    let height_for_cores = match (gpu_n, gpu_each) {
        (0, _) => height,
        (_, true) => height - gpu_n,
        (_, false) => height.saturating_sub(1),
    };
    let cores = &sys.cpu.cores;
    let per_row = (width / CORE_CELL).max(1);
    let grid_rows = cores.len().div_ceil(per_row);
    // btop's per-core graphs where there is room for them: each core's recent history.
    let graph_cell = (width / (width / GRAPH_CELL).max(1)).max(GRAPH_CELL);
    let graphs_per_row = (width / graph_cell).max(1);
    let graph_rows = cores.len().div_ceil(graphs_per_row);
    let history = &state.core_history;
    if !recorded
        && history.len() == cores.len()
        && graph_rows > 0
        && graph_rows + 10 <= height_for_cores
        && width >= 2 * GRAPH_CELL
    {
        let spark = graph_cell - 10;
        for (row, chunk) in cores.chunks(graphs_per_row).enumerate() {
            let start = row * graphs_per_row;
            let mut spans = Vec::new();
            for (i, c) in chunk.iter().enumerate() {
                let h = &history[start + i];
                spans.push(Span::raw(format!("{:>3} ", start + i)));
                spans.push(Span::styled(
                    format!("{:<spark$}", theme.sparkline(h.iter(), spark)),
                    theme.level(Level::of(c.busy, mon.cpu_threshold)),
                ));
                spans.push(Span::raw(format!("{:>4.0}% ", c.busy)));
            }
            out.push((1, Line::from(spans)));
        }
    } else if grid_rows > 0 && grid_rows * 2 <= height_for_cores.saturating_sub(4) {
        // The grid when it fits in half the pane, else one glyph per core on one line.
        for (row, chunk) in cores.chunks(per_row).enumerate() {
            let start = row * per_row;
            let mut spans = Vec::new();
            for (i, c) in chunk.iter().enumerate() {
                spans.push(Span::raw(format!("{:>3} ", start + i)));
                spans.push(Span::styled(
                    theme.bar(c.busy, CORE_CELL - 10),
                    theme.level(Level::of(c.busy, mon.cpu_threshold)),
                ));
                spans.push(Span::raw(format!("{:>4.0}% ", c.busy)));
            }
            out.push((1, Line::from(spans)));
        }
    } else if !cores.is_empty() {
        let glyphs = theme.sparkline(cores.iter().map(|c| &c.busy), width.saturating_sub(6));
        out.push((3, Line::from(vec![Span::raw("cores "), Span::raw(glyphs)])));
    }
    let m = &sys.memory;
    out.push((
        0,
        gauge(
            "Mem",
            m.used_percent,
            mon.memory_threshold,
            format!(
                "{} / {}",
                format::bytes(m.used_bytes),
                format::bytes(m.total_bytes)
            ),
        ),
    ));
    out.push((
        2,
        gauge(
            "Swap",
            m.swap_used_percent,
            mon.memory_threshold,
            if m.swap_total_bytes == 0 {
                String::new()
            } else {
                format!(
                    "{} / {}",
                    format::bytes(m.swap_used_bytes),
                    format::bytes(m.swap_total_bytes)
                )
            },
        ),
    ));
    let gpu_at = out.len();
    let rx: f64 = snap.system.net.iter().map(|n| n.rx_bytes_per_sec).sum();
    let tx: f64 = snap.system.net.iter().map(|n| n.tx_bytes_per_sec).sum();
    let rd: f64 = snap
        .system
        .disk_io
        .iter()
        .map(|d| d.read_bytes_per_sec)
        .sum();
    let wr: f64 = snap
        .system
        .disk_io
        .iter()
        .map(|d| d.write_bytes_per_sec)
        .sum();
    out.push((
        1,
        Line::raw(format!(
            "Net  rx {} tx {}   I/O r {} w {}",
            format::rate(rx),
            format::rate(tx),
            format::rate(rd),
            format::rate(wr)
        )),
    ));
    if let Some(p) = &sys.pressure {
        let avg = |f: &Option<crate::model::PressureFigures>| {
            f.map_or_else(|| "-".to_string(), |f| format!("{:.1}%", f.some_avg10))
        };
        out.push((
            3,
            Line::raw(format!(
                "PSI  stalled (some, 10s): cpu {}  memory {}  io {}",
                avg(&p.cpu),
                avg(&p.memory),
                avg(&p.io)
            )),
        ));
    }
    // Recorded moments keep the machine's totals only: no per-device lines to show.
    for n in sys.net.iter().filter(|_| !recorded) {
        out.push((
            5,
            Line::styled(
                format!(
                    "  {} rx {} tx {}",
                    fit(&n.interface, 10, theme),
                    format::rate(n.rx_bytes_per_sec),
                    format::rate(n.tx_bytes_per_sec)
                ),
                theme.dim(),
            ),
        ));
    }
    for d in sys.disk_io.iter().filter(|_| !recorded) {
        out.push((
            5,
            Line::styled(
                format!(
                    "  {} r {} w {} busy {:.0}%",
                    fit(&d.device, 10, theme),
                    format::rate(d.read_bytes_per_sec),
                    format::rate(d.write_bytes_per_sec),
                    d.busy_percent
                ),
                theme.dim(),
            ),
        ));
    }
    for d in &sys.disks {
        let path = fit(&d.path, 8.min(width / 4), theme);
        let line = if d.ok && d.total_bytes == 0 {
            // Recorded disks keep only the percentage.
            gauge("Disk", d.used_percent, mon.disk_threshold, path)
        } else if d.ok {
            gauge(
                "Disk",
                d.used_percent,
                mon.disk_threshold,
                format!("{path} {} free", format::bytes(d.available_bytes)),
            )
        } else {
            Line::raw(format!("Disk {path} unavailable"))
        };
        out.push((2, line));
    }
    let tasks = if recorded {
        format!(
            "Tasks {} processes, {} threads (running and blocked not recorded)",
            sys.tasks.processes, sys.tasks.threads
        )
    } else {
        format!(
            "Tasks {} processes, {} threads, {} running, {} blocked",
            sys.tasks.processes, sys.tasks.threads, sys.tasks.running, sys.tasks.blocked
        )
    };
    out.push((4, Line::styled(tasks, theme.dim())));
    if gpu_n > 0 {
        // The summary line is kept before the CPU breakdown.
        let gpu: Vec<(u8, Line<'a>)> = if gpu_each {
            let w = GpuWidths::new(&snap.gpu, width);
            snap.gpu
                .devices
                .iter()
                .map(|d| (2, gpu_line(d, &w, theme)))
                .collect()
        } else {
            let t = snap.gpu.totals();
            let tail = format!(
                "{} GPU{}, {}",
                t.gpus,
                if t.gpus == 1 { "" } else { "s" },
                memory_pair(t.memory_used_bytes, t.memory_total_bytes)
            );
            let line = match t.utilization_percent {
                Some(u) => gauge("GPU", u, f64::INFINITY, tail),
                None => Line::raw(format!("GPU  {tail}")),
            };
            vec![(1, line)]
        };
        out.splice(gpu_at..gpu_at, gpu);
    }
    keep_by_priority(out, height)
}

/// `71.0/80.0 GiB`: used and total in the total's unit.
fn memory_pair(used: u64, total: u64) -> String {
    let t = format::bytes(total);
    match t.split_once(' ') {
        Some((num, unit)) => {
            let scale = num.parse::<f64>().ok().filter(|n| *n > 0.0);
            match scale {
                Some(n) => format!("{:.1}/{num} {unit}", used as f64 * n / total as f64),
                None => format!("{}/{t}", format::bytes(used)),
            }
        }
        None => format!("{}/{t}", format::bytes(used)),
    }
}

/// The widths of a GPU line's parts, the same for every GPU so that their bars line up.
struct GpuWidths {
    label: usize,
    bar: usize,
    /// The longest `used/total` text, so that they end in one column.
    memory: usize,
    width: usize,
}

impl GpuWidths {
    fn new(gpu: &GpuStats, width: usize) -> Self {
        let label = gpu
            .physical()
            .map(|d| d.label().len() + 3)
            .max()
            .unwrap_or(0)
            .max(4)
            + 1;
        let memory = gpu
            .devices
            .iter()
            .filter_map(|d| Some(memory_pair(d.memory_used_bytes?, d.memory_total_bytes?).len()))
            .max()
            .unwrap_or(0);
        GpuWidths {
            label,
            bar: (width / 8).clamp(4, 15),
            memory,
            width,
        }
    }
}

/// `GPU0 ██████████░░░  98% mem ███████████░ 71.0/80.0 GiB  71°C  650 W  NVIDIA H100 …`; a MIG
/// instance, which has no utilization, temperature or power of its own, under its GPU as
/// `3/mig0 3g.40gb` with its memory.
fn gpu_line<'a>(d: &GpuDevice, w: &GpuWidths, theme: &Theme) -> Line<'a> {
    let mut spans = Vec::with_capacity(8);
    let push = |spans: &mut Vec<Span<'a>>, text: String, style| {
        spans.push(Span::styled(text, style));
    };
    let plain = ratatui::style::Style::default();
    if d.is_physical() {
        push(
            &mut spans,
            format!("{:<lw$}", format!("GPU{}", d.label()), lw = w.label),
            plain,
        );
        match d.utilization_percent {
            Some(u) => {
                let style = theme.level(Level::Ok);
                push(&mut spans, theme.bar(u, w.bar), style);
                push(&mut spans, format!(" {u:>3.0}%"), style);
            }
            None => {
                push(&mut spans, theme.bar(0.0, w.bar), theme.dim());
                push(&mut spans, "    -".to_string(), theme.dim());
            }
        }
    } else {
        // The profile (`3g.40gb`) is what tells instances of one GPU apart.
        let profile = d.name.split_once("MIG ").map_or("", |(_, p)| p);
        let text = format!("  {} {profile}", d.label());
        push(
            &mut spans,
            fit(&text, w.label + w.bar + 5, theme),
            theme.dim(),
        );
    }
    match (d.memory_used_bytes, d.memory_total_bytes) {
        (Some(u), Some(t)) => {
            // Frameworks keep what they allocated cached: a full GPU is normal, not an alarm.
            let pct = d.memory_percent.unwrap_or(0.0);
            let style = theme.level(Level::Ok);
            push(&mut spans, " mem ".to_string(), plain);
            push(&mut spans, theme.bar(pct, w.bar), style);
            push(
                &mut spans,
                format!(" {:>mw$}", memory_pair(u, t), mw = w.memory),
                plain,
            );
        }
        (Some(u), None) => push(&mut spans, format!(" mem {}", format::bytes(u)), plain),
        _ => {}
    }
    let degree = if theme.ascii { "C" } else { "°C" };
    let mut tail = String::new();
    if let Some(t) = d.temperature_celsius {
        tail.push_str(&format!("  {t:>2.0}{degree}"));
    }
    if let Some(p) = d.power_watts {
        tail.push_str(&format!("  {p:>3.0} W"));
    }
    if d.is_physical() {
        // Every name of a GPU server's eight GPUs starts with the vendor; the model is news.
        tail.push_str("  ");
        tail.push_str(d.name.strip_prefix("NVIDIA ").unwrap_or(&d.name));
    }
    let used: usize = spans.iter().map(|s| s.content.chars().count()).sum();
    let rest = w.width.saturating_sub(used);
    if rest > 3 {
        push(&mut spans, fit(&tail, rest, theme), theme.dim());
    }
    Line::from(spans)
}

/// The `height` most important lines, in their original order.
fn keep_by_priority(lines: Vec<(u8, Line<'_>)>, height: usize) -> Vec<Line<'_>> {
    let mut order: Vec<usize> = (0..lines.len()).collect();
    order.sort_by_key(|&i| (lines[i].0, i));
    let mut keep = vec![false; lines.len()];
    for &i in order.iter().take(height) {
        keep[i] = true;
    }
    lines
        .into_iter()
        .zip(keep)
        .filter_map(|((_, l), k)| k.then_some(l))
        .collect()
}
