//! Rules for values that parse but cannot work: they are checked once, here, so that the engine
//! and the sinks can trust every figure they are given.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use super::locate::ValueError;
use super::{Config, TlsMode, UserOverride};

pub(super) fn validate(c: &Config) -> Result<(), ValueError> {
    let m = &c.monitoring;
    range_u64(&["monitoring", "interval_secs"], m.interval_secs, 1, 86_400)?;
    percent(&["monitoring", "cpu_threshold"], m.cpu_threshold)?;
    percent(&["monitoring", "memory_threshold"], m.memory_threshold)?;
    percent(&["monitoring", "disk_threshold"], m.disk_threshold)?;
    minutes(&["monitoring", "persistent_minutes"], m.persistent_minutes)?;
    if !(0.0..50.0).contains(&m.hysteresis) || m.hysteresis.is_nan() {
        return err(
            &["monitoring", "hysteresis"],
            format!("must be at least 0 and below 50 (got {})", m.hysteresis),
        );
    }
    for d in &m.disks {
        if !d.starts_with('/') {
            return err(
                &["monitoring", "disks"],
                format!("{d:?} is not an absolute path"),
            );
        }
    }

    let u = &c.users;
    let users = UserOverride {
        cpu_threshold: Some(u.cpu_threshold),
        memory_threshold: Some(u.memory_threshold),
        persistent_minutes: Some(u.persistent_minutes),
        gpu_memory_threshold: Some(u.gpu_memory_threshold),
        gpu_idle_percent: Some(u.gpu_idle_percent),
        gpu_idle_minutes: Some(u.gpu_idle_minutes),
    };
    user_limits(&["users"], &users)?;
    for (name, o) in &c.user_thresholds {
        user_limits(&["user_thresholds", name.as_str()], o)?;
    }

    let f = &c.filtering;
    range_f64(
        &["filtering", "min_cpu_percent"],
        f.min_cpu_percent,
        0.0,
        100.0,
    )?;
    range_f64(
        &["filtering", "min_memory_percent"],
        f.min_memory_percent,
        0.0,
        100.0,
    )?;

    range_f64(&["ui", "refresh_secs"], c.ui.refresh_secs, 0.1, 3600.0)?;
    let cols = c.ui.columns.as_deref().unwrap_or_default();
    if c.ui.columns.is_some() && cols.is_empty() {
        return err(&["ui", "columns"], "must name at least one column".into());
    }
    for (i, name) in cols.iter().enumerate() {
        if !super::PROCESS_COLUMNS.contains(&name.as_str()) {
            return err(
                &["ui", "columns"],
                format!(
                    "{name:?} is not a column; the columns are {}",
                    super::PROCESS_COLUMNS.join(", ")
                ),
            );
        }
        if cols[..i].contains(name) {
            return err(&["ui", "columns"], format!("{name:?} is listed twice"));
        }
    }
    if let Some(p) = &c.storage.path
        && p.as_os_str().is_empty()
    {
        return err(&["storage", "path"], "must not be empty".into());
    }
    range_u64(
        &["storage", "retention_days"],
        c.storage.retention_days,
        1,
        3650,
    )?;
    range_u64(
        &["alerts", "repeat_minutes"],
        c.alerts.repeat_minutes,
        0,
        10_080,
    )?;

    validate_email(c)?;
    validate_http(c)
}

/// `[users]` (every key set) or one `[user_thresholds.NAME]` (the keys it overrides).
fn user_limits(section: &[&str], o: &UserOverride) -> Result<(), ValueError> {
    let key = |k: &'static str| [section, &[k]].concat();
    if let Some(v) = o.cpu_threshold {
        percent(&key("cpu_threshold"), v)?;
    }
    if let Some(v) = o.memory_threshold {
        percent(&key("memory_threshold"), v)?;
    }
    if let Some(v) = o.persistent_minutes {
        minutes(&key("persistent_minutes"), v)?;
    }
    if let Some(v) = o.gpu_memory_threshold {
        percent(&key("gpu_memory_threshold"), v)?;
    }
    if let Some(v) = o.gpu_idle_percent {
        percent(&key("gpu_idle_percent"), v)?;
    }
    if let Some(v) = o.gpu_idle_minutes {
        // 0 turns held-idle alerts off.
        range_u64(&key("gpu_idle_minutes"), v, 0, 10_080)?;
    }
    Ok(())
}

