use std::collections::BTreeMap;

use super::fixtures::*;
use crate::mail::sender::{SendEvent, Sender, retry_delay_secs};
use crate::model::Timestamp;

fn at(secs: f64) -> Timestamp {
    T0.plus_secs(secs)
}

#[test]
fn backoff_doubles_and_caps() {
    let transient: Vec<u64> = (1..=9).map(|n| retry_delay_secs(n, false)).collect();
    assert_eq!(transient, [30, 60, 120, 240, 480, 960, 1800, 1800, 1800]);
    let permanent: Vec<u64> = (1..=8).map(|n| retry_delay_secs(n, true)).collect();
    assert_eq!(permanent, [300, 600, 1200, 2400, 4800, 7200, 7200, 7200]);
    assert_eq!(retry_delay_secs(u32::MAX, false), 1800);
}

#[test]
fn delivers_due_mail_oldest_first_and_marks_it_sent() {
    let mut outbox = MemOutbox::default();
    // Pushed out of creation order: the outbox, not insertion, decides.
    let late = outbox.push(mail(2), at(2.0));
    let early = outbox.push(mail(1), at(1.0));
    let future = outbox.push(mail(3), at(3600.0));
    let fake = FakeTransport::default();
    let mut sender = Sender::new(20, "web01");

    let report = sender.run_once(&mut outbox, &fake, at(10.0));

    assert_eq!(
        fake.subjects(),
        ["[sysmon] HIGH web01: mail 1", "[sysmon] HIGH web01: mail 2"]
    );
    assert_eq!(report.sent_ids(), [early, late]);
    assert_eq!(outbox.row(early).sent_at, Some(at(10.0)));
    assert_eq!(outbox.row(late).sent_at, Some(at(10.0)));
    assert_eq!(outbox.row(future).sent_at, None, "not due yet");
    assert_eq!(
        fake.keys.borrow()[0],
        format!("outbox.{early}.{}", at(1.0).0),
        "a Message-ID key unique to the entry"
    );
    assert_eq!(
        report.events[0].to_string(),
        format!("mail {early} sent: [sysmon] HIGH web01: mail 1")
    );
}

#[test]
fn a_refused_mail_is_not_marked_sent_and_backs_off() {
    let mut outbox = MemOutbox::default();
    let id = outbox.push(mail(1), T0);
    let fake = FakeTransport::failing_with(vec![rejected(451, "4.3.0 try again later")]);
    let mut sender = Sender::new(20, "web01");

    let report = sender.run_once(&mut outbox, &fake, T0);

    assert!(report.sent_ids().is_empty());
    let row = outbox.row(id);
    assert_eq!(row.sent_at, None);
    assert_eq!(row.item.attempts, 1);
    assert_eq!(row.item.next_attempt_at, at(30.0));
    assert_eq!(
        row.item.last_error.as_deref(),
        Some("the mail server answered 451 4.3.0 try again later")
    );
    let failed: Vec<&SendEvent> = report.failures().collect();
    assert_eq!(failed.len(), 1);
    let line = failed[0].to_string();
    assert!(line.contains("not delivered (attempt 1)"), "{line}");
    assert!(line.contains("451 4.3.0 try again later"), "{line}");
    assert!(line.contains("next try at 2024-05-01T10:00:30Z"), "{line}");

    // Not before its time, then delivered.
    sender.run_once(&mut outbox, &fake, at(29.0));
    assert_eq!(*fake.attempts.borrow(), 1);
    let report = sender.run_once(&mut outbox, &fake, at(30.0));
    assert_eq!(report.sent_ids(), [id]);
    assert_eq!(outbox.row(id).marked_sent, 1);
}

#[test]
fn a_down_server_is_retried_on_the_backoff_schedule() {
    let mut outbox = MemOutbox::default();
    let id = outbox.push(mail(1), T0);
    let fake = FakeTransport::default();
    *fake.down.borrow_mut() = Some(refused());
    let mut sender = Sender::new(20, "web01");

    // Tick every 5 s for 3 hours and note when the sender tried.
    let mut tries = Vec::new();
    let mut t = 0.0;
    while t <= 3.0 * 3600.0 {
        let before = *fake.attempts.borrow();
        sender.run_once(&mut outbox, &fake, at(t));
        if *fake.attempts.borrow() > before {
            tries.push(t);
        }
        t += 5.0;
    }
    let gaps: Vec<f64> = tries.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(
        &gaps[..8],
        [30.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1800.0, 1800.0],
        "{tries:?}"
    );
    assert_eq!(outbox.row(id).sent_at, None);
    assert_eq!(outbox.row(id).item.attempts as usize, tries.len());
}

