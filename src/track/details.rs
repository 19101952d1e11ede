//! What an alert carries so that an administrator can act on it from the notification alone:
//! the figure against its limit and for how long, who is using the machine and with which
//! processes, load and uptime, and one or two sentences on what to do.
//!
//! Names of users and processes come from the snapshot, already stripped of control characters;
//! they are written here as plain text only, and each sink escapes them for its own medium.

use std::collections::HashSet;

use super::firing::Facts;
use super::scene::Scene;
use super::text;
use crate::model::{
    AlertDetails, AlertKey, AlertKind, Metric, ProcessSummary, Severity, Status, Timestamp,
    TopProcess, UserStats, UserSummary,
};

/// Users listed in an alert.
const TOP_USERS: usize = 5;

pub(crate) fn build(scene: &Scene, status: Status, facts: &Facts) -> AlertDetails {
    let snap = scene.snap;
    let top_users = top_users(scene, &facts.key);
    let recommendation = match facts.key.kind {
        AlertKind::GpuIdle => idle_advice(scene, facts),
        _ => recommendation(facts, top_users.first(), scene.at()),
    };
    AlertDetails {
        host: snap.host.clone(),
        metric: facts.key.metric,
        value: facts.value,
        threshold: facts.limit.threshold,
        duration_secs: facts.duration_secs(scene.at()),
        status,
        system_cpu_percent: snap.system.cpu.total.busy,
        system_memory_percent: snap.system.memory.used_percent,
        recommendation,
        top_users,
        persistent_users: scene.persistent.clone(),
        load: snap.system.load,
        uptime_secs: snap.system.uptime_secs,
    }
}

/// The heaviest users for the alert's metric; for a user alert, that user comes first.
fn top_users(scene: &Scene, key: &AlertKey) -> Vec<UserSummary> {
    let mut users: Vec<&UserStats> = scene.snap.users.iter().collect();
    users.sort_by(|a, b| weight(b, key.metric).total_cmp(&weight(a, key.metric)));
    if matches!(
        key.kind,
        AlertKind::User | AlertKind::PersistentUser | AlertKind::GpuIdle
    ) && let Some(pos) = users.iter().position(|u| *u.name == *key.subject)
    {
        let subject = users.remove(pos);
        users.insert(0, subject);
    }
    let total_memory = scene.snap.system.memory.total_bytes;
    users
        .into_iter()
        .take(TOP_USERS)
        .map(|u| summary(u, total_memory))
        .collect()
}

/// Per-user disk use is not measured, so disk alerts list users by CPU like the snapshot does.
/// GPU alerts list them by the GPU memory they hold.
fn weight(u: &UserStats, metric: Metric) -> f64 {
    match metric {
        Metric::Memory => u.memory_percent,
        Metric::GpuMemory | Metric::GpuUtilization => {
            u.gpu.as_ref().map_or(0.0, |g| g.memory_percent)
        }
        Metric::Cpu | Metric::Disk => u.cpu_percent,
    }
}

fn summary(u: &UserStats, total_memory: u64) -> UserSummary {
    UserSummary {
        name: u.name.to_string(),
        uid: u.uid,
        tracked: u.tracked,
        cpu_percent: u.cpu_percent,
        memory_percent: u.memory_percent,
        processes: u.processes,
        top_processes: u
            .top_processes
            .iter()
            .map(|p| process(p, total_memory))
            .collect(),
        gpu: u.gpu.clone(),
    }
}

fn process(p: &TopProcess, total_memory: u64) -> ProcessSummary {
    let memory_percent = if total_memory == 0 {
        0.0
    } else {
        p.memory_bytes as f64 * 100.0 / total_memory as f64
    };
    ProcessSummary {
        pid: p.pid,
        name: p.name.to_string(),
        cpu_percent: p.cpu_percent,
        memory_bytes: p.memory_bytes,
        memory_percent,
    }
}

