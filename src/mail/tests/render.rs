use jiff::tz::{self, TimeZone};
use proptest::prelude::*;

use super::fixtures::*;
use crate::config::{Email, TlsMode};
use crate::mail::render::{digest_in, mail_for, mail_for_in};
use crate::mail::smtp::Mailer;
use crate::model::{Event, Mail, OutboxItem, ResolvedBy, Severity, Status, StatusReport};

fn tz() -> TimeZone {
    TimeZone::fixed(tz::offset(2))
}

fn render(event: &Event) -> Mail {
    mail_for_in(event, &alerts_cfg(Severity::Low, true), &tz()).expect("a mail")
}

/// Runs of whitespace as one space, so that assertions do not depend on where lines wrap.
fn flat(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A mailer that is never used to connect: only its message builder is.
fn offline_mailer() -> Mailer {
    let cfg = Email {
        enabled: true,
        smtp_host: Some("127.0.0.1".into()),
        smtp_port: 2525,
        tls: TlsMode::None,
        from: Some("sysmon <sysmon@example.com>".into()),
        to: vec!["ops@example.com".into()],
        ..Email::default()
    };
    Mailer::new(&cfg, None, None).expect("mailer")
}

/// The header section of a formatted message, one entry per logical header (folded lines
/// joined).
fn headers(raw: &str) -> Vec<String> {
    let head = raw.split("\r\n\r\n").next().unwrap_or("");
    let mut out: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.push_str(line);
            }
        } else {
            out.push(line.to_string());
        }
    }
    out
}

#[test]
fn opened_subject_names_severity_host_what_figure_and_duration() {
    let m = render(&Event::AlertOpened(user_cpu_alert()));
    assert_eq!(
        m.subject,
        "[sysmon] HIGH web01: user alice CPU 93% for 1h01m"
    );
    assert_eq!(m.severity, Severity::High);
    assert_eq!(m.alert_id, None);
}

#[test]
fn repeat_and_escalation_subjects_say_so() {
    let a = user_cpu_alert();
    let rep = render(&Event::AlertRepeated(a.clone()));
    assert_eq!(
        rep.subject,
        "[sysmon] HIGH web01: user alice CPU 93% for 1h01m (still firing)"
    );
    let esc = render(&Event::AlertEscalated {
        alert: a,
        from: Severity::Medium,
    });
    assert_eq!(
        esc.subject,
        "[sysmon] HIGH web01: user alice CPU 93% for 1h01m (up from MEDIUM)"
    );
    assert!(flat(&esc.body).contains("escalated from MEDIUM to HIGH"));
    assert!(flat(&esc.body).contains("Severity: HIGH (was MEDIUM)"));
}

#[test]
fn recovery_subject_gives_the_figure_it_is_back_to() {
    let m = render(&Event::Recovery(memory_recovery()));
    assert_eq!(
        m.subject,
        "[sysmon] RECOVERED web01: system memory back to 61.0%"
    );
    assert_eq!(m.severity, Severity::Critical);
    let body = flat(&m.body);
    assert!(body.contains("Recovered on web01: system memory recovered: 61.0% (limit 90%)"));
    assert!(
        body.contains("Duration: 30m (from 2024-05-01T09:30:00Z to 2024-05-01T10:00:00Z)"),
        "{body}"
    );
}

#[test]
fn recovery_of_an_unmeasured_figure_does_not_claim_a_value() {
    let mut a = memory_recovery();
    a.value = 95.0; // the last firing figure, kept when nothing could be measured
    a.message = "system memory recovered: no longer measured".into();
    let m = render(&Event::Recovery(a));
    assert_eq!(
        m.subject,
        "[sysmon] RECOVERED web01: system memory no longer measured"
    );
}

#[test]
fn disk_and_persistent_subjects() {
    let mut disk = user_cpu_alert();
    disk.key = crate::model::AlertKey::disk("/home");
    disk.details.metric = crate::model::Metric::Disk;
    assert_eq!(
        render(&Event::AlertOpened(disk)).subject,
        "[sysmon] HIGH web01: disk /home 93% for 1h01m"
    );
    let mut p = user_cpu_alert();
    p.key = crate::model::AlertKey::persistent_user("alice", crate::model::Metric::Memory);
    assert_eq!(
        render(&Event::AlertOpened(p)).subject,
        "[sysmon] HIGH web01: persistent user alice memory 93% for 1h01m"
    );
}

