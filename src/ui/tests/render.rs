use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;

use super::fixture;
use super::raster::{Image, Raster};
use crate::ui::action::Action;
use crate::ui::state::{AppState, Options};
use crate::ui::views;

const SIZES: [(u16, u16); 3] = [(80, 24), (160, 48), (40, 12)];

fn buffer(state: &AppState, w: u16, h: u16) -> Buffer {
    let mut term = match Terminal::new(TestBackend::new(w, h)) {
        Ok(t) => t,
        Err(e) => panic!("test backend: {e}"),
    };
    if let Err(e) = term.draw(|f| views::draw(f, state)) {
        panic!("draw: {e}");
    }
    term.backend().buffer().clone()
}

fn text(buf: &Buffer) -> String {
    let area = buf.area;
    let mut out = String::new();
    for y in 0..area.height {
        let mut line = String::new();
        for x in 0..area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Snapshot `state` at both sizes under `name_WxH`, and check nothing hostile got through.
fn check(name: &str, state: &AppState) {
    for (w, h) in SIZES {
        let buf = buffer(state, w, h);
        assert_no_control(&buf, name);
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), text(&buf));
    }
}

fn assert_no_control(buf: &Buffer, name: &str) {
    for cell in buf.content() {
        let sym = cell.symbol();
        assert!(
            !sym.chars()
                .any(|c| c.is_control() || ('\u{202A}'..='\u{202E}').contains(&c)),
            "{name}: control character {sym:?} reached the screen"
        );
    }
}

fn with(actions: &[Action]) -> AppState {
    after(fixture::state(), actions)
}

/// The fixture machine with eight GPUs, after `actions`.
fn gpu_with(actions: &[Action]) -> AppState {
    after(fixture::gpu_state(), actions)
}

fn after(mut s: AppState, actions: &[Action]) -> AppState {
    for a in actions {
        s.apply(*a);
    }
    s
}

#[test]
fn main_screen() {
    check("main", &fixture::state());
}

#[test]
fn main_screen_with_status_reasons_and_alerts_focused() {
    check(
        "main_reasons",
        &with(&[Action::ToggleReasons, Action::NextPane]),
    );
}

#[test]
fn main_screen_with_system_users() {
    check(
        "main_system_users",
        &with(&[Action::ToggleSystemUsers, Action::Bottom]),
    );
}

#[test]
fn main_screen_paused() {
    check("main_paused", &with(&[Action::TogglePause]));
}

#[test]
fn users_processes() {
    check("user_processes", &with(&[Action::Down, Action::Enter]));
}

#[test]
fn all_processes_as_a_tree() {
    check(
        "processes_tree",
        &with(&[Action::AllProcesses, Action::ToggleTree]),
    );
}

#[test]
fn process_filter_being_typed() {
    let mut s = with(&[Action::AllProcesses, Action::StartFilter]);
    for c in "cmd=python".chars() {
        s.apply(Action::FilterChar(c));
    }
    check("processes_filter", &s);
}

#[test]
fn help_overlay() {
    check("help", &with(&[Action::ToggleHelp]));
}

#[test]
fn before_the_first_sample() {
    check(
        "starting",
        &AppState::new(crate::config::Config::default(), fixture::options()),
    );
}

#[test]
fn ascii_mode_draws_only_ascii() {
    let mut s = AppState::new(
        crate::config::Config::default(),
        Options {
            ascii: true,
            color: false,
            ..fixture::options()
        },
    );
    for _ in 0..5 {
        s.ingest(fixture::feed());
    }
    for (w, h) in SIZES {
        let t = text(&buffer(&s, w, h));
        assert!(t.is_ascii(), "non-ASCII in ASCII mode:\n{t}");
    }
    check("main_ascii", &s);
}

#[test]
fn hostile_names_never_reach_the_terminal() {
    let mut s = fixture::state();
    s.apply(Action::ToggleSystemUsers);
    for view in [
        vec![],
        vec![Action::AllProcesses],
        vec![Action::AllProcesses, Action::ToggleTree],
    ] {
        let mut v = with(&view);
        v.apply(Action::ToggleSystemUsers);
        for (w, h) in SIZES {
            assert_no_control(&buffer(&v, w, h), "hostile");
        }
    }
    // The hostile user's own process list, reached by drilling down.
    let mut v = fixture::state();
    v.apply(Action::Bottom);
    v.apply(Action::Enter);
    let buf = buffer(&v, 160, 48);
    assert_no_control(&buf, "hostile drill-down");
    assert!(
        text(&buf).contains("evil"),
        "the printable part is still shown"
    );
}

