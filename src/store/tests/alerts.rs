//! Alert rows, the one-open-row rule, and operator actions across connections.

use super::*;
use crate::model::{Metric, PersistentEpisode, ResolvedBy};
use crate::store::ActionKind;

fn status_of(store: &Store, id: i64) -> (AlertState, Option<String>) {
    let a = store.alert(id).expect("alert").expect("exists");
    (a.alert.state, a.resolved_by)
}

#[test]
fn the_lifecycle_maps_onto_one_row() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    let key = AlertKey::system(Metric::Cpu);
    let a = alert(&key, Severity::Medium, T0, 85.0);
    let out = put(&mut store, &snap(T0), &[Event::AlertOpened(a.clone())], &[]);
    let id = out.opened[&key];

    let rep = later(&a, T0 + 30 * MIN, 88.0);
    put(
        &mut store,
        &snap(T0 + 30 * MIN),
        &[Event::AlertRepeated(rep.clone())],
        &[],
    );
    let got = store.alert(id).expect("alert").expect("row");
    assert_eq!(got.alert.last_notified_at, Timestamp(T0 + 30 * MIN));
    assert!(close(got.alert.value, 88.0) && close(got.alert.peak, 88.0));
    assert_eq!(got.alert.message, rep.message);

    let mut esc = later(&rep, T0 + 31 * MIN, 97.0);
    esc.severity = Severity::Critical;
    put(
        &mut store,
        &snap(T0 + 31 * MIN),
        &[Event::AlertEscalated {
            alert: esc,
            from: Severity::Medium,
        }],
        &[],
    );
    assert_eq!(
        store.alert(id).expect("a").expect("r").alert.severity,
        Severity::Critical
    );

    let mut ack = later(&rep, T0 + 32 * MIN, 90.0);
    ack.state = AlertState::Acknowledged;
    put(
        &mut store,
        &snap(T0 + 32 * MIN),
        &[Event::AlertAcknowledged(ack)],
        &[],
    );
    let got = store.alert(id).expect("a").expect("r");
    assert_eq!(got.alert.state, AlertState::Acknowledged);
    assert_eq!(got.acknowledged_at, Some(Timestamp(T0 + 32 * MIN)));

    let done = resolved(&rep, T0 + 40 * MIN);
    put(
        &mut store,
        &snap(T0 + 40 * MIN),
        &[
            Event::AlertResolved {
                alert: done.clone(),
                by: ResolvedBy::Recovered,
            },
            Event::Recovery(done),
        ],
        &[],
    );
    let got = store.alert(id).expect("a").expect("r");
    assert_eq!(got.alert.state, AlertState::Resolved);
    assert_eq!(got.alert.resolved_at, Some(Timestamp(T0 + 40 * MIN)));
    assert_eq!(got.resolved_by.as_deref(), Some("recovered"));
    assert!(close(got.alert.peak, 97.0), "the peak is kept");
    assert_eq!(got.alert.severity, Severity::Critical);
    assert_eq!(got.alert.details, details());
    assert_eq!(
        store.alerts(true, 10).expect("all").len(),
        1,
        "one row per occurrence"
    );
    assert!(store.alerts(false, 10).expect("open").is_empty());
}

#[test]
fn two_open_rows_for_one_key_are_impossible() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    let key = AlertKey::user("alice", Metric::Memory);
    let first = put(
        &mut store,
        &snap(T0),
        &[Event::AlertOpened(alert(&key, Severity::High, T0, 60.0))],
        &[],
    )
    .opened[&key];
    // The index itself refuses a second unresolved row.
    let dup = store.conn.execute(
        "INSERT INTO alerts (kind, subject, metric, severity, status, opened_at, updated_at, \
         last_notified_at, value, threshold, peak, message, details) \
         SELECT kind, subject, metric, severity, 'acknowledged', opened_at, updated_at, \
         last_notified_at, value, threshold, peak, message, details FROM alerts WHERE id = ?1",
        [first],
    );
    assert!(dup.is_err(), "partial unique index");
    // A tracker that opens the key again (it lost its state) supersedes the stale row.
    let second = put(
        &mut store,
        &snap(T0 + 5000),
        &[Event::AlertOpened(alert(
            &key,
            Severity::High,
            T0 + 5000,
            61.0,
        ))],
        &[],
    )
    .opened[&key];
    assert_ne!(first, second);
    assert_eq!(
        status_of(&store, first),
        (AlertState::Resolved, Some("superseded".into()))
    );
    let open = store.alerts(false, 10).expect("open");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].id, second);
    // A resolved row does not count: a new occurrence of another key's row is fine.
    let other = AlertKey::user("bob", Metric::Memory);
    put(
        &mut store,
        &snap(T0 + 10_000),
        &[Event::AlertOpened(alert(
            &other,
            Severity::Low,
            T0 + 10_000,
            51.0,
        ))],
        &[],
    );
    assert_eq!(store.alerts(false, 10).expect("open").len(), 2);
}

