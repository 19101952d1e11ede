//! A small but real SMTP server for the mailer's tests: plain, STARTTLS and implicit TLS (rustls,
//! with a certificate generated per test by rcgen), AUTH PLAIN and LOGIN, and scripted refusals.
//!
//! It listens on 127.0.0.1 on an ephemeral port and serves one connection at a time (the mailer
//! opens one per mail). Every socket has read and write timeouts, the accept loop polls a stop
//! flag and gives up on its own after a minute, so no test can hang on it.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

const IO_TIMEOUT: Duration = Duration::from_secs(5);
const SERVER_LIFETIME: Duration = Duration::from_secs(60);
/// How long a test waits for a mail to arrive.
pub const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// No TLS at all (and no STARTTLS offered).
    Plain,
    /// Plain greeting, STARTTLS offered.
    StartTls,
    /// TLS from the first byte.
    Implicit,
}

/// A certificate for `127.0.0.1` and `localhost`, self-signed, made for one test.
pub struct TestCert {
    pub pem: String,
    config: Arc<ServerConfig>,
}

impl TestCert {
    pub fn generate() -> TestCert {
        let ck = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_string(),
            "localhost".to_string(),
        ])
        .expect("generate a certificate");
        let cert_der: CertificateDer<'static> = ck.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert_der], key)
            .expect("server certificate");
        TestCert {
            pem: ck.cert.pem(),
            config: Arc::new(config),
        }
    }
}

#[derive(Clone)]
pub struct Options {
    pub security: Security,
    /// AUTH mechanisms to advertise (`PLAIN`, `LOGIN`); empty: no AUTH.
    pub auth: Vec<&'static str>,
    /// A full reply line to answer every RCPT with, e.g. `550 5.1.1 ... unknown`.
    pub reject_rcpt: Option<String>,
    /// A full reply line to answer the end of DATA with.
    pub reject_data: Option<String>,
    /// Accept the connection, then never answer.
    pub mute: bool,
    /// Accept each message (250 to the end of DATA), then answer nothing more until the client
    /// hangs up: a server that stalls between accepting a mail and saying goodbye.
    pub stall_after_data: bool,
}

impl Options {
    pub fn new(security: Security) -> Options {
        Options {
            security,
            auth: Vec::new(),
            reject_rcpt: None,
            reject_data: None,
            mute: false,
            stall_after_data: false,
        }
    }
}

/// One mail as the server received it.
#[derive(Debug, Clone, Default)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent after DATA, dot-unstuffed, lines joined with CRLF.
    pub data: String,
    /// (mechanism, user, password) if the client authenticated.
    pub auth: Option<(String, String, String)>,
    /// The mail came over TLS.
    pub tls: bool,
}

