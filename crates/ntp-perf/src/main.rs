//! The `ntp-perf` command.

fn main() {}
