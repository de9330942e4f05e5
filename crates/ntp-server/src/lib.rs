//! `ntp-server`: an NTP and NTS server.
//!
//! - [`core`]: the sans-IO request handler (access control, rate limiting,
//!   plain and NTS answers, counters). Bytes and time in, bytes out.
//! - [`config`]: the TOML configuration (ntpd-rs compatible) and its checks.

pub mod config;
pub mod core;

use std::ffi::OsString;
use std::process::ExitCode;

/// Parses `args` and runs the command; returns the process exit status.
pub fn main_with_args<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let _ = args.into_iter().count();
    ExitCode::SUCCESS
}
