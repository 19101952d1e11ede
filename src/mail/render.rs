//! Which tracker events become email, and what that email says.
//!
//! An administrator reading the mail on a phone should be able to act without logging in first,
//! so the body carries every detail the tracker gathered: the figure against its limit and for how
//! long, who is using the machine and with which processes, load, uptime and what to do. The text
//! is rendered here, once, when the event happens, and stored in the outbox as it is: a mail held
//! back by an outage or by `max_per_hour` still describes the moment it is about.
//!
//! User, process and host names are chosen by whoever runs a process on a shared server. They
//! were cleaned at the collector's boundary, but a subject line is where a stray CR/LF would turn
//! into a forged header, so every part is cleaned again here and the finished subject once more
//! as a whole. Bodies are wrapped below 76 columns so that plain ASCII mail goes out as 7bit text
//! that reads the same in any client and in the raw message.

use jiff::tz::TimeZone;

use crate::config::Alerts;
use crate::format;
use crate::model::{
    Alert, AlertKey, AlertKind, AlertState, Event, Mail, Metric, OutboxItem, PersistentEpisode,
    Severity, Timestamp, UserSummary,
};
use crate::sanitize;

/// Every subject starts with this, so that mail rules can file sysmon's mail.
pub const SUBJECT_PREFIX: &str = "[sysmon]";

/// Longest subject we produce, in characters; the parts are cut before this is reached.
const SUBJECT_MAX: usize = 200;
/// Longest user, host or path name shown, in characters.
const NAME_MAX: usize = 48;
/// Longest process name shown (the kernel's `comm` is 15 bytes, but names can come from
/// elsewhere).
const PROCESS_MAX: usize = 32;
/// Body lines are wrapped to this width so that ASCII bodies stay 7bit.
const WIDTH: usize = 72;
/// `  Label:        value`: the label column, and what is left for the value.
const LABEL_WIDTH: usize = 15;
const FIELD_WIDTH: usize = WIDTH - LABEL_WIDTH - 2;
/// Held-back mails whose full text a digest repeats; the rest are listed by subject only.
const DIGEST_FULL_BODIES: usize = 30;

/// Why an alert is being mailed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Notice {
    Opened,
    Repeated,
    Escalated(Severity),
    Recovered,
}

/// The mail for an event, if the event deserves one under `[alerts]`.
///
/// Mail goes out for opened, repeated and escalated alerts whose severity reaches
/// `min_email_severity`, and for recovery notices when `notify_recovery` is set and the alert
/// itself qualified. Acknowledgements, operator resolutions, status changes and persistence
/// episodes are not mailed: an operator already knows about the first two, and the others are
/// covered by the alerts that carry them. `alert_id` is left for the store to fill in.
pub fn mail_for(event: &Event, alerts_cfg: &Alerts) -> Option<Mail> {
    mail_for_in(event, alerts_cfg, &TimeZone::system())
}

/// [`mail_for`] with the local time shown in `tz` (tests choose a fixed zone).
pub(crate) fn mail_for_in(event: &Event, alerts_cfg: &Alerts, tz: &TimeZone) -> Option<Mail> {
    let (notice, alert) = match event {
        Event::AlertOpened(a) => (Notice::Opened, a),
        Event::AlertRepeated(a) => (Notice::Repeated, a),
        Event::AlertEscalated { alert, from } => (Notice::Escalated(*from), alert),
        Event::Recovery(a) if alerts_cfg.notify_recovery => (Notice::Recovered, a),
        Event::Recovery(_)
        | Event::AlertResolved { .. }
        | Event::AlertAcknowledged(_)
        | Event::PersistentStarted(_)
        | Event::PersistentEnded(_)
        | Event::StatusChanged { .. } => return None,
    };
    // A recovery carries the alert's highest severity, so it passes the filter exactly when the
    // alert's own mail did.
    if alert.severity < alerts_cfg.min_email_severity {
        return None;
    }
    Some(Mail {
        severity: alert.severity,
        subject: subject(notice, alert),
        body: body(notice, alert, tz),
        alert_id: None,
    })
}

