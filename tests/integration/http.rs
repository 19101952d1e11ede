//! `[http] enabled = true`: the real daemon serving on an ephemeral loopback port, spoken to
//! with a minimal HTTP/1.1 client and a real WebSocket client.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Daemon, cli, free_port, json, status_field, try_json, wait};

const TOKEN: &str = "test-token-0123456789abcdef";

struct Setup {
    _dir: tempfile::TempDir,
    cfg: PathBuf,
    port: u16,
}

/// A daemon config sampling every second, with a system memory threshold every machine
/// exceeds (so an alert opens at once) and HTTP on a free loopback port.
fn setup(http: &str) -> Setup {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("config.toml");
    let port = free_port();
    let text = format!(
        "[monitoring]\ninterval_secs = 1\nmemory_threshold = 0.1\n\
         [storage]\npath = \"{}\"\n\
         [http]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\n{http}\n",
        dir.path().join("sysmon.db").display()
    );
    std::fs::write(&cfg, text).expect("config");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    Setup {
        _dir: dir,
        cfg,
        port,
    }
}

fn with_token() -> Setup {
    setup(&format!("token = \"{TOKEN}\""))
}

struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// One request on a fresh connection (`Connection: close`, so the body ends at EOF).
fn request(port: u16, method: &str, path: &str, token: Option<&str>) -> Option<Reply> {
    request_with_body(port, method, path, token, "")
}