#[test]
fn colors_off_under_no_color() {
    let mut s = AppState::new(
        crate::config::Config::default(),
        Options {
            color: false,
            ..fixture::options()
        },
    );
    s.ingest(fixture::feed());
    let buf = buffer(&s, 160, 48);
    for cell in buf.content() {
        assert_eq!(cell.fg, ratatui::style::Color::Reset, "{:?}", cell.symbol());
        assert_eq!(cell.bg, ratatui::style::Color::Reset, "{:?}", cell.symbol());
    }
}

#[test]
fn alert_details() {
    check(
        "alert_details",
        &with(&[Action::NextPane, Action::Down, Action::Enter]),
    );
}

/// The alert was recorded a minute before the sample on screen, at 93 %; the machine is at
/// 41.5 % now. Before: `93.0% now` (the recorded figure under the wrong label) and `Lasting`
/// frozen at what it was when recorded.
#[test]
fn alert_details_label_the_recorded_figure_and_show_the_current_one() {
    let mut s = fixture::state();
    let mut f = fixture::feed();
    f.snapshot.at = f.snapshot.at.plus_secs(60.0);
    for u in &mut f.snapshot.users {
        u.cpu_percent = 41.5;
    }
    s.ingest(f);
    s.apply(Action::NextPane);
    let row = s
        .alerts()
        .iter()
        .position(|r| {
            r.alert.key == crate::model::AlertKey::user("alice", crate::model::Metric::Cpu)
        })
        .expect("alice's alert in the fixture");
    for _ in 0..row {
        s.apply(Action::Down);
    }
    s.apply(Action::Enter);
    let screen = text(&buffer(&s, 160, 48));
    let figure = screen
        .lines()
        .find(|l| l.contains("Figure"))
        .unwrap_or_default();
    assert!(figure.contains("93.0% at 03:00:00"), "{figure}");
    assert!(figure.contains("41.5% now"), "{figure}");
    let lasting = screen
        .lines()
        .find(|l| l.contains("Lasting"))
        .unwrap_or_default();
    assert!(
        lasting.contains("1h13m"),
        "72 minutes recorded + 1 since: {lasting}"
    );
}

/// 40x12: the header kept Light/Medium/Heavy and the users pane a row (before: the status was
/// cut off the right, and the alerts pane took the rows).
#[test]
fn small_terminals_keep_the_status_and_a_user_row() {
    let s = fixture::state();
    let screen = text(&buffer(&s, 40, 12));
    let label = s.shown().map(|f| f.status.status.label()).unwrap_or("?");
    assert!(
        screen.lines().next().unwrap_or("").contains(label),
        "{screen}"
    );
    assert!(screen.contains("alice"), "{screen}");
}

#[test]
fn readonly_sessions_are_marked_and_not_offered_writes() {
    let mut s = fixture::state();
    s.options.readonly = true;
    check("main_readonly", &s);
    let screen = text(&buffer(&s, 160, 48));
    assert!(screen.contains("READ-ONLY"), "{screen}");
    let hints = screen.lines().last().unwrap_or_default();
    assert!(
        !hints.contains("ack") && !hints.contains("resolve"),
        "{hints}"
    );
    s.apply(Action::AllProcesses);
    let screen = text(&buffer(&s, 160, 48));
    let hints = screen.lines().last().unwrap_or_default();
    assert!(!hints.contains("signal"), "{hints}");
}

fn inspected(s: &mut AppState, pid: u32) {
    use crate::model::{IoCounters, ProcessDetails};
    let io = |r: u64, w: u64| IoCounters {
        rchar: r,
        wchar: w,
        read_bytes: r,
        write_bytes: w,
    };
    let d = |io| {
        ProcessDetails {
        pid,
        cmdline: Some("python3 train.py --epochs 400 --batch-size 256 --data /scratch/alice/imagenet --resume runs/last.ckpt".into()),
        priority: Some(25),
        nice: Some(5),
        cwd: Some("/home/alice/proj\u{1b}[2J".into()),
        open_files: Some(42),
        cgroup: Some("/user.slice/user-1000.slice/session-3.scope".into()),
        io: Some(io),
        environ: Some(vec!["HOME=/home/alice".into(), "CUDA_VISIBLE_DEVICES=0,1".into()]),
    }
    };
    s.set_details(fixture::AT, d(io(1 << 30, 1 << 20)));
    s.set_details(
        fixture::AT.plus_secs(2.0),
        d(io((1 << 30) + (8 << 20), (1 << 20) + (2 << 20))),
    );
}

