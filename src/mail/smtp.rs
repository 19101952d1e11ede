//! Talking to the mail server: the only code in sysmon that opens an SMTP connection.
//!
//! Alert mail carries user names, process names and load figures of a shared server, and often
//! an SMTP password, so the connection is encrypted unless the server is on this machine:
//! STARTTLS is *required* when configured (a server that does not offer it, or a man in the middle
//! stripping it, fails the send instead of downgrading to clear text), implicit TLS is TLS from
//! the first byte, and plain SMTP is refused here for anything but a loopback host even though
//! config validation already checks it, because a config can be changed between validation and
//! use (a reload, a test helper) and the cost of the check is nothing.
//!
//! Certificates are checked against the webpki (Mozilla) roots, plus one extra CA file for sites
//! whose relay uses an internal CA or a self-signed certificate. Errors keep the server's exact
//! reply (`550 5.1.1 <x@example.com>: Recipient address rejected`) because that is what an
//! administrator pastes into a search box or a ticket to the mail team.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use jiff::tz::TimeZone;
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    Certificate, CertificateStore, SmtpConnection, Tls, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;

use super::render;
use crate::config::{Config, Email, TlsMode};
use crate::model::{Mail, Timestamp};
use crate::sanitize;

/// How long to wait for the server to connect or answer one command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// Something that delivers a rendered mail: [`Mailer`] in production, fakes in tests.
pub trait Transport {
    /// Deliver `mail`; `Ok` means the server accepted it for delivery.
    fn send(&self, mail: &Mail) -> Result<(), SendError>;

    /// Deliver `mail` with a Message-ID derived from `key`, and call `accepted` the moment the
    /// server has accepted it (its reply to the end of DATA), before the session is closed. The
    /// outbox sender records the delivery there, so only a crash between that reply and the
    /// commit, a few milliseconds, can make it send the entry again; the key is unique to the
    /// outbox entry, so both copies then carry the same Message-ID and mail systems that
    /// de-duplicate by it show one. The default ignores the key and reports acceptance after
    /// `send` returns.
    fn send_keyed(
        &self,
        mail: &Mail,
        key: &str,
        accepted: &mut dyn FnMut(),
    ) -> Result<(), SendError> {
        let _ = key;
        self.send(mail)?;
        accepted();
        Ok(())
    }
}

/// Why a mail was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The server answered with a negative reply; `text` is its reply text, verbatim.
    #[error("the mail server answered {code} {text}")]
    Rejected { code: u16, text: String },
    /// No conversation: the connection, the TLS handshake or certificate check, or the network
    /// failed, or the server hung up or sent something that is not SMTP.
    #[error("cannot deliver through {server}: {detail}")]
    Connection { server: String, detail: String },
    /// The conversation went wrong on our side of the protocol: STARTTLS not offered, no common
    /// authentication mechanism, and the like.
    #[error("cannot deliver through {server}: {detail}")]
    Protocol { server: String, detail: String },
    /// The message could not be built (an address the mail library refuses).
    #[error("cannot build the message: {0}")]
    Message(String),
}

impl SendError {
    /// A 5xx reply or a message that cannot be built: retrying soon will not help. Such mail is
    /// still retried, slower, because the cause (a full mailbox, a recipient typo) is usually
    /// fixed by a person.
    pub fn is_permanent(&self) -> bool {
        match self {
            SendError::Rejected { code, .. } => (500..600).contains(code),
            SendError::Message(_) => true,
            SendError::Connection { .. } | SendError::Protocol { .. } => false,
        }
    }

