use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::fixture;
use crate::ui::action::{Action, SortKey};
use crate::ui::keymap::{self, BINDINGS, InputMode};
use crate::ui::state::{AppState, Confirm, Overlay, Pane, SignalDialog, View};
use crate::ui::theme::{self, Theme};

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn code(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

/// Press keys the way the run loop does: map in the current mode, then apply.
fn press(s: &mut AppState, keys: &[KeyEvent]) {
    for k in keys {
        if let Some(a) = keymap::action_for(*k, s.input_mode()) {
            s.apply(a);
        }
    }
}

fn help_open(s: &AppState) -> bool {
    matches!(s.overlay, Some(Overlay::Help { .. }))
}

fn confirm(s: &AppState) -> Option<&Confirm> {
    match &s.overlay {
        Some(Overlay::Confirm(c)) => Some(c),
        _ => None,
    }
}

fn signal(s: &AppState) -> Option<&SignalDialog> {
    match &s.overlay {
        Some(Overlay::Signal(d)) => Some(d),
        _ => None,
    }
}

fn typed(s: &mut AppState, text: &str) {
    let keys: Vec<KeyEvent> = text.chars().map(key).collect();
    press(s, &keys);
}

fn pids(s: &AppState) -> Vec<u32> {
    s.process_rows().iter().map(|r| r.process.pid).collect()
}

#[test]
fn q_and_ctrl_c_quit_even_while_typing_a_filter() {
    let mut s = fixture::state();
    press(&mut s, &[key('q')]);
    assert!(s.quit);

    let mut s = fixture::state();
    press(&mut s, &[key('p'), key('/')]);
    assert_eq!(s.input_mode(), InputMode::Filter);
    press(&mut s, &[key('q')]);
    assert!(!s.quit, "q is text inside the filter");
    press(
        &mut s,
        &[KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)],
    );
    assert!(s.quit);
}

#[test]
fn tab_cycles_the_panes_both_ways() {
    let mut s = fixture::state();
    assert_eq!(s.focus, Pane::Users);
    press(&mut s, &[code(KeyCode::Tab)]);
    assert_eq!(s.focus, Pane::Alerts);
    press(&mut s, &[code(KeyCode::Tab)]);
    assert_eq!(s.focus, Pane::System);
    press(&mut s, &[code(KeyCode::BackTab)]);
    assert_eq!(s.focus, Pane::Alerts);
    press(&mut s, &[code(KeyCode::BackTab)]);
    assert_eq!(s.focus, Pane::Users);
}

#[test]
fn movement_stays_inside_the_list() {
    let mut s = fixture::state();
    // alice, bob, the hostile user; root is hidden as a system account.
    assert_eq!(s.visible_users().len(), 3);
    press(&mut s, &[key('j'), code(KeyCode::Down)]);
    assert_eq!(s.user_selected, 2);
    press(&mut s, &[key('j'), code(KeyCode::PageDown)]);
    assert_eq!(s.user_selected, 2);
    press(&mut s, &[code(KeyCode::Up)]);
    assert_eq!(s.user_selected, 1);
    press(&mut s, &[key('g')]);
    assert_eq!(s.user_selected, 0);
    press(&mut s, &[key('G')]);
    assert_eq!(s.user_selected, 2);
    press(&mut s, &[code(KeyCode::PageUp)]);
    assert_eq!(s.user_selected, 0);
    press(&mut s, &[code(KeyCode::Tab), key('j')]);
    assert_eq!(s.alert_selected, 1);
}

#[test]
fn u_shows_system_users() {
    let mut s = fixture::state();
    press(&mut s, &[key('u')]);
    assert_eq!(s.visible_users().len(), 4);
    press(&mut s, &[key('u')]);
    assert_eq!(s.visible_users().len(), 3);
}

#[test]
fn enter_drills_into_the_selected_users_processes_and_esc_returns() {
    let mut s = fixture::state();
    press(&mut s, &[key('j'), code(KeyCode::Enter)]);
    let View::Processes(pv) = &s.view else {
        panic!("not in the process list: {:?}", s.view)
    };
    assert_eq!(pv.user.as_deref(), Some("bob"));
    assert_eq!(pids(&s), vec![3003, 3004, 3002, 3001]);
    press(&mut s, &[code(KeyCode::Esc)]);
    assert_eq!(s.view, View::Main);
}

#[test]
fn enter_on_the_system_pane_does_nothing() {
    let mut s = fixture::state();
    press(&mut s, &[code(KeyCode::BackTab), code(KeyCode::Enter)]);
    assert_eq!(s.view, View::Main);
}

#[test]
fn sort_keys_and_invert() {
    let mut s = fixture::state();
    press(&mut s, &[key('p')]);
    assert_eq!(pids(&s)[0], 2002, "CPU first by default");
    press(&mut s, &[key('M')]);
    assert_eq!(pids(&s)[0], 2002, "alice's trainer is also the largest");
    assert_eq!(pids(&s)[1], 3003);
    press(&mut s, &[key('N')]);
    let names: Vec<String> = s
        .process_rows()
        .iter()
        .map(|r| crate::ui::procs::shown_command(r.process).to_string())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    press(&mut s, &[key('I')]);
    let names: Vec<String> = s
        .process_rows()
        .iter()
        .map(|r| crate::ui::procs::shown_command(r.process).to_string())
        .collect();
    sorted.reverse();
    assert_eq!(names, sorted);
    press(&mut s, &[key('T')]);
    let View::Processes(pv) = &s.view else {
        panic!()
    };
    assert_eq!((pv.sort, pv.inverted), (SortKey::Time, false));
}

#[test]
fn f5_shows_children_under_their_parents() {
    let mut s = fixture::state();
    press(&mut s, &[key('p'), code(KeyCode::F(5))]);
    let rows: Vec<(u32, usize)> = s
        .process_rows()
        .iter()
        .map(|r| (r.process.pid, r.depth))
        .collect();
    let at = |pid: u32| rows.iter().position(|r| r.0 == pid).unwrap_or(usize::MAX);
    assert_eq!(rows[0], (1, 0));
    assert!(at(812) < at(2001) && at(2001) < at(2002));
    assert_eq!(
        rows[at(3003)].1,
        4,
        "systemd > sshd > bash > make > cc1plus"
    );
    assert_eq!(rows.len(), fixture::processes().len());
}

#[test]
fn filter_typed_with_prefixes() {
    let mut s = fixture::state();
    press(&mut s, &[key('p'), key('/')]);
    typed(&mut s, "user=bob");
    assert_eq!(pids(&s).len(), 4);
    press(&mut s, &[code(KeyCode::Enter)]);
    assert_eq!(s.input_mode(), InputMode::Processes);
    assert_eq!(pids(&s).len(), 4, "the filter stays after Enter");

    press(&mut s, &[key('/')]);
    typed(&mut s, " cmd=big");
    assert_eq!(pids(&s), vec![3003]);
    for _ in 0.." cmd=big".len() {
        press(&mut s, &[code(KeyCode::Backspace)]);
    }
    assert_eq!(pids(&s).len(), 4);
    press(&mut s, &[code(KeyCode::Esc)]);
    assert_eq!(
        pids(&s).len(),
        fixture::processes().len(),
        "Esc clears the filter"
    );

    press(&mut s, &[key('/')]);
    typed(&mut s, "pid=2003");
    assert_eq!(pids(&s), vec![2003]);
    press(&mut s, &[code(KeyCode::Esc), key('/')]);
    typed(&mut s, "TENSORBOARD");
    assert_eq!(pids(&s), vec![2003], "plain text is case-insensitive");
    press(&mut s, &[code(KeyCode::Esc), key('/')]);
    typed(&mut s, "pid=abc");
    assert!(pids(&s).is_empty(), "a malformed pid matches nothing");
}

#[test]
fn help_opens_and_any_key_closes_it_without_acting() {
    let mut s = fixture::state();
    press(&mut s, &[key('?')]);
    assert!(help_open(&s));
    press(&mut s, &[key('x')]);
    assert!(!help_open(&s), "a key bound to nothing closes the help too");
    press(&mut s, &[key('?'), key('p')]);
    assert!(!help_open(&s));
    assert_eq!(
        s.view,
        View::Main,
        "the key that closed the help did not act"
    );
    press(&mut s, &[code(KeyCode::F(1))]);
    assert!(help_open(&s));
    press(&mut s, &[code(KeyCode::Esc)]);
    assert!(!help_open(&s));
}

