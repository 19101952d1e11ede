//! The daemon's own figures, counted where they happen and read by `/health` and `/metrics`.
//!
//! Plain atomics: the sampling loop and the mail thread only ever add to them, so counting never
//! waits on a lock a slow HTTP reader might hold. A neutral module: the daemon writes them and
//! the HTTP server reads them, without either importing the other.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Counters {
    /// Samples taken (ticks that produced a snapshot).
    pub samples: AtomicU64,
    /// Ticks whose collection failed.
    pub sample_errors: AtomicU64,
    /// Time spent collecting and tracking, summed, in microseconds.
    pub collection_micros: AtomicU64,
    /// The last tick's collection time, in microseconds.
    pub last_collection_micros: AtomicU64,
    /// Mails (and digests) the SMTP server accepted.
    pub emails_sent: AtomicU64,
    /// Delivery attempts that failed.
    pub emails_failed: AtomicU64,
    /// Failed database reads and writes by the sampling loop.
    pub store_errors: AtomicU64,
    /// Whether the last write to the database failed.
    pub store_failing: AtomicBool,
    /// The database was found damaged while running: nothing is written to it any more.
    pub store_damaged: AtomicBool,
    /// Samples waiting in memory for the database.
    pub buffered: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