#[test]
fn a_permanent_refusal_is_retried_slower_and_never_dropped() {
    let mut outbox = MemOutbox::default();
    let id = outbox.push(mail(1), T0);
    let fake = FakeTransport::failing_with(vec![
        rejected(550, "5.1.1 <ops@example.com>: Recipient address rejected"),
        rejected(550, "5.1.1 <ops@example.com>: Recipient address rejected"),
    ]);
    let mut sender = Sender::new(20, "web01");

    let report = sender.run_once(&mut outbox, &fake, T0);
    assert_eq!(outbox.row(id).item.next_attempt_at, at(300.0));
    let line = report.failures().next().expect("failure").to_string();
    assert!(line.contains("refused permanently"), "{line}");
    assert!(line.contains("550 5.1.1 <ops@example.com>"), "{line}");

    let report = sender.run_once(&mut outbox, &fake, at(300.0));
    assert_eq!(report.failures().count(), 1);
    assert_eq!(outbox.row(id).item.next_attempt_at, at(900.0));
    assert_eq!(outbox.row(id).sent_at, None);

    let report = sender.run_once(&mut outbox, &fake, at(900.0));
    assert_eq!(report.sent_ids(), [id]);
}

#[test]
fn a_refusal_of_one_mail_does_not_hold_up_the_others() {
    let mut outbox = MemOutbox::default();
    let ids: Vec<i64> = (1..=3)
        .map(|n| outbox.push(mail(n), at(n as f64)))
        .collect();
    let fake = FakeTransport::failing_with(vec![rejected(552, "5.3.4 Message too big")]);
    let mut sender = Sender::new(20, "web01");

    let report = sender.run_once(&mut outbox, &fake, at(10.0));

    assert_eq!(report.sent_ids(), [ids[1], ids[2]]);
    assert_eq!(outbox.row(ids[0]).sent_at, None);
    assert_eq!(report.paused_until, None);
}

#[test]
fn a_server_wide_failure_pauses_the_whole_queue() {
    let mut outbox = MemOutbox::default();
    for n in 1..=5 {
        outbox.push(mail(n), T0);
    }
    let fake = FakeTransport::failing_with(vec![refused()]);
    let mut sender = Sender::new(20, "web01");

    let report = sender.run_once(&mut outbox, &fake, T0);
    assert_eq!(*fake.attempts.borrow(), 1, "one try, not one per mail");
    assert_eq!(report.paused_until, Some(at(30.0)));

    let report = sender.run_once(&mut outbox, &fake, at(20.0));
    assert_eq!(*fake.attempts.borrow(), 1);
    assert_eq!(report.paused_until, Some(at(30.0)));
    assert!(report.is_quiet());

    // The server is back: everything goes, oldest first.
    let report = sender.run_once(&mut outbox, &fake, at(30.0));
    assert_eq!(report.sent_ids(), [1, 2, 3, 4, 5]);
    assert_eq!(outbox.unsent(), 0);
}

#[test]
fn many_refusals_in_one_run_pause_instead_of_trying_everything() {
    let mut outbox = MemOutbox::default();
    for n in 1..=10 {
        outbox.push(mail(n), T0);
    }
    let fake = FakeTransport::failing_with(
        (0..10)
            .map(|_| rejected(550, "5.7.1 relaying denied"))
            .collect(),
    );
    let mut sender = Sender::new(20, "web01");
    let report = sender.run_once(&mut outbox, &fake, T0);
    assert_eq!(*fake.attempts.borrow(), 3);
    assert!(report.paused_until.is_some());
}

