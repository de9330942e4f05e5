//! The command line: `ntp-perf plain|nts|ke [options] HOST` and
//! `ntp-perf sweep plain|nts [options] HOST --from R --to R (--step R | --factor F)`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{Config, Mode, Rate};

/// Load generator for NTP and NTS servers (loopback only unless --allow-remote).
#[derive(Debug, Parser)]
#[command(name = "ntp-perf", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Plain NTPv4 client requests.
    Plain(RunArgs),
    /// NTS-protected requests after one NTS-KE per client.
    Nts(RunArgs),
    /// Full NTS-KE handshakes (TLS 1.3, no resumption).
    Ke(RunArgs),
    /// Raise the rate step by step until loss reaches 0.1 %.
    Sweep(SweepArgs),
}

/// Options of a run.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Requests (handshakes for ke) per second, e.g. 50000, 50k, or "unlimited".
    #[arg(long, default_value = "1000")]
    pub rate: Rate,
    /// Seconds to send (at most 600).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Most requests outstanding (for ke: concurrent handshakes). Default 1024, ke 8.
    #[arg(long)]
    pub inflight: Option<usize>,
    /// UDP sockets (distinct source ports) to spread the load over.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Report the CPU time of this process (the server) over the window.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// NTP port (default 123; for nts, the port the key exchange names).
    #[arg(long)]
    pub port: Option<u16>,
    /// NTS-KE port.
    #[arg(long, default_value_t = ntp_io::DEFAULT_KE_PORT)]
    pub ke_port: u16,
    /// PEM CA certificate that signed the NTS-KE server's certificate.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Seconds a request may wait for its reply before it counts as lost.
    #[arg(long, default_value_t = 1.0)]
    pub timeout: f64,
    /// Allow a target that is not a loopback address (only servers you run!).
    #[arg(long)]
    pub allow_remote: bool,
    /// The server.
    pub host: String,
}

/// Which mode a sweep loads.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SweepMode {
    /// Plain NTP.
    Plain,
    /// NTS.
    Nts,
}

/// Options of a sweep.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Mode to sweep.
    pub mode: SweepMode,
    /// First rate.
    #[arg(long)]
    pub from: f64,
    /// Last rate.
    #[arg(long)]
    pub to: f64,
    /// Added to the rate at each step.
    #[arg(long)]
    pub step: Option<f64>,
    /// Multiplies the rate at each step.
    #[arg(long)]
    pub factor: Option<f64>,
    /// The common options (--rate is ignored).
    #[command(flatten)]
    pub run: RunArgs,
}

impl RunArgs {
    /// The [`Config`] these options describe.
    ///
    /// # Errors
    /// A message for a duration or timeout that is not a positive number.
    pub fn config(&self, mode: Mode) -> Result<Config, String> {
        let seconds = |v: f64, what: &str| {
            Duration::try_from_secs_f64(v)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| format!("--{what} must be a positive number of seconds"))
        };
        let mut config = Config::new(mode, self.host.clone());
        config.rate = self.rate;
        config.duration = seconds(self.duration, "duration")?;
        config.reply_timeout = seconds(self.timeout, "timeout")?;
        if let Some(n) = self.inflight {
            config.inflight = n;
        }
        config.clients = self.clients;
        config.server_pid = self.server_pid;
        config.port = self.port;
        config.ke_port = self.ke_port;
        config.ca_file = self.ca.clone();
        config.allow_remote = self.allow_remote;
        Ok(config)
    }
}

/// Runs the command line; the process exit code.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run_cli(&cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ntp-perf: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_cli(cli: &Cli) -> anyhow::Result<()> {
    let (mode, args) = match &cli.command {
        Command::Plain(a) => (Mode::Plain, a),
        Command::Nts(a) => (Mode::Nts, a),
        Command::Ke(a) => (Mode::Ke, a),
        Command::Sweep(s) => return run_sweep(s),
    };
    let config = args.config(mode).map_err(anyhow::Error::msg)?;
    let report = crate::run(&config)?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{report}");
    }
    Ok(())
}

fn run_sweep(args: &SweepArgs) -> anyhow::Result<()> {
    let mode = match args.mode {
        SweepMode::Plain => Mode::Plain,
        SweepMode::Nts => Mode::Nts,
    };
    let config = args.run.config(mode).map_err(anyhow::Error::msg)?;
    let rates = crate::sweep::rates(args.from, args.to, args.step, args.factor)?;
    let json = args.run.json;
    let best = crate::sweep(&config, &rates, |step| {
        let r = &step.report;
        if json {
            println!(
                "{{\"step_rate\":{},\"passed\":{},\"generator_kept_up\":{},\"report\":{}}}",
                step.rate,
                step.passed,
                step.generator_kept_up,
                r.to_json()
            );
        } else {
            println!(
                "rate {:>9.0}/s  offered {:>9.0}/s  answered {:>9.0}/s  loss {:>7.3} %  p99 {:>8} µs  server cpu {:>6} s/M  {}",
                step.rate,
                r.offered_rate,
                r.answered_rate,
                r.loss_pct,
                r.latency_us.p99.map_or("-".into(), |v| format!("{v:.0}")),
                r.server_cpu_s_per_million
                    .map_or("-".into(), |v| format!("{v:.2}")),
                match (step.passed, step.generator_kept_up) {
                    (_, false) => "generator limited",
                    (true, true) => "ok",
                    (false, true) => "fail",
                }
            );
        }
    })?;
    let best_text = best.map_or("none".to_string(), |b| format!("{b:.0}"));
    if json {
        println!(
            "{{\"max_rate_with_loss_below_0_1_pct\":{}}}",
            best.map_or("null".into(), |b| b.to_string())
        );
    } else {
        println!("highest rate with loss < 0.1 %: {best_text}/s");
    }
    Ok(())
}
