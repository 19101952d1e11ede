//! UI tests from fixture data: key handling (keys → actions → state, no rendering) and
//! TestBackend snapshots of every view at 80x24 and 160x48.

mod fixture;
mod keys;
mod render;