#[test]
fn the_cap_holds_mail_back_then_sends_one_digest() {
    let mut outbox = MemOutbox::default();
    for n in 1..=10 {
        outbox.push(mail(n), at(n as f64));
    }
    let fake = FakeTransport::default();
    let mut sender = Sender::new(3, "web01");

    let report = sender.run_once(&mut outbox, &fake, at(20.0));
    assert_eq!(report.sent_ids(), [1, 2, 3]);
    assert_eq!(report.held, 7);
    let holding: Vec<String> = report
        .events
        .iter()
        .filter(|e| matches!(e, SendEvent::Holding { .. }))
        .map(|e| e.to_string())
        .collect();
    assert_eq!(holding.len(), 1);
    assert!(
        holding[0].contains("max_per_hour (3) reached"),
        "{holding:?}"
    );

    // Within the hour nothing goes out, and holding is not re-announced.
    let report = sender.run_once(&mut outbox, &fake, at(600.0));
    assert!(report.is_quiet(), "{report:?}");
    assert_eq!(report.held, 7);
    // More mail arrives while held.
    outbox.push(mail(11), at(1200.0));
    outbox.push(mail(12), at(1300.0));
    sender.run_once(&mut outbox, &fake, at(1800.0));
    assert_eq!(fake.accepted.borrow().len(), 3);

    // Exactly an hour later the first three still count ("at or after now - 1h").
    assert!(
        sender
            .run_once(&mut outbox, &fake, at(20.0 + 3600.0))
            .is_quiet()
    );
    // Once they are older than an hour, one digest carries all nine.
    let report = sender.run_once(&mut outbox, &fake, at(21.0 + 3600.0));
    assert_eq!(report.sent_ids(), (4..=12).collect::<Vec<i64>>());
    assert_eq!(fake.accepted.borrow().len(), 4);
    let digest = fake.accepted.borrow()[3].clone();
    assert_eq!(
        digest.subject,
        "[sysmon] DIGEST web01: 9 held-back notifications (highest HIGH)"
    );
    for n in 4..=12 {
        assert!(digest.body.contains(&format!("body of mail {n}\n")), "{n}");
    }
    assert_eq!(outbox.unsent(), 0);
    assert!(outbox.rows.iter().all(|r| r.marked_sent == 1));
    assert!(matches!(report.events[0], SendEvent::DigestSent { .. }));

    // The digest counts as one mail: two more fit in this hour.
    for n in 13..=15 {
        outbox.push(mail(n), at(3700.0));
    }
    let report = sender.run_once(&mut outbox, &fake, at(3700.0));
    assert_eq!(report.sent_ids(), [13, 14]);
    assert_eq!(report.held, 1);
}

#[test]
fn a_single_held_mail_goes_out_as_itself() {
    let mut outbox = MemOutbox::default();
    for n in 1..=2 {
        outbox.push(mail(n), T0);
    }
    let fake = FakeTransport::default();
    let mut sender = Sender::new(1, "web01");
    sender.run_once(&mut outbox, &fake, T0);
    let report = sender.run_once(&mut outbox, &fake, at(3601.0));
    assert_eq!(report.sent_ids(), [2]);
    assert_eq!(fake.subjects()[1], "[sysmon] HIGH web01: mail 2");
}

#[test]
fn sends_before_a_restart_count_against_the_cap() {
    let mut outbox = MemOutbox::default();
    for n in 1..=4 {
        outbox.push(mail(n), T0);
    }
    // An earlier process sent three 10 minutes ago.
    outbox.mark_sent_raw(&[1, 2, 3], at(600.0));
    let fake = FakeTransport::default();
    let mut sender = Sender::new(3, "web01");

    let report = sender.run_once(&mut outbox, &fake, at(1200.0));
    assert!(report.sent_ids().is_empty());
    assert_eq!(report.held, 1);
    // Once they are an hour old, the new mail goes.
    let report = sender.run_once(&mut outbox, &fake, at(601.0 + 3600.0));
    assert_eq!(report.sent_ids(), [4]);
}

