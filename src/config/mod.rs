//! sysmon's configuration: the TOML contract every other part relies on.
//!
//! Loading is split in three so each failure can be reported precisely: the text is parsed and
//! deserialised into typed sections (syntax, unknown keys and wrong types fail here), environment
//! overrides are merged in, and `validate` rejects values that parse but make no sense (a threshold
//! of 150). Every error names the key and, where it came from a file, the line; an override from
//! the environment is blamed on its variable instead.

pub mod edit;
mod locate;
mod lookup;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::model::Severity;

pub use lookup::{ConfigSource, default_storage_path, find_config, user_config_path};
pub use validate::is_loopback_host;

/// The documented default configuration, shipped at the repo root and embedded here so that
/// `config init` writes exactly what the README describes.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("../../config.toml");

/// Prefix of the environment variables that override single keys: `SYSMON_EMAIL__PASSWORD`.
pub const ENV_PREFIX: &str = "SYSMON_";

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub monitoring: Monitoring,
    pub users: UserLimits,
    pub user_thresholds: BTreeMap<String, UserOverride>,
    pub filtering: Filtering,
    pub ui: Ui,
    pub storage: Storage,
    pub alerts: Alerts,
    pub email: Email,
    pub http: Http,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Monitoring {
    pub interval_secs: u64,
    pub cpu_threshold: f64,
    pub memory_threshold: f64,
    pub disk_threshold: f64,
    pub persistent_minutes: u64,
    pub hysteresis: f64,
    pub disks: Vec<String>,
}