#[test]
fn body_carries_every_detail() {
    let m = render(&Event::AlertOpened(user_cpu_alert()));
    let body = flat(&m.body);
    for expected in [
        "New HIGH alert on web01: user alice CPU 93.4% > 80%",
        "Host: web01",
        "Severity: HIGH",
        "Alert: user alice CPU Key: user:cpu:alice",
        "Metric: CPU",
        "Value: 93.4% against a limit of 80% (peak 97.2%)",
        "Duration: 1h01m over the limit",
        "State: open, opened 2024-05-01T08:59:00Z",
        "Status: Heavy Load",
        "Reason: user alice CPU 93.4% > 80%",
        "System: CPU 97.5%, memory 61.0%",
        "Load average: 7.91, 6.50, 4.25 (1, 5, 15 min)",
        "Uptime: 12d 3h",
        "Time: 2024-05-01T10:00:00Z (UTC)",
        "2024-05-01 12:00:00",
        "(host local time)",
        "What to do alice is using 93.4% CPU (limit 80%). If that is not expected, ask them \
         about their process make (pid 4242).",
        "Top users by CPU",
        "1. alice (uid 1001): CPU 93.4%, memory 12.5%, 12 processes",
        "pid 4242 make CPU 350.0% memory 1.2 GiB (7.5%)",
        "pid 4243 cc1plus CPU 99.5% memory 512.0 MiB (3.1%)",
        "2. bob (uid 1002, not tracked): CPU 4.5%, memory 30.2%, 11 processes",
        "pid 5151 java CPU 4.5% memory 5.0 GiB (31.2%)",
        "Persistent users alice: CPU over 80% for 1h01m since 2024-05-01T08:59:00Z, still going \
         (peak 97.2%, average 91.3%)",
        "Sent by sysmon on web01.",
    ] {
        assert!(
            body.contains(expected),
            "missing {expected:?} in:\n{}",
            m.body
        );
    }
}

#[test]
fn body_is_plain_ascii_within_76_columns() {
    let m = render(&Event::AlertOpened(user_cpu_alert()));
    for line in m.body.lines() {
        assert!(line.chars().count() < 76, "long line {line:?}");
        assert!(line.is_ascii(), "non-ASCII line {line:?}");
    }
}

#[test]
fn long_names_wrap_instead_of_making_long_lines() {
    let mut a = user_cpu_alert();
    let long = "a-very-long-login-name-from-some-directory-service-x";
    a.key = crate::model::AlertKey::user(long, crate::model::Metric::Cpu);
    a.details.top_users[0].name = long.into();
    a.details.top_users[0].top_processes[0].name = "p".repeat(40);
    a.details.host = "h".repeat(60);
    let m = render(&Event::AlertOpened(a));
    for line in m.body.lines() {
        assert!(line.chars().count() < 76, "long line {line:?}");
    }
    assert!(flat(&m.body).contains(&format!("pid 4242 {}… CPU 350.0%", "p".repeat(31))));
}

#[test]
fn memory_alerts_rank_users_by_memory() {
    let mut a = user_cpu_alert();
    a.details.metric = crate::model::Metric::Memory;
    assert!(
        render(&Event::AlertOpened(a))
            .body
            .contains("Top users by memory")
    );
}

#[test]
fn empty_lists_say_so() {
    let mut a = user_cpu_alert();
    a.details.top_users.clear();
    a.details.persistent_users.clear();
    let body = flat(&render(&Event::AlertOpened(a)).body);
    assert!(body.contains("Top users by CPU (no user processes)"));
    assert!(body.contains("Persistent users (none)"));
}

#[test]
fn only_notifying_events_are_mailed() {
    let cfg = alerts_cfg(Severity::Low, true);
    let a = user_cpu_alert();
    let mailed = [
        Event::AlertOpened(a.clone()),
        Event::AlertRepeated(a.clone()),
        Event::AlertEscalated {
            alert: a.clone(),
            from: Severity::Medium,
        },
        Event::Recovery(a.clone()),
    ];
    for e in &mailed {
        assert!(mail_for(e, &cfg).is_some(), "{e:?} should be mailed");
    }
    let episode = a.details.persistent_users[0].clone();
    let silent = [
        Event::AlertAcknowledged(a.clone()),
        Event::AlertResolved {
            alert: a.clone(),
            by: ResolvedBy::Operator,
        },
        // The notice, not the resolution, carries the recovery mail.
        Event::AlertResolved {
            alert: a.clone(),
            by: ResolvedBy::Recovered,
        },
        Event::PersistentStarted(episode.clone()),
        Event::PersistentEnded(episode),
        Event::StatusChanged {
            from: StatusReport::default(),
            to: StatusReport {
                status: Status::Heavy,
                reasons: vec!["system CPU 97.5% > 80%".into()],
            },
        },
    ];
    for e in &silent {
        assert!(mail_for(e, &cfg).is_none(), "{e:?} should not be mailed");
    }
}