#[test]
fn process_details() {
    let mut s = with(&[Action::AllProcesses, Action::Enter]);
    inspected(&mut s, 2002);
    check("process_details", &s);
    let screen = text(&buffer(&s, 160, 48));
    assert!(
        screen.contains("read 4.0 MiB/s  write 1.0 MiB/s"),
        "{screen}"
    );
    assert!(
        screen.contains("--resume runs/last.ckpt"),
        "the full command line"
    );
    let mut other = with(&[Action::AllProcesses, Action::Enter]);
    other.set_details(
        fixture::AT,
        crate::model::ProcessDetails {
            pid: 2002,
            ..Default::default()
        },
    );
    let screen = text(&buffer(&other, 160, 48));
    assert!(screen.contains("Directory   not readable"), "{screen}");
    assert!(screen.contains("own user and root"), "{screen}");
}

#[test]
fn gpu_machine_main_screen() {
    let s = fixture::gpu_state();
    check("gpu_main", &s);
    // 160x48: a line per GPU and MIG instance next to everything a machine without GPUs shows.
    let wide = text(&buffer(&s, 160, 48));
    for needle in [
        "GPU0 ",
        "GPU7 ",
        "3/mig0 3g.40gb",
        "3/mig1 3g.40gb",
        "Disk",
        "Tasks",
    ] {
        assert!(wide.contains(needle), "{needle} missing:\n{wide}");
    }
    assert!(!wide.contains("8 GPUs,"), "no summary where every GPU fits");
    // 80x24: one line for the eight GPUs, and the users keep their rows.
    let small = text(&buffer(&s, 80, 24));
    assert!(small.contains("8 GPUs, 354.0/640.0 GiB"), "{small}");
    assert!(!small.contains("GPU0 "), "{small}");
    assert!(small.contains("GPU MEM"), "{small}");
    // A tall stacked screen makes room for a line per GPU, the users keeping half the rows.
    let tall = text(&buffer(&s, 80, 50));
    assert!(tall.contains("GPU7 ") && tall.contains("3/mig1"), "{tall}");
    assert!(tall.contains("dave"), "{tall}");
    // The GPU columns and lines only exist on a machine with GPUs.
    let plain = text(&buffer(&fixture::state(), 160, 48));
    assert!(!plain.contains("GPU"), "{plain}");
}

#[test]
fn gpu_machine_with_the_system_pane_focused_in_a_tiny_terminal() {
    check("gpu_system_focused", &gpu_with(&[Action::PrevPane]));
}

#[test]
fn gpu_machine_user_drill_down_and_process_list() {
    // carol: two GPUs and a MIG instance.
    let users = fixture::gpu_state();
    let carol = users
        .visible_users()
        .iter()
        .position(|u| &*u.name == "carol")
        .expect("carol");
    let mut s = fixture::gpu_state();
    for _ in 0..carol {
        s.apply(Action::Down);
    }
    s.apply(Action::Enter);
    check("gpu_user_processes", &s);
    let screen = text(&buffer(&s, 160, 48));
    assert!(
        screen.contains("GPU 3 devices, 100.0 GiB") && screen.contains("3/mig0 20.0 GiB"),
        "{screen}"
    );
    check(
        "gpu_processes_by_gpu_memory",
        &gpu_with(&[
            Action::AllProcesses,
            Action::Sort(crate::ui::action::SortKey::GpuMemory),
        ]),
    );
}

#[test]
fn gpu_machine_process_details() {
    let mut s = gpu_with(&[
        Action::AllProcesses,
        Action::Sort(crate::ui::action::SortKey::GpuMemory),
        Action::Enter,
    ]);
    inspected(&mut s, 2002);
    check("gpu_process_details", &s);
    let screen = text(&buffer(&s, 160, 48));
    assert!(
        screen.contains("GPU         0 70.0 GiB 95% compute, 1 70.0 GiB 94% compute"),
        "{screen}"
    );
}

#[test]
fn gpu_columns_are_offered_only_on_a_machine_with_gpus() {
    let offered = |s: &AppState| {
        let screen = text(&buffer(s, 160, 48));
        screen.contains("GPU MEM")
    };
    assert!(offered(&gpu_with(&[
        Action::AllProcesses,
        Action::ChooseColumns
    ])));
    assert!(!offered(&with(&[
        Action::AllProcesses,
        Action::ChooseColumns
    ])));
}

