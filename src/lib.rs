//! sysmon: a system monitor for shared multi-user Linux servers.
//!
//! Data flows one way: `collect` reads raw counters from /proc, `derive` turns two raw samples into
//! a [`model::Snapshot`] (rates, per-user totals), `track` decides thresholds, persistence, status
//! and alerts, and sinks (the TUI, the `--once`/`--batch` report, the SQLite store, email, HTTP)
//! consume the results. The stages before the sinks never import a sink.

pub mod admin;
pub mod app;
pub mod cli;
pub mod collect;
pub mod config;
pub mod counters;
pub mod derive;
pub mod docs;
pub mod engine;
pub mod format;
pub mod headless;
pub mod http;
pub mod json;
pub mod lock;
pub mod log;
pub mod mail;
pub mod model;
pub mod operator;
pub mod report;
pub mod sanitize;
pub mod store;
pub mod time;
pub mod track;
pub mod ui;