#[test]
fn help_scrolls_with_the_arrows_and_stops_at_its_end() {
    let mut s = fixture::state();
    s.screen = (40, 12);
    press(&mut s, &[key('?'), key('j'), code(KeyCode::Down)]);
    assert_eq!(s.overlay, Some(Overlay::Help { scroll: 2 }));
    press(&mut s, &[code(KeyCode::Up)]);
    assert_eq!(s.overlay, Some(Overlay::Help { scroll: 1 }));
    press(&mut s, &[key('G')]);
    let last = keymap::help_len() - 1;
    assert_eq!(s.overlay, Some(Overlay::Help { scroll: last }));
    press(&mut s, &[code(KeyCode::PageDown)]);
    assert_eq!(s.overlay, Some(Overlay::Help { scroll: last }));
    assert_eq!(s.user_selected, 0, "scrolling the help moved no cursor");
    // Where it all fits there is nothing to scroll: the arrows close it like any key.
    s.screen = (160, 48);
    press(&mut s, &[code(KeyCode::Down)]);
    assert!(!help_open(&s));
}

#[test]
fn space_pauses_and_plus_minus_step_the_refresh() {
    let mut s = fixture::state();
    press(&mut s, &[key(' ')]);
    assert!(s.paused);
    press(&mut s, &[key(' ')]);
    assert!(!s.paused);
    assert_eq!(s.refresh_secs, 2.0);
    press(&mut s, &[key('+')]);
    assert_eq!(s.refresh_secs, 1.0);
    press(&mut s, &[key('+'), key('+'), key('+')]);
    assert_eq!(s.refresh_secs, 0.5);
    press(&mut s, &[key('-'), key('-'), key('-')]);
    assert_eq!(s.refresh_secs, 3.0);
    // An interval from the command line that is not a step moves to the neighbouring step.
    s.refresh_secs = 2.5;
    press(&mut s, &[key('-')]);
    assert_eq!(s.refresh_secs, 3.0);
}

#[test]
fn s_toggles_the_status_reasons() {
    let mut s = fixture::state();
    press(&mut s, &[key('s')]);
    assert!(s.reasons);
    press(&mut s, &[code(KeyCode::Esc)]);
    assert!(!s.reasons);
}

#[test]
fn selection_is_clamped_when_a_tick_shrinks_the_list() {
    let mut s = fixture::state();
    press(&mut s, &[key('G')]);
    assert_eq!(s.user_selected, 2);
    let mut f = fixture::feed();
    f.snapshot.users.truncate(1);
    s.ingest(f);
    assert_eq!(s.user_selected, 0);
}

#[test]
fn every_binding_maps_back_to_its_action() {
    for b in BINDINGS {
        for k in b.keys {
            let mods = if k.ctrl {
                KeyModifiers::CONTROL
            } else {
                KeyModifiers::NONE
            };
            let mode = match b.scope {
                keymap::Scope::Processes => InputMode::Processes,
                keymap::Scope::History => InputMode::History,
                keymap::Scope::Travel => InputMode::Travel,
                _ => InputMode::Main,
            };
            assert_eq!(
                keymap::action_for(KeyEvent::new(k.code, mods), mode),
                Some(b.action),
                "{}",
                b.label
            );
        }
    }
    assert_eq!(keymap::action_for(key('/'), InputMode::Main), None);
    assert_eq!(
        keymap::action_for(key('j'), InputMode::Travel),
        Some(Action::JumpBack)
    );
    assert_eq!(
        keymap::action_for(key('J'), InputMode::Main),
        Some(Action::JumpBack),
        "live, J goes back: there is no forward"
    );
    assert_eq!(
        keymap::action_for(key('J'), InputMode::Travel),
        Some(Action::JumpForward)
    );
    assert_eq!(
        keymap::action_for(code(KeyCode::Down), InputMode::Travel),
        Some(Action::Down)
    );
    assert_eq!(
        keymap::action_for(key('j'), InputMode::UserPicker),
        Some(Action::Down)
    );
    assert_eq!(
        keymap::action_for(key('x'), InputMode::Filter),
        Some(Action::FilterChar('x'))
    );
}

#[test]
fn locale_detection() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| pairs.iter().find(|p| p.0 == k).map(|p| p.1.to_string())
    };
    assert!(theme::locale_is_utf8(env(&[("LANG", "en_US.UTF-8")])));
    assert!(theme::locale_is_utf8(env(&[
        ("LC_ALL", "C.utf8"),
        ("LANG", "C")
    ])));
    assert!(!theme::locale_is_utf8(env(&[
        ("LC_ALL", "C"),
        ("LANG", "en_US.UTF-8")
    ])));
    assert!(!theme::locale_is_utf8(env(&[("LANG", "POSIX")])));
    assert!(!theme::locale_is_utf8(env(&[])));
}

#[test]
fn ascii_glyphs_are_ascii() {
    let t = Theme {
        color: false,
        ascii: true,
    };
    assert_eq!(t.bar(50.0, 10), "|||||.....");
    assert!(t.sparkline([0.0, 50.0, 100.0].iter(), 10).is_ascii());
    assert_eq!(t.sparkline([0.0, 50.0, 100.0].iter(), 2).chars().count(), 2);
}

mod alerts {
    use super::*;
    use crate::model::AlertKey;
    use crate::ui::alerts::{AlertOp, AlertTarget};
    use crate::ui::state::Effect;

    #[test]
    fn database_and_session_alerts_are_merged_without_duplicates_newest_first() {
        let s = fixture::state();
        let ids: Vec<Option<i64>> = s.alerts().iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![None, Some(21), Some(17)]);
    }

    #[test]
    fn resolve_asks_first_and_only_yes_acts() {
        let mut s = fixture::state();
        press(&mut s, &[code(KeyCode::Tab), key('j'), key('r')]);
        assert_eq!(s.input_mode(), InputMode::Confirm);
        let q = confirm(&s).map(|c| c.question.clone()).unwrap_or_default();
        assert!(q.contains("/home"), "{q}");
        press(&mut s, &[key('n')]);
        assert!(confirm(&s).is_none());
        assert!(s.take_effects().is_empty());

        press(&mut s, &[key('r'), code(KeyCode::Esc)]);
        assert!(s.take_effects().is_empty(), "Esc is a no");

        press(&mut s, &[key('r'), key('y')]);
        assert_eq!(
            s.take_effects(),
            vec![Effect::Alerts(
                AlertOp::Resolve,
                vec![AlertTarget {
                    id: Some(21),
                    key: AlertKey::disk("/home")
                }]
            )]
        );
    }

    #[test]
    fn acknowledge_an_already_acknowledged_alert_says_so() {
        let mut s = fixture::state();
        press(&mut s, &[code(KeyCode::Tab), key('G'), key('a')]);
        assert!(confirm(&s).is_none());
        assert!(
            s.notice
                .as_ref()
                .is_some_and(|n| n.error && n.text.contains("already"))
        );
        press(&mut s, &[code(KeyCode::Up)]);
        assert!(s.notice.is_none(), "the next key clears the notice");
    }

    #[test]
    fn resolve_all_targets_every_open_alert() {
        let mut s = fixture::state();
        press(&mut s, &[key('R')]);
        let q = confirm(&s).map(|c| c.question.clone()).unwrap_or_default();
        assert!(q.contains("all 3"), "{q}");
        press(&mut s, &[code(KeyCode::Enter)]);
        let effects = s.take_effects();
        let [Effect::Alerts(AlertOp::Resolve, targets)] = effects.as_slice() else {
            panic!("{effects:?}")
        };
        assert_eq!(targets.len(), 3);
    }

    #[test]
    fn alerts_need_a_selection_and_a_writable_session() {
        let mut s = fixture::state();
        press(&mut s, &[key('a')]);
        assert!(confirm(&s).is_none());
        assert!(
            s.notice
                .as_ref()
                .is_some_and(|n| n.text.contains("select an alert"))
        );

        let mut s = fixture::state();
        s.options.readonly = true;
        press(&mut s, &[code(KeyCode::Tab), key('r')]);
        assert!(confirm(&s).is_none());
        assert!(
            s.notice
                .as_ref()
                .is_some_and(|n| n.text.contains("read-only"))
        );
        press(&mut s, &[key('R')]);
        assert!(confirm(&s).is_none());
    }

    #[test]
    fn enter_opens_an_alerts_details_where_a_and_r_act_on_it() {
        let mut s = fixture::state();
        press(&mut s, &[code(KeyCode::Tab), code(KeyCode::Enter)]);
        let View::Alert(shown) = &s.view else {
            panic!("{:?}", s.view)
        };
        assert_eq!(shown.subject, fixture::HOSTILE);
        press(&mut s, &[key('a'), key('y')]);
        let effects = s.take_effects();
        assert!(
            matches!(effects.as_slice(), [Effect::Alerts(AlertOp::Acknowledge, t)] if t[0].id.is_none()),
            "{effects:?}"
        );
        press(&mut s, &[code(KeyCode::Esc)]);
        assert_eq!(s.view, View::Main);
    }
}