fn validate_email(c: &Config) -> Result<(), ValueError> {
    let e = &c.email;
    if e.smtp_port == 0 {
        return err(
            &["email", "smtp_port"],
            "must be between 1 and 65535".into(),
        );
    }
    if e.max_per_hour == 0 {
        return err(&["email", "max_per_hour"], "must be at least 1".into());
    }
    if e.password.is_some() && e.password_file.is_some() {
        return err(
            &["email", "password_file"],
            "set either password or password_file, not both".into(),
        );
    }
    if let Some(from) = &e.from {
        address(&["email", "from"], from)?;
    }
    for to in &e.to {
        address(&["email", "to"], to)?;
    }
    if let Some(host) = &e.smtp_host
        && e.tls == TlsMode::None
        && !is_loopback_host(host)
    {
        return err(
            &["email", "tls"],
            format!(
                "\"none\" sends mail and passwords in clear text; it is allowed only to a loopback \
                 host, not {host:?}"
            ),
        );
    }
    if e.enabled {
        if e.smtp_host.as_deref().is_none_or(str::is_empty) {
            return err(
                &["email", "smtp_host"],
                "is required when email is enabled".into(),
            );
        }
        if e.from.is_none() {
            return err(
                &["email", "from"],
                "is required when email is enabled".into(),
            );
        }
        if e.to.is_empty() {
            return err(
                &["email", "to"],
                "needs at least one address when email is enabled".into(),
            );
        }
    }
    Ok(())
}

fn validate_http(c: &Config) -> Result<(), ValueError> {
    let h = &c.http;
    let addr: SocketAddr = match h.listen.parse() {
        Ok(a) => a,
        Err(_) => {
            return err(
                &["http", "listen"],
                format!(
                    "{:?} is not an address and port such as \"127.0.0.1:8060\"",
                    h.listen
                ),
            );
        }
    };
    if h.token.is_some() && h.token_file.is_some() {
        return err(
            &["http", "token_file"],
            "set either token or token_file, not both".into(),
        );
    }
    if let Some(t) = &h.token
        && t.len() < 16
    {
        return err(
            &["http", "token"],
            "is too short: use at least 16 characters (`sysmon http new-token` makes one)".into(),
        );
    }
    if h.enabled && !addr.ip().is_loopback() && h.token.is_none() && h.token_file.is_none() {
        return err(
            &["http", "listen"],
            format!("{addr} is reachable from other hosts: set http.token or http.token_file"),
        );
    }
    Ok(())
}

/// Loopback by literal address (`[::1]` too), by the name `localhost`, or by a name that
/// resolves only to loopback addresses. The mailer applies the same rule before sending in clear.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return ip.is_loopback();
    }
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match (host, 25).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}

fn address(key: &[&str], addr: &str) -> Result<(), ValueError> {
    let bare = addr
        .rsplit_once('<')
        .map(|(_, a)| a.trim_end_matches('>'))
        .unwrap_or(addr);
    let ok = bare
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !addr.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        err(key, format!("{addr:?} is not an email address"))
    }
}

fn err(key: &[&str], message: String) -> Result<(), ValueError> {
    Err(ValueError {
        key: key.iter().map(|s| s.to_string()).collect(),
        message,
    })
}

fn percent(key: &[&str], v: f64) -> Result<(), ValueError> {
    if v > 0.0 && v <= 100.0 {
        Ok(())
    } else {
        err(
            key,
            format!("must be a percentage above 0 and at most 100 (got {v})"),
        )
    }
}

fn minutes(key: &[&str], v: u64) -> Result<(), ValueError> {
    range_u64(key, v, 1, 10_080)
}

fn range_u64(key: &[&str], v: u64, lo: u64, hi: u64) -> Result<(), ValueError> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        err(key, format!("must be between {lo} and {hi} (got {v})"))
    }
}

fn range_f64(key: &[&str], v: f64, lo: f64, hi: f64) -> Result<(), ValueError> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        err(key, format!("must be between {lo} and {hi} (got {v})"))
    }
}