/// One mail standing for every mail in `items`, sent when `max_per_hour` held them back.
///
/// The subject counts them; the body lists every subject, oldest first, then repeats the full
/// text of the first few so that nothing the individual mails said is lost.
pub fn digest(items: &[OutboxItem], host: &str) -> Mail {
    digest_in(items, host, &TimeZone::system())
}

pub(crate) fn digest_in(items: &[OutboxItem], host: &str, tz: &TimeZone) -> Mail {
    let host = name(host, NAME_MAX);
    let severity = items
        .iter()
        .map(|i| i.mail.severity)
        .max()
        .unwrap_or(Severity::Low);
    let count = items.len();
    let plural = if count == 1 { "" } else { "s" };
    let subject = header_safe(&format!(
        "{SUBJECT_PREFIX} DIGEST {host}: {count} held-back notification{plural} (highest {})",
        upper(severity)
    ));

    let mut t = Text::default();
    t.para(&format!(
        "sysmon on {host} held back {count} notification{plural} because email.max_per_hour \
         was reached. They are listed oldest first, then the full text of each follows."
    ));
    t.blank();
    for (n, item) in items.iter().enumerate() {
        t.line(&format!(
            "{:>3}. {}  {}",
            n + 1,
            utc(item.created_at),
            one_line(&item.mail.subject, SUBJECT_MAX)
        ));
    }
    for (n, item) in items.iter().take(DIGEST_FULL_BODIES).enumerate() {
        t.blank();
        t.line(&format!("===== {} of {count} =====", n + 1));
        t.line(&one_line(&item.mail.subject, SUBJECT_MAX));
        t.line(&format!(
            "Queued: {} ({})",
            utc(item.created_at),
            local(item.created_at, tz)
        ));
        t.blank();
        for l in item.mail.body.lines() {
            t.line(&sanitize::clean(l));
        }
    }
    if count > DIGEST_FULL_BODIES {
        t.blank();
        t.para(&format!(
            "The other {} are listed above by subject only; `sysmon alerts --all` on {host} \
             shows every alert in full.",
            count - DIGEST_FULL_BODIES
        ));
    }
    footer(&mut t, &host);
    Mail {
        severity,
        subject,
        body: t.0,
        alert_id: None,
    }
}

/// The message `sysmon test-email` sends.
pub(crate) fn test_mail(host: &str, server: &str, now: Timestamp, tz: &TimeZone) -> Mail {
    let host = name(host, NAME_MAX);
    let mut t = Text::default();
    t.para(&format!(
        "This is a test message from sysmon on {host}. If you can read it, sysmon can deliver \
         alert mail through {} to this address.",
        name(server, NAME_MAX * 2)
    ));
    t.blank();
    t.line(&format!("Sent: {} ({})", utc(now), local(now, tz)));
    footer(&mut t, &host);
    Mail {
        severity: Severity::Low,
        subject: header_safe(&format!("{SUBJECT_PREFIX} TEST {host}: test message")),
        body: t.0,
        alert_id: None,
    }
}

