//! Tests for rendering, the outbox sender and the SMTP mailer. The mailer's tests run a real
//! SMTP server in-process on 127.0.0.1 (see `server`), with plain, STARTTLS and implicit TLS.

mod fixtures;
mod render;
mod sender;
mod server;
mod smtp;