mod travel {
    use super::*;
    use crate::ui::state::{Effect, TravelTo};
    use crate::ui::travel::feed_from;

    const HOUR: f64 = 3600.0;

    fn travelling() -> AppState {
        let mut s = fixture::state();
        s.arrive(feed_from(
            &fixture::recorded(),
            "gpu-node-07",
            &crate::config::Config::default(),
        ));
        s
    }

    #[test]
    fn t_asks_for_the_sample_before_the_one_shown() {
        let mut s = fixture::state();
        press(&mut s, &[key('t')]);
        assert_eq!(
            s.take_effects(),
            vec![Effect::Travel(TravelTo::Before(fixture::AT))]
        );
        press(&mut s, &[key('T')]);
        assert!(s.take_effects().is_empty());
        assert!(
            s.notice
                .as_ref()
                .is_some_and(|n| n.text.contains("already live"))
        );
    }

    #[test]
    fn charts_opened_in_the_past_end_at_the_moment_on_screen() {
        let mut s = travelling();
        let rec_at = fixture::recorded().at;
        press(&mut s, &[key('H')]);
        assert_eq!(
            s.take_effects(),
            vec![Effect::LoadHistory {
                since: rec_at.plus_secs(-HOUR),
                until: rec_at,
                user: Some("bob".into()),
            }]
        );
    }

    #[test]
    fn while_travelling_the_screen_shows_the_recorded_moment() {
        let mut s = travelling();
        let shown = s.shown().map(|f| f.snapshot.at);
        let rec_at = fixture::recorded().at;
        assert_eq!(shown, Some(rec_at));
        assert_eq!(s.visible_users()[0].name.as_ref(), "bob");
        press(&mut s, &[key('T')]);
        assert_eq!(
            s.take_effects(),
            vec![Effect::Travel(TravelTo::After(rec_at))]
        );
        press(&mut s, &[key('J')]);
        assert_eq!(
            s.take_effects(),
            vec![Effect::Travel(TravelTo::At(rec_at.plus_secs(HOUR)))]
        );
        press(&mut s, &[key('j')]);
        assert_eq!(
            s.take_effects(),
            vec![Effect::Travel(TravelTo::At(rec_at.plus_secs(-HOUR)))]
        );
        // A drill-down shows what the user was running then.
        press(&mut s, &[code(KeyCode::Enter)]);
        assert_eq!(pids(&s), vec![5001, 5002]);
        press(&mut s, &[code(KeyCode::Esc)]);
        assert!(s.travel.is_some(), "the first Esc leaves the process list");
        press(&mut s, &[code(KeyCode::Esc)]);
        assert!(s.travel.is_none(), "the second returns to live");
    }

    #[test]
    fn j_moves_down_when_live_and_jumps_back_in_the_past() {
        let mut s = fixture::state();
        assert_eq!(s.input_mode(), InputMode::Main);
        press(&mut s, &[key('j')]);
        assert_eq!(s.user_selected, 1, "live, j moves down");
        assert!(s.take_effects().is_empty());

        let mut s = travelling();
        assert_eq!(s.input_mode(), InputMode::Travel);
        let rec_at = fixture::recorded().at;
        press(&mut s, &[key('j')]);
        assert_eq!(
            s.take_effects(),
            vec![Effect::Travel(TravelTo::At(rec_at.plus_secs(-HOUR)))]
        );
        assert_eq!(s.user_selected, 0, "in the past, j does not move");
        press(&mut s, &[code(KeyCode::Down)]);
        assert_eq!(s.user_selected, 1, "the arrows still move");
        assert!(s.take_effects().is_empty());
        press(&mut s, &[code(KeyCode::Up)]);
        assert_eq!(s.user_selected, 0);
        // The old keys stay as aliases.
        press(&mut s, &[key('<'), key('>')]);
        assert_eq!(
            s.take_effects(),
            vec![
                Effect::Travel(TravelTo::At(rec_at.plus_secs(-HOUR))),
                Effect::Travel(TravelTo::At(rec_at.plus_secs(HOUR))),
            ]
        );
    }

    #[test]
    fn capital_j_enters_time_travel_one_step_back_from_now() {
        let mut s = fixture::state();
        press(&mut s, &[key('J')]);
        assert_eq!(
            s.take_effects(),
            vec![Effect::Travel(TravelTo::At(fixture::AT.plus_secs(-HOUR)))]
        );
        assert!(s.notice.is_none());
        // `>` has nothing to go forward to while live.
        press(&mut s, &[key('>')]);
        assert!(s.take_effects().is_empty());
    }

    #[test]
    fn the_step_is_the_history_range_and_brackets_change_it_in_the_past() {
        let mut s = travelling();
        let rec_at = fixture::recorded().at;
        assert_eq!(s.step_secs(), HOUR, "one hour, the history view's default");
        press(&mut s, &[key('['), key('j')]);
        assert_eq!(s.range().0, "15m");
        assert_eq!(
            s.take_effects(),
            vec![Effect::Travel(TravelTo::At(rec_at.plus_secs(-900.0)))]
        );
        press(&mut s, &[code(KeyCode::Left)]);
        assert_eq!(s.range().0, "15m", "15 minutes is the shortest");
        press(&mut s, &[key(']'), code(KeyCode::Right), key('J')]);
        assert_eq!(s.range().0, "6h");
        assert_eq!(
            s.take_effects(),
            vec![Effect::Travel(TravelTo::At(rec_at.plus_secs(6.0 * HOUR)))]
        );
        for _ in 0..10 {
            press(&mut s, &[key(']')]);
        }
        assert_eq!(s.range().0, "30d");

        // The history view uses, and changes, the same range.
        press(&mut s, &[key('L'), key('H')]);
        let effects = s.take_effects();
        assert!(
            matches!(effects.as_slice(), [Effect::LoadHistory { since, .. }] if *since == fixture::AT.plus_secs(-30.0 * 86_400.0)),
            "{effects:?}"
        );
        press(&mut s, &[key('['), code(KeyCode::Esc), key('J')]);
        assert_eq!(s.range().0, "7d");
        let effects = s.take_effects();
        assert!(
            matches!(effects.last(), Some(Effect::Travel(TravelTo::At(t))) if *t == fixture::AT.plus_secs(-7.0 * 86_400.0)),
            "{effects:?}"
        );
    }

    #[test]
    fn in_the_past_the_process_list_keeps_j_for_moving() {
        let mut s = travelling();
        press(&mut s, &[code(KeyCode::Enter)]);
        assert_eq!(s.input_mode(), InputMode::Processes);
        press(&mut s, &[key('j')]);
        assert!(s.take_effects().is_empty());
        let View::Processes(pv) = &s.view else {
            panic!("{:?}", s.view)
        };
        assert_eq!(pv.selected, 1);
    }

    #[test]
    fn l_returns_to_live_and_alerts_cannot_be_changed_in_the_past() {
        let mut s = travelling();
        press(&mut s, &[code(KeyCode::Tab), key('r')]);
        assert!(confirm(&s).is_none());
        assert!(
            s.notice
                .as_ref()
                .is_some_and(|n| n.text.contains("recorded moment"))
        );
        press(&mut s, &[key('L')]);
        assert!(s.travel.is_none());
        assert_eq!(s.shown().map(|f| f.snapshot.at), Some(fixture::AT));
    }

