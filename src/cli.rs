//! The command line, as clap definitions only: what each flag means lives in its help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "sysmon",
    version,
    about = "Who is using this machine, and is it in trouble? A monitor for shared Linux servers.",
    after_help = "Exit status: 0 ok, 1 runtime failure, 2 bad usage or bad configuration."
)]
pub struct Cli {
    /// Configuration file (default: $SYSMON_CONFIG, /etc/sysmon/config.toml,
    /// $XDG_CONFIG_HOME/sysmon/config.toml, else built-in defaults).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub run: RunArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Take two samples one second apart, print the system and per-user figures, and exit.
    #[arg(long, conflicts_with_all = ["batch", "headless"])]
    pub once: bool,

    /// With --once or --batch: print JSON instead of a table (one document per line in batch).
    #[arg(long)]
    pub json: bool,

    /// Print a report every interval to standard output, like `top -b` (for logs and pipes).
    #[arg(long, conflicts_with = "headless")]
    pub batch: bool,

    /// With --batch: stop after this many reports.
    #[arg(long, value_name = "N", requires = "batch")]
    pub count: Option<u64>,

    /// Seconds between refreshes (overrides ui.refresh_secs).
    #[arg(long, value_name = "SECS", value_parser = parse_interval)]
    pub interval: Option<f64>,

    /// Terminal UI: draw with ASCII characters only (automatic when the locale is not UTF-8).
    #[arg(long)]
    pub ascii: bool,

    /// Terminal UI: look, don't touch (no acknowledging or resolving alerts, no signals).
    #[arg(long)]
    pub readonly: bool,

    /// Run unattended: record history, send alerts (for systemd).
    #[arg(long)]
    pub headless: bool,
}

fn parse_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.1..=3600.0).contains(&v) => Ok(v),
        Ok(_) => Err("must be between 0.1 and 3600 seconds".into()),
        Err(_) => Err(format!("{s:?} is not a number of seconds")),
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check, show or create the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Is a daemon running, how big is the database, what is open and queued.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List alerts (open and acknowledged; --all for resolved too), or act on one.
    Alerts {
        #[command(subcommand)]
        action: Option<AlertAction>,
        /// Include resolved alerts.
        #[arg(long)]
        all: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Export recorded history.
    History {
        /// Start: a duration back from now (`6h`, `30m`, `7d`) or a time (`2026-11-22T03:00`).
        #[arg(long, default_value = "6h", value_name = "WHEN")]
        since: String,
        /// End: as --since; default now.
        #[arg(long, value_name = "WHEN")]
        until: Option<String>,
        /// Also export this user's figures.
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// Output format: a table for people, CSV or JSON for scripts.
        #[arg(long, value_enum, default_value = "table")]
        format: HistoryFormat,
    },
    /// Send a test email with the configured SMTP settings and report the server's answer.
    TestEmail,
    /// The HTTP API's helpers.
    #[command(subcommand)]
    Http(HttpCommand),
    /// Print a shell completion script.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum HttpCommand {
    /// Print a new random token for http.token (32 bytes from the OS random number generator).
    NewToken,
}

#[derive(Debug, Subcommand)]
pub enum AlertAction {
    /// Acknowledge an alert: it stays open but stops repeating its notification.
    Ack {
        /// The alert's id, as `sysmon alerts` lists it.
        id: i64,
    },
    /// Resolve an alert: it closes, and opens again only if its condition clears and returns.
    Resolve {
        /// The alert's id, as `sysmon alerts` lists it.
        id: i64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HistoryFormat {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file; exits 2 and names the key and line if it is wrong.
    Check {
        /// The file to check (default: the one sysmon would load).
        path: Option<PathBuf>,
    },
    /// Print the effective configuration (file, defaults and environment), secrets masked.
    Show,
    /// Write the documented defaults to the user's config path; never overwrites.
    Init {
        /// Where to write (default: $XDG_CONFIG_HOME/sysmon/config.toml).
        #[arg(long, value_name = "PATH")]
        path: Option<PathBuf>,
    },
}
