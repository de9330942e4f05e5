//! The `ntp-client` command line: a packet dissector, one-shot queries, and
//! the synchronisation daemon (`sync`) with its `status` and `wait-sync`
//! companions.
//!
//! `main.rs` only calls [`main_with_args`]; each subcommand lives in a module
//! of its own and returns the process exit status, so integration tests can
//! run the real binary and check its output and status.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod decode;
pub mod query;
pub mod status;
pub mod sync;

/// Exit status for input the program cannot use (bad hex, not an NTP packet).
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit status when the time could not be obtained (unreachable server, TLS
/// or certificate failure, NTS NAK, Kiss-o'-Death, …).
pub const EXIT_FAILED: u8 = 1;

/// NTP/NTS client tools.
#[derive(Debug, Parser)]
#[command(name = "ntp-client", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Dissect one NTP packet given as hex (argument, or standard input).
    Decode(decode::DecodeArgs),
    /// Ask a server for the time, plain or with NTS, like `sntp` or `chronyd -Q`.
    Query(query::QueryArgs),
    /// Run the synchronisation daemon on the `[[source]]`s of a
    /// configuration file (observe only unless the configuration says so).
    Sync(sync::SyncArgs),
    /// Show the running daemon's sources and combined estimate.
    Status(status::StatusArgs),
    /// Wait until the running daemon is synchronised within a bound: exit 0,
    /// or 1 on timeout.
    WaitSync(status::WaitSyncArgs),
}

/// Parses `args` and runs the subcommand; returns the process exit status.
pub fn main_with_args<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (status 0) and usage errors
            // to stderr (status 2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_BAD_INPUT } else { 0 });
        }
    };
    match cli.command {
        Command::Decode(args) => decode::run(&args),
        Command::Query(args) => query::run(&args),
        Command::Sync(args) => sync::run(&args),
        Command::Status(args) => status::run_status(&args),
        Command::WaitSync(args) => status::run_wait_sync(&args),
    }
}