    #[test]
    fn recorded_episodes_read_as_they_stood_at_that_moment() {
        let config = crate::config::Config::default();
        let f = feed_from(&fixture::recorded(), "h", &config);
        // CPU had lasted 1h12m and ended later; memory was 20 minutes in, not persistent yet.
        assert_eq!(f.persistent.len(), 1);
        let e = &f.persistent[0];
        assert_eq!(
            (e.user.as_str(), e.metric),
            ("bob", crate::model::Metric::Cpu)
        );
        assert_eq!((e.ended_at, e.duration_secs), (None, 72 * 60));

        let mut rec = fixture::recorded();
        let at = rec.at;
        let mut hostile = rec.persistent[0].clone();
        hostile.user = rec.users[1].name.clone();
        let mut over = rec.persistent[0].clone();
        over.ended_at = Some(at);
        rec.persistent.extend([hostile, over]);
        let f = feed_from(&rec, "h", &config);
        assert_eq!(
            f.persistent.len(),
            2,
            "an episode ended by then is left out"
        );
        assert!(crate::sanitize::is_clean(&f.persistent[1].user));
        assert_eq!(&*f.snapshot.users[1].name, f.persistent[1].user, "badged");
        // Untracked at that sample: no badge against the flag.
        rec.users[0].tracked = false;
        let f = feed_from(&rec, "h", &config);
        assert!(f.persistent.iter().all(|e| e.user != "bob"));
    }

    #[test]
    fn recorded_names_are_cleaned_again() {
        let f = feed_from(&fixture::recorded(), "h", &crate::config::Config::default());
        for u in &f.snapshot.users {
            assert!(crate::sanitize::is_clean(&u.name), "{:?}", u.name);
            for p in &u.top_processes {
                assert!(
                    crate::sanitize::is_clean(&p.name) && crate::sanitize::is_clean(&p.cmdline)
                );
            }
        }
        for p in &f.snapshot.processes {
            assert!(crate::sanitize::is_clean(&p.cmdline), "{:?}", p.cmdline);
        }
        assert_eq!(f.snapshot.processes.len(), 3);
        assert_eq!(f.snapshot.system.cpu.total.busy, 97.5);
    }
}

mod history {
    use super::*;
    use crate::model::Timestamp;
    use crate::ui::state::Effect;

    #[test]
    fn h_opens_the_charts_for_the_selected_user_and_arrows_change_the_range() {
        let mut s = fixture::state();
        press(&mut s, &[key('j'), key('H')]);
        assert_eq!(s.input_mode(), InputMode::History);
        assert_eq!(
            s.take_effects(),
            vec![Effect::LoadHistory {
                since: Timestamp(fixture::AT.0 - 3_600_000),
                until: fixture::AT,
                user: Some("bob".into()),
            }]
        );
        press(&mut s, &[code(KeyCode::Right), code(KeyCode::Right)]);
        let effects = s.take_effects();
        assert!(
            matches!(effects.last(), Some(Effect::LoadHistory { since, .. }) if *since == Timestamp(fixture::AT.0 - 86_400_000)),
            "{effects:?}"
        );
        for _ in 0..10 {
            press(&mut s, &[key(']')]);
        }
        assert_eq!(s.range, 5, "30 days is the longest");
        press(&mut s, &[code(KeyCode::Esc)]);
        assert_eq!(s.view, View::Main);
    }

    #[test]
    fn without_a_user_selected_the_charts_are_the_machines() {
        let mut s = fixture::state();
        press(&mut s, &[code(KeyCode::Tab), key('H')]);
        assert!(matches!(
            s.take_effects().as_slice(),
            [Effect::LoadHistory { user: None, .. }]
        ));
    }

    #[test]
    fn session_history_thins_to_the_width_keeping_peaks() {
        use crate::ui::history::{SessionHistory, from_session};
        let mut pts = SessionHistory::default();
        for i in 0..100 {
            let mut f = fixture::feed();
            f.snapshot.at = Timestamp(i * 1000);
            f.snapshot.system.cpu.total.busy = if i == 37 { 99.0 } else { 1.0 };
            pts.push(&f.snapshot);
        }
        let h = from_session(&pts, Timestamp(0), Timestamp(99_000), 10, None);
        assert_eq!(h.series[0].points.len(), 10);
        assert!(h.series[0].points.contains(&99.0));
        assert!(h.source.contains("session"));
    }

    #[test]
    fn session_history_lists_the_users_seen_and_charts_the_chosen_one() {
        use crate::ui::history::{SessionPoint, from_session};
        let mut s = fixture::state();
        // Only alice and bob were busy in the earlier ticks.
        let mut quiet = fixture::feed();
        quiet.snapshot.at = Timestamp(fixture::AT.0 + 2000);
        quiet.snapshot.users.retain(|u| &*u.name == "alice");
        s.ingest(quiet);
        let h = from_session(
            &s.session,
            Timestamp(fixture::AT.0 - 60_000),
            Timestamp(fixture::AT.0 + 2000),
            400,
            Some("bob"),
        );
        assert!(h.users.contains(&"alice".to_string()));
        assert!(h.users.contains(&"bob".to_string()));
        assert!(!h.users.contains(&"root".to_string()), "idle and untracked");
        let labels: Vec<&str> = h.series.iter().map(|x| x.label.as_str()).collect();
        assert_eq!(labels[4..], ["bob CPU", "bob memory"]);
        let bob_cpu = &h.series[4].points;
        assert_eq!(bob_cpu.last(), Some(&0.0), "absent counts as zero");
        assert!(bob_cpu[0] > 0.0);
        let _: &SessionPoint = &s.session.points()[0];
    }

    #[test]
    fn session_history_memory_is_bounded_however_many_users() {
        use crate::ui::history::{SESSION_POINTS, SESSION_USERS, SessionHistory, from_session};
        let mut h = SessionHistory::default();
        let template = fixture::feed().snapshot.users[0].clone();
        // 60 busy users, a new set of names every window, for two and a half windows.
        let ticks = SESSION_POINTS * 5 / 2;
        for i in 0..ticks {
            let mut snap = fixture::feed().snapshot;
            snap.at = Timestamp(i as i64 * 1000);
            let set = (i / SESSION_POINTS) as u32 * 100;
            snap.users = (0..60u32)
                .map(|k| {
                    let mut u = template.clone();
                    u.uid = 2000 + set + k;
                    u.name = std::sync::Arc::from(format!("u{}", set + k));
                    u.cpu_percent = f64::from(k) + 0.25;
                    u.memory_percent = 1.0;
                    u
                })
                .collect();
            h.push(&snap);
        }
        assert_eq!(h.points().len(), SESSION_POINTS);
        assert!(h.points().iter().all(|p| p.users.len() == SESSION_USERS));
        assert!(h.tick_bytes() <= SessionHistory::bound_bytes());
        assert!(SessionHistory::bound_bytes() < 1024 * 1024, "under 1 MiB");
        // Names of users gone from every kept tick are forgotten.
        assert!(h.names_len() <= 2 * SESSION_USERS, "{}", h.names_len());
        // The heaviest are the ones kept, to the hundredth of a percent.
        let last = h.points().back().unwrap();
        assert_eq!(last.users[0].cpu_percent(), 59.25);
        assert_eq!(h.name(last.users[0].uid), Some("u259"));
        let data = from_session(
            &h,
            Timestamp(0),
            Timestamp(ticks as i64 * 1000),
            100,
            Some("u259"),
        );
        assert_eq!(data.series[4].points.last(), Some(&59.25));
        assert!(!data.users.contains(&"u200".to_string()), "below the cut");
    }

    fn charts() -> AppState {
        let mut s = fixture::state();
        press(&mut s, &[key('j'), key('H')]);
        s.take_effects();
        s.history = Some(fixture::history());
        s
    }

    #[test]
    fn u_opens_the_user_picker_on_the_charted_user_and_enter_charts_the_choice() {
        let mut s = charts();
        press(&mut s, &[key('u')]);
        assert_eq!(s.input_mode(), InputMode::UserPicker);
        assert_eq!(
            s.chart_choices(),
            vec![None, Some("alice"), Some("bob"), Some(fixture::HOSTILE)]
        );
        assert_eq!(s.overlay, Some(Overlay::Picker(2)), "bob is charted");
        press(&mut s, &[key('k'), code(KeyCode::Up), code(KeyCode::Enter)]);
        assert_eq!(s.input_mode(), InputMode::History);
        let View::History(hv) = &s.view else { panic!() };
        assert_eq!(hv.user, None, "the first choice is the machine alone");
        assert_eq!(
            s.take_effects(),
            vec![Effect::LoadHistory {
                since: Timestamp(fixture::AT.0 - 3_600_000),
                until: fixture::AT,
                user: None,
            }]
        );
        // The list comes with the loaded data.
        s.history = Some(fixture::history());
        press(&mut s, &[code(KeyCode::Enter), key('j')]);
        for _ in 0..5 {
            press(&mut s, &[code(KeyCode::Down)]);
        }
        press(&mut s, &[code(KeyCode::Enter)]);
        let View::History(hv) = &s.view else { panic!() };
        assert_eq!(hv.user.as_deref(), Some(fixture::HOSTILE), "the last row");
        assert!(matches!(
            s.take_effects().as_slice(),
            [Effect::LoadHistory { user: Some(u), .. }] if u == fixture::HOSTILE
        ));
    }