impl Received {
    /// The value of the first header named `name` (unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = value.as_mut() {
                if line.starts_with([' ', '\t']) {
                    v.push_str(line);
                    continue;
                }
                break;
            }
            if let Some((n, v)) = line.split_once(':')
                && n.eq_ignore_ascii_case(name)
            {
                value = Some(v.trim_start().to_string());
            }
        }
        value
    }

    pub fn body(&self) -> String {
        self.data
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.replace("\r\n", "\n"))
            .unwrap_or_default()
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    mails: Receiver<Received>,
    /// Every command line received, prefixed `TLS ` when it came encrypted.
    transcript: Arc<Mutex<Vec<String>>>,
    /// Sessions that ended with an error (a failed TLS handshake, a timeout).
    session_errors: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    pub fn start(options: Options, cert: Option<&TestCert>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        Self::serve(listener, options, cert)
    }

    /// Listen on a port chosen earlier (a server that comes back).
    pub fn start_on(port: u16, options: Options, cert: Option<&TestCert>) -> TestServer {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the same port again");
        Self::serve(listener, options, cert)
    }

    fn serve(listener: TcpListener, options: Options, cert: Option<&TestCert>) -> TestServer {
        let addr = listener.local_addr().expect("local address");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let tls = cert.map(|c| Arc::clone(&c.config));
        if options.security != Security::Plain {
            assert!(tls.is_some(), "a TLS test server needs a certificate");
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let transcript = Arc::new(Mutex::new(Vec::new()));
        let session_errors = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let stop = Arc::clone(&stop);
            let transcript = Arc::clone(&transcript);
            let session_errors = Arc::clone(&session_errors);
            thread::spawn(move || {
                let deadline = Instant::now() + SERVER_LIFETIME;
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let s = Session {
                                options: &options,
                                tls: tls.clone(),
                                mails: &tx,
                                transcript: &transcript,
                            };
                            if let Err(e) = s.run(stream) {
                                lock(&session_errors).push(e.to_string());
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            thread::sleep(Duration::from_millis(5));
                        }
                        Err(_) => break,
                    }
                }
            })
        };
        TestServer {
            addr,
            stop,
            mails: rx,
            transcript,
            session_errors,
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The next mail, or None after [`WAIT`].
    pub fn next_mail(&self) -> Option<Received> {
        self.mails.recv_timeout(WAIT).ok()
    }

    /// Mails already received, without waiting.
    pub fn drain(&self) -> Vec<Received> {
        self.mails.try_iter().collect()
    }

    pub fn transcript(&self) -> Vec<String> {
        lock(&self.transcript).clone()
    }

    pub fn session_errors(&self) -> Vec<String> {
        lock(&self.session_errors).clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            // Bounded: the loop polls the flag, and a session in progress times out.
            let _ = t.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

enum Conn {
    Plain(BufReader<TcpStream>),
    Tls(Box<BufReader<StreamOwned<ServerConnection, TcpStream>>>),
}

impl Conn {
    fn is_tls(&self) -> bool {
        matches!(self, Conn::Tls(_))
    }

    fn tls(tcp: TcpStream, config: Arc<ServerConfig>) -> io::Result<Conn> {
        let conn = ServerConnection::new(config).map_err(io::Error::other)?;
        Ok(Conn::Tls(Box::new(BufReader::new(StreamOwned::new(
            conn, tcp,
        )))))
    }

    fn upgrade(self, config: Arc<ServerConfig>) -> io::Result<Conn> {
        match self {
            Conn::Plain(r) => {
                if !r.buffer().is_empty() {
                    return Err(io::Error::other("data pipelined after STARTTLS"));
                }
                Conn::tls(r.into_inner(), config)
            }
            tls => Ok(tls),
        }
    }

    fn send(&mut self, line: &str) -> io::Result<()> {
        let bytes = format!("{line}\r\n");
        match self {
            Conn::Plain(r) => {
                r.get_mut().write_all(bytes.as_bytes())?;
                r.get_mut().flush()
            }
            Conn::Tls(r) => {
                r.get_mut().write_all(bytes.as_bytes())?;
                r.get_mut().flush()
            }
        }
    }

    /// One line without its CRLF; an error at end of stream.
    fn line(&mut self) -> io::Result<String> {
        let mut buf = Vec::new();
        let n = match self {
            Conn::Plain(r) => r.read_until(b'\n', &mut buf)?,
            Conn::Tls(r) => r.read_until(b'\n', &mut buf)?,
        };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "client hung up",
            ));
        }
        while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            buf.pop();
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

struct Session<'a> {
    options: &'a Options,
    tls: Option<Arc<ServerConfig>>,
    mails: &'a Sender<Received>,
    transcript: &'a Mutex<Vec<String>>,
}

