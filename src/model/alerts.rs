//! Alert, event and status types produced by the tracker and consumed by every sink.
