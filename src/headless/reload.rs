//! Configuration reload: on SIGHUP or when the file changes.
//!
//! A reload is all or nothing: the new file is parsed and validated in full before anything is
//! applied, so a typo saved in an editor leaves the running configuration untouched. The watcher
//! follows the file's directory rather than the file, because editors usually save by writing a
//! new file and renaming it over the old one, which would orphan a watch on the old inode.

use std::path::Path;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};

use super::Control;
use crate::config::{Config, ConfigError, ConfigSource};

/// Load the configuration again and list what changed, one `key: old -> new` per entry
/// (secrets masked).
pub fn load(source: &ConfigSource, old: &Config) -> Result<(Config, Vec<String>), ConfigError> {
    let new = Config::load(source)?;
    let mut changes = diff(old, &new);
    if new.storage.path != old.storage.path {
        changes.push("storage.path changed: takes effect at the next restart".into());
    }
    if new.http != old.http {
        changes.push("[http] changed: takes effect at the next restart".into());
    }
    Ok((new, changes))
}

fn flatten(c: &Config) -> Vec<(String, String)> {
    let table: toml::Table = toml::from_str(&c.to_masked_toml()).unwrap_or_default();
    let mut out = Vec::new();
    fn walk(prefix: &str, t: &toml::Table, out: &mut Vec<(String, String)>) {
        for (k, v) in t {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(inner) => walk(&key, inner, out),
                other => out.push((key, other.to_string())),
            }
        }
    }
    walk("", &table, &mut out);
    out
}

pub fn diff(old: &Config, new: &Config) -> Vec<String> {
    let (a, b) = (flatten(old), flatten(new));
    let mut changes = Vec::new();
    for (k, v) in &b {
        match a.iter().find(|(ka, _)| ka == k) {
            Some((_, va)) if va == v => {}
            Some((_, va)) => changes.push(format!("{k}: {va} -> {v}")),
            None => changes.push(format!("{k}: set to {v}")),
        }
    }
    for (k, _) in &a {
        if !b.iter().any(|(kb, _)| kb == k) {
            changes.push(format!("{k}: unset"));
        }
    }
    changes
}

/// Watch `path` and send `Control::Reload` when it is written or replaced. Bursts of events
/// from one save are folded into one reload.
pub fn watch(path: &Path, tx: Sender<Control>) -> notify::Result<notify::RecommendedWatcher> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let name = path.file_name().map(|n| n.to_os_string());
    let mut last: Option<Instant> = None;
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        let ours = event
            .paths
            .iter()
            .any(|p| p.file_name().map(|n| n.to_os_string()) == name);
        let changed = matches!(
            event.kind,
            notify::EventKind::Modify(_) | notify::EventKind::Create(_)
        );
        if ours && changed && last.is_none_or(|t| t.elapsed() > Duration::from_millis(300)) {
            last = Some(Instant::now());
            // Let the writer finish before reading.
            std::thread::sleep(Duration::from_millis(100));
            let _ = tx.send(Control::Reload);
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_changed_keys_and_masks_secrets() {
        let old = Config::default();
        let mut new = old.clone();
        new.monitoring.cpu_threshold = 90.0;
        new.email.password = Some("hunter2".into());
        let d = diff(&old, &new);
        assert!(
            d.contains(&"monitoring.cpu_threshold: 80.0 -> 90.0".to_string()),
            "{d:?}"
        );
        assert!(d.iter().any(|l| l.starts_with("email.password: set to")));
        assert!(d.iter().all(|l| !l.contains("hunter2")), "{d:?}");
        assert!(diff(&old, &old).is_empty());
    }
}