    #[test]
    fn esc_or_q_closes_the_picker_without_changing_the_user() {
        let mut s = charts();
        press(&mut s, &[key('u'), code(KeyCode::Down), code(KeyCode::Esc)]);
        let View::History(hv) = &s.view else {
            panic!("Esc closed only the picker: {:?}", s.view)
        };
        assert_eq!((&s.overlay, hv.user.as_deref()), (&None, Some("bob")));
        assert!(s.take_effects().is_empty());
        press(&mut s, &[key('u'), key('q')]);
        assert!(!s.quit, "q closes the picker");
        assert_eq!(s.input_mode(), InputMode::History);
    }

    #[test]
    fn the_picker_waits_for_the_history_to_load() {
        let mut s = fixture::state();
        press(&mut s, &[key('H'), key('u')]);
        assert_eq!(s.input_mode(), InputMode::History);
        assert!(
            s.notice
                .as_ref()
                .is_some_and(|n| n.text.contains("loading"))
        );
    }
}

mod signals {
    use super::*;
    use crate::ui::state::Effect;

    #[test]
    fn k_in_the_process_list_chooses_a_signal_then_asks() {
        let mut s = fixture::state();
        press(&mut s, &[key('p')]);
        assert_eq!(pids(&s)[0], 2002);
        press(&mut s, &[key('k')]);
        assert_eq!(s.input_mode(), InputMode::Signal);
        press(&mut s, &[key('j'), code(KeyCode::Down), key('k')]);
        assert_eq!(signal(&s).map(|d| d.selected), Some(1));
        press(&mut s, &[code(KeyCode::Enter)]);
        let q = confirm(&s).map(|c| c.question.clone()).unwrap_or_default();
        assert!(
            q.contains("SIGINT to process 2002 (python3, user alice)"),
            "{q}"
        );
        press(&mut s, &[key('y')]);
        let start = fixture::processes()
            .iter()
            .find(|p| p.pid == 2002)
            .map(|p| p.start_time)
            .unwrap_or_default();
        assert_eq!(
            s.take_effects(),
            vec![Effect::Signal {
                targets: vec![(2002, start)],
                signal: 1
            }]
        );
    }

    #[test]
    fn esc_or_no_sends_nothing() {
        let mut s = fixture::state();
        press(&mut s, &[key('p'), key('k'), code(KeyCode::Esc)]);
        assert!(signal(&s).is_none());
        assert!(
            matches!(s.view, View::Processes(_)),
            "Esc closed only the menu"
        );
        press(&mut s, &[key('k'), code(KeyCode::Enter), key('n')]);
        assert!(s.take_effects().is_empty());
    }

    #[test]
    fn readonly_sessions_send_no_signals() {
        let mut s = fixture::state();
        s.options.readonly = true;
        press(&mut s, &[key('p'), key('k')]);
        assert!(signal(&s).is_none());
        assert!(
            s.notice
                .as_ref()
                .is_some_and(|n| n.text.contains("read-only"))
        );
    }

    #[test]
    fn hostile_names_are_cleaned_in_the_question() {
        let mut s = fixture::state();
        press(&mut s, &[key('p'), key('/')]);
        typed(&mut s, "pid=4001");
        press(
            &mut s,
            &[code(KeyCode::Enter), key('k'), code(KeyCode::Enter)],
        );
        let q = confirm(&s).map(|c| c.question.clone()).unwrap_or_default();
        assert!(crate::sanitize::is_clean(&q), "{q:?}");
    }
}

mod goto {
    use super::*;
    use crate::model::Timestamp;
    use crate::ui::state::{Effect, TravelTo};

    #[test]
    fn b_takes_a_typed_time_and_travels_there() {
        let mut s = fixture::state();
        press(&mut s, &[key('b')]);
        assert_eq!(s.input_mode(), InputMode::Goto);
        typed(&mut s, "2hx");
        press(&mut s, &[code(KeyCode::Backspace), code(KeyCode::Enter)]);
        assert_eq!(
            s.take_effects(),
            vec![Effect::Travel(TravelTo::At(Timestamp(
                fixture::AT.0 - 7_200_000
            )))]
        );
        assert_eq!(s.input_mode(), InputMode::Main);
    }

    #[test]
    fn a_bad_time_is_explained_and_esc_cancels() {
        let mut s = fixture::state();
        press(&mut s, &[key('b')]);
        typed(&mut s, "yesterday-ish");
        press(&mut s, &[code(KeyCode::Enter)]);
        assert!(s.take_effects().is_empty());
        assert!(s.notice.as_ref().is_some_and(|n| n.error));
        press(&mut s, &[key('b'), key('q'), code(KeyCode::Esc)]);
        assert!(s.overlay.is_none());
        assert!(!s.quit, "q is text in the prompt");
    }
}

fn selected_pid(s: &AppState) -> Option<u32> {
    match &s.view {
        View::Processes(pv) => s.process_rows().get(pv.selected).map(|r| r.process.pid),
        _ => None,
    }
}

/// The fixture's feed with one process's CPU changed, which re-sorts the CPU-sorted list.
fn feed_with_cpu(pid: u32, cpu: f64) -> crate::ui::state::Feed {
    let mut f = fixture::feed();
    for p in &mut f.snapshot.processes {
        if p.pid == pid {
            p.cpu_percent = cpu;
        }
    }
    f.snapshot
        .processes
        .sort_by(|a, b| b.cpu_percent.total_cmp(&a.cpu_percent));
    f
}

#[test]
fn the_process_cursor_follows_its_process_as_the_list_re_sorts() {
    let mut s = fixture::state();
    press(&mut s, &[key('p')]);
    press(&mut s, &[code(KeyCode::Down); 4]);
    let chosen = selected_pid(&s).expect("a process under the cursor");
    let rank = |s: &AppState| pids(s).iter().position(|p| *p == chosen);
    let before = rank(&s);
    // It becomes the busiest: the list re-sorts, and the cursor moves with it.
    s.ingest(feed_with_cpu(chosen, 900.0));
    assert_ne!(rank(&s), before, "the fixture re-sorted");
    assert_eq!(selected_pid(&s), Some(chosen));
    // And back down, then a sort by another column: still the same process.
    s.ingest(feed_with_cpu(chosen, 0.0));
    assert_eq!(selected_pid(&s), Some(chosen));
    press(&mut s, &[key('M')]);
    assert_eq!(selected_pid(&s), Some(chosen));
    assert!(s.notice.is_none());
}

#[test]
fn a_pid_reused_by_another_process_is_not_followed() {
    let mut s = fixture::state();
    press(&mut s, &[key('p'), code(KeyCode::Down)]);
    let chosen = selected_pid(&s).expect("selected");
    let mut f = fixture::feed();
    for p in &mut f.snapshot.processes {
        if p.pid == chosen {
            p.start_time = crate::model::Timestamp(p.start_time.0 + 5_000);
        }
    }
    s.ingest(f);
    let notice = s
        .notice
        .as_ref()
        .map(|n| n.text.clone())
        .unwrap_or_default();
    assert!(notice.contains(&format!("process {chosen}")), "{notice}");
    assert!(notice.contains("ended"), "{notice}");
}

#[test]
fn when_the_selected_process_ends_the_cursor_says_so_and_stays_on_a_neighbour() {
    let mut s = fixture::state();
    press(
        &mut s,
        &[key('p'), code(KeyCode::Down), code(KeyCode::Down)],
    );
    let chosen = selected_pid(&s).expect("selected");
    let index = match &s.view {
        View::Processes(pv) => pv.selected,
        _ => unreachable!(),
    };
    let mut f = fixture::feed();
    f.snapshot.processes.retain(|p| p.pid != chosen);
    let next = {
        let mut probe = fixture::state();
        probe.view = s.view.clone();
        probe.ingest(f.clone());
        probe.process_rows().get(index).map(|r| r.process.pid)
    };
    s.ingest(f);
    assert_eq!(selected_pid(&s), next, "the row that took its place");
    assert_ne!(selected_pid(&s), Some(chosen));
    let notice = s
        .notice
        .as_ref()
        .map(|n| n.text.clone())
        .unwrap_or_default();
    assert!(
        notice.contains(&format!("process {chosen}")) && notice.contains("ended"),
        "{notice}"
    );
}