#[test]
fn severity_filter_applies_to_alerts_and_their_notices() {
    let mut low = user_cpu_alert();
    low.severity = Severity::Medium;
    let high = user_cpu_alert();
    let cfg = alerts_cfg(Severity::High, true);
    for (alert, expect) in [(low, false), (high, true)] {
        for e in [
            Event::AlertOpened(alert.clone()),
            Event::AlertRepeated(alert.clone()),
            Event::Recovery(alert.clone()),
        ] {
            assert_eq!(mail_for(&e, &cfg).is_some(), expect, "{e:?}");
        }
    }
    // An escalation mails when the new severity qualifies, whatever it came from.
    let mut esc = user_cpu_alert();
    esc.severity = Severity::Medium;
    let below = Event::AlertEscalated {
        alert: esc.clone(),
        from: Severity::Low,
    };
    assert!(mail_for(&below, &cfg).is_none());
    esc.severity = Severity::Critical;
    let above = Event::AlertEscalated {
        alert: esc,
        from: Severity::Medium,
    };
    assert!(mail_for(&above, &cfg).is_some());
}

#[test]
fn recovery_mail_follows_notify_recovery() {
    let e = Event::Recovery(memory_recovery());
    assert!(mail_for(&e, &alerts_cfg(Severity::High, true)).is_some());
    assert!(mail_for(&e, &alerts_cfg(Severity::High, false)).is_none());
}

/// Names as an attacker on a shared server would choose them.
fn hostile_alert() -> crate::model::Alert {
    let mut a = user_cpu_alert();
    let evil_user = "alice\r\nBcc: victim@example.net\r\nX-Injected: 1";
    a.key = crate::model::AlertKey::user(evil_user, crate::model::Metric::Cpu);
    a.message = format!("user {evil_user} CPU 93.4% > 80%");
    a.details.host = "web01\nSubject: forged".into();
    a.details.top_users[0].name = evil_user.into();
    a.details.top_users[0].top_processes[0].name =
        "mk\r\n\r\n<html>\u{1b}[31m\u{202e}evil\u{0}\u{7f}\u{9b}".into();
    a.details.recommendation = "Ask\rBcc: x@example.net".into();
    a
}

#[test]
fn hostile_names_cannot_inject_headers() {
    let mail = render(&Event::AlertOpened(hostile_alert()));
    assert!(
        !mail.subject.chars().any(|c| c.is_control()),
        "{:?}",
        mail.subject
    );
    assert!(crate::sanitize::is_clean(&mail.subject));
    // The names are still there, defanged, on one line.
    assert!(mail.subject.contains("alice Bcc: victim@example.net"));
    for line in mail.body.lines() {
        assert!(
            !line.chars().any(|c| c.is_control()),
            "control character in body line {line:?}"
        );
    }

    let message = offline_mailer()
        .message(&mail, Some("outbox.1.2"))
        .expect("message");
    let raw = String::from_utf8(message.formatted()).expect("utf-8");
    let headers = headers(&raw);
    let names: Vec<String> = headers
        .iter()
        .map(|h| h.split(':').next().unwrap_or("").to_ascii_lowercase())
        .collect();
    for forbidden in ["bcc", "x-injected", "cc"] {
        assert!(
            !names.iter().any(|n| n == forbidden),
            "injected header {forbidden}: {headers:#?}"
        );
    }
    assert_eq!(names.iter().filter(|n| *n == "subject").count(), 1);
    assert_eq!(names.iter().filter(|n| *n == "to").count(), 1);
    for h in &headers {
        let name = h.split(':').next().unwrap_or("");
        assert!(
            [
                "From",
                "To",
                "Subject",
                "Message-ID",
                "Content-Type",
                "X-Sysmon-Severity",
                "Auto-Submitted",
                "Content-Transfer-Encoding",
                "MIME-Version",
                "Date",
            ]
            .contains(&name),
            "unexpected header line {h:?} in\n{raw}"
        );
    }
}

