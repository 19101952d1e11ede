//! The terminal UI: what `sysmon` with no arguments shows an admin over SSH.
//!
//! The engine runs in-process and the UI only ever sees its results: the UI never reads /proc,
//! and the engine never imports ratatui. Inside, data flows one way: the run loop feeds engine
//! ticks and key actions into `AppState` (pure, unit-tested), and the views draw from the state
//! alone (snapshot-tested with ratatui's TestBackend).

pub mod action;
pub mod alerts;
pub mod columns;
mod db;
pub mod gpu;
pub mod history;
pub mod keymap;
pub mod mouse;
pub mod procs;
mod run;
pub mod signal;
pub mod state;
pub mod theme;
pub mod travel;
pub mod views;
pub mod when;

#[cfg(test)]
pub(crate) mod tests;

pub use run::run;