#[test]
fn the_user_cursor_follows_its_user() {
    let mut s = fixture::state();
    press(&mut s, &[code(KeyCode::Down)]);
    let chosen = s.visible_users()[s.user_selected].uid;
    let mut f = fixture::feed();
    f.snapshot.users.reverse();
    s.ingest(f);
    assert_eq!(s.visible_users()[s.user_selected].uid, chosen);
}

mod defects {
    use super::*;
    use crate::ui::columns::cpu_time;

    #[test]
    fn ctrl_u_erases_the_typed_filter_and_keeps_typing() {
        let mut s = fixture::state();
        press(&mut s, &[key('p'), key('/')]);
        typed(&mut s, "pid=2003");
        assert_eq!(pids(&s), vec![2003]);
        press(
            &mut s,
            &[KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL)],
        );
        assert_eq!(pids(&s).len(), fixture::processes().len());
        assert_eq!(s.input_mode(), InputMode::Filter, "still typing");
        typed(&mut s, "pid=2002");
        assert_eq!(pids(&s), vec![2002]);
    }

    /// N orders by what the COMMAND column shows (the command line), not the short name.
    #[test]
    fn n_sorts_by_the_command_shown() {
        let mut s = fixture::state();
        press(&mut s, &[key('p'), key('N')]);
        let shown: Vec<String> = s
            .process_rows()
            .iter()
            .map(|r| crate::ui::procs::shown_command(r.process).to_string())
            .collect();
        let mut sorted = shown.clone();
        sorted.sort();
        assert_eq!(shown, sorted);
        let View::Processes(pv) = &s.view else {
            panic!()
        };
        assert_eq!(pv.sort.direction(pv.inverted), "A-Z");
        assert_eq!(SortKey::Cpu.direction(false), "high first");
        assert_eq!(SortKey::Name.direction(true), "Z-A");
    }

    #[test]
    fn readonly_hints_offer_nothing_that_writes() {
        let writes = |mode| {
            keymap::hints(mode, true)
                .iter()
                .any(|(_, w)| ["ack", "resolve", "signal"].contains(w))
        };
        assert!(!writes(InputMode::Main));
        assert!(!writes(InputMode::Processes));
        assert!(
            keymap::hints(InputMode::Main, false)
                .iter()
                .any(|(_, w)| *w == "ack")
        );
    }

    /// htop's TIME+: minutes:seconds.hundredths (before: `3m` for 4:28.29).
    #[test]
    fn cpu_time_reads_like_htop() {
        assert_eq!(cpu_time(268.29), "4:28.29");
        assert_eq!(cpu_time(0.0), "0:00.00");
        assert_eq!(cpu_time(3599.999), "1h00:00");
        assert_eq!(cpu_time(12.0 * 3600.0 + 187.0), "12h03:07");
        assert_eq!(cpu_time(500.0 * 3600.0), "500h");
    }

    /// Siblings get `├─` and the last one `└─`, and a parent's column continues past its
    /// children while it has siblings below (before: `└─` for every row).
    #[test]
    fn the_tree_draws_siblings_and_continuing_lines() {
        let mut s = fixture::state();
        press(&mut s, &[key('p'), code(KeyCode::F(5))]);
        let rows = s.process_rows();
        let children_of = |pid: u32| {
            rows.iter()
                .filter(|r| r.process.ppid == pid && r.depth > 0)
                .collect::<Vec<_>>()
        };
        let parent = rows
            .iter()
            .find(|r| children_of(r.process.pid).len() >= 2)
            .expect("a process with two children in the fixture");
        let kids = children_of(parent.process.pid);
        let (last, others) = kids.split_last().expect("two children");
        assert!(last.branch(false).ends_with("└─ "));
        for k in others {
            assert!(k.branch(false).ends_with("├─ "), "{}", k.branch(false));
        }
        // Everything drawn under a non-last child carries its `│`.
        for r in rows.iter().filter(|r| r.depth > kids[0].depth) {
            if r.more & (1 << kids[0].depth) != 0 {
                assert!(r.branch(false).contains('│'));
            }
        }
        assert!(rows.iter().all(|r| r.branch(true).is_ascii()));
    }
}

mod acting_on_processes {
    use super::*;
    use crate::model::{IoCounters, ProcessDetails, Timestamp};
    use crate::ui::state::Effect;

    fn start_of(pid: u32) -> Timestamp {
        fixture::processes()
            .iter()
            .find(|p| p.pid == pid)
            .map(|p| p.start_time)
            .unwrap_or_default()
    }

    /// `k` on a user in the users pane: every one of their processes, named by count, each
    /// with its start time so that the run loop leaves a reused pid alone.
    #[test]
    fn k_on_a_user_signals_all_their_processes_after_naming_the_count() {
        let mut s = fixture::state();
        press(&mut s, &[code(KeyCode::Down), key('k')]);
        assert_eq!(s.input_mode(), InputMode::Signal);
        press(&mut s, &[code(KeyCode::Enter)]);
        let q = confirm(&s).map(|c| c.question.clone()).unwrap_or_default();
        assert_eq!(q, "Send SIGTERM to all 4 processes of user bob?");
        press(&mut s, &[key('y')]);
        let mut expected: Vec<(u32, Timestamp)> = [3001, 3002, 3003, 3004]
            .iter()
            .map(|&p| (p, start_of(p)))
            .collect();
        let Some(Effect::Signal { targets, signal: 0 }) = s.take_effects().pop() else {
            panic!("no SIGTERM effect")
        };
        let mut targets = targets;
        targets.sort_unstable();
        expected.sort_unstable();
        assert_eq!(targets, expected);
    }

    #[test]
    fn k_elsewhere_on_the_main_screen_explains_itself_and_moves_nothing() {
        let mut s = fixture::state();
        press(&mut s, &[code(KeyCode::Tab), code(KeyCode::Down), key('k')]);
        assert_eq!(s.input_mode(), InputMode::Main);
        assert_eq!(s.alert_selected, 1, "k no longer moves up");
        assert!(s.notice.as_ref().is_some_and(|n| n.error));
    }

    #[test]
    fn the_signal_menu_offers_every_signal_and_pages_through_them() {
        let mut s = fixture::state();
        press(&mut s, &[key('p'), key('k'), code(KeyCode::End)]);
        assert_eq!(signal(&s).map(|d| d.selected), Some(30));
        press(&mut s, &[code(KeyCode::Enter)]);
        let q = confirm(&s).map(|c| c.question.clone()).unwrap_or_default();
        assert!(q.starts_with("Send SIGSYS to process 2002"), "{q}");
    }

    #[test]
    fn readonly_and_the_past_refuse_signals_to_users_and_renicing() {
        let mut s = fixture::state();
        s.options.readonly = true;
        press(&mut s, &[key('k')]);
        assert!(s.overlay.is_none());
        press(&mut s, &[key('p'), code(KeyCode::F(8))]);
        assert!(s.overlay.is_none());
        assert!(
            s.notice
                .as_ref()
                .is_some_and(|n| n.text.contains("read-only"))
        );
        assert!(s.take_effects().is_empty());
    }

    /// F8 asks for the current nice value, shows it once read, and a yes renices from it.
    #[test]
    fn f7_f8_renice_from_the_current_value_after_a_confirmation() {
        let mut s = fixture::state();
        press(&mut s, &[key('p'), code(KeyCode::F(8))]);
        assert_eq!(s.input_mode(), InputMode::Renice);
        assert_eq!(s.take_effects(), vec![Effect::LoadDetails { pid: 2002 }]);
        press(&mut s, &[code(KeyCode::Enter)]);
        assert!(
            s.notice
                .as_ref()
                .is_some_and(|n| n.text.contains("not known")),
            "no value to renice from yet"
        );
        s.set_details(
            fixture::AT,
            ProcessDetails {
                pid: 2002,
                nice: Some(5),
                ..ProcessDetails::default()
            },
        );
        press(
            &mut s,
            &[
                code(KeyCode::F(8)),
                code(KeyCode::F(7)),
                code(KeyCode::Down),
            ],
        );
        press(&mut s, &[code(KeyCode::Enter)]);
        let q = confirm(&s).map(|c| c.question.clone()).unwrap_or_default();
        assert_eq!(q, "Renice process 2002 (python3, user alice) from 5 to 7?");
        press(&mut s, &[key('y')]);
        assert_eq!(
            s.take_effects(),
            vec![Effect::Renice {
                pid: 2002,
                start_time: start_of(2002),
                nice: 7
            }]
        );
    }

