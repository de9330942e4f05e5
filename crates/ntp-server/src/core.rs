//! The request handler: filled in by its own change.