fn request_with_body(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Option<Reply> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body = if headers
        .get("transfer-encoding")
        .is_some_and(|t| t.contains("chunked"))
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Some(Reply {
        status,
        headers,
        body,
    })
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn get(port: u16, path: &str) -> Reply {
    request(port, "GET", path, Some(TOKEN)).unwrap_or_else(|| panic!("GET {path} failed"))
}

fn post(port: u16, path: &str) -> Reply {
    request(port, "POST", path, Some(TOKEN)).unwrap_or_else(|| panic!("POST {path} failed"))
}

/// Start the daemon and wait until it serves a sample.
fn start(s: &Setup) -> Daemon {
    let mut d = Daemon::start(&s.cfg);
    let ready = wait(45, || {
        request(s.port, "GET", "/api/v1/status", Some(TOKEN)).is_some_and(|r| r.status == 200)
    });
    assert!(
        ready,
        "no sample served; alive {}: {}",
        d.child_alive(),
        d.log()
    );
    d
}

#[test]
fn every_endpoint_but_health_wants_the_token() {
    let s = with_token();
    let d = start(&s);
    let health = request(s.port, "GET", "/health", None).expect("health");
    assert_eq!(health.status, 200, "{}", health.body);
    let h = health.json();
    assert_eq!(h["status"], "ok");
    assert!(h["engine"]["samples"].as_u64().unwrap_or(0) >= 1, "{h}");
    assert!(
        h["engine"]["last_sample_age_secs"].as_f64().is_some(),
        "{h}"
    );
    assert_eq!(h["database"]["state"], "ok");
    assert!(h["outbox"]["backlog"].is_u64(), "{h}");

    let endpoints = [
        ("GET", "/metrics", 200),
        ("GET", "/api/v1/status", 200),
        ("GET", "/api/v1/alerts", 200),
        ("GET", "/api/v1/history?since=5m", 200),
        ("POST", "/api/v1/alerts/999999/ack", 404),
        ("POST", "/api/v1/alerts/999999/resolve", 404),
        // A plain GET without the upgrade headers: past auth, refused by the WebSocket layer.
        ("GET", "/ws", 0),
    ];
    for (method, path, ok) in endpoints {
        for token in [None, Some("wrong-token-0123456789abcdef"), Some("Bearer")] {
            let r = request(s.port, method, path, token).expect("request");
            assert_eq!(r.status, 401, "{method} {path} with {token:?}");
            assert!(r.body.is_empty(), "401 says nothing: {:?}", r.body);
        }
        let r = request(s.port, method, path, Some(TOKEN)).expect("request");
        if ok == 0 {
            assert!(
                r.status != 401 && r.status < 500,
                "{method} {path}: {}",
                r.status
            );
        } else {
            assert_eq!(r.status, ok, "{method} {path}: {}", r.body);
        }
    }
    // A token one character short, and one with a character changed.
    let short = &TOKEN[..TOKEN.len() - 1];
    let changed = format!("{short}X");
    for t in [short, changed.as_str()] {
        let r = request(s.port, "GET", "/api/v1/status", Some(t)).expect("request");
        assert_eq!(r.status, 401);
    }
    drop(d);
}

#[test]
fn bad_input_is_a_400_with_a_message() {
    let s = with_token();
    let _d = start(&s);
    for (method, path) in [
        ("GET", "/api/v1/history?since=yesterday-ish"),
        ("GET", "/api/v1/history?since=1h&until=2h"),
        ("GET", "/api/v1/history?bogus=1"),
        ("GET", "/api/v1/history?user=%0Aroot"),
        ("GET", "/api/v1/alerts?all=maybe"),
        ("POST", "/api/v1/alerts/abc/ack"),
        ("POST", "/api/v1/alerts/-3/resolve"),
    ] {
        let r = request(s.port, method, path, Some(TOKEN)).expect("request");
        assert_eq!(r.status, 400, "{method} {path}: {}", r.body);
        let msg = r.json()["error"].as_str().unwrap_or_default().to_string();
        assert!(!msg.is_empty(), "{path}: {}", r.body);
    }
    assert_eq!(get(s.port, "/nope").status, 404);
    // Many stream clients: the first 32 are served, the rest refused, none stalls anything.
    let clients: Vec<_> = (0..32).map(|_| ws_connect(s.port)).collect();
    assert_eq!(ws_try(s.port).err(), Some(503));
    drop(clients);
    assert!(wait(10, || ws_try(s.port).is_ok()), "slots are given back");
}

#[test]
fn an_ack_or_resolve_with_a_malformed_body_is_refused_and_changes_nothing() {
    let s = with_token();
    let d = start(&s);
    let id = {
        let mut id = None;
        assert!(
            wait(30, || {
                id = open_memory_alert_id(&s.cfg);
                id.is_some()
            }),
            "{}",
            d.log()
        );
        id.expect("alert")
    };
    for (action, body) in [
        ("ack", "{bogus"),
        ("ack", "{\"by\": \"mallory\"}"),
        ("resolve", "[]"),
        ("resolve", "\u{1b}[2J"),
    ] {
        let path = format!("/api/v1/alerts/{id}/{action}");
        let r = request_with_body(s.port, "POST", &path, Some(TOKEN), body).expect("request");
        assert_eq!(r.status, 400, "{action} with {body:?}: {}", r.body);
        let msg = r.json()["error"].as_str().unwrap_or_default().to_string();
        assert!(!msg.is_empty() && !msg.contains('\u{1b}'), "{msg:?}");
    }
    let alerts = json(&s.cfg, &["alerts", "--all", "--json"]);
    assert_eq!(
        find(&alerts, id)["state"],
        "open",
        "a refused request changed the alert"
    );
    // An empty body, or the empty object, is accepted.
    let path = format!("/api/v1/alerts/{id}/ack");
    let r = request_with_body(s.port, "POST", &path, Some(TOKEN), "{}").expect("request");
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Sockets the process holds open (its listener, its clients, netlink).
fn sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
                })
                .count()
        })
        .unwrap_or(0)
}