fn recommendation(facts: &Facts, heaviest: Option<&UserSummary>, at: Timestamp) -> String {
    let key = &facts.key;
    match (key.kind, key.metric) {
        (AlertKind::System, Metric::Disk) => format!(
            "Free space on {}: remove or archive old files, rotate logs, or grow the filesystem.",
            key.subject
        ),
        (AlertKind::System, m) if facts.severity == Severity::Low => format!(
            "System {} is nearing its limit; nothing to do yet, but watch the users listed below.",
            m.label()
        ),
        (AlertKind::System, m) => system_advice(m, facts.value, heaviest),
        (AlertKind::User, m) => format!(
            "{} is using {} {} (limit {}). If that is not expected, ask them about {}.",
            key.subject,
            text::percent(facts.value),
            m.label(),
            text::limit(facts.limit.threshold),
            heaviest_process(heaviest),
        ),
        (AlertKind::PersistentUser, m) => format!(
            "{} has stayed over their {} limit for {}. Contact them about {}; if the work is \
             legitimate, give them their own limit under [user_thresholds].",
            key.subject,
            m.label(),
            text::duration(facts.duration_secs(at)),
            heaviest_process(heaviest),
        ),
        (AlertKind::GpuIdle, _) => idle_advice_text(&key.subject, "their processes"),
        (AlertKind::Recovery, _) => "No action needed.".to_string(),
    }
}

/// Advice for GPU memory held idle, naming the processes that hold it.
fn idle_advice(scene: &Scene, facts: &Facts) -> String {
    let user = facts.key.subject.as_str();
    // The list is by device then pid: a process on several idle devices is named once, where
    // it first appears.
    let mut named = HashSet::new();
    let holders: Vec<String> = scene
        .snap
        .gpu
        .processes
        .iter()
        .filter(|p| p.user.as_deref() == Some(user) && p.memory_bytes.is_some_and(|b| b > 0))
        .filter(|p| facts.idle.iter().any(|d| *d.device == *p.device))
        .filter(|p| named.insert(p.pid))
        .map(|p| format!("{} (pid {})", p.name.as_deref().unwrap_or("?"), p.pid))
        .collect();
    let what = match holders.as_slice() {
        [] => "their processes".to_string(),
        [one] => format!("their process {one}"),
        many => format!("their processes {}", many.join(", ")),
    };
    idle_advice_text(user, &what)
}

fn idle_advice_text(user: &str, what: &str) -> String {
    format!(
        "{user} keeps GPU memory that other users cannot have on a GPU doing nothing. Ask them \
         to end {what} (a forgotten notebook or a stalled job) or to free the memory; if the \
         work is legitimate, raise their gpu_idle_minutes under [user_thresholds]."
    )
}

/// Advice for a machine-wide figure over its limit, worded for how far over it is: "saturated"
/// and "exhausted" only when they are.
fn system_advice(metric: Metric, value: f64, heaviest: Option<&UserSummary>) -> String {
    let what = match metric {
        Metric::Memory if value >= 95.0 => "Memory is nearly exhausted".to_string(),
        Metric::Memory => format!("Memory use is high ({})", text::percent(value)),
        Metric::GpuMemory | Metric::GpuUtilization => {
            format!("GPU memory use is high ({})", text::percent(value))
        }
        Metric::Cpu | Metric::Disk if value >= 95.0 => "The CPUs are saturated".to_string(),
        Metric::Cpu | Metric::Disk => format!("CPU use is high ({})", text::percent(value)),
    };
    match heaviest {
        Some(u) => format!(
            "{what}. The heaviest user is {} ({} CPU, {} memory); check {} and renice it \
             (F7/F8 in sysmon's process list), limit or stop it if it is runaway.",
            u.name,
            text::percent(u.cpu_percent),
            text::percent(u.memory_percent),
            heaviest_process(Some(u)),
        ),
        None => format!("{what}. No user process stands out; check system services."),
    }
}

/// `their process make (pid 4242)`, or a general phrase when none is known.
fn heaviest_process(user: Option<&UserSummary>) -> String {
    match user.and_then(|u| u.top_processes.first()) {
        Some(p) => format!("their process {} (pid {})", p.name, p.pid),
        None => "their processes".to_string(),
    }
}
