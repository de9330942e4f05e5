//! What a run measured, as text or one JSON object.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::histogram::Histogram;

/// Latency percentiles in microseconds (`None` without samples).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// 99.9th percentile.
    pub p999: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
}

impl fmt::Display for Latency {
    /// `p50 … p99 … p99.9 … max …`, one decimal, `-` where empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {} p99 {} p99.9 {} max {}",
            opt(self.p50, 1),
            opt(self.p99, 1),
            opt(self.p999, 1),
            opt(self.max, 1)
        )
    }
}

impl Latency {
    /// Percentiles of a nanosecond histogram.
    pub fn from_histogram(h: &Histogram) -> Self {
        let us = |ns: Option<u64>| ns.map(|v| v as f64 / 1000.0);
        Self {
            p50: us(h.quantile(0.5)),
            p99: us(h.quantile(0.99)),
            p999: us(h.quantile(0.999)),
            max: us((!h.is_empty()).then(|| h.max())),
        }
    }
}

/// The result of one run. For `ke`, a request is one handshake.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// `plain`, `nts` or `ke`.
    pub mode: String,
    /// The address loaded.
    pub target: String,
    /// The offered rate asked for, requests per second (`None` = unlimited).
    pub target_rate: Option<f64>,
    /// Length of the sending window, seconds.
    pub duration_s: f64,
    /// UDP sockets (source ports) used; for `ke`, concurrent handshakes.
    pub clients: usize,
    /// Bound on outstanding requests.
    pub inflight: usize,
    /// Requests sent.
    pub sent: u64,
    /// `sent / duration_s`.
    pub offered_rate: f64,
    /// Valid answers that were not a Kiss-o'-Death.
    pub answered: u64,
    /// `answered / duration_s`.
    pub answered_rate: f64,
    /// Requests with no reply at all within the timeout.
    pub lost: u64,
    /// `lost / sent`, percent.
    pub loss_pct: f64,
    /// Kiss-o'-Death replies by code.
    pub kods: BTreeMap<String, u64>,
    /// NTS NAKs (KoD NTSN with our unique identifier).
    pub nts_naks: u64,
    /// Replies to a request of ours that failed the checks (mode, NTS
    /// authentication, structure). For `ke`: failed handshakes.
    pub invalid: u64,
    /// Datagrams matching no outstanding request (late or foreign).
    pub unmatched: u64,
    /// Requests the kernel refused to send.
    pub send_errors: u64,
    /// Requests dropped from the schedule because the generator fell behind.
    pub schedule_skipped: u64,
    /// NTS: cookies sent again to keep each jar full (see the crate docs).
    pub cookies_reused: u64,
    /// NTS: key exchanges run, including the first ones.
    pub key_exchanges: u64,
    /// Failed handshakes by reason (`ke`) or failed re-keys (`nts`).
    pub errors: BTreeMap<String, u64>,
    /// Request-to-reply latency of answered requests, microseconds.
    pub latency_us: Latency,
    /// UDP modes: the server's residence `T3 − T2` of answered requests,
    /// microseconds (see [`crate::timing`]).
    pub residence_us: Latency,
    /// UDP modes: the round-trip delay as an NTP client computes it,
    /// `(T4 − T1) − (T3 − T2)`, microseconds.
    pub delay_us: Latency,
    /// UDP modes: `T4 − T3`, from the server's transmit stamp to the reply's
    /// arrival, microseconds; on loopback, how late after its stamp the
    /// reply left the server.
    pub reply_lag_us: Latency,
    /// UDP modes: `T2 − T1`, microseconds; on loopback, how long after its
    /// send time the generator's kernel sent the request (the generator's
    /// own share of the offset error).
    pub request_lag_us: Latency,
    /// UDP modes: the magnitude of the offset a client would compute,
    /// microseconds. On loopback the true offset is zero, so this is the
    /// error the stamping of both ends adds.
    pub offset_abs_us: Latency,
    /// UDP modes: the mean signed offset, microseconds (the bias).
    pub offset_mean_us: Option<f64>,
    /// UDP modes: replies whose transmit time is before their receive time.
    pub negative_residence: u64,
    /// The CPU window: sending plus draining the last replies, seconds.
    pub window_s: f64,
    /// This process's user + system CPU over the window, seconds.
    pub generator_cpu_s: f64,
    /// `generator_cpu_s / window_s`, percent of one core.
    pub generator_cpu_pct: f64,
    /// UDP datagrams the kernel dropped for a full receive buffer during the
    /// window, system-wide (ours or the server's socket).
    pub udp_rcvbuf_errors: Option<u64>,
    /// The server process measured, if any (with its descendants).
    pub server_pid: Option<u32>,
    /// Its user + system CPU over the window, seconds.
    pub server_cpu_s: Option<f64>,
    /// `server_cpu_s / window_s`, percent of one core.
    pub server_cpu_pct: Option<f64>,
    /// Server CPU seconds per million answered requests (the efficiency
    /// figure: lower is better).
    pub server_cpu_s_per_million: Option<f64>,
    /// The part of `server_cpu_s` spent in the kernel (`stime`), seconds.
    pub server_system_s: Option<f64>,
    /// Kernel CPU seconds per million answered: what the server would cost
    /// if its own code took no time at all.
    pub server_system_s_per_million: Option<f64>,
    /// CPU time the hypervisor took from this machine during the window
    /// (`steal` in `/proc/stat`, all CPUs), seconds; `None` where the kernel
    /// does not report it. More than a few hundredths of the window means the
    /// run's CPU and latency figures are disturbed.
    pub steal_s: Option<f64>,
}