    #[test]
    fn renice_stays_within_minus_20_and_19() {
        let mut s = fixture::state();
        press(&mut s, &[key('p'), code(KeyCode::F(8))]);
        s.set_details(
            fixture::AT,
            ProcessDetails {
                pid: 2002,
                nice: Some(18),
                ..ProcessDetails::default()
            },
        );
        for _ in 0..5 {
            press(&mut s, &[code(KeyCode::F(8))]);
        }
        let Some(Overlay::Renice(d)) = &s.overlay else {
            panic!("renice dialog closed")
        };
        assert_eq!(d.target(), Some(19));
    }

    /// Enter opens the details; each reading after the first gives I/O rates; Esc returns to
    /// the list as it was.
    #[test]
    fn enter_shows_a_process_in_detail_with_io_rates_and_esc_returns() {
        let mut s = fixture::state();
        press(
            &mut s,
            &[
                key('p'),
                key('M'),
                code(KeyCode::Down),
                code(KeyCode::Enter),
            ],
        );
        let View::Details(dv) = &s.view else {
            panic!("no details view: {:?}", s.view)
        };
        assert_eq!(dv.pid, 3003);
        assert_eq!(s.take_effects(), vec![Effect::LoadDetails { pid: 3003 }]);
        let io = |r: u64, w: u64| ProcessDetails {
            pid: 3003,
            io: Some(IoCounters {
                read_bytes: r,
                write_bytes: w,
                ..IoCounters::default()
            }),
            ..ProcessDetails::default()
        };
        s.set_details(fixture::AT, io(1000, 0));
        assert_eq!(s.details.as_ref().and_then(|d| d.io_rates), None);
        s.set_details(fixture::AT.plus_secs(2.0), io(5000, 2048));
        assert_eq!(
            s.details.as_ref().and_then(|d| d.io_rates),
            Some((2000.0, 1024.0))
        );
        s.load_details();
        assert_eq!(s.take_effects(), vec![Effect::LoadDetails { pid: 3003 }]);
        press(&mut s, &[code(KeyCode::Esc)]);
        let View::Processes(pv) = &s.view else {
            panic!("Esc left the details for {:?}", s.view)
        };
        assert_eq!((pv.sort, pv.selected), (SortKey::Memory, 1));
    }
}

mod process_list {
    use super::*;
    use crate::ui::columns::Column;

    fn selected_pid(s: &AppState) -> Option<u32> {
        let View::Processes(pv) = &s.view else {
            return None;
        };
        s.process_rows().get(pv.selected).map(|r| r.process.pid)
    }

    #[test]
    fn angle_brackets_sort_by_every_column_in_turn() {
        let mut s = fixture::state();
        press(&mut s, &[key('p')]);
        let mut seen = Vec::new();
        for _ in 0..8 {
            press(&mut s, &[key('>')]);
            let View::Processes(pv) = &s.view else {
                panic!()
            };
            seen.push(pv.sort);
        }
        assert_eq!(
            seen,
            vec![
                SortKey::Memory,
                SortKey::Threads,
                SortKey::Time,
                SortKey::Name,
                SortKey::Pid,
                SortKey::User,
                SortKey::State,
                SortKey::Cpu
            ],
            "MEM% and RES share one order"
        );
        press(&mut s, &[key('<')]);
        let View::Processes(pv) = &s.view else {
            panic!()
        };
        assert_eq!(pv.sort, SortKey::State);
        press(&mut s, &[key('<')]);
        let users: Vec<String> = s
            .process_rows()
            .iter()
            .map(|r| r.process.user.to_string())
            .collect();
        let mut sorted = users.clone();
        sorted.sort();
        assert_eq!(users, sorted, "back past PID to USER: sorted by user");
        press(&mut s, &[code(KeyCode::F(6))]);
        let View::Processes(pv) = &s.view else {
            panic!()
        };
        assert_eq!(pv.sort, SortKey::State, "F6 is >");
    }

    /// On a machine with GPUs the default columns include GPU MEM and GPU%, and the sort keys
    /// step through them after RES; a process holding no GPU sorts after every one that does.
    #[test]
    fn gpu_columns_sort_heaviest_first_and_take_their_turn() {
        let mut s = fixture::gpu_state();
        press(&mut s, &[key('p'), key('M')]);
        let mut seen = Vec::new();
        for _ in 0..3 {
            press(&mut s, &[key('>')]);
            let View::Processes(pv) = &s.view else {
                panic!()
            };
            seen.push(pv.sort);
        }
        assert_eq!(seen, [SortKey::GpuMemory, SortKey::Gpu, SortKey::Threads]);
        press(&mut s, &[key('<'), key('<')]);
        let pids: Vec<u32> = s.process_rows().iter().map(|r| r.process.pid).collect();
        // 210 GiB, 80, 30, 20, 8, then the rest by pid.
        assert_eq!(pids[..6], [2002, 5002, 6001, 5001, 4001, 1]);
        press(&mut s, &[key('I')]);
        let pids: Vec<u32> = s.process_rows().iter().map(|r| r.process.pid).collect();
        assert_eq!(
            pids[pids.len() - 2..],
            [5002, 2002],
            "inverted: lightest first"
        );
        // GPU% (summed over a process's GPUs): alice's 282 first; an unknown figure (MIG) last
        // among the holders, after dave's 0.
        press(&mut s, &[key('>')]);
        let pids: Vec<u32> = s.process_rows().iter().map(|r| r.process.pid).collect();
        assert_eq!(pids[..3], [2002, 5002, 6001]);
        let machine_without = fixture::state();
        assert!(!machine_without.columns().iter().any(|c| c.is_gpu()));
        assert_eq!(
            s.columns()
                .iter()
                .map(|c| c.name())
                .collect::<Vec<_>>()
                .join(" "),
            "pid user state cpu mem res gpu_mem gpu_util threads time command"
        );
    }

    /// The cursor stays on its process while the filter changes around it.
    #[test]
    fn the_filter_keeps_the_cursor_on_its_process() {
        let mut s = fixture::state();
        press(
            &mut s,
            &[key('p'), code(KeyCode::Down), code(KeyCode::Down)],
        );
        let before = selected_pid(&s);
        press(&mut s, &[key('/')]);
        typed(&mut s, "b");
        assert_eq!(selected_pid(&s), before, "still listed: still selected");
        press(
            &mut s,
            &[KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL)],
        );
        assert_eq!(selected_pid(&s), before);
        typed(&mut s, "pid=1");
        assert_eq!(selected_pid(&s), Some(1), "filtered out: the top row");
    }

    #[test]
    fn f3_searches_and_jumps_to_the_next_match() {
        let mut s = fixture::state();
        press(&mut s, &[key('p'), code(KeyCode::F(3))]);
        assert_eq!(s.input_mode(), InputMode::Search);
        typed(&mut s, "cc1plus");
        assert_eq!(selected_pid(&s), Some(3003));
        press(&mut s, &[code(KeyCode::F(3))]);
        assert_eq!(selected_pid(&s), Some(3004));
        press(&mut s, &[code(KeyCode::Enter)]);
        assert_eq!(s.input_mode(), InputMode::Processes);
        assert_eq!(
            pids(&s).len(),
            fixture::processes().len(),
            "search hides nothing"
        );
        press(&mut s, &[code(KeyCode::F(3))]);
        assert_eq!(selected_pid(&s), Some(3003), "wraps around");
        assert_eq!(
            s.input_mode(),
            InputMode::Search,
            "F3 reopens the search line"
        );
        press(&mut s, &[code(KeyCode::Esc)]);
        assert_eq!(s.input_mode(), InputMode::Processes, "Esc ended the search");
        let View::Processes(pv) = &s.view else {
            panic!()
        };
        assert!(pv.search.is_empty());
        press(&mut s, &[code(KeyCode::F(3))]);
        assert_eq!(s.input_mode(), InputMode::Search);
        typed(&mut s, "no-such-thing");
        assert!(
            s.notice
                .as_ref()
                .is_some_and(|n| n.text.contains("no process matches"))
        );
    }

    #[test]
    fn left_and_right_scroll_the_command_line() {
        let mut s = fixture::state();
        press(
            &mut s,
            &[key('p'), code(KeyCode::Right), code(KeyCode::Right)],
        );
        let View::Processes(pv) = &s.view else {
            panic!()
        };
        assert_eq!(pv.hscroll, 16);
        press(
            &mut s,
            &[
                code(KeyCode::Left),
                code(KeyCode::Left),
                code(KeyCode::Left),
            ],
        );
        let View::Processes(pv) = &s.view else {
            panic!()
        };
        assert_eq!(pv.hscroll, 0);
    }

    #[test]
    fn c_folds_and_unfolds_a_branch_of_the_tree() {
        let mut s = fixture::state();
        press(
            &mut s,
            &[key('p'), code(KeyCode::F(5)), code(KeyCode::F(3))],
        );
        typed(&mut s, "make");
        press(&mut s, &[code(KeyCode::Enter), key('c')]);
        let rows = s.process_rows();
        assert!(
            !rows
                .iter()
                .any(|r| r.process.pid == 3003 || r.process.pid == 3004)
        );
        let make = rows
            .iter()
            .find(|r| r.process.pid == 3002)
            .expect("make listed");
        assert_eq!(make.folded, 2);
        assert_eq!(make.fold_mark(), "[+2] ");
        assert_eq!(selected_pid(&s), Some(3002));
        press(&mut s, &[key('c')]);
        assert_eq!(pids(&s).len(), fixture::processes().len());
    }

    #[test]
    fn configured_columns_are_used_in_their_order() {
        let mut s = fixture::state();
        s.config.ui.columns = Some(vec!["command".into(), "pid".into()]);
        assert_eq!(s.columns(), vec![Column::Command, Column::Pid]);
        press(&mut s, &[key('p'), key('>')]);
        let View::Processes(pv) = &s.view else {
            panic!()
        };
        assert_eq!(
            pv.sort,
            SortKey::Name,
            "from CPU (not shown) to the first column"
        );
    }
}