    /// The server's reply code, when it gave one.
    pub fn code(&self) -> Option<u16> {
        match self {
            SendError::Rejected { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether every mail would fail the same way right now (no connection, bad credentials,
    /// service unavailable), as opposed to a reply about this one message or recipient.
    pub fn is_server_wide(&self) -> bool {
        match self {
            SendError::Connection { .. } | SendError::Protocol { .. } => true,
            // 421 service not available; 454 TLS or auth temporarily unavailable; 530, 534, 535,
            // 538 authentication required, too weak, failed, or needs encryption.
            SendError::Rejected { code, .. } => {
                matches!(code, 421 | 454 | 530 | 534 | 535 | 538)
            }
            SendError::Message(_) => false,
        }
    }
}

/// The mailer could not be set up from the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(pub String);

/// An SMTP client for the `[email]` settings. Each delivery is one session of its own
/// (connect, EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA, QUIT), driven here step by step so that
/// the caller learns of the server's acceptance before the goodbye, which a server may stall.
pub struct Mailer {
    /// The host name or address to connect to, without IPv6 brackets.
    connect_host: String,
    port: u16,
    tls: Tls,
    credentials: Option<Credentials>,
    timeout: Duration,
    hello: ClientId,
    from: Mailbox,
    to: Vec<Mailbox>,
    /// `smtp.example.com:587 (STARTTLS)`, for messages.
    server: String,
    /// Where our Message-IDs live: the sender address's domain.
    id_domain: String,
    /// This machine's name, part of keyed Message-IDs.
    host: String,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No credentials in here, but the transport's Debug would print them.
        f.debug_struct("Mailer")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .field("to", &self.to.len())
            .finish()
    }
}

impl Mailer {
    /// A mailer for `cfg`, with the password from [`Config::email_password`] and, optionally,
    /// the PEM text of an extra CA certificate (or bundle) to trust besides the webpki roots.
    pub fn new(
        cfg: &Email,
        password: Option<String>,
        extra_ca_pem: Option<Vec<u8>>,
    ) -> Result<Mailer, SetupError> {
        Self::with_timeout(cfg, password, extra_ca_pem, DEFAULT_TIMEOUT)
    }

    /// [`Mailer::new`] with another connect and per-command timeout.
    pub fn with_timeout(
        cfg: &Email,
        password: Option<String>,
        extra_ca_pem: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Mailer, SetupError> {
        let host = cfg
            .smtp_host
            .as_deref()
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .ok_or_else(|| SetupError("email.smtp_host is not set".into()))?;
        let from = cfg
            .from
            .as_deref()
            .ok_or_else(|| SetupError("email.from is not set".into()))
            .and_then(|a| mailbox("email.from", a))?;
        if cfg.to.is_empty() {
            return Err(SetupError("email.to has no address".into()));
        }
        let to = cfg
            .to
            .iter()
            .map(|a| mailbox("email.to", a))
            .collect::<Result<Vec<_>, _>>()?;

        let mode = match cfg.tls {
            TlsMode::Starttls => "STARTTLS",
            TlsMode::Tls => "TLS",
            TlsMode::None => "no encryption",
        };
        let server = format!("{host}:{} ({mode})", cfg.smtp_port);

        let tls = match cfg.tls {
            TlsMode::None => {
                if !crate::config::is_loopback_host(host) {
                    return Err(SetupError(format!(
                        "email.tls = \"none\" is allowed only to a loopback host, not {host:?}"
                    )));
                }
                Tls::None
            }
            TlsMode::Starttls => Tls::Required(tls_parameters(host, extra_ca_pem)?),
            TlsMode::Tls => Tls::Wrapper(tls_parameters(host, extra_ca_pem)?),
        };

        let credentials = match (&cfg.username, password) {
            (Some(user), Some(pass)) => Some(Credentials::new(user.clone(), pass)),
            (Some(_), None) => {
                return Err(SetupError(
                    "email.username is set but there is no password (email.password, \
                     email.password_file or SYSMON_EMAIL__PASSWORD)"
                        .into(),
                ));
            }
            (None, Some(_)) => {
                return Err(SetupError(
                    "a password is configured but email.username is not set".into(),
                ));
            }
            (None, None) => None,
        };

        Ok(Mailer {
            // `[::1]` is how an IPv6 address is written next to a port; resolvers and
            // certificates want it bare.
            connect_host: bare_host(host).to_string(),
            port: cfg.smtp_port,
            tls,
            credentials,
            timeout,
            hello: ClientId::default(),
            id_domain: from.email.domain().to_string(),
            from,
            to,
            server,
            host: message_id_part(&local_hostname()),
        })
    }

    /// `smtp.example.com:587 (STARTTLS)`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The configured recipients, for messages.
    pub fn recipients(&self) -> String {
        self.to
            .iter()
            .map(|m| m.email.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Build the RFC 5322 message for `mail`, as it will go on the wire.
    pub fn message(&self, mail: &Mail, key: Option<&str>) -> Result<Message, SendError> {
        // The renderer already produced a clean subject; this is the last line of defence for
        // mail that reached the outbox some other way.
        let subject = if sanitize::is_clean(&mail.subject) {
            mail.subject.clone()
        } else {
            sanitize::clean(&mail.subject)
        };
        let body: String = mail
            .body
            .lines()
            .map(|l| sanitize::clean(l) + "\n")
            .collect();
        let message_id = key.map(|k| {
            format!(
                "<sysmon.{}.{}@{}>",
                message_id_part(k),
                self.host,
                self.id_domain
            )
        });
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .message_id(message_id)
            .header(ContentType::TEXT_PLAIN)
            .header(SeverityHeader(mail.severity.as_str().to_ascii_uppercase()))
            .header(AutoSubmitted);
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        builder
            .body(body)
            .map_err(|e| SendError::Message(e.to_string()))
    }

    /// Deliver `mail`, returning the server's reply to the message (`250 2.0.0 Ok: queued`).
    /// `accepted` runs as soon as that reply is in, before QUIT: what the server does after
    /// accepting (answer QUIT, stall, hang up) changes nothing about the delivery.
    pub fn deliver(
        &self,
        mail: &Mail,
        key: Option<&str>,
        accepted: &mut dyn FnMut(),
    ) -> Result<String, SendError> {
        let message = self.message(mail, key)?;
        let err = |e: lettre::transport::smtp::Error| send_error(&e, &self.server);
        let mut conn = self.connect().map_err(err)?;
        let reply = match conn.send(message.envelope(), &message.formatted()) {
            Ok(reply) => reply,
            Err(e) => {
                conn.abort();
                return Err(err(e));
            }
        };
        accepted();
        // The goodbye is a courtesy: its answer, or the lack of one, is not waited for beyond
        // the command timeout and not reported.
        conn.abort();
        let text: Vec<&str> = reply.message().collect();
        Ok(format!("{} {}", reply.code(), text.join(" ")))
    }

    /// An open session, greeted, encrypted as configured and authenticated.
    fn connect(&self) -> Result<SmtpConnection, lettre::transport::smtp::Error> {
        let wrapper = match &self.tls {
            Tls::Wrapper(params) => Some(params),
            _ => None,
        };
        let mut conn = SmtpConnection::connect(
            (self.connect_host.as_str(), self.port),
            Some(self.timeout),
            &self.hello,
            wrapper,
            None,
        )?;
        match self.secure(&mut conn) {
            Ok(()) => Ok(conn),
            Err(e) => {
                conn.abort();
                Err(e)
            }
        }
    }

    /// STARTTLS when it is required (never downgraded: a server that does not offer it fails),
    /// then AUTH when credentials are configured.
    fn secure(&self, conn: &mut SmtpConnection) -> Result<(), lettre::transport::smtp::Error> {
        if let Tls::Required(params) = &self.tls {
            conn.starttls(params, &self.hello)?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)?;
        }
        Ok(())
    }
}

impl Transport for Mailer {
    fn send(&self, mail: &Mail) -> Result<(), SendError> {
        self.deliver(mail, None, &mut || {}).map(drop)
    }

    fn send_keyed(
        &self,
        mail: &Mail,
        key: &str,
        accepted: &mut dyn FnMut(),
    ) -> Result<(), SendError> {
        self.deliver(mail, Some(key), accepted).map(drop)
    }
}

/// `sysmon test-email`: send a test message now, bypassing the outbox, and say what the
/// server answered either way.
pub fn send_test(cfg: &Config) -> Result<String, String> {
    let password = cfg.email_password()?;
    let mailer = Mailer::new(&cfg.email, password, extra_ca(cfg)?).map_err(|e| e.to_string())?;
    let mail = render::test_mail(
        &local_hostname(),
        mailer.server(),
        Timestamp::now(),
        &TimeZone::system(),
    );
    let reply = mailer
        .deliver(&mail, None, &mut || {})
        .map_err(|e| e.to_string())?;
    let mut line = format!(
        "test message sent to {} through {}; the server answered: {reply}",
        mailer.recipients(),
        mailer.server()
    );
    if !cfg.email.enabled {
        line.push_str(" (email.enabled is false: alerts are not mailed until it is true)");
    }
    Ok(line)
}

/// The extra CA certificates to trust, from `email.ca_file`.
fn extra_ca(cfg: &Config) -> Result<Option<Vec<u8>>, String> {
    cfg.email.ca_file.as_deref().map(read_ca_file).transpose()
}

/// Read a PEM CA file for [`Mailer::new`], with an error that names the file.
pub fn read_ca_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn tls_parameters(host: &str, extra_ca_pem: Option<Vec<u8>>) -> Result<TlsParameters, SetupError> {
    let domain = bare_host(host).to_string();
    let mut builder =
        TlsParameters::builder(domain).certificate_store(CertificateStore::WebpkiRoots);
    if let Some(pem) = extra_ca_pem {
        // An empty or non-PEM file would otherwise be accepted as "no extra certificates" and
        // fail later with an unhelpful "unknown issuer".
        if !pem
            .windows(b"-----BEGIN CERTIFICATE-----".len())
            .any(|w| w == b"-----BEGIN CERTIFICATE-----")
        {
            return Err(SetupError(
                "the extra CA file holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
            ));
        }
        let cert = Certificate::from_pem(&pem).map_err(|e| {
            SetupError(format!(
                "the extra CA file is not a valid PEM certificate: {e}"
            ))
        })?;
        builder = builder.add_root_certificate(cert);
    }
    builder
        .build_rustls()
        .map_err(|e| SetupError(format!("cannot set up TLS for {host}: {}", chain(&e))))
}

fn mailbox(key: &str, addr: &str) -> Result<Mailbox, SetupError> {
    addr.parse()
        .map_err(|e| SetupError(format!("{key}: {addr:?} is not a usable address: {e}")))
}

fn bare_host(host: &str) -> &str {
    host.trim_start_matches('[').trim_end_matches(']')
}

fn send_error(e: &lettre::transport::smtp::Error, server: &str) -> SendError {
    if let Some(code) = e.status() {
        let code = code.to_string().parse().unwrap_or(0);
        let text = e.source().map(|s| s.to_string()).unwrap_or_default();
        return SendError::Rejected { code, text };
    }
    let detail = chain(e);
    if e.is_client() {
        SendError::Protocol {
            server: server.to_string(),
            detail,
        }
    } else {
        SendError::Connection {
            server: server.to_string(),
            detail,
        }
    }
}

/// An error and its causes on one line, skipping a cause whose text its parent already shows.
fn chain(e: &dyn StdError) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(cause) = cur {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = cause.source();
    }
    out
}

fn local_hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// Characters allowed in the local part of our Message-IDs.
fn message_id_part(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if out.is_empty() { "host".into() } else { out }
}

/// `X-Sysmon-Severity: HIGH`, for mail filters.
#[derive(Debug, Clone)]
struct SeverityHeader(String);

const SEVERITY_HEADER: HeaderName = HeaderName::new_from_ascii_str("X-Sysmon-Severity");
const AUTO_SUBMITTED: HeaderName = HeaderName::new_from_ascii_str("Auto-Submitted");

impl Header for SeverityHeader {
    fn name() -> HeaderName {
        SEVERITY_HEADER
    }

    fn parse(s: &str) -> Result<Self, Box<dyn StdError + Send + Sync>> {
        Ok(SeverityHeader(s.to_string()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `Auto-Submitted: auto-generated` (RFC 3834), so that vacation responders do not answer
/// alerts.
#[derive(Debug, Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        AUTO_SUBMITTED
    }

    fn parse(_: &str) -> Result<Self, Box<dyn StdError + Send + Sync>> {
        Ok(AutoSubmitted)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_string())
    }
}
