//! From a parsed command line to an exit status.
//!
//! Every failure is classified once, here: bad usage, bad configuration and a database this
//! binary cannot use exit 2 (a script or systemd should not retry them), anything that went wrong
//! at run time exits 1.

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

use crate::cli::{Cli, Command, ConfigCommand, HttpCommand, RunArgs};
use crate::collect::Collector;
use crate::config::{self, Config, ConfigError, ConfigSource};
use crate::engine::{Engine, Tick};
use crate::model::Timestamp;
use crate::{admin, report};

/// Why the program stopped early.
#[derive(Debug)]
pub enum Failure {
    Usage(String),
    Config(ConfigError),
    Runtime(String),
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) | Failure::Config(_) => 2,
            Failure::Runtime(_) => 1,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Usage(m) | Failure::Runtime(m) => f.write_str(m),
            Failure::Config(e) => write!(f, "invalid configuration: {e}"),
        }
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Failure::Config(e)
    }
}

pub fn main() -> ExitCode {
    fix_mmap_threshold();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("sysmon: {f}");
            ExitCode::from(f.exit_code())
        }
    }
}

/// glibc's malloc serves a large block from its own mapping only while the block is above a
/// threshold that it raises to the size of each such block freed. A refresh frees its process
/// tables every tick, so after a few ticks they would be carved from the heap, whose peak stays
/// resident; a fixed threshold keeps them in mappings that are returned when freed (at 2,000
/// processes: 0.4 MiB less resident, for a few mmap calls per refresh). One arena: the exit-record
/// reader thread allocates next to nothing and would otherwise get a heap of its own.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn fix_mmap_threshold() {
    use std::ffi::c_int;
    unsafe extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
    }
    const M_MMAP_THRESHOLD: c_int = -3;
    const M_ARENA_MAX: c_int = -8;
    // SAFETY: mallopt only changes a malloc parameter; it is called before any thread starts.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, 64 * 1024);
        mallopt(M_ARENA_MAX, 1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn fix_mmap_threshold() {}

fn run(cli: Cli) -> Result<(), Failure> {
    let env_path = std::env::var("SYSMON_CONFIG").ok();
    let source = config::find_config(cli.config.as_deref(), env_path.as_deref());
    match cli.command {
        Some(Command::Completions { shell }) => {
            emit(&String::from_utf8_lossy(&crate::docs::completion(shell)))
        }
        Some(Command::Config(c)) => config_command(c, &source),
        Some(Command::Status { json }) => admin::status(&load(&source)?, json),
        Some(Command::Alerts { action, all, json }) => {
            admin::alerts(&load(&source)?, action, all, json)
        }
        Some(Command::History {
            since,
            until,
            user,
            format,
        }) => admin::history(
            &load(&source)?,
            &admin::HistoryArgs {
                since,
                until,
                user,
                format,
            },
        ),
        Some(Command::Http(HttpCommand::NewToken)) => {
            let token = crate::http::auth::new_token().map_err(Failure::Runtime)?;
            println!("{token}");
            Ok(())
        }
        Some(Command::TestEmail) => admin::test_email(&load(&source)?),
        None => {
            let config = load(&source)?;
            if cli.run.headless {
                return crate::headless::run(source, config).map_err(|e| match e {
                    e @ (crate::headless::DaemonError::AlreadyRunning { .. }
                    | crate::headless::DaemonError::Unusable(_)) => Failure::Usage(e.to_string()),
                    e => Failure::Runtime(e.to_string()),
                });
            }
            monitor(&cli.run, config, source.path())
        }
    }
}

/// Load and validate the configuration, warning about secrets others can read.
pub fn load(source: &ConfigSource) -> Result<Config, Failure> {
    let config = Config::load(source)?;
    if let Some(path) = source.path() {
        warn_if_exposed(path, &config);
    }
    Ok(config)
}

fn warn_if_exposed(path: &Path, config: &Config) {
    use std::os::unix::fs::PermissionsExt;
    if !config.has_inline_secret() {
        return;
    }
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "sysmon: warning: {} holds a password or token and is readable by group or others \
             (mode {:o}); run: chmod 600 {}",
            path.display(),
            meta.permissions().mode() & 0o777,
            path.display()
        );
    }
}