impl Session<'_> {
    fn run(&self, tcp: TcpStream) -> io::Result<()> {
        tcp.set_nonblocking(false)?;
        tcp.set_read_timeout(Some(IO_TIMEOUT))?;
        tcp.set_write_timeout(Some(IO_TIMEOUT))?;
        if self.options.mute {
            // Hold the connection open without a greeting until the client gives up.
            let mut tcp = tcp;
            let mut sink = [0u8; 64];
            let _ = tcp.read(&mut sink);
            return Ok(());
        }
        let mut conn = match (self.options.security, &self.tls) {
            (Security::Implicit, Some(cfg)) => Conn::tls(tcp, Arc::clone(cfg))?,
            _ => Conn::Plain(BufReader::new(tcp)),
        };
        conn.send("220 sysmon-test ESMTP ready")?;
        let mut mail = Received::default();
        loop {
            let line = conn.line()?;
            lock(self.transcript)
                .push(format!("{}{line}", if conn.is_tls() { "TLS " } else { "" }));
            let upper = line.to_ascii_uppercase();
            let verb = upper.split_whitespace().next().unwrap_or("");
            match verb {
                "EHLO" => {
                    conn.send("250-sysmon-test")?;
                    if self.options.security == Security::StartTls && !conn.is_tls() {
                        conn.send("250-STARTTLS")?;
                    }
                    if !self.options.auth.is_empty() {
                        conn.send(&format!("250-AUTH {}", self.options.auth.join(" ")))?;
                    }
                    conn.send("250-8BITMIME")?;
                    conn.send("250 SIZE 10485760")?;
                }
                "HELO" => conn.send("250 sysmon-test")?,
                "STARTTLS" => match (&self.tls, self.options.security, conn.is_tls()) {
                    (Some(cfg), Security::StartTls, false) => {
                        conn.send("220 2.0.0 Ready to start TLS")?;
                        conn = conn.upgrade(Arc::clone(cfg))?;
                    }
                    _ => conn.send("502 5.5.1 STARTTLS not available")?,
                },
                "AUTH" => {
                    let auth = self.auth(&mut conn, &line)?;
                    conn.send("235 2.7.0 Authentication successful")?;
                    mail.auth = Some(auth);
                }
                "MAIL" => {
                    mail.from = angle(&line);
                    conn.send("250 2.1.0 Ok")?;
                }
                "RCPT" => match &self.options.reject_rcpt {
                    Some(reply) => conn.send(reply)?,
                    None => {
                        mail.to.push(angle(&line));
                        conn.send("250 2.1.5 Ok")?;
                    }
                },
                "DATA" => {
                    conn.send("354 End data with <CR><LF>.<CR><LF>")?;
                    let mut lines = Vec::new();
                    loop {
                        let l = conn.line()?;
                        if l == "." {
                            break;
                        }
                        lines.push(l.strip_prefix('.').map(str::to_string).unwrap_or(l));
                    }
                    match &self.options.reject_data {
                        Some(reply) => conn.send(reply)?,
                        None => {
                            mail.data = lines.join("\r\n");
                            mail.tls = conn.is_tls();
                            conn.send("250 2.0.0 Ok: queued as TEST1")?;
                            let _ = self.mails.send(std::mem::take(&mut mail));
                            if self.options.stall_after_data {
                                stall(&mut conn);
                                return Ok(());
                            }
                        }
                    }
                }
                "RSET" => {
                    mail = Received::default();
                    conn.send("250 2.0.0 Ok")?;
                }
                "NOOP" => conn.send("250 2.0.0 Ok")?,
                "QUIT" => {
                    conn.send("221 2.0.0 Bye")?;
                    return Ok(());
                }
                _ => conn.send("500 5.5.2 Error: command not recognized")?,
            }
        }
    }

    fn auth(&self, conn: &mut Conn, line: &str) -> io::Result<(String, String, String)> {
        let mut words = line.split_whitespace().skip(1);
        let mech = words.next().unwrap_or("").to_ascii_uppercase();
        match mech.as_str() {
            "PLAIN" => {
                let initial = match words.next() {
                    Some(w) => w.to_string(),
                    None => {
                        conn.send("334 ")?;
                        conn.line()?
                    }
                };
                let decoded = decode(&initial)?;
                let mut parts = decoded.split('\0').skip(1);
                let user = parts.next().unwrap_or("").to_string();
                let pass = parts.next().unwrap_or("").to_string();
                Ok((mech, user, pass))
            }
            "LOGIN" => {
                conn.send(&format!("334 {}", B64.encode("Username:")))?;
                let user = decode(&conn.line()?)?;
                conn.send(&format!("334 {}", B64.encode("Password:")))?;
                let pass = decode(&conn.line()?)?;
                Ok((mech, user, pass))
            }
            other => Err(io::Error::other(format!("unexpected AUTH {other}"))),
        }
    }
}

/// Read and ignore what the client sends, answering nothing, until it hangs up (or half a
/// minute has passed, so that a test's server always ends).
fn stall(conn: &mut Conn) {
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        match conn.line() {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

fn decode(b64: &str) -> io::Result<String> {
    let bytes = B64.decode(b64.trim()).map_err(io::Error::other)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The address between `<` and `>` in `MAIL FROM:<a@b>` / `RCPT TO:<a@b>`.
fn angle(line: &str) -> String {
    line.split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(a, _)| a.to_string())
        .unwrap_or_default()
}
