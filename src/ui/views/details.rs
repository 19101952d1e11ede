//! One process in depth: the figures of the process list plus what is read for it alone
//! (full command line, working directory, open files, cgroup, I/O rates, environment).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{clean, pane};
use crate::format;
use crate::model::{GpuStats, ProcessStats};
use crate::ui::gpu;
use crate::ui::state::{AppState, DetailsView};
use crate::ui::theme::Theme;

const NOT_READABLE: &str = "not readable (another user's process: run as root)";

pub fn draw(frame: &mut Frame<'_>, area: Rect, state: &AppState, dv: &DetailsView, theme: &Theme) {
    let process = state.shown().and_then(|f| {
        f.snapshot
            .processes
            .iter()
            .find(|p| p.pid == dv.pid && p.start_time == dv.start_time)
    });
    let title = match process {
        Some(p) => format!("Process {} ({})", dv.pid, clean(&p.name)),
        None => format!("Process {}", dv.pid),
    };
    let block = pane(title, true, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(p) = process else {
        let msg = Line::styled(
            "This process has ended. Esc returns to the list.",
            theme.dim(),
        );
        frame.render_widget(Paragraph::new(msg), inner);
        return;
    };
    let field = |name: &str, value: String| {
        Line::from(vec![
            Span::styled(format!("{name:<12}"), theme.heading()),
            Span::raw(clean(&value).into_owned()),
        ])
    };
    let inspected = state.details.as_ref().filter(|d| d.details.pid == dv.pid);
    let d = inspected.map(|i| &i.details);
    let or_not = |v: Option<String>| match (d, v) {
        (None, _) => "reading...".to_string(),
        (Some(_), Some(v)) => v,
        (Some(_), None) => NOT_READABLE.to_string(),
    };
    let cmdline = d
        .and_then(|d| d.cmdline.clone())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| p.cmdline.to_string());
    let started = super::header::stamp(state, p.start_time.0);
    let mut lines = vec![
        field("Command", cmdline),
        field(
            "User",
            format!("{} (uid {})  parent {}", p.user, p.uid, p.ppid),
        ),
        field(
            "State",
            format!(
                "{}  threads {}  nice {}",
                p.state,
                p.threads,
                d.and_then(|d| d.nice)
                    .map_or_else(|| "?".to_string(), |n| n.to_string())
            ),
        ),
        field("Started", started),
        field(
            "CPU",
            format!(
                "{:.1}% of a core  time {}",
                p.cpu_percent,
                crate::ui::columns::cpu_time(p.cpu_time_secs)
            ),
        ),
        field(
            "Memory",
            format!(
                "{} resident ({:.1}%){}",
                format::bytes(p.memory_bytes),
                p.memory_percent,
                p.pss_bytes
                    .map(|b| format!(", {} proportional (PSS)", format::bytes(b)))
                    .unwrap_or_default()
            ),
        ),
        field("Directory", or_not(d.and_then(|d| d.cwd.clone()))),
        field(
            "Open files",
            or_not(d.and_then(|d| d.open_files.map(|n| n.to_string()))),
        ),
        field("Cgroup", or_not(d.and_then(|d| d.cgroup.clone()))),
        field("I/O", io_text(inspected)),
    ];
    if let Some(g) = state.shown().and_then(|f| gpu_text(&f.snapshot.gpu, p)) {
        lines.insert(6, field("GPU", g));
    }
    match d.and_then(|d| d.environ.as_ref()) {
        Some(env) => {
            lines.push(Line::styled(
                format!("Environment ({} variables)", env.len()),
                theme.heading(),
            ));
            lines.extend(env.iter().map(|e| Line::raw(format!("  {}", clean(e)))));
        }
        None if d.is_some() => lines.push(field(
            "Environment",
            "shown only to the process's own user and root".to_string(),
        )),
        None => {}
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

/// `0 70.0 GiB 95% compute, 3/mig0 20.0 GiB compute (NVIDIA H100 80GB HBM3)`: each device the
/// process holds (memory, busy share where the driver gives it, how it uses it), then the
/// devices' model.
fn gpu_text(gpus: &GpuStats, p: &ProcessStats) -> Option<String> {
    let map = gpu::by_pid(gpus);
    let g = gpu::of(&map, p)?;
    let mut names: Vec<&str> = Vec::new();
    let each: Vec<String> =
        g.on.iter()
            .map(|e| {
                if let Some(d) = gpus.devices.iter().find(|d| d.id == e.device)
                    && !names.contains(&&*d.name)
                {
                    names.push(&d.name);
                }
                format!(
                    "{} {}",
                    gpu::device_text(gpus, &e.device, e.memory_bytes, e.utilization_percent),
                    e.kind
                )
            })
            .collect();
    Some(format!("{} ({})", each.join(", "), names.join(", ")))
}

fn io_text(inspected: Option<&crate::ui::state::Inspected>) -> String {
    let Some(i) = inspected else {
        return "reading...".to_string();
    };
    let Some(io) = i.details.io else {
        return NOT_READABLE.to_string();
    };
    let rates = match i.io_rates {
        Some((r, w)) => format!(
            "read {}/s  write {}/s  (",
            format::bytes(r as u64),
            format::bytes(w as u64)
        ),
        None => "rates after the next refresh (".to_string(),
    };
    format!(
        "{rates}{} read, {} written in total)",
        format::bytes(io.read_bytes),
        format::bytes(io.write_bytes)
    )
}