#[test]
fn operator_actions_from_another_process_are_seen_once_and_never_undone() {
    let (_dir, path) = temp_db();
    let mut daemon = open(&path);
    let mut cli = open(&path);
    let cpu = AlertKey::system(Metric::Cpu);
    let mem = AlertKey::system(Metric::Memory);
    let a_cpu = alert(&cpu, Severity::High, T0, 95.0);
    let a_mem = alert(&mem, Severity::High, T0, 91.0);
    let out = put(
        &mut daemon,
        &snap(T0),
        &[
            Event::AlertOpened(a_cpu.clone()),
            Event::AlertOpened(a_mem.clone()),
        ],
        &[],
    );
    let (cpu_id, mem_id) = (out.opened[&cpu], out.opened[&mem]);

    let start = daemon.resume_cursor().expect("cursor");
    assert_eq!(start, 0);
    assert!(
        cli.acknowledge(mem_id, Timestamp(T0 + 1000), "alice")
            .expect("ack")
    );
    assert!(
        cli.resolve(cpu_id, Timestamp(T0 + 2000), "bob")
            .expect("resolve")
    );
    assert!(
        !cli.resolve(cpu_id, Timestamp(T0 + 2500), "bob")
            .expect("again")
    );
    assert!(
        !cli.acknowledge(cpu_id, Timestamp(T0 + 2500), "bob")
            .expect("resolved")
    );
    assert!(
        !cli.acknowledge(mem_id, Timestamp(T0 + 2500), "bob")
            .expect("already acked")
    );
    assert!(
        !cli.acknowledge(999, Timestamp(T0 + 2500), "bob")
            .expect("missing")
    );

    let (actions, cursor) = daemon.operator_actions_since(start).expect("actions");
    assert_eq!(actions.len(), 2);
    assert_eq!(
        (
            actions[0].alert_id,
            actions[0].action,
            actions[0].by.as_str()
        ),
        (mem_id, ActionKind::Ack, "alice")
    );
    assert_eq!(actions[0].key, mem);
    assert_eq!(
        (actions[1].key.clone(), actions[1].action),
        (cpu.clone(), ActionKind::Resolve)
    );
    assert_eq!(actions[1].at, Timestamp(T0 + 2000));
    assert!(cursor > start);
    let (again, same) = daemon.operator_actions_since(cursor).expect("none");
    assert!(again.is_empty());
    assert_eq!(same, cursor);

    // The daemon had not applied the resolve yet: its repeat must not re-open the row.
    put(
        &mut daemon,
        &snap(T0 + 30 * MIN),
        &[
            Event::AlertRepeated(later(&a_cpu, T0 + 30 * MIN, 96.0)),
            Event::AlertEscalated {
                alert: later(&a_cpu, T0 + 30 * MIN, 99.0),
                from: Severity::High,
            },
            Event::AlertRepeated(later(&a_mem, T0 + 30 * MIN, 92.0)),
        ],
        &[],
    );
    assert_eq!(
        status_of(&daemon, cpu_id),
        (AlertState::Resolved, Some("operator:bob".into()))
    );
    let cpu_row = daemon.alert(cpu_id).expect("a").expect("r");
    assert!(
        close(cpu_row.alert.value, 95.0),
        "untouched after resolution"
    );
    let mem_row = daemon.alert(mem_id).expect("a").expect("r");
    assert_eq!(
        mem_row.alert.state,
        AlertState::Acknowledged,
        "a repeat keeps the ack"
    );
    assert_eq!(mem_row.acknowledged_by.as_deref(), Some("operator:alice"));
    assert!(close(mem_row.alert.value, 92.0));

    // The daemon applies the resolve to its tracker, which reports it: still no change.
    put(
        &mut daemon,
        &snap(T0 + 31 * MIN),
        &[Event::AlertResolved {
            alert: resolved(&a_cpu, T0 + 31 * MIN),
            by: ResolvedBy::Operator,
        }],
        &[],
    );
    let cpu_row = daemon.alert(cpu_id).expect("a").expect("r");
    assert_eq!(cpu_row.alert.resolved_at, Some(Timestamp(T0 + 2000)));
    assert_eq!(cpu_row.resolved_by.as_deref(), Some("operator:bob"));

    // The condition cleared and returned: a new occurrence.
    let reopened = put(
        &mut daemon,
        &snap(T0 + 60 * MIN),
        &[Event::AlertOpened(alert(
            &cpu,
            Severity::High,
            T0 + 60 * MIN,
            93.0,
        ))],
        &[],
    )
    .opened[&cpu];
    assert_ne!(reopened, cpu_id);
    assert_eq!(status_of(&daemon, cpu_id).0, AlertState::Resolved);
    assert_eq!(daemon.alerts(false, 10).expect("open").len(), 2);

    // The state saved with that sample carries the cursor: a restart resumes after it.
    drop(daemon);
    let restarted = open(&path);
    assert_eq!(restarted.resume_cursor().expect("cursor"), cursor);
    assert!(
        restarted
            .operator_actions_since(cursor)
            .expect("a")
            .0
            .is_empty()
    );
}