#[test]
fn column_chooser() {
    check(
        "columns",
        &with(&[
            Action::AllProcesses,
            Action::ChooseColumns,
            Action::Down,
            Action::ToggleItem,
        ]),
    );
}

#[test]
fn renice_dialog() {
    let mut s = with(&[Action::AllProcesses, Action::Renice(1)]);
    inspected(&mut s, 2002);
    check("renice", &s);
}

/// Large terminals draw each core's recent history (btop's per-core graphs); smaller ones keep
/// one bar per core.
#[test]
fn per_core_history_where_the_terminal_is_large_enough() {
    let s = fixture::state();
    let t = text(&buffer(&s, 160, 48));
    let core0 = t
        .lines()
        .find(|l| l.starts_with("│  0 "))
        .unwrap_or_default();
    let glyphs: std::collections::BTreeSet<char> =
        core0.chars().filter(|c| ('▁'..='█').contains(c)).collect();
    assert!(glyphs.len() >= 4, "a history, not a bar: {core0}");
    let t = text(&buffer(&s, 80, 24));
    assert!(!t.contains("│  0 "), "no room at 80x24: {t}");
}

#[test]
fn pressure_stall_figures_are_shown() {
    use crate::model::{Pressure, PressureFigures};
    let mut s = fixture::state();
    let mut f = fixture::feed();
    let fig = |v: f64| PressureFigures {
        some_avg10: v,
        ..PressureFigures::default()
    };
    f.snapshot.system.pressure = Some(Pressure {
        cpu: Some(fig(12.5)),
        memory: Some(fig(0.4)),
        io: None,
    });
    s.ingest(f);
    let t = text(&buffer(&s, 160, 48));
    assert!(
        t.contains("PSI  stalled (some, 10s): cpu 12.5%  memory 0.4%  io -"),
        "{t}"
    );
}

/// Why the alerts are this session's only is a line in the pane; the title keeps the count
/// (before: a long reason in the title, cut off at 80 columns with the count).
#[test]
fn the_alerts_source_note_leaves_the_title_whole() {
    let mut s = fixture::state();
    s.alerts_source = Some(
        "/var/lib/sysmon/sysmon.db: permission denied; this session's alerts only. To share the \
         daemon's, join its group (README: Sharing the database)"
            .into(),
    );
    let t = text(&buffer(&s, 80, 24));
    assert!(t.contains("Alerts 3 (this session)"), "{t}");
    assert!(t.contains("permission denied"), "{t}");
}

#[test]
fn confirm_dialog() {
    check(
        "confirm_resolve",
        &with(&[Action::NextPane, Action::Down, Action::Resolve]),
    );
}

#[test]
fn persistent_cell_is_red_only_with_a_badge_in_it() {
    use ratatui::style::Color;
    let mut s = fixture::state();
    let mut rec = fixture::recorded();
    let config = crate::config::Config::default();
    s.arrive(crate::ui::travel::feed_from(&rec, "gpu-node-07", &config));
    let column = |buf: &Buffer, y: u16| -> (String, bool) {
        let header = (0..buf.area.height)
            .find_map(|y| {
                (0..buf.area.width.saturating_sub(10))
                    .find(|&x| {
                        (x..x + 10)
                            .map(|x| buf[(x, y)].symbol())
                            .eq("PERSISTENT".split_terminator("").skip(1))
                    })
                    .map(|x| (x, y))
            })
            .expect("the users pane");
        let cells: Vec<_> = (header.0..header.0 + 14)
            .map(|x| &buf[(x, header.1 + y)])
            .collect();
        let text = cells.iter().map(|c| c.symbol()).collect::<String>();
        // Red either way round: the selected row is drawn reversed.
        let red = cells
            .iter()
            .any(|c| c.fg == Color::Red || c.bg == Color::Red);
        (text.trim_end().to_string(), red)
    };
    let buf = buffer(&s, 160, 48);
    assert_eq!(
        column(&buf, 1),
        ("CPU 1h12m".to_string(), true),
        "bob, selected"
    );
    // Nothing under way: a plain cell, on the selected row too.
    rec.persistent.clear();
    s.arrive(crate::ui::travel::feed_from(&rec, "gpu-node-07", &config));
    let buf = buffer(&s, 160, 48);
    assert_eq!(column(&buf, 1), (String::new(), false));
}

