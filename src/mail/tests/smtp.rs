//! The mailer against a real SMTP server on loopback.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use super::fixtures::*;
use super::server::{Options, Security, TestCert, TestServer};
use crate::config::{Config, Email, TlsMode};
use crate::mail::render::mail_for;
use crate::mail::sender::Sender;
use crate::mail::smtp::{Mailer, SendError, Transport, send_test};
use crate::model::{Event, Severity};

const TIMEOUT: Duration = Duration::from_secs(5);

fn email(port: u16, tls: TlsMode) -> Email {
    Email {
        enabled: true,
        smtp_host: Some("127.0.0.1".into()),
        smtp_port: port,
        tls,
        from: Some("sysmon <sysmon@example.com>".into()),
        to: vec![
            "ops@example.com".into(),
            "Oncall <oncall@example.org>".into(),
        ],
        ..Email::default()
    }
}

fn mailer(cfg: &Email, password: Option<&str>, ca: Option<&TestCert>) -> Mailer {
    Mailer::with_timeout(
        cfg,
        password.map(str::to_string),
        ca.map(|c| c.pem.clone().into_bytes()),
        TIMEOUT,
    )
    .expect("mailer")
}

fn alert_mail() -> crate::model::Mail {
    mail_for(
        &Event::AlertOpened(user_cpu_alert()),
        &alerts_cfg(Severity::Low, true),
    )
    .expect("mail")
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[test]
fn plain_smtp_to_loopback_delivers_subject_body_and_recipients() {
    let server = TestServer::start(Options::new(Security::Plain), None);
    let m = mailer(&email(server.port(), TlsMode::None), None, None);
    let mail = alert_mail();

    m.send(&mail).expect("delivered");

    let got = server.next_mail().expect("a mail arrives");
    assert_eq!(got.from, "sysmon@example.com");
    assert_eq!(got.to, ["ops@example.com", "oncall@example.org"]);
    assert!(!got.tls);
    assert_eq!(got.auth, None);
    assert_eq!(
        got.header("Subject").as_deref(),
        Some(mail.subject.as_str())
    );
    assert_eq!(
        got.header("Subject").as_deref(),
        Some("[sysmon] HIGH web01: user alice CPU 93% for 1h01m")
    );
    assert_eq!(got.header("X-Sysmon-Severity").as_deref(), Some("HIGH"));
    assert_eq!(
        got.header("From").as_deref(),
        Some("sysmon <sysmon@example.com>")
    );
    assert!(got.header("Message-ID").is_some());
    assert!(got.header("Date").is_some());
    assert_eq!(got.body(), mail.body);
}

#[test]
fn starttls_with_the_extra_ca_encrypts_before_auth_and_mail() {
    let cert = TestCert::generate();
    let mut opts = Options::new(Security::StartTls);
    opts.auth = vec!["PLAIN", "LOGIN"];
    let server = TestServer::start(opts, Some(&cert));
    let mut cfg = email(server.port(), TlsMode::Starttls);
    cfg.username = Some("alerts".into());
    let m = mailer(&cfg, Some("s3cret pass"), Some(&cert));

    m.send(&alert_mail()).expect("delivered over STARTTLS");

    let got = server.next_mail().expect("a mail arrives");
    assert!(got.tls, "the mail must come over TLS");
    assert_eq!(
        got.auth,
        Some(("PLAIN".into(), "alerts".into(), "s3cret pass".into()))
    );
    let transcript = server.transcript();
    let clear: Vec<&String> = transcript
        .iter()
        .filter(|l| !l.starts_with("TLS "))
        .collect();
    assert_eq!(
        clear.len(),
        2,
        "only EHLO and STARTTLS in clear: {transcript:?}"
    );
    assert!(clear[1].eq_ignore_ascii_case("STARTTLS"));
    assert!(transcript.iter().any(|l| l.starts_with("TLS AUTH PLAIN")));
}

#[test]
fn starttls_without_the_ca_fails_on_the_certificate() {
    let cert = TestCert::generate();
    let server = TestServer::start(Options::new(Security::StartTls), Some(&cert));
    let m = mailer(&email(server.port(), TlsMode::Starttls), None, None);

    let err = m.send(&alert_mail()).expect_err("untrusted certificate");

    let text = err.to_string();
    assert!(matches!(err, SendError::Connection { .. }), "{err:?}");
    assert!(text.to_lowercase().contains("certificate"), "{text}");
    assert!(text.contains("UnknownIssuer"), "{text}");
    assert!(!err.is_permanent());
    assert!(server.drain().is_empty());
    // The server saw the handshake fail (once the client's alert reached it).
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.session_errors().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!server.session_errors().is_empty());
    assert!(
        !server
            .transcript()
            .iter()
            .any(|l| l.to_ascii_uppercase().contains("MAIL FROM")),
        "no mail after a failed handshake"
    );
}

