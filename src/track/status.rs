//! The machine's status at a glance, with the reasons behind it.
//!
//! Heavy Load when a system limit is exceeded or a user is persistent; Medium Usage when CPU or
//! memory is above 60 % of its limit, a disk is approaching its limit, or a tracked user is over
//! theirs; Light Usage otherwise. Disks are held to "approaching" (90 %) rather than 60 % because
//! a disk's fill level is not load: most disks sit above 60 % of a 90 % limit for good, which
//! would pin the status at Medium forever. Every level is read from a hysteresis condition, so the
//! status does not flap either. Only the reasons for the level reached are listed: they are what
//! the UI shows next to it.

use super::condition::Condition;
use super::figures::{APPROACHING, ELEVATED, FigureId, Levels, Reading};
use super::scene::Scene;
use super::text;
use crate::model::{AlertKey, Status, StatusReport};

const LIGHT_REASON: &str = "no system figure near its limit and no user over their limit";

/// `sustained_after_secs` is `monitoring.persistent_minutes`: a system limit exceeded for that
/// long is reported as sustained, with how long it has lasted.
pub(crate) fn classify(scene: &Scene, sustained_after_secs: u64) -> StatusReport {
    let heavy = heavy_reasons(scene, sustained_after_secs);
    if !heavy.is_empty() {
        return report(Status::Heavy, heavy);
    }
    let medium = medium_reasons(scene);
    if !medium.is_empty() {
        return report(Status::Medium, medium);
    }
    report(Status::Light, vec![LIGHT_REASON.to_string()])
}

fn report(status: Status, reasons: Vec<String>) -> StatusReport {
    StatusReport { status, reasons }
}

fn heavy_reasons(scene: &Scene, sustained_after_secs: u64) -> Vec<String> {
    let exceeded = scene.watched().filter_map(|(r, levels)| {
        let run = levels.exceeded.run()?;
        let mut reason = figure_reason(r, 1.0);
        let lasted = text::millis_to_secs(run.elapsed_ms(scene.snap.at));
        if lasted >= sustained_after_secs {
            reason.push_str(&format!(", sustained for {}", text::duration(lasted)));
        }
        Some(reason)
    });
    let persistent = scene.persistent.iter().map(|e| {
        format!(
            "{} persistent on {} for {}",
            e.user,
            e.metric.label(),
            text::duration(e.duration_secs)
        )
    });
    exceeded.chain(persistent).collect()
}

fn medium_reasons(scene: &Scene) -> Vec<String> {
    let figures = scene.watched().filter_map(|(r, levels)| {
        let factor = medium_factor(&r.id);
        medium_level(&r.id, levels).is_active().then(|| {
            format!(
                "{}, {} of its {} limit",
                figure_reason(r, factor),
                text::limit(factor * 100.0),
                text::limit(r.limit.threshold)
            )
        })
    });
    let users = scene.users.iter().flat_map(|u| {
        scene.book.over_limit(u).map(move |(m, _, _)| {
            let key = AlertKey::user(u.name.as_str(), m);
            format!(
                "{} {}",
                text::subject(&key),
                text::against(u.value(m), u.limit(m))
            )
        })
    });
    figures.chain(users).collect()
}

fn medium_factor(id: &FigureId) -> f64 {
    match id {
        FigureId::Disk(_) => APPROACHING,
        FigureId::Cpu | FigureId::Memory => ELEVATED,
    }
}

fn medium_level<'a>(id: &FigureId, levels: &'a Levels) -> &'a Condition {
    match id {
        FigureId::Disk(_) => &levels.approaching,
        FigureId::Cpu | FigureId::Memory => &levels.elevated,
    }
}

/// `system CPU 93.0% > 80%` against the limit scaled by `factor`.
fn figure_reason(r: &Reading, factor: f64) -> String {
    format!(
        "{} {}",
        text::subject(&r.id.alert_key()),
        text::against(r.value, r.limit.scaled(factor))
    )
}