#[test]
fn notice_replaces_the_hint_bar() {
    check("notice", &with(&[Action::Acknowledge]));
}

#[test]
fn time_travel() {
    let mut s = fixture::state();
    s.arrive(crate::ui::travel::feed_from(
        &fixture::recorded(),
        "gpu-node-07",
        &crate::config::Config::default(),
    ));
    s.apply(Action::ToggleSystemUsers);
    check("history_moment", &s);
    // What a recorded moment does not keep is said, not made up (before: `0 running`, an
    // interface named `all`, state `?`, `THR 0`).
    let t = text(&buffer(&s, 160, 48));
    assert!(t.contains("(running and blocked not recorded)"), "{t}");
    assert!(!t.contains("0 running") && !t.contains("  all "), "{t}");
    s.apply(Action::Enter);
    check("history_moment_user", &s);
    let t = text(&buffer(&s, 160, 48));
    assert!(t.contains("S THR TIME not recorded"), "{t}");
    let row = t.lines().find(|l| l.contains("5001")).unwrap_or_default();
    assert!(!row.contains(" ? ") && !row.contains("0:00.00"), "{row}");
    s.apply(Action::Enter);
    assert!(
        s.notice
            .as_ref()
            .is_some_and(|n| n.text.contains("recorded moment")),
        "no live details of a recorded process"
    );
    // A shorter step is shown in the banner, which says what j and J do.
    s.apply(Action::Back);
    s.apply(Action::RangeShorter);
    let t = text(&buffer(&s, 80, 24));
    assert!(t.contains("  step 15m  j/J back/forward"), "{t}");
}

#[test]
fn history_charts() {
    let mut s = with(&[Action::Down, Action::History]);
    s.history = Some(fixture::history());
    check("history", &s);
    // A time axis with times under it, and each chart's scale (before: neither).
    let t = text(&buffer(&s, 80, 24));
    let labels = t.lines().find(|l| l.contains("02:15")).unwrap_or_default();
    assert!(
        labels.contains("02:00") && labels.contains("02:30") && labels.contains("03:00"),
        "{t}"
    );
    assert!(
        t.contains("Load (1 min)  avg 4.12  max 7.00  (bars 0 to 7.00)"),
        "{t}"
    );
    s.options.ascii = true;
    for (w, h) in SIZES {
        let t = text(&buffer(&s, w, h));
        assert!(t.is_ascii(), "non-ASCII in ASCII mode:\n{t}");
    }
}

#[test]
fn history_charts_for_the_machine_alone() {
    let mut s = with(&[Action::NextPane, Action::History]);
    let mut h = fixture::history();
    h.series.truncate(4);
    s.history = Some(h);
    check("history_machine", &s);
}

/// A GPU server's database: the GPU charts appear beside the others, and the user's GPU memory
/// under theirs. (Without GPUs the charts are the ones above, unchanged.)
#[test]
fn history_charts_with_gpus() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, _) = fixture::gpu_database(&dir.path().join("sysmon.db"));
    let (since, until) = (
        crate::model::Timestamp(fixture::AT.0 - 3_600_000),
        fixture::AT,
    );
    let h = store
        .history(&crate::store::HistoryQuery {
            since,
            until,
            user: Some("alice".into()),
            max_points: Some(120),
        })
        .expect("history");
    let users = store.users_between(since, until).expect("users");
    let mut s = with(&[Action::Down, Action::History]);
    s.view = crate::ui::state::View::History(crate::ui::state::HistoryView {
        user: Some("alice".into()),
    });
    s.history = Some(crate::ui::history::from_store(
        &h,
        since,
        until,
        Some("alice"),
        users,
    ));
    check("history_gpus", &s);
    // The same range without GPU figures: the charts of before, no more.
    let mut plain = h.clone();
    plain.gpus.clear();
    plain.user_gpu.clear();
    let labels: Vec<String> =
        crate::ui::history::from_store(&plain, since, until, Some("alice"), Vec::new())
            .series
            .into_iter()
            .map(|s| s.label)
            .collect();
    assert_eq!(
        labels,
        [
            "CPU",
            "Memory",
            "Load (1 min)",
            "Network rx+tx",
            "alice CPU",
            "alice memory"
        ]
    );
    let t = text(&buffer(&s, 160, 48));
    // GPU 0 climbs from 0 to 100 %; GPU 1, split into MIG instances, reports no utilization
    // and is left out of the mean, as in the live summary line.
    assert!(
        t.contains("GPU utilization (2 GPUs, mean)  avg 50.0%  max 100.0%"),
        "{t}"
    );
    // 42 of the two GPUs' 160 GiB in use; alice holds 30 of them.
    assert!(t.contains("GPU memory  avg 26.2%"), "{t}");
    assert!(
        t.contains("alice GPU memory (of all GPUs)  avg 18.8%"),
        "{t}"
    );
}