#[test]
fn mailer_cleans_a_subject_that_reached_the_outbox_unclean() {
    let mail = Mail {
        severity: Severity::High,
        subject: "hi\r\nBcc: victim@example.net".into(),
        body: "line\u{1b}[2J one\nline two\n".into(),
        alert_id: None,
    };
    let message = offline_mailer().message(&mail, None).expect("message");
    let raw = String::from_utf8(message.formatted()).expect("utf-8");
    let headers = headers(&raw);
    assert!(
        !headers
            .iter()
            .any(|h| h.to_ascii_lowercase().starts_with("bcc:")),
        "{headers:#?}"
    );
    assert!(
        headers
            .iter()
            .any(|h| h == "Subject: hi  Bcc: victim@example.net")
    );
    assert!(!raw.contains('\u{1b}'));
}

#[test]
fn message_has_sysmon_headers() {
    let mail = render(&Event::AlertOpened(user_cpu_alert()));
    let message = offline_mailer()
        .message(&mail, Some("outbox.7.1714557600000"))
        .expect("message");
    let raw = String::from_utf8(message.formatted()).expect("utf-8");
    let headers = headers(&raw);
    assert!(headers.contains(&"X-Sysmon-Severity: HIGH".to_string()));
    assert!(headers.contains(&"Auto-Submitted: auto-generated".to_string()));
    assert!(headers.iter().any(|h| h.starts_with("Date: ")));
    let id = headers
        .iter()
        .find(|h| h.starts_with("Message-ID: "))
        .expect("Message-ID");
    assert!(
        id.starts_with("Message-ID: <sysmon.outbox.7.1714557600000.")
            && id.ends_with("@example.com>"),
        "{id}"
    );
    assert!(headers.contains(&"Content-Transfer-Encoding: 7bit".to_string()));
}

fn item(id: i64, severity: Severity, minutes: f64) -> OutboxItem {
    let mut mail = mail(id);
    mail.severity = severity;
    OutboxItem {
        id,
        created_at: T0.plus_secs(minutes * 60.0),
        mail,
        attempts: 0,
        next_attempt_at: T0,
        last_error: None,
    }
}

#[test]
fn digest_combines_every_held_mail() {
    let items = vec![
        item(1, Severity::High, 0.0),
        item(2, Severity::Critical, 1.0),
        item(3, Severity::Medium, 2.0),
    ];
    let d = digest_in(&items, "web01", &tz());
    assert_eq!(
        d.subject,
        "[sysmon] DIGEST web01: 3 held-back notifications (highest CRITICAL)"
    );
    assert_eq!(d.severity, Severity::Critical);
    let body = flat(&d.body);
    assert!(body.contains("email.max_per_hour"));
    for (n, i) in items.iter().enumerate() {
        assert!(
            body.contains(&format!(
                "{}. {} {}",
                n + 1,
                crate::mail::render::utc(i.created_at),
                i.mail.subject
            )),
            "{body}"
        );
        assert!(body.contains(i.mail.body.trim()));
    }
    // Oldest first.
    let p1 = d.body.find("body of mail 1").expect("1");
    let p3 = d.body.find("body of mail 3").expect("3");
    assert!(p1 < p3);
}

#[test]
fn long_digest_lists_all_but_repeats_only_the_first_bodies() {
    let items: Vec<OutboxItem> = (1..=35)
        .map(|i| item(i, Severity::High, i as f64))
        .collect();
    let d = digest_in(&items, "web01", &tz());
    assert!(d.subject.contains(" 35 held-back"));
    assert!(d.body.contains("[sysmon] HIGH web01: mail 35"));
    assert!(d.body.contains("body of mail 30"));
    assert!(!d.body.contains("body of mail 31"));
    assert!(flat(&d.body).contains("The other 5 are listed above by subject only"));
}

proptest! {
    #[test]
    fn any_names_give_a_clean_bounded_subject(
        user in any::<String>(),
        host in any::<String>(),
        process in any::<String>(),
    ) {
        let mut a = user_cpu_alert();
        a.key = crate::model::AlertKey::user(user.clone(), crate::model::Metric::Cpu);
        a.details.host = host;
        a.details.top_users[0].name = user;
        a.details.top_users[0].top_processes[0].name = process;
        let m = render(&Event::AlertOpened(a));
        prop_assert!(crate::sanitize::is_clean(&m.subject));
        prop_assert!(!m.subject.contains(['\r', '\n']));
        prop_assert!(m.subject.chars().count() <= 200);
        prop_assert!(m.subject.starts_with("[sysmon] HIGH "));
        for line in m.body.lines() {
            prop_assert!(crate::sanitize::is_clean(line));
        }
    }
}

