//! The `ntp-monitor` command.

fn main() {}
