//! Where the configuration and the database live when nobody says.
//!
//! The order (flag, `$SYSMON_CONFIG`, system file, user file, built-in defaults) lets one admin
//! manage a machine-wide daemon while any user can still run the TUI with no file at all.

use std::path::{Path, PathBuf};

/// Where the configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// `--config PATH`: the file must exist.
    Flag(PathBuf),
    /// `$SYSMON_CONFIG`: the file must exist.
    Env(PathBuf),
    /// Found in a standard location.
    Found(PathBuf),
    /// No file: the compiled defaults.
    Defaults,
}

impl ConfigSource {
    pub fn path(&self) -> Option<&Path> {
        match self {
            ConfigSource::Flag(p) | ConfigSource::Env(p) | ConfigSource::Found(p) => Some(p),
            ConfigSource::Defaults => None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            ConfigSource::Flag(p) => format!("{} (--config)", p.display()),
            ConfigSource::Env(p) => format!("{} ($SYSMON_CONFIG)", p.display()),
            ConfigSource::Found(p) => p.display().to_string(),
            ConfigSource::Defaults => "built-in defaults (no config file)".to_string(),
        }
    }
}

pub const SYSTEM_CONFIG: &str = "/etc/sysmon/config.toml";

/// Pick the configuration source. `env` is `$SYSMON_CONFIG`, passed in for testability.
pub fn find_config(flag: Option<&Path>, env: Option<&str>) -> ConfigSource {
    if let Some(p) = flag {
        return ConfigSource::Flag(p.to_path_buf());
    }
    if let Some(p) = env.filter(|s| !s.is_empty()) {
        return ConfigSource::Env(PathBuf::from(p));
    }
    let system = PathBuf::from(SYSTEM_CONFIG);
    if system.is_file() {
        return ConfigSource::Found(system);
    }
    match user_config_path() {
        Some(p) if p.is_file() => ConfigSource::Found(p),
        _ => ConfigSource::Defaults,
    }
}

fn xdg_dir(var: &str, fallback: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() && Path::new(&v).is_absolute() => Some(PathBuf::from(v)),
        _ => std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(fallback)),
    }
}

/// `$XDG_CONFIG_HOME/sysmon/config.toml` (or `~/.config/...`): where `config init` writes.
pub fn user_config_path() -> Option<PathBuf> {
    xdg_dir("XDG_CONFIG_HOME", ".config").map(|d| d.join("sysmon").join("config.toml"))
}

/// `/var/lib/sysmon/sysmon.db` for root (the systemd unit's StateDirectory), else
/// `$XDG_STATE_HOME/sysmon/sysmon.db`.
pub fn default_storage_path() -> PathBuf {
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/sysmon/sysmon.db");
    }
    xdg_dir("XDG_STATE_HOME", ".local/state")
        .unwrap_or_else(std::env::temp_dir)
        .join("sysmon")
        .join("sysmon.db")
}
