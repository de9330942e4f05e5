//! Configuration: filled in by its own change.
