//! The configuration contract: the shipped default file, the invalid-config corpus, overrides.

use std::path::{Path, PathBuf};

use sysmon::config::{Config, ConfigError};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn shipped_config_toml_equals_compiled_defaults() {
    let text = std::fs::read_to_string(repo().join("config.toml")).expect("config.toml");
    let parsed = Config::from_toml(&text, None).expect("config.toml is valid");
    assert_eq!(parsed, Config::default());
    // An empty file means the same thing.
    assert_eq!(
        Config::from_toml("", None).expect("empty"),
        Config::default()
    );
}

#[test]
fn shipped_config_documents_every_key() {
    let text = std::fs::read_to_string(repo().join("config.toml")).expect("config.toml");
    let shown = Config::default().to_masked_toml();
    let table: toml::Table = toml::from_str(&shown).expect("masked output is TOML");
    for (section, v) in &table {
        assert!(
            text.contains(&format!("[{section}]")),
            "section [{section}] missing"
        );
        if let toml::Value::Table(keys) = v {
            for key in keys.keys() {
                let key_re = format!("{key} =");
                assert!(text.contains(&key_re), "key {section}.{key} undocumented");
            }
        }
    }
}

struct Expectation {
    key: Option<String>,
    line: Option<usize>,
    message: String,
}

fn expectation(text: &str) -> Expectation {
    let field = |name: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("# expect-{name}:")))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let key = field("key");
    let line = field("line");
    Expectation {
        key: (!key.is_empty()).then_some(key),
        line: line.parse().ok(),
        message: field("message"),
    }
}

#[test]
fn every_invalid_config_fails_with_its_key_and_line() {
    let dir = repo().join("tests/invalid_configs");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus dir") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let want = expectation(&text);
        let err: ConfigError = match Config::from_toml(&text, Some(&path)) {
            Ok(_) => panic!("{} was accepted", path.display()),
            Err(e) => e,
        };
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        // Expectations write a control character the way messages show it: `\u{1b}`.
        let key = err.key.as_deref().map(sysmon::sanitize::escape);
        assert_eq!(key, want.key, "{name}: key in {err}");
        assert_eq!(err.line, want.line, "{name}: line in {err}");
        assert!(
            err.message.contains(&want.message),
            "{name}: message {:?} lacks {:?}",
            err.message,
            want.message
        );
        let shown = err.to_string();
        assert!(shown.contains(name), "{name}: file not named in {shown}");
        assert!(
            sysmon::sanitize::is_clean(&shown),
            "{name}: control characters from the file shown raw: {shown:?}"
        );
        if let (Some(k), Some(l)) = (&want.key, want.line) {
            assert!(
                shown.contains(k) && shown.contains(&format!(":{l}:")),
                "{shown}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 15, "corpus has {checked} files");
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn environment_overrides_apply_and_are_blamed_by_name() {
    let c = Config::from_toml_with_env(
        "[monitoring]\ncpu_threshold = 70\n",
        None,
        env(&[
            ("SYSMON_MONITORING__CPU_THRESHOLD", "90"),
            ("SYSMON_EMAIL__PASSWORD", "hunter2 with spaces"),
            ("SYSMON_MONITORING__DISKS", r#"["/", "/home"]"#),
            ("SYSMON_CONFIG", "/ignored"),
            ("HOME", "/root"),
        ]),
    )
    .expect("valid");
    assert_eq!(c.monitoring.cpu_threshold, 90.0);
    assert_eq!(c.email.password.as_deref(), Some("hunter2 with spaces"));
    assert_eq!(c.monitoring.disks, ["/", "/home"]);

    let e = Config::from_toml_with_env(
        "",
        Some(Path::new("/etc/sysmon/config.toml")),
        env(&[("SYSMON_USERS__CPU_THRESHOLD", "150")]),
    )
    .expect_err("out of range");
    assert_eq!(e.env_var.as_deref(), Some("SYSMON_USERS__CPU_THRESHOLD"));
    assert!(e.to_string().contains("SYSMON_USERS__CPU_THRESHOLD"), "{e}");

    let e = Config::from_toml_with_env("", None, env(&[("SYSMON_MONITORING__NOPE", "1")]))
        .expect_err("unknown key");
    assert_eq!(e.env_var.as_deref(), Some("SYSMON_MONITORING__NOPE"));
}

#[test]
fn per_user_overrides_fall_back_to_users_section() {
    let c = Config::from_toml(
        "[users]\ncpu_threshold = 50\n[user_thresholds.db]\nmemory_threshold = 30\n",
        None,
    )
    .expect("valid");
    let db = c.limits_for("db");
    assert_eq!((db.cpu_threshold, db.memory_threshold), (50.0, 30.0));
    assert_eq!(db.persistent_minutes, 60);
    assert_eq!(c.limits_for("someone").memory_threshold, 80.0);
}

#[test]
fn secrets_are_masked_in_show() {
    let c = Config::from_toml(
        "[email]\npassword = \"s3cret-pass\"\n[http]\ntoken = \"0123456789abcdef0123\"\n",
        None,
    )
    .expect("valid");
    let shown = c.to_masked_toml();
    assert!(!shown.contains("s3cret-pass") && !shown.contains("0123456789abcdef0123"));
    assert_eq!(shown.matches("********").count(), 2);
}