/// Counts a run collects; turned into a [`Report`] by [`Report::finish`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Counts {
    pub sent: u64,
    pub answered: u64,
    pub kods: BTreeMap<String, u64>,
    pub nts_naks: u64,
    pub invalid: u64,
    pub unmatched: u64,
    pub send_errors: u64,
    pub schedule_skipped: u64,
    pub cookies_reused: u64,
    pub key_exchanges: u64,
    pub errors: BTreeMap<String, u64>,
}

/// CPU samples at the start and end of the window.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CpuWindow {
    pub wall: Duration,
    pub own: Duration,
    pub server: Option<crate::cpu::CpuTime>,
    pub udp_rcvbuf_errors: Option<u64>,
    pub steal: Option<Duration>,
}

impl CpuWindow {
    /// Reads every counter the window needs, at its start: this process's
    /// CPU time, the server's (and its children's) when its pid is known,
    /// the host's UDP receive-buffer errors and the CPU time the hypervisor
    /// stole. [`WindowStart::finish`] reads them again and keeps the
    /// differences, so both modes measure exactly the same things.
    pub(crate) fn start(server_pid: Option<u32>) -> WindowStart {
        WindowStart {
            udp_rcvbuf_errors: crate::cpu::udp_rcvbuf_errors(),
            steal: crate::cpu::steal_time(),
            own: crate::cpu::own_cpu(),
            server: server_pid.and_then(|p| Some((p, crate::cpu::process_tree_cpu(p).ok()?))),
            at: Instant::now(),
        }
    }
}

/// The counters at the start of a measured window (see [`CpuWindow::start`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct WindowStart {
    at: Instant,
    own: Duration,
    server: Option<(u32, crate::cpu::CpuTime)>,
    udp_rcvbuf_errors: Option<u64>,
    steal: Option<Duration>,
}

impl WindowStart {
    /// When the window started; the load's schedule counts from here.
    pub(crate) fn at(&self) -> Instant {
        self.at
    }

    /// Reads the counters again and returns what the window used. A counter
    /// that could not be read at either end is `None`, never a guess.
    pub(crate) fn finish(self) -> CpuWindow {
        let wall = self.at.elapsed();
        CpuWindow {
            wall,
            own: crate::cpu::own_cpu().saturating_sub(self.own),
            server: self.server.and_then(|(pid, before)| {
                crate::cpu::process_tree_cpu(pid)
                    .ok()
                    .map(|t| t.saturating_sub(before))
            }),
            udp_rcvbuf_errors: self
                .udp_rcvbuf_errors
                .zip(crate::cpu::udp_rcvbuf_errors())
                .map(|(a, b)| b.saturating_sub(a)),
            steal: self
                .steal
                .zip(crate::cpu::steal_time())
                .map(|(a, b)| b.saturating_sub(a)),
        }
    }
}