/// Whether the server has closed `conn`: a read sees the end of the stream or a reset.
fn closed_by_server(conn: &mut TcpStream) -> bool {
    let mut buf = [0u8; 512];
    conn.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // an error answer before closing
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn idle_and_slow_connections_are_closed_and_their_number_is_capped() {
    const CAP: usize = 128; // http::MAX_CONNECTIONS
    let s = with_token();
    let d = start(&s);
    let pid = d.child.id();
    let before = sockets(pid);

    // More idle connections than the cap: the daemon holds no more than the cap of them.
    let idle: Vec<TcpStream> = (0..CAP + 40)
        .map(|_| TcpStream::connect(("127.0.0.1", s.port)).expect("connect"))
        .collect();
    // Until the daemon has accepted all it will (well before the header timeout closes them).
    let mut held = 0;
    for _ in 0..8 {
        std::thread::sleep(Duration::from_secs(1));
        let now = sockets(pid).saturating_sub(before);
        if now == held && now > 0 {
            break;
        }
        held = now;
    }
    assert!(held <= CAP, "the daemon holds {held} client connections");
    assert!(held + 8 >= CAP, "only {held} connections were accepted");
    drop(idle);

    // A connection that never sends a byte, and one that sends its headers a byte a second:
    // both are closed long before the slow one would have finished (60 s).
    let mut silent = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    let mut slow = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    let head = format!(
        "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: {}",
        "a".repeat(60)
    );
    let mut slow_closed = false;
    for byte in head.as_bytes().iter().take(60) {
        if slow.write_all(std::slice::from_ref(byte)).is_err() || closed_by_server(&mut slow) {
            slow_closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(900));
    }
    assert!(
        slow_closed,
        "a client trickling its headers was served for a minute"
    );
    assert!(
        wait(15, || closed_by_server(&mut silent)),
        "an idle connection was kept"
    );
    // The server still answers.
    assert_eq!(get(s.port, "/health").status, 200);
}

#[test]
fn status_and_history_are_the_command_lines_documents() {
    let s = with_token();
    let _d = start(&s);
    let status = get(s.port, "/api/v1/status");
    assert_eq!(
        status.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    let doc = status.json();
    for key in [
        "schema",
        "host",
        "at",
        "time",
        "interval_secs",
        "system",
        "users",
        "processes",
        "status",
    ] {
        assert!(doc.get(key).is_some(), "status lacks {key}");
    }
    assert_eq!(doc["schema"], 2);
    assert!(doc["processes"].as_array().is_some_and(|p| !p.is_empty()));

    assert!(wait(10, || status_field(&s.cfg, "samples").as_u64() >= Some(2)));
    let api = get(s.port, "/api/v1/history?since=10m").json();
    let cli_doc = json(&s.cfg, &["history", "--since", "10m", "--format", "json"]);
    let keys = |v: &Value| {
        v.as_object()
            .map(|o| o.keys().cloned().collect::<HashSet<_>>())
            .unwrap_or_default()
    };
    assert_eq!(keys(&api), keys(&cli_doc));
    assert!(
        api["system"].as_array().is_some_and(|a| !a.is_empty()),
        "{api}"
    );
}

/// One family's samples must follow its `# TYPE`, appear together and once.
#[derive(Debug, Default)]
pub(crate) struct Family {
    kind: String,
    help: bool,
    pub samples: Vec<(HashMap<String, String>, f64)>,
}

/// A strict reader of the Prometheus text format 0.0.4, with promtool's naming lints.
pub(crate) fn parse_exposition(text: &str) -> Result<HashMap<String, Family>, String> {
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    let mut families: HashMap<String, Family> = HashMap::new();
    let mut current = String::new();
    let mut done: HashSet<String> = HashSet::new();
    if !text.ends_with('\n') {
        return Err("must end with a newline".into());
    }
    for (no, line) in text.lines().enumerate() {
        let err = |m: &str| format!("line {}: {m}: {line:?}", no + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (word, name, tail) = (parts.next(), parts.next(), parts.next().unwrap_or(""));
            let name = name.ok_or_else(|| err("comment without a name"))?;
            if !valid_name(name) {
                return Err(err("bad metric name"));
            }
            if name != current {
                if done.contains(name) {
                    return Err(err("family appears twice"));
                }
                if !current.is_empty() {
                    done.insert(current.clone());
                }
                current = name.to_string();
            }
            let f = families.entry(name.to_string()).or_default();
            match word {
                Some("HELP") => {
                    if tail.is_empty() {
                        return Err(err("empty help"));
                    }
                    f.help = true;
                }
                Some("TYPE") => {
                    if !f.samples.is_empty() || !f.kind.is_empty() {
                        return Err(err("TYPE after samples or twice"));
                    }
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&tail) {
                        return Err(err("unknown type"));
                    }
                    if (tail == "counter") != name.ends_with("_total") {
                        return Err(err("counters, and only counters, end in _total"));
                    }
                    f.kind = tail.to_string();
                }
                _ => return Err(err("unknown comment")),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').ok_or_else(|| err("no value"))?;
        let value: f64 = match value {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|_| err("bad value"))?,
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => {
                let body = rest
                    .strip_suffix('}')
                    .ok_or_else(|| err("unclosed labels"))?;
                (n, parse_labels(body).map_err(|m| err(&m))?)
            }
            None => (series, HashMap::new()),
        };
        if name != current {
            return Err(err("sample outside its family"));
        }
        let f = families.get_mut(name).ok_or_else(|| err("no TYPE"))?;
        if f.kind.is_empty() || !f.help {
            return Err(err("sample before HELP and TYPE"));
        }
        if f.samples.iter().any(|(l, _)| *l == labels) {
            return Err(err("duplicate series"));
        }
        f.samples.push((labels, value));
    }
    Ok(families)
}

fn parse_labels(body: &str) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    let mut chars = body.chars().peekable();
    loop {
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            name.push(c);
            chars.next();
        }
        if name.is_empty() {
            return Err("empty label name".into());
        }
        if chars.next() != Some('=') || chars.next() != Some('"') {
            return Err(format!("label {name} without a quoted value"));
        }
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\\') => match chars.next() {
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    Some('n') => value.push('\n'),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some('"') => break,
                Some(c) if c.is_control() => return Err("control character in a label".into()),
                Some(c) => value.push(c),
                None => return Err("unterminated label value".into()),
            }
        }
        if out.insert(name.clone(), value).is_some() {
            return Err(format!("label {name} twice"));
        }
        match chars.next() {
            Some(',') => continue,
            None => return Ok(out),
            Some(c) => return Err(format!("unexpected {c:?} after a label")),
        }
    }
}