#[test]
fn a_fresh_daemon_skips_old_actions() {
    let (_dir, path) = temp_db();
    let mut cli = open(&path);
    let key = AlertKey::disk("/home");
    // A row inserted by a repeat for a key without any row (state restored over a new file).
    put(
        &mut cli,
        &snap(T0),
        &[Event::AlertRepeated(alert(&key, Severity::High, T0, 95.0))],
        &[],
    );
    let id = cli.alerts(false, 1).expect("open")[0].id;
    cli.conn
        .execute("DELETE FROM tracker_state", [])
        .expect("forget state");
    assert!(cli.resolve(id, Timestamp(T0 + 1), "root").expect("resolve"));
    let daemon = open(&path);
    let cursor = daemon.resume_cursor().expect("cursor");
    assert!(
        daemon
            .operator_actions_since(cursor)
            .expect("a")
            .0
            .is_empty()
    );
}

#[test]
fn mails_are_linked_to_their_alert_rows() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    let key = AlertKey::user("alice", Metric::Cpu);
    let a = alert(&key, Severity::High, T0, 90.0);
    let out = put(
        &mut store,
        &snap(T0),
        &[Event::AlertOpened(a.clone())],
        &[mail("opened", Some(&key)), mail("digest", None)],
    );
    let id = out.opened[&key];
    let out2 = put(
        &mut store,
        &snap(T0 + MIN),
        &[Event::AlertResolved {
            alert: resolved(&a, T0 + MIN),
            by: ResolvedBy::Recovered,
        }],
        &[mail("recovered", Some(&key))],
    );
    use crate::mail::queue::Outbox;
    let due = store.due(Timestamp(T0 + HOUR), 10).expect("due");
    let links: Vec<(String, Option<i64>)> = due
        .iter()
        .map(|i| (i.mail.subject.clone(), i.mail.alert_id))
        .collect();
    assert_eq!(
        links,
        [
            ("opened".to_string(), Some(id)),
            ("digest".to_string(), None),
            ("recovered".to_string(), Some(id)),
        ]
    );
    assert_eq!(out.mail_ids.len(), 2);
    assert_eq!(out2.mail_ids, [due[2].id]);
}

fn episode(user: &str, start: i64, end: Option<i64>) -> PersistentEpisode {
    PersistentEpisode {
        user: user.into(),
        metric: Metric::Cpu,
        threshold: 50.0,
        started_at: Timestamp(start),
        ended_at: end.map(Timestamp),
        duration_secs: 600,
        peak: 90.0,
        average: 70.0,
        samples: 10,
    }
}

#[test]
fn episodes_start_and_end() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    put(
        &mut store,
        &snap(T0),
        &[Event::PersistentStarted(episode(
            "alice",
            T0 - 10 * MIN,
            None,
        ))],
        &[],
    );
    put(&mut store, &snap(T0 + 5 * MIN), &[], &[]);
    let mut ended = episode("alice", T0 - 10 * MIN, Some(T0 + 10 * MIN));
    ended.duration_secs = 1200;
    put(
        &mut store,
        &snap(T0 + 10 * MIN),
        &[Event::PersistentEnded(ended.clone())],
        &[],
    );

    let during = store
        .state_at(Timestamp(T0 + 5 * MIN))
        .expect("s")
        .expect("sample");
    assert_eq!(during.persistent.len(), 1);
    assert_eq!(during.persistent[0].user, "alice");
    let after = store
        .state_at(Timestamp(T0 + 10 * MIN))
        .expect("s")
        .expect("sample");
    assert!(after.persistent.is_empty(), "ended at that sample");
    let all = store
        .episodes(Timestamp(T0 - DAY), Timestamp(T0 + DAY))
        .expect("episodes");
    assert_eq!(all, [ended]);
}

#[test]
fn gpu_alert_kinds_and_episodes_read_back() {
    let (_dir, path) = temp_db();
    let mut store = open(&path);
    let idle = AlertKey::gpu_idle("alice");
    let gpu_memory = AlertKey::persistent_user("bob", Metric::GpuMemory);
    let mut ep = episode("bob", T0 - 10 * MIN, None);
    ep.metric = Metric::GpuMemory;
    let out = put(
        &mut store,
        &snap(T0),
        &[
            Event::AlertOpened(alert(&idle, Severity::Medium, T0, 1.0)),
            Event::AlertOpened(alert(&gpu_memory, Severity::Medium, T0, 62.5)),
            Event::PersistentStarted(ep.clone()),
        ],
        &[],
    );
    for key in [&idle, &gpu_memory] {
        let row = store.alert(out.opened[key]).expect("alert").expect("row");
        assert_eq!(row.alert.key, *key);
    }
    let listed = store.alerts(false, 10).expect("alerts");
    assert_eq!(listed.len(), 2);
    let all = store
        .episodes(Timestamp(T0 - DAY), Timestamp(T0 + DAY))
        .expect("episodes");
    assert_eq!(all, [ep]);
}
