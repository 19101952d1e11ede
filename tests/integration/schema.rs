//! `assets/sysmon-status.schema.json` against the real binary's documents: `sysmon --once
//! --json`, `--batch --json` and the daemon's `GET /api/v1/status`.
//!
//! The schema published for scripts lets objects carry fields it does not name (fields may be
//! added within a schema number); the tests validate against a stricter copy that allows no
//! unnamed field, so an addition, a removal or a change of type that the schema does not
//! describe fails here until the schema says it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::{BIN, Daemon, free_port, wait};

const SCHEMA: &str = include_str!("../../assets/sysmon-status.schema.json");

/// Every object schema that names its properties made closed to others.
fn strict(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.contains_key("properties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            map.values_mut().for_each(strict);
        }
        Value::Array(items) => items.iter_mut().for_each(strict),
        _ => {}
    }
}

/// The validation errors of `doc`, empty when it is valid.
fn errors(doc: &Value, closed: bool) -> String {
    let mut schema: Value = serde_json::from_str(SCHEMA).expect("the schema is JSON");
    if closed {
        strict(&mut schema);
    }
    let url = "file:///sysmon-status.schema.json";
    let mut compiler = boon::Compiler::new();
    let mut schemas = boon::Schemas::new();
    compiler.add_resource(url, schema).expect("add schema");
    let index = compiler
        .compile(url, &mut schemas)
        .unwrap_or_else(|e| panic!("the schema does not compile: {e:#}"));
    match schemas.validate(doc, index) {
        Ok(()) => String::new(),
        Err(e) => format!("{e:#}"),
    }
}

pub fn assert_valid(doc: &Value) {
    let e = errors(doc, true);
    assert!(e.is_empty(), "the document breaks the schema:\n{e}");
}

fn once_json() -> Value {
    let out = Command::new(BIN)
        .args(["--once", "--json"])
        .env_remove("SYSMON_CONFIG")
        .output()
        .expect("run sysmon");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn once_json_matches_the_schema() {
    let doc = once_json();
    assert_valid(&doc);
    // Non-trivially: the document has the arrays the schema's item schemas check.
    assert!(doc["users"].as_array().is_some_and(|u| !u.is_empty()));
    assert!(doc["processes"].as_array().is_some_and(|p| !p.is_empty()));
}

#[test]
fn every_batch_line_matches_the_schema() {
    let out = Command::new(BIN)
        .args(["--batch", "--json", "--count", "2", "--interval", "0.2"])
        .env_remove("SYSMON_CONFIG")
        .output()
        .expect("run sysmon");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for line in lines {
        assert_valid(&serde_json::from_str(line).expect("JSON line"));
    }
}

#[test]
fn the_schema_rejects_what_it_does_not_describe() {
    let doc = once_json();
    let broken = |f: &dyn Fn(&mut Value)| {
        let mut d = doc.clone();
        f(&mut d);
        d
    };
    // A field removed, a field given another type, an unknown status, a new schema number.
    let removed = broken(&|d| {
        d["users"][0]
            .as_object_mut()
            .unwrap()
            .remove("memory_bytes");
    });
    assert!(errors(&removed, false).contains("memory_bytes"));
    let retyped = broken(&|d| d["system"]["load"]["one"] = Value::from("high"));
    assert!(!errors(&retyped, false).is_empty());
    let status = broken(&|d| d["status"]["status"] = Value::from("critical"));
    assert!(!errors(&status, false).is_empty());
    let schema = broken(&|d| d["schema"] = Value::from(3));
    assert!(!errors(&schema, false).is_empty());
    // A field the schema does not name: allowed to scripts, refused by the strict check.
    let added = broken(&|d| d["processes"][0]["nice"] = Value::from(0));
    assert!(errors(&added, false).is_empty());
    assert!(errors(&added, true).contains("nice"));
}

/// `GET path` with the token over HTTP/1.0, so the body is not chunked and ends at EOF.
fn api_get(port: u16, path: &str, token: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    let (head, body) = reply.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

#[test]
fn the_apis_status_document_matches_the_schema() {
    let dir = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let token = "0123456789abcdef0123456789abcdef";
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[monitoring]\ninterval_secs = 1\n[storage]\npath = \"{}\"\n\
             [http]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{token}\"\n",
            dir.path().join("sysmon.db").display()
        ),
    )
    .expect("config");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let _daemon = Daemon::start(&cfg);
    let mut doc = None;
    assert!(
        wait(20, || {
            doc = api_get(port, "/api/v1/status", token)
                .filter(|(status, _)| *status == 200)
                .and_then(|(_, body)| serde_json::from_str::<Value>(&body).ok());
            doc.is_some()
        }),
        "the API never served a status document"
    );
    assert_valid(&doc.expect("document"));
}
