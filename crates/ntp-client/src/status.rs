//! `ntp-client status` and `ntp-client wait-sync`: ask a running
//! `ntp-client sync` through its status socket (one JSON [`Status`] per
//! connection).
//!
//! - `status` prints a table like `chronyc tracking` and `chronyc sources`,
//!   or with `--json` the daemon's document as is (at least `synchronized`,
//!   `offset`, `frequency_ppm`, `root_distance` and `sources`, each with
//!   `address`, `state`, `stratum`, `reach`, `offset`, `delay`, `jitter`,
//!   `nts`). Exit 0, or 1 if the daemon cannot be reached.
//! - `wait-sync` exits 0 as soon as the daemon is synchronised with
//!   |offset| ≤ `--max-offset` milliseconds, and 1 when `--timeout` seconds
//!   pass first (a gate for services that must not start on bad time).

use std::io::Read as _;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use ntp_io::sync::Status;

use crate::EXIT_FAILED;
use crate::sync::DEFAULT_SOCKET;

/// Arguments of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The daemon's status socket (its `observation-path`).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// Print the daemon's JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `wait-sync`.
#[derive(Debug, Args)]
pub struct WaitSyncArgs {
    /// Largest acceptable |offset|, milliseconds.
    #[arg(long, value_name = "MS", value_parser = non_negative)]
    pub max_offset: f64,
    /// Give up after this many seconds (exit 1).
    #[arg(long, value_name = "S", value_parser = non_negative)]
    pub timeout: f64,
    /// The daemon's status socket (its `observation-path`).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
}

fn non_negative(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if (0.0..1e9).contains(&v) => Ok(v),
        _ => Err(format!("{text:?} is not a non-negative number")),
    }
}

/// Reads one status document from the socket at `path`.
///
/// # Errors
/// If the daemon cannot be reached or sends something else.
pub fn fetch(path: &Path) -> Result<Status, String> {
    let stream =
        UnixStream::connect(path).map_err(|e| format!("cannot reach {}: {e}", path.display()))?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut text = String::new();
    stream
        .take(16 << 20)
        .read_to_string(&mut text)
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("bad status from {}: {e}", path.display()))
}

/// Runs `status`.
pub fn run_status(args: &StatusArgs) -> ExitCode {
    let status = match fetch(&args.socket) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    if args.json {
        match serde_json::to_string(&status) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_FAILED);
            }
        }
    } else {
        print!("{}", table(&status));
    }
    ExitCode::SUCCESS
}

/// Seconds as a short human figure (ns/us/ms/s), signed when asked.
fn human(seconds: f64, signed: bool) -> String {
    let a = seconds.abs();
    let (v, unit) = if a < 1e-6 {
        (seconds * 1e9, "ns")
    } else if a < 1e-3 {
        (seconds * 1e6, "us")
    } else if a < 1.0 {
        (seconds * 1e3, "ms")
    } else {
        (seconds, "s")
    };
    if signed {
        format!("{v:+.1}{unit}")
    } else {
        format!("{v:.1}{unit}")
    }
}

/// The `chronyc tracking` + `chronyc sources`-like text.
pub fn table(s: &Status) -> String {
    let mut out = String::new();
    let state = if s.synchronized {
        "synchronized".to_string()
    } else {
        format!(
            "unsynchronized ({})",
            s.reason.as_deref().unwrap_or("unknown")
        )
    };
    let ahead = if s.offset >= 0.0 { "slow" } else { "fast" };
    out += &format!(
        "Reference ID    : {}\n",
        if s.reference_id.is_empty() {
            "-"
        } else {
            &s.reference_id
        }
    );
    out += &format!("Stratum         : {}\n", s.stratum);
    out += &format!(
        "System time     : {:.9} seconds {ahead} of NTP time\n",
        s.offset.abs()
    );
    out += &format!("Frequency       : {:+.3} ppm\n", s.frequency_ppm);
    out += &format!("Root delay      : {:.9} seconds\n", s.root_delay);
    out += &format!("Root dispersion : {:.9} seconds\n", s.root_dispersion);
    out += &format!("Root distance   : {:.9} seconds\n", s.root_distance);
    out += &format!("Sync state      : {state}\n");
    out += &format!(
        "Clock           : {}\n",
        if s.steering {
            "steered"
        } else {
            "observed only (virtual correction)"
        }
    );
    out += "\n";
    out += &format!(
        "{:<1} {:<11} {:<28} {:>2} {:>4} {:>5} {:>10} {:>9} {:>9} {:>3} {:>7}\n",
        "",
        "State",
        "Address",
        "St",
        "Poll",
        "Reach",
        "Offset",
        "Delay",
        "Jitter",
        "NTS",
        "Cookies"
    );
    for src in &s.sources {
        let mark = match (src.system_peer, src.state.as_str()) {
            (true, _) => "*",
            (_, "selected") => "+",
            (_, "candidate") => "-",
            (_, "falseticker") => "x",
            _ => "?",
        };
        out += &format!(
            "{mark:<1} {:<11} {:<28} {:>2} {:>4} {:>5o} {:>10} {:>9} {:>9} {:>3} {:>7}\n",
            src.state,
            src.address,
            src.stratum,
            src.poll,
            src.reach,
            human(src.offset, true),
            human(src.delay, false),
            human(src.jitter, false),
            if src.nts { "yes" } else { "no" },
            src.cookies
                .map_or_else(|| "-".to_string(), |c| c.to_string()),
        );
    }
    out
}

/// Runs `wait-sync`.
pub fn run_wait_sync(args: &WaitSyncArgs) -> ExitCode {
    let deadline = Instant::now() + Duration::from_secs_f64(args.timeout);
    let bound = args.max_offset / 1000.0;
    loop {
        let last = match fetch(&args.socket) {
            Ok(s) if s.synchronized && s.offset.abs() <= bound => {
                println!(
                    "synchronized: offset {} (bound {} ms)",
                    human(s.offset, true),
                    args.max_offset
                );
                return ExitCode::SUCCESS;
            }
            Ok(s) if s.synchronized => format!(
                "synchronized but offset {} exceeds {} ms",
                human(s.offset, true),
                args.max_offset
            ),
            Ok(s) => format!(
                "not synchronized: {}",
                s.reason.as_deref().unwrap_or("unknown")
            ),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            eprintln!("timed out after {} s: {last}", args.timeout);
            return ExitCode::from(EXIT_FAILED);
        }
        std::thread::sleep(
            Duration::from_millis(250).min(deadline.saturating_duration_since(Instant::now())),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ntp_io::sync::SourceStatus;

    #[test]
    fn table_lists_sources_with_tally_marks() {
        let s = Status {
            synchronized: true,
            offset: 12e-6,
            stratum: 2,
            reference_id: "127.0.0.1".into(),
            sources: vec![
                SourceStatus {
                    address: "127.0.0.1:123".into(),
                    state: "selected".into(),
                    system_peer: true,
                    reach: 0o377,
                    ..SourceStatus::default()
                },
                SourceStatus {
                    address: "127.0.0.1:124".into(),
                    state: "falseticker".into(),
                    offset: 2.0,
                    ..SourceStatus::default()
                },
            ],
            ..Status::default()
        };
        let t = table(&s);
        assert!(t.contains("Sync state      : synchronized"), "{t}");
        assert!(t.contains("* selected"), "{t}");
        assert!(t.contains("x falseticker"), "{t}");
        assert!(t.contains("377"), "{t}");
        assert!(t.contains("+2.0s"), "{t}");
    }
}