#[test]
fn starttls_is_required_not_opportunistic() {
    // A server (or a man in the middle) that does not offer STARTTLS.
    let mut opts = Options::new(Security::Plain);
    opts.auth = vec!["PLAIN"];
    let server = TestServer::start(opts, None);
    let mut cfg = email(server.port(), TlsMode::Starttls);
    cfg.username = Some("alerts".into());
    let m = mailer(&cfg, Some("s3cret"), None);

    let err = m
        .send(&alert_mail())
        .expect_err("must not fall back to clear text");

    assert!(matches!(err, SendError::Protocol { .. }), "{err:?}");
    assert!(err.to_string().contains("STARTTLS"), "{err}");
    let transcript = server.transcript();
    assert!(
        !transcript.iter().any(|l| {
            let u = l.to_ascii_uppercase();
            u.starts_with("AUTH") || u.starts_with("MAIL")
        }),
        "nothing sensitive in clear: {transcript:?}"
    );
    assert!(server.drain().is_empty());
}

#[test]
fn implicit_tls_with_auth_login() {
    let cert = TestCert::generate();
    let mut opts = Options::new(Security::Implicit);
    opts.auth = vec!["LOGIN"];
    let server = TestServer::start(opts, Some(&cert));
    let mut cfg = email(server.port(), TlsMode::Tls);
    cfg.username = Some("alerts@example.com".into());
    let m = mailer(&cfg, Some("pa:ss word"), Some(&cert));

    let mail = alert_mail();
    m.send(&mail).expect("delivered over TLS");

    let got = server.next_mail().expect("a mail arrives");
    assert!(got.tls);
    assert_eq!(
        got.auth,
        Some((
            "LOGIN".into(),
            "alerts@example.com".into(),
            "pa:ss word".into()
        ))
    );
    assert_eq!(
        got.header("Subject").as_deref(),
        Some(mail.subject.as_str())
    );
    assert!(server.transcript().iter().all(|l| l.starts_with("TLS ")));
}

#[test]
fn implicit_tls_without_the_ca_fails() {
    let cert = TestCert::generate();
    let server = TestServer::start(Options::new(Security::Implicit), Some(&cert));
    let m = mailer(&email(server.port(), TlsMode::Tls), None, None);
    let err = m.send(&alert_mail()).expect_err("untrusted");
    assert!(err.to_string().contains("certificate"), "{err}");
    assert!(server.transcript().is_empty());
}

#[test]
fn a_550_reply_is_reported_verbatim_and_permanent() {
    let reply = "550 5.1.1 <ops@example.com>: Recipient address rejected: User unknown in \
                 local recipient table";
    let mut opts = Options::new(Security::Plain);
    opts.reject_rcpt = Some(reply.to_string());
    let server = TestServer::start(opts, None);
    let m = mailer(&email(server.port(), TlsMode::None), None, None);

    let err = m.send(&alert_mail()).expect_err("rejected");

    assert_eq!(err.code(), Some(550));
    assert!(err.is_permanent());
    assert!(!err.is_server_wide());
    assert_eq!(err.to_string(), format!("the mail server answered {reply}"));
}

#[test]
fn a_451_reply_is_transient() {
    let mut opts = Options::new(Security::Plain);
    opts.reject_data = Some("451 4.3.0 Temporary lookup failure, try again later".into());
    let server = TestServer::start(opts, None);
    let m = mailer(&email(server.port(), TlsMode::None), None, None);

    let err = m.send(&alert_mail()).expect_err("deferred");

    assert_eq!(err.code(), Some(451));
    assert!(!err.is_permanent());
    assert!(
        err.to_string()
            .ends_with("451 4.3.0 Temporary lookup failure, try again later"),
        "{err}"
    );
}

