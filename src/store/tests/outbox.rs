//! The outbox as the sender uses it, through the `Outbox` trait, from its own connection.

use super::*;
use crate::mail::queue::Outbox;

#[test]
fn due_failed_sent_and_backlog() {
    let (_dir, path) = temp_db();
    let mut daemon = open(&path);
    put(
        &mut daemon,
        &snap(T0),
        &[],
        &[mail("one", None), mail("two", None)],
    );
    put(&mut daemon, &snap(T0 + 1000), &[], &[mail("three", None)]);
    let mut sender = open(&path);

    assert!(sender.due(Timestamp(T0 - 1), 10).expect("due").is_empty());
    let due = sender.due(Timestamp(T0 + 1000), 10).expect("due");
    let subjects: Vec<&str> = due.iter().map(|i| i.mail.subject.as_str()).collect();
    assert_eq!(subjects, ["one", "two", "three"], "oldest first");
    assert_eq!(due[0].mail.body, "body of one");
    assert_eq!(due[0].mail.severity, Severity::High);
    assert_eq!((due[0].attempts, due[0].created_at), (0, Timestamp(T0)));
    assert_eq!(sender.due(Timestamp(T0 + 1000), 2).expect("due").len(), 2);
    assert_eq!(sender.backlog().expect("backlog"), 3);

    let (one, two, three) = (due[0].id, due[1].id, due[2].id);
    sender
        .mark_failed(
            one,
            Timestamp(T0 + 2000),
            "421 try later",
            Timestamp(T0 + 60_000),
        )
        .expect("failed");
    let ids = |v: Vec<crate::model::OutboxItem>| v.iter().map(|i| i.id).collect::<Vec<_>>();
    assert_eq!(
        ids(sender.due(Timestamp(T0 + 30_000), 10).expect("due")),
        [two, three]
    );
    let retried = sender.due(Timestamp(T0 + 60_000), 10).expect("due");
    assert_eq!(retried[0].id, one);
    assert_eq!(retried[0].attempts, 1);
    assert_eq!(retried[0].last_error.as_deref(), Some("421 try later"));
    assert_eq!(retried[0].next_attempt_at, Timestamp(T0 + 60_000));

    sender
        .mark_sent(&[two, three], Timestamp(T0 + 3000))
        .expect("sent");
    assert_eq!(sender.backlog().expect("backlog"), 1);
    assert_eq!(
        ids(sender.due(Timestamp(T0 + HOUR), 10).expect("due")),
        [one]
    );
    assert_eq!(sender.sent_since(Timestamp(T0 + 3000)).expect("since"), 2);
    assert_eq!(sender.sent_since(Timestamp(T0 + 3001)).expect("since"), 0);
    // Marking again, or failing a sent mail, changes nothing.
    sender
        .mark_sent(&[two], Timestamp(T0 + HOUR))
        .expect("again");
    assert_eq!(sender.sent_since(Timestamp(T0 + 3001)).expect("since"), 0);
    sender
        .mark_failed(three, Timestamp(T0 + HOUR), "late", Timestamp(T0))
        .expect("no-op");
    assert_eq!(sender.backlog().expect("backlog"), 1);
    // The daemon's connection sees the same queue.
    assert_eq!(daemon.backlog().expect("backlog"), 1);
    assert_eq!(daemon.stats().expect("stats").outbox_backlog, 1);
}
