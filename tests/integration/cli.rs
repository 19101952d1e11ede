//! The real `sysmon` binary: exit codes, messages, and the `--once --json` contract.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn sysmon() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sysmon"));
    // Never pick up the machine's own configuration or overrides.
    for (k, _) in std::env::vars() {
        if k.starts_with("SYSMON_") {
            c.env_remove(k);
        }
    }
    c.env("XDG_CONFIG_HOME", "/nonexistent-sysmon-test");
    c.stdin(Stdio::null());
    c
}

fn run(c: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = c.output().expect("spawn sysmon");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

#[test]
fn once_json_is_a_documented_document_that_sees_itself() {
    let child = sysmon()
        .args(["--once", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    for key in [
        "schema",
        "host",
        "at",
        "time",
        "system",
        "users",
        "processes",
        "status",
    ] {
        assert!(doc.get(key).is_some(), "missing {key}");
    }
    let me = doc["processes"]
        .as_array()
        .expect("processes array")
        .iter()
        .find(|p| p["pid"] == pid)
        .expect("sysmon lists its own process");
    assert_eq!(me["name"], "sysmon");
    assert!(me["cmdline"].as_str().is_some_and(|c| c.contains("--once")));
    let my_uid = rustix::process::geteuid().as_raw();
    assert_eq!(me["uid"], my_uid);
    let user = doc["users"]
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["uid"] == my_uid)
        .expect("own user");
    assert!(
        user["pids"]
            .as_array()
            .is_some_and(|p| p.contains(&pid.into()))
    );
    let cpu = doc["system"]["cpu"]["total"]["busy"].as_f64().expect("cpu");
    assert!((0.0..=100.0).contains(&cpu));
    assert!(
        doc["system"]["memory"]["total_bytes"]
            .as_u64()
            .is_some_and(|m| m > 0)
    );
    let status = doc["status"]["status"].as_str().expect("status");
    assert!(["light", "medium", "heavy"].contains(&status), "{status}");
}

#[test]
fn once_text_has_system_lines_and_user_table() {
    let (code, out, err) = run(sysmon().arg("--once"));
    assert_eq!(code, 0, "{err}");
    for needle in ["CPU ", "MEM ", "STATUS ", "USER", "TRACKED"] {
        assert!(out.contains(needle), "{needle} missing in\n{out}");
    }
    assert!(!out.chars().any(|c| c.is_control() && c != '\n'));
}

#[test]
fn batch_prints_count_reports_and_stops() {
    let (code, out, err) =
        run(sysmon().args(["--batch", "--count", "2", "--interval", "0.2", "--json"]));
    assert_eq!(code, 0, "{err}");
    let docs: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON document per line"))
        .collect();
    assert_eq!(docs.len(), 2);
    assert!(docs[1]["at"].as_i64() > docs[0]["at"].as_i64());
}

#[test]
fn config_check_names_key_and_line_and_exits_2() {
    let dir = tempfile::tempdir().expect("tmp");
    let bad = write(
        dir.path(),
        "bad.toml",
        "[monitoring]\ninterval_secs = 5\ncpu_threshold = 150\n",
    );
    let (code, _, err) = run(sysmon().args(["config", "check"]).arg(&bad));
    assert_eq!(code, 2);
    assert!(err.contains("bad.toml:3:"), "{err}");
    assert!(err.contains("monitoring.cpu_threshold"), "{err}");

    let (code, _, err) = run(sysmon().arg("--config").arg(&bad).arg("--once"));
    assert_eq!(
        code, 2,
        "a monitor with a bad config refuses to start: {err}"
    );

    let (code, out, err) = run(sysmon()
        .args(["config", "check"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml")));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("ok: "));

    let (code, _, err) = run(sysmon().args(["config", "check", "/nonexistent/x.toml"]));
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/x.toml"), "{err}");
}

/// No escape sequence, bell, other control character or bidi override reaches the terminal.
fn is_inert(text: &str) -> bool {
    !text.chars().any(|c| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
    })
}

#[test]
fn config_errors_show_control_characters_from_the_file_as_escapes() {
    let dir = tempfile::tempdir().expect("tmp");
    // In a table name (a user name), in a value, in an unknown key, and raw in the file.
    let cases = [
        (
            "[user_thresholds.\"ev\\u001b]0;owned\\u0007il\\u202e\"]\ncpu_threshold = 150\n",
            "user_thresholds.ev\\u{1b}]0;owned\\u{7}il\\u{202e}.cpu_threshold",
            ":2:",
        ),
        (
            "[monitoring]\ndisks = [\"rel\\u001b[2J\\u009b31m\\u202e\"]\n",
            "monitoring.disks",
            ":2:",
        ),
        (
            "[monitoring]\n\"cpu\\u001b[31m\" = 1\n",
            "monitoring.cpu\\u{1b}[31m",
            ":2:",
        ),
        ("[monitoring]\ncpu_threshold = 80 \u{1b}[2J\n", "", ":2:"),
    ];
    for (n, (text, key, line)) in cases.iter().enumerate() {
        let bad = write(dir.path(), &format!("bad{n}.toml"), text);
        let (code, _, err) = run(sysmon().args(["config", "check"]).arg(&bad));
        assert_eq!(code, 2, "{err}");
        assert!(
            is_inert(&err),
            "case {n} echoed a control character: {err:?}"
        );
        assert!(err.contains(key) && err.contains(line), "case {n}: {err}");
    }
    let nul = write(
        dir.path(),
        "nul.toml",
        "[monitoring]\ncpu_threshold = 80 \0\n",
    );
    let (code, _, err) = run(sysmon().args(["config", "check"]).arg(&nul));
    assert_eq!(code, 2);
    assert!(err.contains("nul.toml:2: a NUL byte at column 20"), "{err}");
    assert!(!err.contains("must be quoted"), "{err}");

    let dup = write(
        dir.path(),
        "dup.toml",
        "[monitoring]\ncpu_threshold = 80\ninterval_secs = 5\ncpu_threshold = 90\n",
    );
    let (code, _, err) = run(sysmon().args(["config", "check"]).arg(&dup));
    assert_eq!(code, 2);
    assert!(
        err.contains(
            "dup.toml:4: key `monitoring.cpu_threshold`: duplicate key: already set on line 2"
        ),
        "{err}"
    );
}

#[test]
fn environment_override_errors_name_the_variable() {
    let (code, _, err) = run(sysmon()
        .args(["config", "check"])
        .env("SYSMON_MONITORING__INTERVAL_SECS", "0"));
    assert_eq!(code, 2);
    assert!(err.contains("SYSMON_MONITORING__INTERVAL_SECS"), "{err}");
}

#[test]
fn config_show_masks_secrets_and_warns_about_loose_permissions() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = write(
        dir.path(),
        "c.toml",
        "[email]\npassword = \"file-secret-1\"\n",
    );
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let (code, out, err) = run(sysmon()
        .arg("--config")
        .arg(&cfg)
        .args(["config", "show"])
        .env("SYSMON_HTTP__TOKEN", "env-token-0123456789"));
    assert_eq!(code, 0, "{err}");
    assert!(
        !out.contains("file-secret-1") && !out.contains("env-token-0123456789"),
        "{out}"
    );
    assert!(out.contains("********"));
    assert!(err.contains("readable by group or others"), "{err}");

    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let (_, _, err) = run(sysmon().arg("--config").arg(&cfg).args(["config", "show"]));
    assert!(!err.contains("readable"), "{err}");
}

#[test]
fn config_init_writes_defaults_once() {
    let dir = tempfile::tempdir().expect("tmp");
    let target = dir.path().join("sub/config.toml");
    let (code, _, err) = run(sysmon().args(["config", "init", "--path"]).arg(&target));
    assert_eq!(code, 0, "{err}");
    let written = std::fs::read_to_string(&target).expect("written");
    assert_eq!(written, include_str!("../../config.toml"));
    let mode = std::fs::metadata(&target)
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "private by default");
    let (code, _, err) = run(sysmon().args(["config", "init", "--path"]).arg(&target));
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");

    // Without --path it goes to $XDG_CONFIG_HOME/sysmon/config.toml.
    let (code, out, _) = run(sysmon()
        .args(["config", "init"])
        .env("XDG_CONFIG_HOME", dir.path()));
    assert_eq!(code, 0);
    assert!(out.contains(&dir.path().join("sysmon/config.toml").display().to_string()));
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    assert_eq!(run(sysmon().arg("--no-such-flag")).0, 2);
    assert_eq!(run(sysmon().args(["--interval", "0"])).0, 2);
    assert_eq!(
        run(sysmon().args(["--count", "3"])).0,
        2,
        "--count needs --batch"
    );
    let (code, out, _) = run(sysmon().arg("--help"));
    assert_eq!(code, 0);
    assert!(out.contains("--once") && out.contains("config"));
    let (code, out, _) = run(sysmon().arg("--version"));
    assert_eq!(code, 0);
    assert!(out.starts_with("sysmon "));
}

#[test]
fn completions_are_generated() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = run(sysmon().args(["completions", shell]));
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("sysmon") && out.contains("once"), "{shell}");
    }
    assert_eq!(run(sysmon().args(["completions", "tcsh"])).0, 2);
}