#[test]
fn history_user_picker() {
    let mut s = with(&[Action::Down, Action::History]);
    s.history = Some(fixture::history());
    s.apply(Action::PickUser);
    s.apply(Action::Down);
    check("history_picker", &s);
    s.options.ascii = true;
    for (w, h) in SIZES {
        let t = text(&buffer(&s, w, h));
        assert!(t.is_ascii(), "non-ASCII in ASCII mode:\n{t}");
    }
}

#[test]
fn signal_menu_and_confirmation() {
    let mut s = with(&[
        Action::AllProcesses,
        Action::Down,
        Action::Signal,
        Action::Down,
    ]);
    check("signal_menu", &s);
    s.apply(Action::Enter);
    check("signal_confirm", &s);
}

/// The screens in `screenshots/`, drawn from fixture data (never the live host).
fn screenshot_states() -> Vec<(&'static str, AppState)> {
    let mut history = with(&[Action::Down, Action::History]);
    history.history = Some(fixture::history());
    let mut moment = fixture::state();
    moment.arrive(crate::ui::travel::feed_from(
        &fixture::recorded(),
        "gpu-node-07",
        &crate::config::Config::default(),
    ));
    vec![
        ("main", fixture::state()),
        ("user-drill-down", with(&[Action::Enter])),
        (
            "alert-details",
            with(&[Action::NextPane, Action::Down, Action::Enter]),
        ),
        ("history", history),
        ("time-travel", moment),
        ("help", with(&[Action::ToggleHelp])),
        ("gpu", fixture::gpu_state()),
    ]
}

/// A file in `screenshots/`: a text rendering or an image.
enum Shot {
    Text(String),
    Image(Image),
}

/// Each screenshot file and what it shows: `<name>-<W>x<H>.txt` at both sizes (they diff well
/// in review), `<name>.png` at `PNG_SIZE`, and `main-80x24.png` for the compact layout.
fn screenshot_files() -> Vec<(String, Shot)> {
    let mut raster = Raster::new();
    let mut files = Vec::new();
    for (name, state) in &screenshot_states() {
        for (w, h) in SIZES {
            let buf = buffer(state, w, h);
            files.push((format!("{name}-{w}x{h}.txt"), Shot::Text(text(&buf))));
            let png = if (w, h) == PNG_SIZE {
                format!("{name}.png")
            } else if *name == "main" {
                format!("{name}-{w}x{h}.png")
            } else {
                continue;
            };
            let img = raster.render(&buf);
            assert!(
                img.missing.is_empty(),
                "{png}: no glyph for {:?}",
                img.missing
            );
            files.push((png, Shot::Image(img)));
        }
    }
    files
}

/// The size the README's images are drawn at.
const PNG_SIZE: (u16, u16) = (160, 48);

fn screenshots_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("screenshots")
}

/// Writes `screenshots/` (or the directory in SYSMON_SCREENSHOTS) from fixture data:
/// `cargo test --lib screenshots -- --ignored`
#[test]
#[ignore = "writes files; run on demand to refresh screenshots/"]
fn screenshots() {
    let dir = std::env::var_os("SYSMON_SCREENSHOTS").map_or_else(screenshots_dir, Into::into);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("{}: {e}", dir.display());
    }
    for (name, shot) in screenshot_files() {
        let path = dir.join(name);
        let bytes = match shot {
            Shot::Text(t) => t.into_bytes(),
            Shot::Image(img) => img.png(),
        };
        if let Err(e) = std::fs::write(&path, bytes) {
            panic!("{}: {e}", path.display());
        }
    }
}

/// The committed screenshots show the views as they draw today: the text exactly, the images
/// pixel for pixel (decoded, so a change in the PNG encoder's bytes alone does not matter).
#[test]
fn committed_screenshots_are_current() {
    let refresh = "refresh with: cargo test --lib screenshots -- --ignored";
    for (name, shot) in screenshot_files() {
        let path = screenshots_dir().join(&name);
        let committed = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => panic!("{}: {e}; {refresh}", path.display()),
        };
        match shot {
            Shot::Text(t) => assert!(
                committed == t.as_bytes(),
                "{name} is out of date; {refresh}\n{t}"
            ),
            Shot::Image(img) => assert!(
                decode(&committed) == (img.width, img.height, img.rgb()),
                "{name} is out of date; {refresh}"
            ),
        }
    }
}