impl Report {
    pub(crate) fn finish(
        config: &crate::Config,
        target: String,
        sending: Duration,
        counts: Counts,
        latency: &Histogram,
        timing: Option<&crate::timing::Timing>,
        cpu: CpuWindow,
    ) -> Self {
        let duration_s = sending.as_secs_f64().max(1e-9);
        let window_s = cpu.wall.as_secs_f64().max(1e-9);
        let replied =
            counts.answered + counts.kods.values().sum::<u64>() + counts.nts_naks + counts.invalid;
        let lost = counts.sent.saturating_sub(replied);
        let server_cpu_s = cpu.server.map(|d| d.total().as_secs_f64());
        let server_system_s = cpu.server.map(|d| d.system.as_secs_f64());
        let per_million = |s: Option<f64>| {
            s.filter(|_| counts.answered > 0)
                .map(|s| s * 1e6 / counts.answered as f64)
        };
        Self {
            mode: config.mode.name().to_string(),
            target,
            target_rate: match config.rate {
                crate::Rate::PerSecond(r) => Some(r),
                crate::Rate::Unlimited => None,
            },
            duration_s,
            clients: config.clients,
            inflight: config.inflight,
            sent: counts.sent,
            offered_rate: counts.sent as f64 / duration_s,
            answered: counts.answered,
            answered_rate: counts.answered as f64 / duration_s,
            lost,
            loss_pct: if counts.sent == 0 {
                0.0
            } else {
                100.0 * lost as f64 / counts.sent as f64
            },
            kods: counts.kods,
            nts_naks: counts.nts_naks,
            invalid: counts.invalid,
            unmatched: counts.unmatched,
            send_errors: counts.send_errors,
            schedule_skipped: counts.schedule_skipped,
            cookies_reused: counts.cookies_reused,
            key_exchanges: counts.key_exchanges,
            errors: counts.errors,
            latency_us: Latency::from_histogram(latency),
            residence_us: timing
                .map_or_else(Latency::default, |t| Latency::from_histogram(&t.residence)),
            delay_us: timing.map_or_else(Latency::default, |t| Latency::from_histogram(&t.delay)),
            reply_lag_us: timing
                .map_or_else(Latency::default, |t| Latency::from_histogram(&t.reply_lag)),
            request_lag_us: timing.map_or_else(Latency::default, |t| {
                Latency::from_histogram(&t.request_lag)
            }),
            offset_abs_us: timing
                .map_or_else(Latency::default, |t| Latency::from_histogram(&t.offset_abs)),
            offset_mean_us: timing.and_then(crate::timing::Timing::offset_mean_us),
            negative_residence: timing.map_or(0, |t| t.negative_residence),
            window_s,
            generator_cpu_s: cpu.own.as_secs_f64(),
            generator_cpu_pct: 100.0 * cpu.own.as_secs_f64() / window_s,
            udp_rcvbuf_errors: cpu.udp_rcvbuf_errors,
            server_pid: config.server_pid,
            server_cpu_s,
            server_cpu_pct: server_cpu_s.map(|s| 100.0 * s / window_s),
            server_cpu_s_per_million: per_million(server_cpu_s),
            server_system_s,
            server_system_s_per_million: per_million(server_system_s),
            steal_s: cpu.steal.map(|d| d.as_secs_f64()),
        }
    }

    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = self
            .target_rate
            .map_or_else(|| "unlimited".to_string(), |r| format!("{r:.0}/s"));
        writeln!(
            f,
            "{} -> {}: rate {rate}, {:.1} s, {} clients, inflight {}",
            self.mode, self.target, self.duration_s, self.clients, self.inflight
        )?;
        writeln!(
            f,
            "  offered  {:>10.0}/s  ({} sent, {} skipped, {} send errors)",
            self.offered_rate, self.sent, self.schedule_skipped, self.send_errors
        )?;
        writeln!(
            f,
            "  answered {:>10.0}/s  ({} answered, loss {:.3} %)",
            self.answered_rate, self.answered, self.loss_pct
        )?;
        writeln!(
            f,
            "  kod {:?}, nts naks {}, invalid {}, unmatched {}, udp rcvbuf drops {}",
            self.kods,
            self.nts_naks,
            self.invalid,
            self.unmatched,
            self.udp_rcvbuf_errors
                .map_or_else(|| "-".to_string(), |n| n.to_string())
        )?;
        if self.mode != "plain" {
            writeln!(
                f,
                "  key exchanges {}, cookies reused {}, errors {:?}",
                self.key_exchanges, self.cookies_reused, self.errors
            )?;
        }
        writeln!(f, "  latency µs: {}", self.latency_us)?;
        if self.mode != "ke" {
            writeln!(f, "  server residence T3-T2 µs: {}", self.residence_us)?;
            writeln!(f, "  client delay (T4-T1)-(T3-T2) µs: {}", self.delay_us)?;
            writeln!(
                f,
                "  reply lag T4-T3 µs (server's stamp to departure, on loopback): {}",
                self.reply_lag_us
            )?;
            writeln!(f, "  request lag T2-T1 µs (ours): {}", self.request_lag_us)?;
            writeln!(
                f,
                "  offset µs (0 on loopback): mean {}, |offset| {}{}",
                opt(self.offset_mean_us, 2),
                self.offset_abs_us,
                if self.negative_residence > 0 {
                    format!(", {} replies with T3 before T2", self.negative_residence)
                } else {
                    String::new()
                }
            )?;
        }
        writeln!(
            f,
            "  cpu over {:.2} s: generator {:.2} s ({:.0} %), server {} s ({} %, kernel {} s), server s per million answered: {} (kernel {})",
            self.window_s,
            self.generator_cpu_s,
            self.generator_cpu_pct,
            opt(self.server_cpu_s, 2),
            opt(self.server_cpu_pct, 0),
            opt(self.server_system_s, 2),
            opt(self.server_cpu_s_per_million, 2),
            opt(self.server_system_s_per_million, 2)
        )?;
        if let Some(steal) = self.steal_s {
            writeln!(
                f,
                "  stolen by the hypervisor: {steal:.2} s of CPU ({:.1} % of the window)",
                100.0 * steal / self.window_s
            )?;
        }
        Ok(())
    }
}