impl Default for Monitoring {
    fn default() -> Self {
        Monitoring {
            interval_secs: 5,
            cpu_threshold: 80.0,
            memory_threshold: 80.0,
            disk_threshold: 90.0,
            persistent_minutes: 60,
            hysteresis: 5.0,
            disks: vec!["/".to_string()],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UserLimits {
    pub cpu_threshold: f64,
    pub memory_threshold: f64,
    pub persistent_minutes: u64,
    /// GPU memory a user holds, in percent of all GPUs' memory.
    pub gpu_memory_threshold: f64,
    /// A GPU busy less than this, in percent, counts as idle.
    pub gpu_idle_percent: f64,
    /// Minutes a user must hold memory on an idle GPU before it is reported; 0 turns it off.
    pub gpu_idle_minutes: u64,
}

impl Default for UserLimits {
    fn default() -> Self {
        UserLimits {
            cpu_threshold: 80.0,
            memory_threshold: 80.0,
            persistent_minutes: 60,
            gpu_memory_threshold: 80.0,
            gpu_idle_percent: 5.0,
            gpu_idle_minutes: 30,
        }
    }
}

/// Per-user overrides of `[users]`; a key left out falls back to `[users]`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserOverride {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_threshold: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_threshold: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistent_minutes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_memory_threshold: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_idle_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_idle_minutes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Filtering {
    pub min_uid: u32,
    pub ignore_system_users: bool,
    pub min_cpu_percent: f64,
    pub min_memory_percent: f64,
    pub excluded_users: Vec<String>,
}

impl Default for Filtering {
    fn default() -> Self {
        Filtering {
            min_uid: 1000,
            ignore_system_users: true,
            min_cpu_percent: 5.0,
            min_memory_percent: 5.0,
            excluded_users: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ui {
    pub refresh_secs: f64,
    /// The process list's columns, in order (names from [`PROCESS_COLUMNS`]). None: not set,
    /// [`DEFAULT_COLUMNS`] with the GPU ones on a machine with GPUs; a list that is set is shown
    /// as it is, so one that leaves the GPU columns out keeps them out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
}

/// The process list's columns `[ui] columns` may name, in the default order.
pub const PROCESS_COLUMNS: &[&str] = &[
    "pid", "user", "state", "cpu", "mem", "res", "gpu_mem", "gpu_util", "threads", "time",
    "command",
];

/// The columns shown when `[ui] columns` is not set (the GPU ones join them on a machine with
/// GPUs).
pub const DEFAULT_COLUMNS: &[&str] = &[
    "pid", "user", "state", "cpu", "mem", "res", "threads", "time", "command",
];

impl Default for Ui {
    fn default() -> Self {
        Ui {
            refresh_secs: 2.0,
            columns: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Storage {
    /// None: the default location, which depends on who runs sysmon (see `default_storage_path`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    pub retention_days: u64,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            path: None,
            retention_days: 30,
        }
    }
}

impl Storage {
    /// The database file to use: the configured path or the default for this user.
    pub fn resolved_path(&self) -> PathBuf {
        self.path.clone().unwrap_or_else(default_storage_path)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Alerts {
    pub repeat_minutes: u64,
    pub notify_recovery: bool,
    pub min_email_severity: Severity,
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts {
            repeat_minutes: 60,
            notify_recovery: true,
            min_email_severity: Severity::High,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: allowed only to a loopback host.
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Email {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub tls: TlsMode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub to: Vec<String>,
    pub max_per_hour: u32,
    /// A PEM file of extra CA certificates to trust for the SMTP server (a private CA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

impl Default for Email {
    fn default() -> Self {
        Email {
            enabled: false,
            smtp_host: None,
            smtp_port: 587,
            tls: TlsMode::Starttls,
            username: None,
            password: None,
            password_file: None,
            from: None,
            to: Vec::new(),
            max_per_hour: 20,
            ca_file: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Http {
    pub enabled: bool,
    pub listen: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            enabled: false,
            listen: "127.0.0.1:8060".to_string(),
            token: None,
            token_file: None,
        }
    }
}

/// The limits that apply to one user after `[user_thresholds.NAME]` overrides.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EffectiveUserLimits {
    pub cpu_threshold: f64,
    pub memory_threshold: f64,
    pub persistent_minutes: u64,
    pub gpu_memory_threshold: f64,
    pub gpu_idle_percent: f64,
    /// 0: held-idle GPUs are not reported for this user.
    pub gpu_idle_minutes: u64,
}

impl Filtering {
    /// Whether a user counts as a tracked, real user: not excluded, not a system account (when
    /// those are ignored), and using at least the minimum CPU or memory.
    pub fn tracks(&self, uid: u32, name: &str, cpu_percent: f64, memory_percent: f64) -> bool {
        self.is_real_user(uid, name)
            && (cpu_percent >= self.min_cpu_percent || memory_percent >= self.min_memory_percent)
    }

    /// Whether a user holding a GPU is followed on their GPU figures: not excluded and not a
    /// system account (when those are ignored). The CPU and memory minimums do not apply, since
    /// a user sitting on an idle GPU uses next to no CPU.
    pub fn tracks_gpu(&self, uid: u32, name: &str) -> bool {
        self.is_real_user(uid, name)
    }

    fn is_real_user(&self, uid: u32, name: &str) -> bool {
        let excluded = self.excluded_users.iter().any(|u| u == name);
        let system = self.ignore_system_users && uid < self.min_uid;
        !excluded && !system
    }
}

impl Config {
    pub fn limits_for(&self, user: &str) -> EffectiveUserLimits {
        let o = self.user_thresholds.get(user).copied().unwrap_or_default();
        EffectiveUserLimits {
            cpu_threshold: o.cpu_threshold.unwrap_or(self.users.cpu_threshold),
            memory_threshold: o.memory_threshold.unwrap_or(self.users.memory_threshold),
            persistent_minutes: o
                .persistent_minutes
                .unwrap_or(self.users.persistent_minutes),
            gpu_memory_threshold: o
                .gpu_memory_threshold
                .unwrap_or(self.users.gpu_memory_threshold),
            gpu_idle_percent: o.gpu_idle_percent.unwrap_or(self.users.gpu_idle_percent),
            gpu_idle_minutes: o.gpu_idle_minutes.unwrap_or(self.users.gpu_idle_minutes),
        }
    }

    /// Parse and validate a configuration text with no environment overrides.
    pub fn from_toml(text: &str, origin: Option<&Path>) -> Result<Config, ConfigError> {
        Self::from_toml_with_env(text, origin, std::iter::empty())
    }

    /// Parse `text`, apply `SYSMON_<SECTION>__<KEY>` overrides from `env`, and validate.
    pub fn from_toml_with_env<I>(
        text: &str,
        origin: Option<&Path>,
        env: I,
    ) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let doc = locate::Document::new(text, origin);
        if let Some(e) = doc.control_character() {
            return Err(e);
        }
        // First the file alone, so that its own mistakes are reported against its lines.
        let file_config: Config = toml::from_str(text).map_err(|e| doc.parse_error(&e))?;
        let overrides = collect_env_overrides(env);
        let config = if overrides.is_empty() {
            file_config
        } else {
            apply_env_overrides(text, &overrides, &doc)?
        };
        validate::validate(&config).map_err(|v| doc.value_error(v, &overrides))?;
        Ok(config)
    }

    /// Load from the source that `find_config` chose, with the process environment's overrides.
    pub fn load(source: &ConfigSource) -> Result<Config, ConfigError> {
        let env = std::env::vars();
        match source.path() {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                    file: Some(path.to_path_buf()),
                    line: None,
                    key: None,
                    env_var: None,
                    message: format!("cannot read the config file: {e}"),
                })?;
                Self::from_toml_with_env(&text, Some(path), env)
            }
            None => Self::from_toml_with_env("", None, env),
        }
    }

    /// The email password from wherever it is configured: the environment override has already
    /// been merged into `password`, so the file is the only other source.
    pub fn email_password(&self) -> Result<Option<String>, String> {
        if let Some(p) = &self.email.password {
            return Ok(Some(p.clone()));
        }
        read_secret_file(self.email.password_file.as_deref())
    }

    pub fn http_token(&self) -> Result<Option<String>, String> {
        if let Some(t) = &self.http.token {
            return Ok(Some(t.clone()));
        }
        read_secret_file(self.http.token_file.as_deref())
    }

    /// The effective configuration as TOML with secrets replaced by `********`.
    pub fn to_masked_toml(&self) -> String {
        let mut shown = self.clone();
        for secret in [&mut shown.email.password, &mut shown.http.token] {
            if secret.is_some() {
                *secret = Some("********".to_string());
            }
        }
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }

    /// True when the config holds a secret inline (as opposed to in a separate file).
    pub fn has_inline_secret(&self) -> bool {
        self.email.password.is_some() || self.http.token.is_some()
    }
}

fn read_secret_file(path: Option<&Path>) -> Result<Option<String>, String> {
    match path {
        None => Ok(None),
        Some(p) => std::fs::read_to_string(p)
            .map(|s| Some(s.trim_end_matches(['\n', '\r']).to_string()))
            .map_err(|e| format!("cannot read {}: {e}", p.display())),
    }
}

/// An environment override: the dotted key it sets, the variable's name and its raw value.
#[derive(Debug, Clone)]
pub(crate) struct EnvOverride {
    pub key: Vec<String>,
    pub var: String,
    pub value: String,
}

fn collect_env_overrides<I>(env: I) -> Vec<EnvOverride>
where
    I: IntoIterator<Item = (String, String)>,
{
    let mut out: Vec<EnvOverride> = env
        .into_iter()
        .filter_map(|(var, value)| {
            let rest = var.strip_prefix(ENV_PREFIX)?;
            if !rest.contains("__") {
                return None; // SYSMON_CONFIG and friends are not key overrides
            }
            let key: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
            if key.iter().any(|k| k.is_empty()) {
                return None;
            }
            Some(EnvOverride { key, var, value })
        })
        .collect();
    out.sort_by(|a, b| a.var.cmp(&b.var));
    out
}

/// Interpret an override's text as a TOML value when it is one (`90`, `true`, `["/", "/home"]`),
/// else as a plain string, so that `SYSMON_EMAIL__PASSWORD=hunter2` needs no quoting.
fn env_value(raw: &str) -> toml::Value {
    let wrapped = format!("v = {raw}");
    match toml::from_str::<toml::Table>(&wrapped) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

fn apply_env_overrides(
    text: &str,
    overrides: &[EnvOverride],
    doc: &locate::Document,
) -> Result<Config, ConfigError> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| doc.parse_error(&e))?;
    for o in overrides {
        let (last, parents) = o.key.split_last().expect("override keys are never empty");
        let mut cur = &mut table;
        for p in parents {
            let entry = cur
                .entry(p.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            cur = match entry {
                toml::Value::Table(t) => t,
                _ => return Err(ConfigError::env(o, "does not name a config section")),
            };
        }
        cur.insert(last.clone(), env_value(&o.value));
    }
    // Errors at this stage come from the overrides, since the file alone deserialised cleanly.
    Config::deserialize(toml::Value::Table(table)).map_err(|e| {
        let msg = e.message().to_string();
        let blamed = overrides
            .iter()
            .find(|o| o.key.iter().any(|k| msg.contains(k.as_str())))
            .or(overrides.first())
            .expect("overrides are not empty here");
        ConfigError::env(blamed, &msg)
    })
}

/// A configuration problem, located as precisely as possible.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub file: Option<PathBuf>,
    /// 1-based line in `file`.
    pub line: Option<usize>,
    /// Dotted key, e.g. `monitoring.cpu_threshold`.
    pub key: Option<String>,
    /// The environment variable the bad value came from, if any.
    pub env_var: Option<String>,
    pub message: String,
}

impl ConfigError {
    fn env(o: &EnvOverride, message: &str) -> Self {
        ConfigError {
            file: None,
            line: None,
            key: Some(o.key.join(".")),
            env_var: Some(o.var.clone()),
            message: message.to_string(),
        }
    }
}

/// Everything shown passes through [`sanitize::escape`]: keys, values and parser messages quote
/// the file, and `config check`, a failed reload's log line and the journal must show an escape
/// sequence or a bidi override in it as text, not act on it.
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::sanitize::escape;
        match (&self.env_var, &self.file, self.line) {
            (Some(var), _, _) => write!(f, "environment variable {}: ", escape(var))?,
            (None, Some(file), Some(line)) => {
                write!(f, "{}:{line}: ", escape(&file.display().to_string()))?
            }
            (None, Some(file), None) => write!(f, "{}: ", escape(&file.display().to_string()))?,
            (None, None, Some(line)) => write!(f, "line {line}: ")?,
            (None, None, None) => {}
        }
        if let Some(key) = &self.key {
            write!(f, "key `{}`: ", escape(key))?;
        }
        f.write_str(&escape(&self.message))
    }
}

impl std::error::Error for ConfigError {}