#[test]
fn the_exposition_parser_rejects_what_prometheus_would() {
    let ok = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"q\\\"\\\\\"} 1\n";
    let f = parse_exposition(ok).expect("valid");
    assert_eq!(f["a_total"].samples[0].0["x"], "q\"\\");
    for bad in [
        "# HELP a A.\n# TYPE a counter\na 1\n",
        "# HELP a_total A.\n# TYPE a_total gauge\na_total 1\n",
        "a 1\n",
        "# HELP a A.\n# TYPE a gauge\na{x=\"1} 1\n",
        "# HELP a A.\n# TYPE a gauge\na one\n",
        "# HELP a A.\n# TYPE a gauge\na 1\n# HELP b B.\n# TYPE b gauge\nb 1\na 2\n",
        "# HELP a A.\n# TYPE a gauge\na 1\na 2\n",
    ] {
        assert!(parse_exposition(bad).is_err(), "{bad}");
    }
}

#[test]
fn metrics_are_valid_prometheus_exposition() {
    let s = with_token();
    let _d = start(&s);
    assert!(wait(10, || {
        try_json(&s.cfg, &["alerts", "--json"])
            .and_then(|a| a.as_array().map(|a| !a.is_empty()))
            .unwrap_or(false)
    }));
    let r = get(s.port, "/metrics");
    assert_eq!(r.status, 200);
    assert!(
        r.headers
            .get("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        r.headers
    );
    let families = parse_exposition(&r.body).unwrap_or_else(|e| panic!("{e}\n{}", r.body));
    for name in [
        "sysmon_samples_total",
        "sysmon_collection_seconds_total",
        "sysmon_collection_duration_seconds",
        "sysmon_emails_sent_total",
        "sysmon_emails_failed_total",
        "sysmon_store_errors_total",
        "sysmon_system_cpu_usage_ratio",
        "sysmon_system_memory_used_bytes",
        "sysmon_user_cpu_usage_ratio",
        "sysmon_user_memory_bytes",
        "sysmon_user_processes",
        "sysmon_user_persistent",
        "sysmon_alerts_open",
    ] {
        assert!(families.contains_key(name), "no {name} in\n{}", r.body);
    }
    assert!(families["sysmon_samples_total"].samples[0].1 >= 1.0);
    let users = &families["sysmon_user_processes"].samples;
    assert!(users.iter().all(|(l, _)| l.contains_key("user")));
    assert!(!users.is_empty());
    let open = &families["sysmon_alerts_open"].samples;
    let high = open
        .iter()
        .find(|(l, _)| l.get("severity").map(String::as_str) == Some("high"))
        .map(|(_, v)| *v);
    assert!(high >= Some(1.0), "{open:?}");
    assert_eq!(open.len(), 4);
}

fn open_memory_alert_id(cfg: &Path) -> Option<i64> {
    try_json(cfg, &["alerts", "--json"])?
        .as_array()?
        .iter()
        .find(|a| a["kind"] == "system" && a["metric"] == "memory" && a["state"] == "open")
        .and_then(|a| a["id"].as_i64())
}

/// The alert with this id in a list of them.
fn find(list: &Value, id: i64) -> Value {
    list.as_array()
        .and_then(|a| a.iter().find(|a| a["id"] == id))
        .cloned()
        .unwrap_or_default()
}

#[test]
fn ack_and_resolve_through_the_api_show_up_in_sysmon_alerts() {
    let s = with_token();
    let d = start(&s);
    let mut id = None;
    assert!(wait(15, || {
        id = open_memory_alert_id(&s.cfg);
        id.is_some()
    }));
    let id = id.unwrap_or_default();
    // The API lists what the command line lists (other alerts may open meanwhile: compare one).
    let listed = get(s.port, "/api/v1/alerts").json();
    assert!(find(&listed, id).is_object(), "{listed}");
    assert_eq!(
        find(&listed, id),
        find(&json(&s.cfg, &["alerts", "--json"]), id)
    );

    let r = post(s.port, &format!("/api/v1/alerts/{id}/ack"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["state"], "acknowledged");
    let alerts = json(&s.cfg, &["alerts", "--json"]);
    let a = alerts
        .as_array()
        .and_then(|a| a.iter().find(|a| a["id"] == id))
        .cloned()
        .unwrap_or_default();
    assert_eq!(a["state"], "acknowledged", "{alerts}");
    assert_eq!(a["acknowledged_by"], "operator:api");
    assert!(
        d.wait_log(&format!("alert {id} acknowledged by api"), 10),
        "{}",
        d.log()
    );
    // Already acknowledged.
    assert_eq!(
        post(s.port, &format!("/api/v1/alerts/{id}/ack")).status,
        404
    );

    let r = post(s.port, &format!("/api/v1/alerts/{id}/resolve"));
    assert_eq!(r.status, 200, "{}", r.body);
    let all = json(&s.cfg, &["alerts", "--all", "--json"]);
    let a = all
        .as_array()
        .and_then(|a| a.iter().find(|a| a["id"] == id))
        .cloned()
        .unwrap_or_default();
    assert_eq!(a["state"], "resolved", "{all}");
    assert_eq!(a["resolved_by"], "operator:api");
    assert!(
        d.wait_log(&format!("alert {id} resolved by"), 10),
        "{}",
        d.log()
    );
    // The daemon does not re-open it while the condition lasts.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(open_memory_alert_id(&s.cfg), None);
    assert_eq!(
        post(s.port, &format!("/api/v1/alerts/{id}/resolve")).status,
        404
    );
    assert_eq!(
        find(&get(s.port, "/api/v1/alerts?all=true").json(), id),
        find(&all, id)
    );
}

type Ws = tungstenite::WebSocket<TcpStream>;

fn ws_connect(port: u16) -> Ws {
    ws_try(port).unwrap_or_else(|code| panic!("WebSocket refused: {code}"))
}

/// A WebSocket connection, or the HTTP status it was refused with.
fn ws_try(port: u16) -> Result<Ws, u16> {
    use tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://127.0.0.1:{port}/ws")
        .into_client_request()
        .expect("request");
    req.headers_mut().insert(
        "Authorization",
        format!("Bearer {TOKEN}").parse().expect("header"),
    );
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    match tungstenite::client::client(req, stream) {
        Ok((ws, resp)) => {
            assert_eq!(resp.status(), 101);
            Ok(ws)
        }
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
            Err(r.status().as_u16())
        }
        Err(e) => panic!("handshake: {e}"),
    }
}

fn next_json(ws: &mut Ws) -> Value {
    loop {
        match ws.read().expect("read") {
            tungstenite::Message::Text(t) => {
                return serde_json::from_str(t.as_str()).expect("JSON message");
            }
            tungstenite::Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}

#[test]
fn websocket_streams_samples_and_a_slow_client_does_not_delay_sampling() {
    let s = with_token();
    let _d = start(&s);
    // A client that connects and never reads.
    let mut slow = ws_connect(s.port);
    let mut ws = ws_connect(s.port);
    let first = next_json(&mut ws);
    assert_eq!(first["type"], "snapshot", "{first}");
    assert_eq!(first["data"]["schema"], 2);
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < 2 && start.elapsed() < Duration::from_secs(15) {
        let m = next_json(&mut ws);
        match m["type"].as_str() {
            Some("sample") => samples.push(m["data"]["at"].as_i64().unwrap_or_default()),
            Some("event") => assert!(m["data"]["event"].is_string(), "{m}"),
            other => panic!("unexpected message type {other:?}"),
        }
    }
    assert_eq!(samples.len(), 2, "two samples in 15 s");
    assert!(samples[1] > samples[0]);

    // Sampling goes on at its pace while the slow client sits on unread messages.
    let before = status_field(&s.cfg, "last_sample").as_i64().unwrap_or(0);
    std::thread::sleep(Duration::from_secs(4));
    let after = status_field(&s.cfg, "last_sample").as_i64().unwrap_or(0);
    assert!(
        after - before >= 2500,
        "last_sample moved {} ms",
        after - before
    );
    let r = request(s.port, "GET", "/health", None).expect("health");
    assert_eq!(r.status, 200);
    // The slow client, reading at last, finds messages or a close; never a stall.
    let _ = slow
        .get_mut()
        .set_read_timeout(Some(Duration::from_secs(5)));
    assert!(slow.read().is_ok());
}

#[test]
fn a_port_in_use_or_an_exposed_address_without_token_stops_startup() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let s = with_token();
    let text = std::fs::read_to_string(&s.cfg)
        .expect("read")
        .replace(&format!(":{}\"", s.port), &format!(":{port}\""));
    std::fs::write(&s.cfg, text).expect("write");
    let mut d = Daemon::start(&s.cfg);
    let (code, _) = d.wait_exit(15).expect("exits");
    assert_eq!(code, 1, "{}", d.log());
    assert!(
        d.log().contains("cannot listen on 127.0.0.1:"),
        "{}",
        d.log()
    );

    let s = setup("");
    let text = std::fs::read_to_string(&s.cfg)
        .expect("read")
        .replace("127.0.0.1:", "0.0.0.0:");
    std::fs::write(&s.cfg, text).expect("write");
    let (code, _, err) = cli(&s.cfg, &["--headless"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("token"), "{err}");
}

#[test]
fn new_token_prints_a_strong_random_token() {
    let s = setup("");
    let (code, a, _) = cli(&s.cfg, &["http", "new-token"]);
    let (_, b, _) = cli(&s.cfg, &["http", "new-token"]);
    assert_eq!(code, 0);
    let a = a.trim();
    assert_eq!(a.len(), 64);
    assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b.trim());
}

#[test]
fn without_a_token_only_health_and_metrics_are_served() {
    let s = setup("");
    let d = Daemon::start(&s.cfg);
    assert!(
        wait(45, || request(s.port, "GET", "/metrics", None).is_some_and(
            |r| r.status == 200 && r.body.contains("sysmon_user_processes")
        )),
        "{}",
        d.log()
    );
    assert_eq!(
        request(s.port, "GET", "/health", None).map(|r| r.status),
        Some(200)
    );
    for (method, path) in [
        ("GET", "/api/v1/status"),
        ("GET", "/api/v1/alerts"),
        ("GET", "/api/v1/history"),
        ("POST", "/api/v1/alerts/1/ack"),
        ("POST", "/api/v1/alerts/1/resolve"),
        ("GET", "/ws"),
    ] {
        for token in [None, Some(TOKEN)] {
            let r = request(s.port, method, path, token).expect("request");
            assert_eq!(r.status, 403, "{method} {path}");
            assert!(
                r.json()["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("http.token"))
            );
        }
    }
}