#[test]
fn a_dead_port_fails_fast_with_a_connection_error() {
    let port = dead_port();
    let m = mailer(&email(port, TlsMode::None), None, None);
    let started = Instant::now();

    let err = m.send(&alert_mail()).expect_err("nothing listens");

    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, SendError::Connection { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    assert!(err.to_string().contains("refused"), "{err}");
    assert!(!err.is_permanent());
    assert!(err.is_server_wide());
}

#[test]
fn a_silent_server_times_out() {
    let mut opts = Options::new(Security::Plain);
    opts.mute = true;
    let server = TestServer::start(opts, None);
    let m = Mailer::with_timeout(
        &email(server.port(), TlsMode::None),
        None,
        None,
        Duration::from_millis(500),
    )
    .expect("mailer");
    let started = Instant::now();
    let err = m.send(&alert_mail()).expect_err("no greeting");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, SendError::Connection { .. }), "{err:?}");
}

#[test]
fn plain_smtp_is_refused_to_anything_but_loopback() {
    let mut cfg = email(25, TlsMode::None);
    for host in ["192.0.2.10", "[2001:db8::1]", "10.0.0.1"] {
        cfg.smtp_host = Some(host.into());
        let err = Mailer::new(&cfg, None, None).expect_err(host);
        assert!(err.to_string().contains("loopback"), "{err}");
    }
    for host in ["127.0.0.1", "::1", "[::1]", "localhost", "127.1.2.3"] {
        cfg.smtp_host = Some(host.into());
        assert!(Mailer::new(&cfg, None, None).is_ok(), "{host}");
    }
}

