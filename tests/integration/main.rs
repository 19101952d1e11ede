//! sysmon's integration tests: one binary, one module per area.

mod cli;
mod collector;
mod config;
mod gpu;
mod headless;
mod http;
mod schema;
mod support;
mod tui;
// The mailer's own test server (plain, STARTTLS, implicit TLS), shared rather than copied.
#[allow(dead_code)]
#[path = "../../src/mail/tests/server.rs"]
mod server;