/// Width, height and RGB pixels of a PNG.
fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut dec = png::Decoder::new(std::io::Cursor::new(png_bytes));
    dec.set_transformations(png::Transformations::EXPAND);
    let mut reader = dec.read_info().expect("a PNG header");
    let mut pixels = vec![
        0;
        reader
            .output_buffer_size()
            .expect("an image that fits in memory")
    ];
    let info = reader.next_frame(&mut pixels).expect("PNG image data");
    pixels.truncate(info.buffer_size());
    (info.width, info.height, pixels)
}

#[test]
fn tiny_terminals_do_not_panic() {
    let mut history = with(&[Action::History]);
    history.history = Some(fixture::history());
    let mut moment = fixture::state();
    moment.arrive(crate::ui::travel::feed_from(
        &fixture::recorded(),
        "h",
        &crate::config::Config::default(),
    ));
    let mut picker = with(&[Action::History]);
    picker.history = Some(fixture::history());
    picker.apply(Action::PickUser);
    let states = [
        picker,
        fixture::state(),
        with(&[Action::ToggleHelp]),
        with(&[Action::Enter]),
        with(&[Action::AllProcesses, Action::Signal]),
        with(&[Action::AllProcesses, Action::Signal, Action::Enter]),
        with(&[Action::NextPane, Action::Enter]),
        with(&[Action::ResolveAll]),
        history,
        moment,
    ];
    for s in &states {
        for (w, h) in [(1, 1), (10, 3), (20, 5), (40, 10), (79, 23)] {
            let _ = buffer(s, w, h);
        }
    }
}

/// Time travel to a moment of a GPU server gives the views the model fields the live view had:
/// each user's GPU figures and devices, each GPU's figures.
#[test]
fn time_travel_carries_the_gpus() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, recorded) = fixture::gpu_database(&dir.path().join("sysmon.db"));
    let live = recorded.last().expect("a snapshot");
    let rec = store
        .state_at(fixture::AT)
        .expect("state")
        .expect("a moment");
    let feed = crate::ui::travel::feed_from(&rec, "gpu-node-07", &crate::config::Config::default());
    let past = &feed.snapshot;
    assert_eq!(past.gpu.devices.len(), live.gpu.devices.len());
    for d in &live.gpu.devices {
        let p = past
            .gpu
            .devices
            .iter()
            .find(|p| p.id == d.id)
            .unwrap_or_else(|| panic!("{} travelled", d.id));
        assert_eq!((p.index, &p.name, &p.driver), (d.index, &d.name, &d.driver));
        assert_eq!(p.mig.map(|m| m.parent_index), d.mig.map(|m| m.parent_index));
        assert_eq!(p.memory_used_bytes, d.memory_used_bytes);
        assert_eq!(p.memory_total_bytes, d.memory_total_bytes);
        assert_eq!(p.temperature_celsius, d.temperature_celsius);
        assert_eq!(p.power_watts, d.power_watts);
        assert_eq!(p.processes, d.processes);
        let near = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => (a - b).abs() < 0.005 + 1e-9,
            (a, b) => a == b,
        };
        assert!(near(p.utilization_percent, d.utilization_percent), "{p:?}");
        assert!(near(p.memory_percent, d.memory_percent), "{p:?}");
    }
    for u in &live.users {
        let p = past.users.iter().find(|p| p.uid == u.uid);
        match (&u.gpu, p.and_then(|p| p.gpu.as_ref())) {
            (Some(g), Some(pg)) => {
                assert_eq!(pg.device_ids, g.device_ids, "{}", u.name);
                assert_eq!((pg.devices, pg.memory_bytes), (g.devices, g.memory_bytes));
                assert_eq!(pg.processes, g.processes);
                assert!((pg.memory_percent - g.memory_percent).abs() < 0.005 + 1e-9);
                assert!((pg.utilization_percent - g.utilization_percent).abs() < 0.005 + 1e-9);
            }
            (None, None) => {}
            (want, got) => panic!("{}: {want:?} became {got:?}", u.name),
        }
    }
    // The per-process GPU list is not recorded.
    assert!(past.gpu.processes.is_empty());
}

