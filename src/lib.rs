//! sysmon: a system monitor for shared multi-user Linux servers.
//!
//! Data flows one way: `collect` reads raw counters from /proc, `derive` turns two raw samples into
//! a [`model::Snapshot`] (rates, per-user totals), `track` decides thresholds, persistence, status
//! and alerts, and sinks (the `--once`/`--batch` report, later the store, mail, TUI and HTTP)
//! consume the results. The stages before the sinks never import a sink.

pub mod app;
pub mod cli;
pub mod collect;
pub mod config;
pub mod derive;
pub mod engine;
pub mod format;
pub mod model;
pub mod report;
pub mod sanitize;
pub mod track;