fn subject(notice: Notice, alert: &Alert) -> String {
    let d = &alert.details;
    let host = name(&d.host, NAME_MAX);
    let what = what(&alert.key);
    let sev = upper(alert.severity);
    let figure = format!("{:.0}%", alert.value);
    let lasting = format::duration(d.duration_secs);
    // A held-idle alert's figure is a utilization under its limit: the time is the news.
    let figure = if alert.key.kind == AlertKind::GpuIdle {
        String::new()
    } else {
        format!(" {figure}")
    };
    let s = match notice {
        Notice::Recovered if alert.key.kind == AlertKind::GpuIdle => {
            let how = if alert.value >= alert.threshold {
                format!("busy again ({:.1}%)", alert.value)
            } else {
                "memory freed".to_string()
            };
            format!("{SUBJECT_PREFIX} RECOVERED {host}: {what} {how}")
        }
        Notice::Opened => format!("{SUBJECT_PREFIX} {sev} {host}: {what}{figure} for {lasting}"),
        Notice::Repeated => {
            format!("{SUBJECT_PREFIX} {sev} {host}: {what}{figure} for {lasting} (still firing)")
        }
        Notice::Escalated(from) => format!(
            "{SUBJECT_PREFIX} {sev} {host}: {what}{figure} for {lasting} (up from {})",
            upper(from)
        ),
        Notice::Recovered if recovered_below_limit(alert) => format!(
            "{SUBJECT_PREFIX} RECOVERED {host}: {what} back to {:.1}%",
            alert.value
        ),
        Notice::Recovered => {
            format!("{SUBJECT_PREFIX} RECOVERED {host}: {what} no longer measured")
        }
    };
    header_safe(&s)
}

/// A recovered alert keeps its last firing figure when the figure could not be measured any
/// more (a user who logged out, an unmounted disk); only a figure below the limit is news.
fn recovered_below_limit(alert: &Alert) -> bool {
    alert.value < alert.threshold
}

fn body(notice: Notice, alert: &Alert, tz: &TimeZone) -> String {
    let d = &alert.details;
    let host = name(&d.host, NAME_MAX);
    let sev = upper(alert.severity);
    let message = one_line(&alert.message, 400);
    let mut t = Text::default();

    let headline = match notice {
        Notice::Opened => format!("New {sev} alert on {host}: {message}"),
        Notice::Repeated => format!("Still firing on {host} ({sev}): {message}"),
        Notice::Escalated(from) => format!(
            "Alert on {host} escalated from {} to {sev}: {message}",
            upper(from)
        ),
        Notice::Recovered => format!("Recovered on {host}: {message}"),
    };
    t.para(&headline);
    t.blank();

    let limit = limit(alert.threshold);
    t.field("Host", &host);
    t.field(
        "Severity",
        &match notice {
            Notice::Escalated(from) => format!("{sev} (was {})", upper(from)),
            Notice::Recovered => format!("{sev} (highest while open)"),
            Notice::Opened | Notice::Repeated => sev.to_string(),
        },
    );
    t.field("Alert", &what(&alert.key));
    t.field("Key", &one_line(&alert.key.to_string(), FIELD_WIDTH));
    t.field("Metric", metric_name(d.metric));
    let idle = alert.key.kind == AlertKind::GpuIdle;
    let value = if idle {
        format!(
            "{:.1}% busy, idle under {limit} (busiest {:.1}% while idle)",
            alert.value, alert.peak
        )
    } else {
        format!(
            "{:.1}% against a limit of {limit} (peak {:.1}%)",
            alert.value, alert.peak
        )
    };
    t.field("Value", &value);
    match (notice, alert.resolved_at) {
        (Notice::Recovered, Some(end)) => t.field(
            "Duration",
            &format!(
                "{} (from {} to {})",
                format::duration(secs_between(alert.opened_at, end)),
                utc(alert.opened_at),
                utc(end)
            ),
        ),
        _ => t.field(
            "Duration",
            &format!(
                "{} {}",
                format::duration(d.duration_secs),
                if idle { "idle" } else { "over the limit" }
            ),
        ),
    }
    t.field(
        "State",
        &format!("{}, opened {}", state(alert.state), utc(alert.opened_at)),
    );
    t.field("Status", d.status.label());
    t.field("Reason", &message);
    t.field(
        "System",
        &format!(
            "CPU {:.1}%, memory {:.1}%",
            d.system_cpu_percent, d.system_memory_percent
        ),
    );
    t.field(
        "Load average",
        &format!(
            "{:.2}, {:.2}, {:.2} (1, 5, 15 min)",
            d.load.one, d.load.five, d.load.fifteen
        ),
    );
    t.field("Uptime", &format::duration(d.uptime_secs.max(0.0) as u64));
    t.field("Time", &format!("{} (UTC)", utc(alert.updated_at)));
    t.field(
        "",
        &format!("{} (host local time)", local(alert.updated_at, tz)),
    );

    t.blank();
    t.line("What to do");
    t.indented(&one_line(&d.recommendation, 2000), 2);

    t.blank();
    t.line(&format!("Top users by {}", ranking(d.metric)));
    if d.top_users.is_empty() {
        t.line("  (no user processes)");
    }
    for (n, u) in d.top_users.iter().enumerate() {
        user_lines(&mut t, n + 1, u);
    }

    t.blank();
    t.line("Persistent users");
    if d.persistent_users.is_empty() {
        t.line("  (none)");
    }
    for p in &d.persistent_users {
        t.indented(&episode(p), 2);
    }

    footer(&mut t, &host);
    t.0
}