#[test]
fn the_finished_subject_is_checked_as_a_whole() {
    use crate::mail::render::header_safe;
    assert_eq!(
        header_safe("[sysmon] a\r\nBcc: x@example.net\u{1b}[2J\u{202e}"),
        "[sysmon] a Bcc: x@example.net[2J"
    );
    assert_eq!(header_safe(&"x".repeat(500)).chars().count(), 200);
}

/// alice holding GPU memory on two idle devices for 61 minutes.
fn gpu_idle_alert() -> crate::model::Alert {
    use crate::model::{AlertKey, Metric, UserGpu};
    let mut a = user_cpu_alert();
    a.key = AlertKey::gpu_idle("alice");
    a.severity = Severity::Medium;
    a.details.metric = Metric::GpuUtilization;
    (a.value, a.details.value, a.peak) = (1.0, 1.0, 3.0);
    (a.threshold, a.details.threshold) = (5.0, 5.0);
    a.message = "user alice holds 12.0 GiB on idle GPUs 0 (8.0 GiB for 1h01m), 1/mig0 (4.0 GiB \
                 for 40m), each under 5% busy"
        .into();
    a.details.recommendation = "alice keeps GPU memory that other users cannot have on a GPU \
                                doing nothing."
        .into();
    a.details.top_users[0].gpu = Some(UserGpu {
        devices: 2,
        device_ids: vec!["GPU-a".into(), "MIG-b".into()],
        memory_bytes: 12 << 30,
        memory_percent: 7.5,
        utilization_percent: 0.5,
        processes: 2,
    });
    a
}

#[test]
fn gpu_idle_mail_says_how_long_and_how_busy_and_ranks_by_gpu_memory() {
    let m = render(&Event::AlertOpened(gpu_idle_alert()));
    assert_eq!(
        m.subject,
        "[sysmon] MEDIUM web01: user alice idle GPU for 1h01m"
    );
    let body = flat(&m.body);
    for want in [
        "New MEDIUM alert on web01: user alice holds 12.0 GiB on idle GPUs 0 (8.0 GiB for 1h01m), \
         1/mig0 (4.0 GiB for 40m), each under 5% busy",
        "Alert: user alice idle GPU",
        "Key: gpu_idle:gpu_utilization:alice",
        "Metric: GPU utilization",
        "Value: 1.0% busy, idle under 5% (busiest 3.0% while idle)",
        "Duration: 1h01m idle",
        "Top users by GPU memory",
        "1. alice (uid 1001): CPU 93.4%, memory 12.5%, GPU memory 12.0 GiB (7.5%) on 2 GPUs, 12 \
         processes",
        "2. bob (uid 1002, not tracked): CPU 4.5%, memory 30.2%, 11 processes",
    ] {
        assert!(body.contains(want), "{want:?} not in {body}");
    }
    for line in m.body.lines() {
        assert!(line.chars().count() < 76, "long line {line:?}");
        assert!(line.is_ascii(), "non-ASCII line {line:?}");
    }
}

#[test]
fn gpu_idle_recovery_says_whether_the_gpu_got_busy_or_the_memory_was_freed() {
    let recovered = |value: f64, message: &str| {
        let mut a = gpu_idle_alert();
        a.state = crate::model::AlertState::Resolved;
        a.resolved_at = Some(a.updated_at);
        a.value = value;
        a.message = message.into();
        render(&Event::Recovery(a))
    };
    let busy = recovered(
        42.0,
        "user alice idle GPU recovered: busy again, 42.0% (idle under 5%)",
    );
    assert_eq!(
        busy.subject,
        "[sysmon] RECOVERED web01: user alice idle GPU busy again (42.0%)"
    );
    assert!(flat(&busy.body).contains(
        "Recovered on web01: user alice idle GPU recovered: busy again, 42.0% (idle under 5%)"
    ));
    // Nothing left to measure: the figure kept is the last idle one.
    let freed = recovered(1.0, "user alice idle GPU recovered: idle GPU memory freed");
    assert_eq!(
        freed.subject,
        "[sysmon] RECOVERED web01: user alice idle GPU memory freed"
    );
}

#[test]
fn gpu_memory_alerts_name_the_metric() {
    let mut a = user_cpu_alert();
    a.key = crate::model::AlertKey::persistent_user("alice", crate::model::Metric::GpuMemory);
    a.details.metric = crate::model::Metric::GpuMemory;
    let m = render(&Event::AlertOpened(a));
    assert_eq!(
        m.subject,
        "[sysmon] HIGH web01: persistent user alice GPU memory 93% for 1h01m"
    );
    let body = flat(&m.body);
    assert!(body.contains("Metric: GPU memory"));
    assert!(body.contains("Top users by GPU memory"));
}