#[test]
fn a_delivery_the_store_cannot_record_is_not_sent_again() {
    let mut outbox = MemOutbox::default();
    let id = outbox.push(mail(1), T0);
    outbox.mark_sent_broken = true;
    let fake = FakeTransport::default();
    let mut sender = Sender::new(20, "web01");

    let report = sender.run_once(&mut outbox, &fake, T0);
    assert_eq!(*fake.attempts.borrow(), 1);
    let errors: Vec<String> = report
        .events
        .iter()
        .filter(|e| matches!(e, SendEvent::OutboxError(_)))
        .map(|e| e.to_string())
        .collect();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].contains("cannot be recorded as sent"),
        "{errors:?}"
    );

    // Still broken: no resend, and the same error is not logged on every tick.
    let report = sender.run_once(&mut outbox, &fake, at(5.0));
    let report2 = sender.run_once(&mut outbox, &fake, at(10.0));
    assert_eq!(*fake.attempts.borrow(), 1);
    assert_eq!(report.events.len(), 1, "{report:?}");
    assert!(report2.is_quiet(), "{report2:?}");

    // The store recovers: recorded, still sent once.
    outbox.mark_sent_broken = false;
    sender.run_once(&mut outbox, &fake, at(15.0));
    assert_eq!(outbox.row(id).sent_at, Some(T0));
    assert_eq!(*fake.attempts.borrow(), 1);
}

#[test]
fn a_broken_store_sends_nothing_and_says_so_once() {
    let mut outbox = MemOutbox::default();
    outbox.push(mail(1), T0);
    outbox.broken = true;
    let fake = FakeTransport::default();
    let mut sender = Sender::new(20, "web01");
    let report = sender.run_once(&mut outbox, &fake, T0);
    assert_eq!(*fake.attempts.borrow(), 0);
    assert_eq!(
        report.events,
        [SendEvent::OutboxError("database is locked".into())]
    );
    assert!(sender.run_once(&mut outbox, &fake, at(5.0)).is_quiet());
    outbox.broken = false;
    assert_eq!(
        sender.run_once(&mut outbox, &fake, at(10.0)).sent_ids(),
        [1]
    );
}

/// A tiny deterministic generator, so the simulation is the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

/// Hours of bursts and outages: every mail is delivered exactly once, and no rolling hour sees
/// more than the cap.
#[test]
fn outages_and_storms_deliver_everything_exactly_once_within_the_cap() {
    const CAP: usize = 5;
    let mut outbox = MemOutbox::default();
    let fake = FakeTransport::default();
    let mut sender = Sender::new(CAP as u32, "web01");
    let mut rng = Lcg(42);
    let mut deliveries: Vec<f64> = Vec::new();
    let mut delivered: BTreeMap<i64, u32> = BTreeMap::new();
    let mut pushed = 0;

    let mut t = 0.0;
    while t < 8.0 * 3600.0 {
        // Bursts in the first five hours.
        if t < 5.0 * 3600.0 && rng.next(40) == 0 {
            for _ in 0..=rng.next(6) {
                pushed += 1;
                outbox.push(mail(pushed), at(t));
            }
        }
        // Down from 1h to 1h40 and from 3h to 3h10.
        let down = (3600.0..6000.0).contains(&t) || (10_800.0..11_400.0).contains(&t);
        *fake.down.borrow_mut() = down.then(refused);
        let before = fake.accepted.borrow().len();
        let report = sender.run_once(&mut outbox, &fake, at(t));
        for _ in before..fake.accepted.borrow().len() {
            deliveries.push(t);
        }
        for id in report.sent_ids() {
            *delivered.entry(id).or_default() += 1;
        }
        t += 5.0;
    }

    assert!(pushed > 40, "the storm should exceed the cap: {pushed}");
    assert_eq!(outbox.unsent(), 0);
    assert_eq!(delivered.len() as i64, pushed);
    assert!(delivered.values().all(|n| *n == 1), "{delivered:?}");
    assert!(outbox.rows.iter().all(|r| r.marked_sent == 1));
    for (i, start) in deliveries.iter().enumerate() {
        let in_hour = deliveries[i..]
            .iter()
            .take_while(|t| **t < start + 3600.0)
            .count();
        assert!(in_hour <= CAP, "{in_hour} mails in the hour from {start}");
    }
    assert!(
        fake.subjects().iter().any(|s| s.contains("DIGEST")),
        "the storm should have produced a digest"
    );
}