#[test]
fn setup_errors_name_the_problem() {
    let good = email(25, TlsMode::Starttls);
    let check = |cfg: &Email, pw: Option<&str>, ca: Option<&[u8]>, needle: &str| {
        let err =
            Mailer::new(cfg, pw.map(str::to_string), ca.map(<[u8]>::to_vec)).expect_err(needle);
        assert!(err.to_string().contains(needle), "{err} lacks {needle}");
    };
    let mut c = good.clone();
    c.smtp_host = None;
    check(&c, None, None, "email.smtp_host");
    let mut c = good.clone();
    c.from = None;
    check(&c, None, None, "email.from");
    let mut c = good.clone();
    c.to.clear();
    check(&c, None, None, "email.to");
    let mut c = good.clone();
    c.to = vec!["not an address".into()];
    check(&c, None, None, "email.to");
    let mut c = good.clone();
    c.username = Some("alerts".into());
    check(&c, None, None, "no password");
    check(&good, Some("pw"), None, "email.username");
    check(&good, None, Some(b"hello"), "no PEM certificate");
    check(
        &good,
        None,
        Some(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n"),
        "not a valid PEM certificate",
    );
    assert!(Mailer::new(&good, None, None).is_ok());
}

#[test]
fn hostile_names_reach_no_extra_recipient_or_header() {
    let server = TestServer::start(Options::new(Security::Plain), None);
    let m = mailer(&email(server.port(), TlsMode::None), None, None);
    let mut a = user_cpu_alert();
    let evil = "alice\r\nBcc: victim@example.net\r\n\r\nfake body";
    a.key = crate::model::AlertKey::user(evil, crate::model::Metric::Cpu);
    a.details.top_users[0].name = evil.into();
    let mail = mail_for(&Event::AlertOpened(a), &alerts_cfg(Severity::Low, true)).expect("mail");

    m.send(&mail).expect("delivered");

    let got = server.next_mail().expect("a mail arrives");
    assert_eq!(got.to, ["ops@example.com", "oncall@example.org"]);
    assert_eq!(got.header("Bcc"), None);
    // The blank line in the name did not end the header section early: the headers that
    // follow Subject are still headers.
    let head = got.data.split("\r\n\r\n").next().unwrap_or("").to_string();
    assert!(
        head.split("\r\n")
            .all(|l| l.starts_with(' ') || l.split_once(':').is_some_and(|(n, _)| !n.contains(' '))),
        "{head}"
    );
    assert_eq!(got.header("X-Sysmon-Severity").as_deref(), Some("HIGH"));
    assert!(got.header("Date").is_some(), "{head}");
    assert!(
        got.header("Subject")
            .is_some_and(|s| s.contains("alice Bcc: victim@example.net fake body")),
        "{:?}",
        got.header("Subject")
    );
}

fn config_for(port: u16) -> Config {
    Config {
        email: email(port, TlsMode::None),
        ..Config::default()
    }
}

#[test]
fn test_email_reports_the_servers_acceptance() {
    let server = TestServer::start(Options::new(Security::Plain), None);
    let line = send_test(&config_for(server.port())).expect("sent");
    assert!(line.contains("250 2.0.0 Ok: queued as TEST1"), "{line}");
    assert!(
        line.contains("ops@example.com, oncall@example.org"),
        "{line}"
    );
    let got = server.next_mail().expect("a mail arrives");
    let subject = got.header("Subject").unwrap_or_default();
    assert!(
        subject.starts_with("[sysmon] TEST ") && subject.ends_with(": test message"),
        "{subject}"
    );
    assert!(got.body().contains("This is a test message from sysmon"));
}

#[test]
fn test_email_reports_the_servers_exact_refusal() {
    let reply = "554 5.7.1 <ops@example.com>: Relay access denied";
    let mut opts = Options::new(Security::Plain);
    opts.reject_rcpt = Some(reply.into());
    let server = TestServer::start(opts, None);
    let err = send_test(&config_for(server.port())).expect_err("refused");
    assert!(err.ends_with(reply), "{err}");
}

#[test]
fn test_email_reports_a_setup_problem() {
    let mut cfg = config_for(25);
    cfg.email.smtp_host = None;
    let err = send_test(&cfg).expect_err("no host");
    assert!(err.contains("email.smtp_host"), "{err}");
}

/// The outbox worker with the real mailer: a server that is down, then up on the same port,
/// gets every mail exactly once, each with its stable Message-ID.
#[test]
fn server_down_then_up_delivers_every_mail_exactly_once() {
    let port = dead_port();
    let cert = TestCert::generate();
    let m = mailer(&email(port, TlsMode::Starttls), None, Some(&cert));
    let mut outbox = MemOutbox::default();
    for n in 1..=3 {
        outbox.push(mail(n), T0.plus_secs(n as f64));
    }
    let mut sender = Sender::new(20, "web01");

    let report = sender.run_once(&mut outbox, &m, T0.plus_secs(10.0));
    assert!(report.sent_ids().is_empty());
    assert_eq!(report.failures().count(), 1);
    let paused = report.paused_until.expect("paused");
    assert_eq!(outbox.unsent(), 3);

    let server = TestServer::start_on(port, Options::new(Security::StartTls), Some(&cert));
    let report = sender.run_once(&mut outbox, &m, paused);
    assert_eq!(report.sent_ids(), [1, 2, 3]);
    assert!(
        sender
            .run_once(&mut outbox, &m, paused.plus_secs(60.0))
            .is_quiet()
    );

    let mut got = Vec::new();
    while got.len() < 3 {
        got.push(server.next_mail().expect("a mail arrives"));
    }
    assert!(server.drain().is_empty(), "no duplicates");
    let subjects: Vec<String> = got
        .iter()
        .map(|g| g.header("Subject").unwrap_or_default())
        .collect();
    assert_eq!(
        subjects,
        [
            "[sysmon] HIGH web01: mail 1",
            "[sysmon] HIGH web01: mail 2",
            "[sysmon] HIGH web01: mail 3"
        ]
    );
    let first_id = got[0].header("Message-ID").unwrap_or_default();
    assert!(
        first_id.starts_with(&format!("<sysmon.outbox.1.{}.", T0.plus_secs(1.0).0)),
        "{first_id}"
    );
    assert!(got.iter().all(|g| g.tls));
    assert!(outbox.rows.iter().all(|r| r.marked_sent == 1));
}
