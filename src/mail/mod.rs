//! Email notifications: rendering events into mail, and delivering the outbox over SMTP.
//!
//! Named `mail` rather than `notify`, which is the file-watching crate the daemon's reload uses.
//!
//! Mail is never sent straight from the engine. The store writes each notification into an
//! outbox table in the same transaction as the alert it is about, and a sender delivers the
//! outbox with retries: an SMTP outage delays mail but loses none. A mail is marked sent the
//! moment the server accepts it, before the session's goodbye, so the only way a duplicate can
//! occur is a crash between that reply and the commit; the copy carries the same Message-ID.
//!
//! The pieces are kept apart so that each can be tested without the others:
//! - [`render`] is pure: an [`Event`](crate::model::Event) in, a [`Mail`](crate::model::Mail)
//!   (or nothing) out. What an email says is decided once, when the alert fires, and stored, so a
//!   mail delayed by an outage still describes the moment it is about.
//! - [`smtp`] is the only code that talks to a mail server ([`Mailer`]).
//! - [`sender`] is the outbox worker: ordering, retries, backoff and `max_per_hour`, written
//!   against the [`Outbox`](queue::Outbox) and [`Transport`] traits so that its rules are tested
//!   with an in-memory queue and a scripted server.

pub mod queue;
pub mod render;
pub mod sender;
pub mod smtp;

pub use render::{digest, mail_for};
pub use sender::{SendEvent, SendReport, Sender};
pub use smtp::{Mailer, SendError, SetupError, Transport, send_test};

#[cfg(test)]
mod tests;
