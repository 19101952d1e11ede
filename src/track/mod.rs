//! The tracker: thresholds, persistent users, status and the alert lifecycle, as a pure state
//! machine over timestamped snapshots.
