//! `ntp-client query`: one or more samples from a server, plain or NTS.
//!
//! Exit status 0 when every sample succeeded, 1 with one line on standard
//! error naming the failure otherwise (unreachable, refused, TLS or
//! certificate failure, NTS-KE error, NTS NAK, Kiss-o'-Death, unsynchronized
//! server), 2 for bad arguments.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use ntp_io::{Measurement, QueryClient, QueryOptions};
use nts_cookie::AeadAlgorithm;
use serde::Serialize;

use crate::{EXIT_BAD_INPUT, EXIT_FAILED};

/// Arguments of `query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The server: a host name or an address (for NTS, the NTS-KE server).
    pub host: String,
    /// Use NTS (RFC 8915): key exchange over TLS, then authenticated NTP.
    #[arg(long)]
    pub nts: bool,
    /// Trust the CA certificates in this PEM file instead of the system roots.
    #[arg(long, value_name = "FILE", requires = "nts")]
    pub ca: Option<PathBuf>,
    /// NTP port [default: 123; with --nts, the port the NTS-KE server names].
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
    /// NTS-KE port.
    #[arg(long, value_name = "N", default_value_t = ntp_io::DEFAULT_KE_PORT)]
    pub ke_port: u16,
    /// Number of samples.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub count: u32,
    /// Seconds between samples.
    #[arg(long, value_name = "SECS", default_value_t = 1.0, value_parser = positive_seconds)]
    pub interval: f64,
    /// Seconds to wait for each reply (and for the NTS-KE exchange).
    #[arg(long, value_name = "SECS", default_value_t = 2.0, value_parser = positive_seconds)]
    pub timeout: f64,
    /// Extra attempts after a timeout.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub retries: u32,
    /// AEAD algorithms to offer in NTS-KE, most preferred first: 15
    /// (AES-SIV-CMAC-256), 17 (AES-SIV-CMAC-512).
    #[arg(long, value_name = "ID,...", value_delimiter = ',', value_parser = aead_id, requires = "nts")]
    pub aead: Vec<AeadAlgorithm>,
    /// Print one JSON object per sample.
    #[arg(long)]
    pub json: bool,
}

fn aead_id(text: &str) -> Result<AeadAlgorithm, String> {
    text.trim()
        .parse::<u16>()
        .ok()
        .and_then(AeadAlgorithm::from_id)
        .ok_or_else(|| format!("{text:?} is not a supported AEAD id (15 or 17)"))
}

fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.01..=3600.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "{text:?} is not a number of seconds between 0.01 and 3600"
        )),
    }
}

/// One `--json` line: exactly these keys.
#[derive(Debug, Serialize)]
pub struct JsonSample {
    /// The NTP server address queried.
    pub server: String,
    /// Offset in seconds (server minus local).
    pub offset: f64,
    /// Round-trip delay in seconds.
    pub delay: f64,
    /// Stratum.
    pub stratum: u8,
    /// Reference id, 8 hex digits.
    pub reference_id: String,
    /// Leap indicator, 0–3.
    pub leap: u8,
    /// Whether the sample was NTS-authenticated.
    pub nts: bool,
    /// Cookies received in this NTS reply; null without NTS.
    pub cookies: Option<usize>,
}

impl From<&Measurement> for JsonSample {
    fn from(m: &Measurement) -> Self {
        Self {
            server: m.server.to_string(),
            offset: m.offset,
            delay: m.delay,
            stratum: m.stratum,
            reference_id: m.reference_id.to_string(),
            leap: m.leap.to_bits(),
            nts: m.nts.is_some(),
            cookies: m.nts.map(|n| n.cookies_received),
        }
    }
}

/// Runs the subcommand.
pub fn run(args: &QueryArgs) -> ExitCode {
    init_logging();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    if args.ca.as_ref().is_some_and(|p| !p.is_file()) {
        eprintln!(
            "error: --ca {}: no such file",
            args.ca
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    match runtime.block_on(samples(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

async fn samples(args: &QueryArgs) -> Result<(), ntp_io::QueryError> {
    let options = QueryOptions {
        nts: args.nts,
        port: args.port,
        ke_port: args.ke_port,
        ca_file: args.ca.clone(),
        timeout: Duration::from_secs_f64(args.timeout),
        retries: args.retries,
        aead: args.aead.clone(),
    };
    let mut client = QueryClient::connect(&args.host, options).await?;
    for i in 0..args.count {
        if i > 0 {
            tokio::time::sleep(Duration::from_secs_f64(args.interval)).await;
        }
        let m = client.sample().await?;
        if args.json {
            // Serialising plain numbers and strings cannot fail.
            println!(
                "{}",
                serde_json::to_string(&JsonSample::from(&m)).unwrap_or_default()
            );
        } else {
            println!("{}", human(&m));
        }
    }
    Ok(())
}

/// The one-line human summary of a sample.
pub fn human(m: &Measurement) -> String {
    let refid = match (m.stratum, m.reference_id.as_ascii()) {
        (1, Some(name)) => format!("{} ({name})", m.reference_id),
        (2..=15, _) => format!("{} ({})", m.reference_id, m.reference_id.to_ipv4()),
        _ => m.reference_id.to_string(),
    };
    let nts = match m.nts {
        Some(n) => format!(
            "  NTS {} ({}), {} cookie(s) received, {} held",
            n.aead,
            n.aead.id(),
            n.cookies_received,
            n.cookies_held
        ),
        None => "  no authentication".to_string(),
    };
    format!(
        "{}  stratum {}  refid {refid}  leap {} ({})  offset {:+.6} s  delay {:.6} s  root dispersion {:.6} s{nts}",
        m.server,
        m.stratum,
        m.leap.to_bits(),
        m.leap,
        m.offset,
        m.delay,
        m.root_dispersion,
    )
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NTP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