fn config_command(cmd: ConfigCommand, source: &ConfigSource) -> Result<(), Failure> {
    match cmd {
        ConfigCommand::Check { path } => {
            let source = match path {
                Some(p) => ConfigSource::Flag(p),
                None => source.clone(),
            };
            load(&source)?;
            println!("ok: {}", source.describe());
            Ok(())
        }
        ConfigCommand::Show => {
            let config = load(source)?;
            println!("# effective configuration from {}", source.describe());
            print!("{}", config.to_masked_toml());
            Ok(())
        }
        ConfigCommand::Init { path } => {
            let path = path.or_else(config::user_config_path).ok_or_else(|| {
                Failure::Usage("no $XDG_CONFIG_HOME or $HOME: pass --path".into())
            })?;
            write_new_config(&path)?;
            println!("wrote {}", path.display());
            Ok(())
        }
    }
}

fn write_new_config(path: &Path) -> Result<(), Failure> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::Runtime(format!("cannot create {}: {e}", dir.display())))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                Failure::Runtime(format!(
                    "{} already exists; not overwriting it",
                    path.display()
                ))
            } else {
                Failure::Runtime(format!("cannot create {}: {e}", path.display()))
            }
        })?;
    file.write_all(config::DEFAULT_CONFIG_TOML.as_bytes())
        .map_err(|e| Failure::Runtime(format!("cannot write {}: {e}", path.display())))
}

fn monitor(args: &RunArgs, config: Config, config_path: Option<&Path>) -> Result<(), Failure> {
    let collector = Collector::live(config.monitoring.disks.clone())
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    let refresh = args.interval.unwrap_or(config.ui.refresh_secs);
    let mut engine = Engine::new(config, collector);
    if args.once {
        return once(&mut engine, args.json);
    }
    if args.batch {
        return batch(&mut engine, args, Duration::from_secs_f64(refresh));
    }
    tui(engine, args, refresh, config_path)
}

/// The full-screen UI: the default when no mode flag is given.
fn tui(
    engine: Engine,
    args: &RunArgs,
    refresh: f64,
    config_path: Option<&Path>,
) -> Result<(), Failure> {
    use crate::ui::state::{AppState, Options};
    if !rustix::termios::isatty(io::stdout()) || !rustix::termios::isatty(io::stdin()) {
        return Err(Failure::Usage(
            "the terminal UI needs a terminal; use --batch or --once for pipes and logs".into(),
        ));
    }
    let env = |k: &str| std::env::var(k).ok();
    let options = Options {
        ascii: args.ascii || !crate::ui::theme::locale_is_utf8(env),
        color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        refresh_secs: refresh,
        own_pid: std::process::id(),
        tz: jiff::tz::TimeZone::system(),
        readonly: args.readonly,
        config_path: config_path.map(Path::to_path_buf),
    };
    let state = AppState::new(engine.config().clone(), options);
    crate::ui::run(engine, state).map_err(|e| Failure::Runtime(format!("terminal UI: {e}")))
}

fn sample(engine: &mut Engine) -> Result<Option<Tick>, Failure> {
    engine
        .tick(Timestamp::now())
        .map_err(|e| Failure::Runtime(format!("cannot read /proc: {e}")))
}

fn render(engine: &Engine, tick: &Tick, json: bool) -> String {
    if json {
        let mut s = crate::json::snapshot(&tick.snapshot, engine.status());
        s.push('\n');
        s
    } else {
        report::text(
            &tick.snapshot,
            engine.status(),
            report::TextOptions {
                width: terminal_width(),
                all_users: false,
            },
        )
    }
}

fn terminal_width() -> Option<usize> {
    let stdout = io::stdout();
    if !rustix::termios::isatty(&stdout) {
        return None;
    }
    rustix::termios::tcgetwinsize(&stdout)
        .ok()
        .map(|w| w.ws_col as usize)
        .filter(|&w| w > 0)
}

fn once(engine: &mut Engine, json: bool) -> Result<(), Failure> {
    sample(engine)?;
    std::thread::sleep(Duration::from_secs(1));
    let tick =
        sample(engine)?.ok_or_else(|| Failure::Runtime("no second sample was taken".into()))?;
    emit(&render(engine, &tick, json))
}

/// Write to stdout; a closed pipe (`sysmon --batch | head`) ends the program quietly.
fn emit(text: &str) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(Failure::Runtime(format!("cannot write the report: {e}"))),
    }
}

fn batch(engine: &mut Engine, args: &RunArgs, every: Duration) -> Result<(), Failure> {
    sample(engine)?;
    let mut next = Instant::now() + every;
    let mut printed = 0u64;
    while args.count.is_none_or(|n| printed < n) {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next += every;
        if let Some(tick) = sample(engine)? {
            let mut text = render(engine, &tick, args.json);
            if !args.json {
                text.push('\n');
            }
            emit(&text)?;
            printed += 1;
        }
    }
    Ok(())
}