fn user_lines(t: &mut Text, n: usize, u: &UserSummary) {
    let tracked = if u.tracked { "" } else { ", not tracked" };
    let procs = if u.processes == 1 {
        "process"
    } else {
        "processes"
    };
    let gpu = match &u.gpu {
        Some(g) => format!(
            ", GPU memory {} ({:.1}%) on {} GPU{}",
            format::bytes(g.memory_bytes),
            g.memory_percent,
            g.devices,
            if g.devices == 1 { "" } else { "s" }
        ),
        None => String::new(),
    };
    t.indented(
        &format!(
            "{n}. {} (uid {}{tracked}): CPU {:.1}%, memory {:.1}%{gpu}, {} {procs}",
            name(&u.name, NAME_MAX),
            u.uid,
            u.cpu_percent,
            u.memory_percent,
            u.processes
        ),
        2,
    );
    for p in &u.top_processes {
        t.columns(
            &format!(
                "       pid {:<7} {:<16} CPU {:>6.1}%  memory {} ({:.1}%)",
                p.pid,
                name(&p.name, PROCESS_MAX),
                p.cpu_percent,
                format::bytes(p.memory_bytes),
                p.memory_percent
            ),
            7,
        );
    }
}

fn episode(p: &PersistentEpisode) -> String {
    let until = match p.ended_at {
        Some(end) => format!("until {}", utc(end)),
        None => "still going".to_string(),
    };
    format!(
        "{}: {} over {} for {} since {}, {until} (peak {:.1}%, average {:.1}%)",
        name(&p.user, NAME_MAX),
        metric_name(p.metric),
        limit(p.threshold),
        format::duration(p.duration_secs),
        utc(p.started_at),
        p.peak,
        p.average
    )
}

fn footer(t: &mut Text, host: &str) {
    t.blank();
    t.line("-- ");
    t.para(&format!(
        "Sent by sysmon on {host}. Run `sysmon alerts` there to list, acknowledge or resolve \
         alerts."
    ));
}

/// What an alert is about, for a subject: `system CPU`, `disk /home`, `user alice memory`,
/// `persistent user alice CPU`.
fn what(key: &AlertKey) -> String {
    let subject = name(&key.subject, NAME_MAX);
    match (key.kind, key.metric) {
        (AlertKind::System, Metric::Disk) => format!("disk {subject}"),
        (AlertKind::System, m) => format!("system {}", m.label()),
        (AlertKind::User, m) => format!("user {subject} {}", m.label()),
        (AlertKind::PersistentUser, m) => format!("persistent user {subject} {}", m.label()),
        (AlertKind::GpuIdle, _) => format!("user {subject} idle GPU"),
        (AlertKind::Recovery, m) => format!("{subject} {}", m.label()),
    }
}

fn metric_name(m: Metric) -> &'static str {
    match m {
        Metric::Cpu => "CPU",
        Metric::Memory => "memory",
        Metric::Disk => "disk space",
        Metric::GpuMemory => "GPU memory",
        Metric::GpuUtilization => "GPU utilization",
    }
}

