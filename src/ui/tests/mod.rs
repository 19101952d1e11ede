//! UI tests from fixture data: key handling (keys → actions → state, no rendering) and
//! TestBackend snapshots of every view at 80x24 and 160x48, and the screenshots in
//! `screenshots/` (text, and PNG through `raster`).

pub(crate) mod fixture;
mod keys;
mod raster;
mod render;