/// The "Figure" line of the details of dave's held-idle alert (0 % busy, idle under 5 %, last
/// updated `updated_secs_ago`) on the 8-GPU machine as `f` shows it.
fn held_idle_figure(mut f: crate::ui::state::Feed, updated_secs_ago: i64) -> String {
    let mut s = fixture::gpu_state();
    let mut idle = fixture::alert(
        crate::model::AlertKey::gpu_idle("dave"),
        crate::model::Severity::Medium,
        1800,
        "user dave holds 30.0 GiB on idle GPU 6 (under 5% busy for 30m)",
    );
    idle.value = 0.0;
    idle.threshold = 5.0;
    idle.updated_at = crate::model::Timestamp(fixture::AT.0 - updated_secs_ago * 1000);
    f.alerts = vec![idle];
    f.stored.clear();
    s.ingest(f);
    s.apply(Action::NextPane);
    s.apply(Action::Enter);
    let screen = text(&buffer(&s, 160, 48));
    screen
        .lines()
        .find(|l| l.contains("Figure"))
        .unwrap_or_default()
        .to_string()
}

/// A held-idle alert's figure is how busy the GPUs held idle are, where low is the trouble:
/// shown as "busy" against the idle line, not as a value over a limit with a peak.
#[test]
fn a_held_idle_alert_says_how_busy_the_gpu_is_not_a_limit_and_peak() {
    let figure = held_idle_figure(fixture::gpu_feed(), 0);
    assert!(figure.contains("0.0% busy at 03:00:00"), "{figure}");
    assert!(figure.contains("idle under 5%"), "{figure}");
    assert!(!figure.contains("peak"), "{figure}");
}

/// The alert does not record which GPUs were held idle, so the view cannot tell how busy they are
/// now; the user's busy GPUs elsewhere would give a wrong figure, so none is shown.
#[test]
fn a_held_idle_alert_shows_no_now_figure_from_the_users_other_gpus() {
    let mut f = fixture::gpu_feed();
    // dave also holds memory on GPU 0, which alice keeps busy.
    let gpu = &mut f.snapshot.gpu;
    let busy = gpu.devices.iter().find(|d| d.index == 0 && d.mig.is_none());
    let busy = busy.expect("GPU 0").clone();
    assert!(busy.utilization_percent.is_some_and(|u| u > 50.0));
    let mut also = gpu
        .processes
        .iter()
        .find(|p| p.user.as_deref() == Some("dave"))
        .expect("dave on GPU 6")
        .clone();
    also.device = busy.id.clone();
    also.device_index = busy.index;
    gpu.processes.insert(0, also);
    // Recorded a minute before the sample on screen: a "now" figure would be due.
    let figure = held_idle_figure(f, 60);
    assert!(
        figure.contains("0.0% busy at 02:59:00; idle under 5%"),
        "{figure}"
    );
    assert!(!figure.contains("now"), "{figure}");
    assert!(!figure.contains("not in the current sample"), "{figure}");
}

/// The 8-GPU fixture machine recorded by the store and travelled back to: the live views draw
/// the past moment's GPUs as they drew them live (a GPU line per device and MIG instance, the
/// users' GPU columns).
#[test]
fn time_travel_to_a_gpu_server_draws_its_gpus() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = crate::store::Store::open(&dir.path().join("sysmon.db")).expect("open");
    let live = fixture::gpu_snapshot();
    store
        .record(&crate::store::Record {
            snapshot: &live,
            events: &[],
            mails: &[],
            tracker: &crate::track::TrackerState::default(),
        })
        .expect("record");
    let rec = store.state_at(live.at).expect("state").expect("a moment");
    let mut past = fixture::gpu_state();
    past.arrive(crate::ui::travel::feed_from(
        &rec,
        "gpu-node-07",
        &crate::config::Config::default(),
    ));
    check("gpu_travel", &past);
    let now = text(&buffer(&fixture::gpu_state(), 160, 48));
    let then = text(&buffer(&past, 160, 48));
    // The system pane's GPU lines, figure for figure (the pane is the left half).
    let gpu_lines: Vec<&str> = now
        .lines()
        .filter(|l| l.contains("GPU") && l.contains("GiB"))
        .map(|l| l.get(..80).unwrap_or(l).trim_end())
        .collect();
    assert!(gpu_lines.len() >= 8, "{now}");
    for line in gpu_lines {
        assert!(
            then.contains(line),
            "{line:?} missing from the past:\n{then}"
        );
    }
}