mod mouse {
    use super::*;
    use crate::ui::mouse;
    use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    use ratatui::layout::Rect;

    const SCREEN: Rect = Rect {
        x: 0,
        y: 0,
        width: 80,
        height: 24,
    };

    fn click(x: u16, y: u16) -> MouseEvent {
        MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: x,
            row: y,
            modifiers: KeyModifiers::NONE,
        }
    }

    fn apply_all(s: &mut AppState, ev: MouseEvent) -> Vec<Action> {
        let actions = mouse::actions(s, SCREEN, ev);
        for a in &actions {
            s.apply(*a);
        }
        actions
    }

    /// Row numbers below are read off the 80x24 snapshots (`main_80x24`, `all_processes`).
    fn row_of(s: &AppState, needle: &str) -> u16 {
        let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 24))
            .expect("test terminal");
        term.draw(|f| crate::ui::views::draw(f, s)).expect("draw");
        let buf = term.backend().buffer().clone();
        (0..24)
            .find(|&y| {
                let line: String = (0..80).map(|x| buf[(x, y)].symbol().to_string()).collect();
                line.contains(needle)
            })
            .unwrap_or_else(|| panic!("{needle} not on screen"))
    }

    #[test]
    fn a_click_focuses_a_pane_and_selects_the_row_under_it() {
        let mut s = fixture::state();
        let bob = row_of(&s, "bob  ");
        assert_eq!(
            apply_all(&mut s, click(3, bob)),
            vec![Action::Focus(Pane::Users), Action::Select(1)]
        );
        assert_eq!(s.user_selected, 1);
        let second_alert = row_of(&s, "SEVERITY") + 2;
        assert_eq!(
            apply_all(&mut s, click(3, second_alert)),
            vec![Action::Focus(Pane::Alerts), Action::Select(1)]
        );
        assert_eq!((s.focus, s.alert_selected), (Pane::Alerts, 1));
        let sys = row_of(&s, "System");
        apply_all(&mut s, click(3, sys + 1));
        assert_eq!(s.focus, Pane::System);
    }

    #[test]
    fn the_wheel_scrolls_and_a_header_click_sorts_then_reverses() {
        let mut s = fixture::state();
        press(&mut s, &[key('p')]);
        let wheel = MouseEvent {
            kind: MouseEventKind::ScrollDown,
            column: 10,
            row: 10,
            modifiers: KeyModifiers::NONE,
        };
        apply_all(&mut s, wheel);
        let View::Processes(pv) = &s.view else {
            panic!()
        };
        assert_eq!(pv.selected, 3);
        let header = row_of(&s, "COMMAND");
        // PID is the first column.
        assert_eq!(
            apply_all(&mut s, click(2, header)),
            vec![Action::SortToggle(SortKey::Pid)]
        );
        assert_eq!(pids(&s)[0], 1);
        apply_all(&mut s, click(2, header));
        let View::Processes(pv) = &s.view else {
            panic!()
        };
        assert!(pv.inverted, "a second click reverses");
        let row = row_of(&s, " 3003 ");
        apply_all(&mut s, click(40, row));
        let View::Processes(pv) = &s.view else {
            panic!()
        };
        assert_eq!(s.process_rows()[pv.selected].process.pid, 3003);
    }

    #[test]
    fn clicks_do_not_reach_behind_a_dialog() {
        let mut s = fixture::state();
        press(&mut s, &[key('?')]);
        assert!(mouse::actions(&s, SCREEN, click(3, 10)).is_empty());
    }
}

mod column_chooser {
    use super::*;
    use crate::ui::columns::Column;
    use crate::ui::state::Effect;

    #[test]
    fn f2_hides_and_moves_columns_then_keeps_and_saves_the_choice() {
        let mut s = fixture::state();
        press(&mut s, &[key('p'), code(KeyCode::F(2))]);
        assert_eq!(s.input_mode(), InputMode::Columns);
        // Hide USER (row 1), then move COMMAND (last) to the top.
        press(&mut s, &[code(KeyCode::Down), key(' ')]);
        press(&mut s, &[code(KeyCode::End)]);
        for _ in 0..8 {
            press(&mut s, &[code(KeyCode::Down)]);
        }
        for _ in 0..8 {
            press(&mut s, &[code(KeyCode::F(7))]);
        }
        press(&mut s, &[code(KeyCode::Enter)]);
        let want = [
            "command", "pid", "state", "cpu", "mem", "res", "threads", "time",
        ];
        assert_eq!(
            s.config.ui.columns.as_deref(),
            Some(&want.map(String::from)[..])
        );
        assert_eq!(s.columns()[0], Column::Command);
        assert!(!s.columns().contains(&Column::User));
        assert_eq!(
            s.take_effects(),
            vec![Effect::SaveColumns(
                want.iter().map(|c| c.to_string()).collect()
            )]
        );
    }

    #[test]
    fn esc_leaves_the_columns_and_one_always_stays() {
        let mut s = fixture::state();
        s.config.ui.columns = Some(vec!["pid".into()]);
        press(&mut s, &[key('p'), code(KeyCode::F(2)), key(' ')]);
        let Some(Overlay::Columns(c)) = &s.overlay else {
            panic!("chooser closed")
        };
        assert_eq!(c.chosen(), vec!["pid".to_string()], "the last one stays");
        press(&mut s, &[code(KeyCode::Down), key(' '), code(KeyCode::Esc)]);
        assert_eq!(s.config.ui.columns, Some(vec!["pid".to_string()]));
        assert!(s.take_effects().is_empty());
    }

    /// On a machine with GPUs the default list shows GPU MEM and GPU%; unticking both with F2
    /// leaves the nine default names, which must not bring them back.
    #[test]
    fn f2_hides_the_gpu_columns_for_good() {
        let mut s = fixture::gpu_state();
        assert!(s.columns().contains(&Column::GpuMem));
        press(&mut s, &[key('p'), code(KeyCode::F(2))]);
        for _ in 0..6 {
            press(&mut s, &[code(KeyCode::Down)]);
        }
        press(&mut s, &[key(' '), code(KeyCode::Down), key(' ')]);
        press(&mut s, &[code(KeyCode::Enter)]);
        let nine: Vec<String> = crate::config::DEFAULT_COLUMNS
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(s.config.ui.columns.as_ref(), Some(&nine));
        assert!(!s.columns().iter().any(|c| c.is_gpu()), "{:?}", s.columns());
        assert_eq!(s.take_effects(), vec![Effect::SaveColumns(nine)]);
    }
}