/// Per-user disk use is not measured: disk alerts list users by CPU, as the tracker does.
fn ranking(m: Metric) -> &'static str {
    match m {
        Metric::Memory => "memory",
        Metric::GpuMemory | Metric::GpuUtilization => "GPU memory",
        Metric::Cpu | Metric::Disk => "CPU",
    }
}

fn state(s: AlertState) -> &'static str {
    match s {
        AlertState::Open => "open",
        AlertState::Acknowledged => "acknowledged",
        AlertState::Resolved => "resolved",
    }
}

fn upper(s: Severity) -> String {
    s.as_str().to_ascii_uppercase()
}

/// A configured limit as the tracker writes it: `80%`, `72.5%`.
fn limit(threshold: f64) -> String {
    let s = format!("{threshold:.1}");
    format!("{}%", s.strip_suffix(".0").unwrap_or(&s))
}

fn secs_between(from: Timestamp, to: Timestamp) -> u64 {
    u64::try_from(to.0.saturating_sub(from.0) / 1000).unwrap_or(0)
}

/// RFC 3339 in UTC, to the second: `2024-05-01T10:00:00Z`.
pub(crate) fn utc(at: Timestamp) -> String {
    match jiff::Timestamp::from_millisecond(at.0) {
        Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => format!("{} ms since the epoch", at.0),
    }
}

/// The same moment on the host's clock: `2024-05-01 12:00:00 CEST (+02:00)`.
fn local(at: Timestamp, tz: &TimeZone) -> String {
    match jiff::Timestamp::from_millisecond(at.0) {
        Ok(ts) => ts
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%d %H:%M:%S %Z (%:z)")
            .to_string(),
        Err(_) => "unknown".to_string(),
    }
}

/// A name from the machine, safe for a header and cut to `max` characters.
fn name(s: &str, max: usize) -> String {
    format::truncate(sanitize::clean(s).trim(), max, false)
}

/// Text that must stay on one line (a message, a subject inside a body).
fn one_line(s: &str, max: usize) -> String {
    let cleaned = sanitize::clean(s);
    format::truncate(
        &cleaned.split_whitespace().collect::<Vec<_>>().join(" "),
        max,
        false,
    )
}

/// The finished subject, checked once more as a whole: whatever a part contained, the result
/// has no control characters (so no CR/LF) and a bounded length.
pub(super) fn header_safe(subject: &str) -> String {
    let safe = one_line(subject, SUBJECT_MAX);
    debug_assert!(sanitize::is_clean(&safe));
    safe
}

/// A plain-text body under construction.
#[derive(Default)]
struct Text(String);

impl Text {
    fn line(&mut self, s: &str) {
        self.0.push_str(s);
        self.0.push('\n');
    }

    fn blank(&mut self) {
        self.0.push('\n');
    }

    /// A paragraph, wrapped to the body width.
    fn para(&mut self, s: &str) {
        self.indented(s, 0);
    }

    fn indented(&mut self, s: &str, indent: usize) {
        for l in wrap(s, WIDTH.saturating_sub(indent)) {
            self.0.push_str(&" ".repeat(indent));
            self.line(&l);
        }
    }

    /// A line laid out in columns, kept as it is when it fits and wrapped at `indent`
    /// otherwise (a long name).
    fn columns(&mut self, s: &str, indent: usize) {
        if s.chars().count() <= WIDTH {
            self.line(s);
        } else {
            self.indented(s, indent);
        }
    }

    /// `  Label:        value`, the value wrapped under itself.
    fn field(&mut self, label: &str, value: &str) {
        let head = if label.is_empty() {
            String::new()
        } else {
            format!("{label}:")
        };
        for (n, l) in wrap(value, FIELD_WIDTH).into_iter().enumerate() {
            let label = if n == 0 { head.as_str() } else { "" };
            self.line(&format!("  {label:<LABEL_WIDTH$}{l}"));
        }
    }
}

/// Greedy word wrap; a word longer than `width` gets a line of its own.
fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in s.split_whitespace() {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines
}
