//! A deterministic network and clock simulator that drives the real
//! [`Source`], [`System`] and discipline code in simulated time, in the
//! manner of smoltcp's `netsim` test.
//!
//! - [`Rng`]: xoshiro256** seeded through SplitMix64; the same seed gives the
//!   same run on every platform (only IEEE-754 arithmetic, no `libm`
//!   differences beyond `ln`/`sqrt`/`cos`, which are correctly rounded or
//!   deterministic on the tier-1 targets we test on).
//! - [`SimClock`]: a local clock with a frequency error, random-walk
//!   frequency wander and an `adjtime`-like slew at a bounded rate; it
//!   implements [`Clock`].
//! - [`ServerModel`] and [`PathModel`]: honest servers with a small true
//!   error, falsetickers (fixed or drifting offset), servers that stop
//!   answering or step; paths with a base delay, exponential or log-normal
//!   queueing, asymmetry, loss and delay spikes.
//! - [`run`]: steps a [`Scenario`] in one-second ticks. Replies go through
//!   [`Measurement::from_reply`], so the on-wire code is exercised too. Four
//!   simulated hours take a few milliseconds in release mode.
//!
//! The [`Report`] gives the RMS, 99th percentile and maximum of the true
//! offset |local − true| after a settling time, the time to the first
//! trustworthy estimate (synchronized with true error below a bound), and
//! how often each source was judged a falseticker.

use std::convert::Infallible;

use ntp_proto::{
    Header, LeapIndicator, NtpDuration, NtpShort, NtpTimestamp, ReferenceId, SystemInfo,
};

use crate::clock::Clock;
use crate::discipline::Decision;
use crate::measurement::{Exchange, Measurement, OnWireError};
use crate::source::{Source, SourceConfig, SourceState};
use crate::system::{SyncState, System, SystemConfig};

/// xoshiro256** (Blackman and Vigna), seeded with SplitMix64.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator from a 64-bit seed.
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Self {
            s: [next(), next(), next(), next()],
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let [s0, s1, s2, s3] = self.s;
        let result = s1.wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s1 << 17;
        let s2 = s2 ^ s0;
        let s3 = s3 ^ s1;
        let s1 = s1 ^ s2;
        let s0 = s0 ^ s3;
        let s2 = s2 ^ t;
        let s3 = s3.rotate_left(45);
        self.s = [s0, s1, s2, s3];
        result
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (core::f64::consts::TAU * u2).cos()
    }

    /// Exponential with the given mean.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.uniform()).ln()
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }
}

/// The local oscillator.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct ClockModel {
    /// Initial offset local − true, seconds.
    pub initial_offset: f64,
    /// Initial frequency error, ppm (positive: the clock runs fast).
    pub frequency_ppm: f64,
    /// Random-walk frequency wander, ppm per √s.
    pub wander_ppm_per_sqrt_s: f64,
    /// Largest slew rate, ppm (Linux `adjtime`: 500).
    pub max_slew_ppm: f64,
}

impl Default for ClockModel {
    fn default() -> Self {
        Self {
            initial_offset: 0.0,
            frequency_ppm: 0.0,
            wander_ppm_per_sqrt_s: 0.0005,
            max_slew_ppm: 500.0,
        }
    }
}

/// A simulated local clock; it implements [`Clock`] for the discipline's
/// decisions.
#[derive(Clone, Debug)]
pub struct SimClock {
    model: ClockModel,
    epoch: NtpTimestamp,
    true_time: f64,
    offset: f64,
    frequency_error_ppm: f64,
    correction_ppm: f64,
    pending_slew: f64,
    adjustments: u64,
}

impl SimClock {
    /// A clock whose true time 0 is `epoch`.
    pub fn new(model: ClockModel, epoch: NtpTimestamp) -> Self {
        Self {
            model,
            epoch,
            true_time: 0.0,
            offset: model.initial_offset,
            frequency_error_ppm: model.frequency_ppm,
            correction_ppm: 0.0,
            pending_slew: 0.0,
            adjustments: 0,
        }
    }

    /// True (simulated) time since the start, seconds.
    pub fn true_time(&self) -> f64 {
        self.true_time
    }

    /// The error local − true, seconds.
    pub fn error(&self) -> f64 {
        self.offset
    }

    /// The residual frequency error (oscillator error + correction), ppm.
    pub fn residual_frequency_ppm(&self) -> f64 {
        self.frequency_error_ppm + self.correction_ppm
    }

    /// How many steps, slews and frequency changes were applied.
    pub fn adjustments(&self) -> u64 {
        self.adjustments
    }

    fn drift_over(&self, dt: f64) -> (f64, f64) {
        let slewed = self
            .pending_slew
            .abs()
            .min(self.model.max_slew_ppm * 1e-6 * dt)
            .copysign(self.pending_slew);
        (self.residual_frequency_ppm() * 1e-6 * dt + slewed, slewed)
    }

    /// The local time `dt` seconds of true time from now, without advancing.
    pub fn local_after(&self, dt: f64) -> NtpTimestamp {
        let (drift, _) = self.drift_over(dt);
        self.local_for(self.true_time + dt, self.offset + drift)
    }

    fn local_for(&self, true_time: f64, offset: f64) -> NtpTimestamp {
        self.epoch + NtpDuration::from_seconds_f64(true_time + offset)
    }

    /// Advances true time by `dt` seconds.
    pub fn advance(&mut self, dt: f64, rng: &mut Rng) {
        let (drift, slewed) = self.drift_over(dt);
        self.offset += drift;
        self.pending_slew -= slewed;
        self.true_time += dt;
        self.frequency_error_ppm += self.model.wander_ppm_per_sqrt_s * dt.sqrt() * rng.normal();
    }
}

impl Clock for SimClock {
    type Error = Infallible;

    fn now(&self) -> Result<NtpTimestamp, Infallible> {
        Ok(self.local_for(self.true_time, self.offset))
    }

    fn set_frequency(&mut self, ppm: f64) -> Result<(), Infallible> {
        if ppm != self.correction_ppm {
            self.adjustments += 1;
        }
        self.correction_ppm = ppm;
        Ok(())
    }

    fn step(&mut self, offset: NtpDuration) -> Result<(), Infallible> {
        self.adjustments += 1;
        self.offset += offset.to_seconds_f64();
        self.pending_slew = 0.0;
        Ok(())
    }

    fn slew(&mut self, offset: NtpDuration) -> Result<(), Infallible> {
        self.adjustments += 1;
        self.pending_slew = offset.to_seconds_f64();
        Ok(())
    }
}

/// How a simulated server's clock behaves.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Behavior {
    /// Within its small constant error of true time.
    Honest,
    /// Off by `offset` seconds, drifting by `drift_ppm`.
    Falseticker {
        /// Fixed offset, seconds.
        offset: f64,
        /// Drift of the offset, ppm.
        drift_ppm: f64,
    },
    /// Honest until `at` seconds, then never answers again.
    StopsAt {
        /// True time of the stop, seconds.
        at: f64,
    },
    /// Honest until `at` seconds, then off by `step` seconds.
    StepsAt {
        /// True time of the step, seconds.
        at: f64,
        /// Size of the step, seconds.
        step: f64,
    },
}

/// A simulated server.
#[derive(Clone, PartialEq, Debug)]
pub struct ServerModel {
    /// Name for reports.
    pub name: String,
    /// Its behavior.
    pub behavior: Behavior,
    /// Constant true error of an honest server, seconds.
    pub error: f64,
    /// Stratum it reports.
    pub stratum: u8,
    /// Root dispersion it reports, seconds.
    pub root_dispersion: f64,
}

impl ServerModel {
    /// An honest stratum-1 server with `error` seconds of true error.
    pub fn honest(name: &str, error: f64) -> Self {
        Self {
            name: name.to_owned(),
            behavior: Behavior::Honest,
            error,
            stratum: 1,
            root_dispersion: 0.0005,
        }
    }

    /// A server that is `offset` seconds off.
    pub fn falseticker(name: &str, offset: f64, drift_ppm: f64) -> Self {
        Self {
            behavior: Behavior::Falseticker { offset, drift_ppm },
            ..Self::honest(name, 0.0)
        }
    }

    /// An honest server that stops answering at `at` seconds.
    pub fn stops_at(name: &str, error: f64, at: f64) -> Self {
        Self {
            behavior: Behavior::StopsAt { at },
            ..Self::honest(name, error)
        }
    }

    /// An honest server that steps by `step` seconds at `at` seconds.
    pub fn steps_at(name: &str, error: f64, at: f64, step: f64) -> Self {
        Self {
            behavior: Behavior::StepsAt { at, step },
            ..Self::honest(name, error)
        }
    }

    /// The server's clock error at true time `t`, or `None` if it does not
    /// answer.
    fn offset_at(&self, t: f64) -> Option<f64> {
        match self.behavior {
            Behavior::Honest => Some(self.error),
            Behavior::Falseticker { offset, drift_ppm } => Some(offset + drift_ppm * 1e-6 * t),
            Behavior::StopsAt { at } => (t < at).then_some(self.error),
            Behavior::StepsAt { at, step } => Some(self.error + if t >= at { step } else { 0.0 }),
        }
    }
}

/// Queueing delay distribution of a path.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Jitter {
    /// Exponential with this mean, seconds.
    Exponential {
        /// Mean, seconds.
        mean: f64,
    },
    /// Log-normal with this median (seconds) and shape σ.
    LogNormal {
        /// Median, seconds.
        median: f64,
        /// σ of the underlying normal.
        sigma: f64,
    },
}

/// A network path between us and one server.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct PathModel {
    /// Minimum one-way delay, seconds.
    pub base_delay: f64,
    /// Extra one-way delay on the outbound direction only, seconds (biases
    /// the offset by half of it).
    pub asymmetry: f64,
    /// Queueing delay, per direction.
    pub jitter: Jitter,
    /// Probability that a request or its reply is lost.
    pub loss: f64,
    /// Probability of a delay spike per direction.
    pub spike_probability: f64,
    /// Mean extra delay of a spike (exponential), seconds.
    pub spike_mean: f64,
}

impl PathModel {
    /// A LAN: 100 µs base, 30 µs exponential queueing, rare loss and spikes.
    pub fn lan() -> Self {
        Self {
            base_delay: 100e-6,
            asymmetry: 0.0,
            jitter: Jitter::Exponential { mean: 30e-6 },
            loss: 0.001,
            spike_probability: 0.01,
            spike_mean: 2e-3,
        }
    }

    /// A WAN: 15 ms base, log-normal queueing (median 1 ms, σ 1), 1 % loss,
    /// 2 % spikes of 20 ms, and `asymmetry` seconds outbound.
    pub fn wan(asymmetry: f64) -> Self {
        Self {
            base_delay: 15e-3,
            asymmetry,
            jitter: Jitter::LogNormal {
                median: 1e-3,
                sigma: 1.0,
            },
            loss: 0.01,
            spike_probability: 0.02,
            spike_mean: 20e-3,
        }
    }

    fn one_way(&self, rng: &mut Rng) -> f64 {
        let queue = match self.jitter {
            Jitter::Exponential { mean } => rng.exponential(mean),
            Jitter::LogNormal { median, sigma } => median * (sigma * rng.normal()).exp(),
        };
        let spike = if rng.chance(self.spike_probability) {
            rng.exponential(self.spike_mean)
        } else {
            0.0
        };
        self.base_delay + queue + spike
    }
}

/// Everything one simulation run needs.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// PRNG seed.
    pub seed: u64,
    /// Simulated duration, seconds.
    pub duration: f64,
    /// Statistics of the error start after this many seconds.
    pub settle: f64,
    /// A synchronized estimate is trustworthy when |error| is below this,
    /// seconds.
    pub trust_bound: f64,
    /// The local oscillator.
    pub clock: ClockModel,
    /// Servers and the paths to them.
    pub servers: Vec<(ServerModel, PathModel)>,
    /// Per-source settings.
    pub source: SourceConfig,
    /// System settings (discipline algorithm and thresholds).
    pub system: SystemConfig,
    /// Record a [`TracePoint`] this often (seconds of true time), if set.
    pub trace_every: Option<f64>,
}

/// A sample of the run's state, for plots and debugging.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct TracePoint {
    /// True time, seconds.
    pub time: f64,
    /// Error local − true, seconds.
    pub error: f64,
    /// Residual frequency error, ppm.
    pub frequency_error_ppm: f64,
    /// System poll exponent.
    pub poll: i8,
    /// Synchronized at that moment.
    pub synchronized: bool,
}

impl Scenario {
    /// A scenario with no servers, 4 hours long, settling after 1 hour,
    /// trust bound 10 ms.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            duration: 4.0 * 3600.0,
            settle: 3600.0,
            trust_bound: 0.010,
            clock: ClockModel::default(),
            servers: Vec::new(),
            source: SourceConfig::default(),
            system: SystemConfig::default(),
            trace_every: None,
        }
    }

    /// Adds a server behind a path.
    pub fn server(mut self, server: ServerModel, path: PathModel) -> Self {
        self.servers.push((server, path));
        self
    }
}

/// What happened to one source over a run.
#[derive(Clone, PartialEq, Debug)]
pub struct SourceReport {
    /// The server's name.
    pub name: String,
    /// Its state at the end.
    pub final_state: SourceState,
    /// System updates after which it was marked a falseticker.
    pub falseticker_updates: u64,
    /// System updates after which it was the system peer or selected.
    pub selected_updates: u64,
    /// System updates counted (one per accepted measurement of any source).
    pub updates: u64,
    /// Accepted measurements from it.
    pub measurements: u64,
}

/// The outcome of [`run`].
#[derive(Clone, PartialEq, Debug)]
pub struct Report {
    /// RMS of |local − true| after `settle`, seconds.
    pub rms: f64,
    /// 99th percentile of |local − true| after `settle`, seconds.
    pub p99: f64,
    /// Maximum of |local − true| after `settle`, seconds.
    pub max: f64,
    /// First time (s) the system was synchronized with |error| below the
    /// trust bound.
    pub time_to_trust: Option<f64>,
    /// Per source, in scenario order.
    pub sources: Vec<SourceReport>,
    /// Step decisions.
    pub steps: u64,
    /// Slew decisions.
    pub slews: u64,
    /// Panic decisions.
    pub panics: u64,
    /// Steps and slews decided after the first panic.
    pub steering_after_panic: u64,
    /// Accepted measurements over all sources.
    pub measurements: u64,
    /// Accepted measurements after the first panic.
    pub measurements_after_panic: u64,
    /// Sync state at the end.
    pub final_sync: SyncState,
    /// Error |local − true| at the end, seconds.
    pub final_error: f64,
    /// Residual frequency error at the end, ppm.
    pub final_frequency_error_ppm: f64,
    /// Requests sent.
    pub requests: u64,
    /// The trace, if [`Scenario::trace_every`] was set.
    pub trace: Vec<TracePoint>,
}

impl Report {
    /// One line of figures for docs and logs.
    pub fn summary(&self) -> String {
        let trust = self
            .time_to_trust
            .map_or_else(|| "never".to_owned(), |t| format!("{t:.0} s"));
        format!(
            "rms {:.1} µs, p99 {:.1} µs, max {:.1} µs, trusted after {trust}, \
             steps {}, panics {}, requests {}, residual freq {:+.3} ppm",
            self.rms * 1e6,
            self.p99 * 1e6,
            self.max * 1e6,
            self.steps,
            self.panics,
            self.requests,
            self.final_frequency_error_ppm,
        )
    }
}

/// Simulated server's turnaround between T2 and T3, seconds.
const SERVER_HOLD: f64 = 20e-6;

/// Runs `scenario` and reports on it. Deterministic for a given scenario.
pub fn run(scenario: &Scenario) -> Report {
    let mut rng = Rng::new(scenario.seed);
    let epoch = NtpTimestamp::from_seconds_and_fraction(3_913_056_000, 0);
    let mut clock = SimClock::new(scenario.clock, epoch);
    let mut system = System::new(scenario.system);
    let mut sources: Vec<Source> = (0..scenario.servers.len())
        .map(|i| {
            let id = u8::try_from(i).unwrap_or(u8::MAX);
            Source::new(scenario.source, ReferenceId::from_bytes([10, 0, 0, id]))
        })
        .collect();
    let mut reports: Vec<SourceReport> = scenario
        .servers
        .iter()
        .map(|(s, _)| SourceReport {
            name: s.name.clone(),
            final_state: SourceState::Candidate,
            falseticker_updates: 0,
            selected_updates: 0,
            updates: 0,
            measurements: 0,
        })
        .collect();
    let mut last_reply = vec![None; scenario.servers.len()];
    let mut errors = Vec::new();
    let mut report = Report {
        rms: 0.0,
        p99: 0.0,
        max: 0.0,
        time_to_trust: None,
        sources: Vec::new(),
        steps: 0,
        slews: 0,
        panics: 0,
        steering_after_panic: 0,
        measurements: 0,
        measurements_after_panic: 0,
        final_sync: SyncState::Unsynchronized {
            reason: crate::system::UnsyncReason::Startup,
        },
        final_error: 0.0,
        final_frequency_error_ppm: 0.0,
        requests: 0,
        trace: Vec::new(),
    };
    let mut next_trace = 0.0;
    let dt = 1.0;
    let mut t = 0.0;
    while t < scenario.duration {
        for (i, (server, path)) in scenario.servers.iter().enumerate() {
            let Ok(now) = clock.now();
            let (Some(source), Some(last)) = (sources.get_mut(i), last_reply.get_mut(i)) else {
                continue;
            };
            if !source.poll_due(now) {
                continue;
            }
            report.requests += 1;
            let request = Header::client_request(source.poll(), rng.next_u64());
            source.on_sent(now);
            let out = path.one_way(&mut rng) + path.asymmetry;
            let back = path.one_way(&mut rng);
            let lost = rng.chance(path.loss);
            let Some(server_offset) = server.offset_at(t + out) else {
                source.on_timeout(now);
                continue;
            };
            if lost {
                source.on_timeout(now);
                continue;
            }
            let server_time = |true_t: f64| epoch + NtpDuration::from_seconds_f64(true_t);
            let t2 = server_time(t + out + server_offset);
            let t3 = t2 + NtpDuration::from_seconds_f64(SERVER_HOLD);
            let t4 = clock.local_after(out + SERVER_HOLD + back);
            let info = SystemInfo {
                leap: LeapIndicator::NoWarning,
                stratum: server.stratum,
                precision: -20,
                root_delay: NtpShort::ZERO,
                root_dispersion: NtpShort::from_seconds_f64(server.root_dispersion),
                reference_id: ReferenceId::from_ascii("SIM").unwrap_or(ReferenceId::NONE),
                reference_timestamp: t2 - NtpDuration::from_seconds(16),
            };
            let reply = Header::server_response(&request, &info, t2, t3);
            let exchange = Exchange {
                request_transmit: request.transmit_timestamp,
                t1: now,
                t4,
                last_reply_transmit: *last,
                local_precision: scenario.source.local_precision,
                nts: false,
            };
            match Measurement::from_reply(&exchange, &reply) {
                Ok(m) => {
                    *last = Some(t3);
                    source.on_measurement(&m, t4);
                    report.measurements += 1;
                    if report.panics > 0 {
                        report.measurements_after_panic += 1;
                    }
                    if let Some(r) = reports.get_mut(i) {
                        r.measurements += 1;
                    }
                }
                Err(OnWireError::Kiss(code)) => {
                    source.on_kiss(code, t4);
                    continue;
                }
                Err(_) => {
                    source.on_timeout(t4);
                    continue;
                }
            }
            let decision = system.update(t4, &mut sources);
            match decision {
                Some(Decision::Step { .. }) => report.steps += 1,
                Some(Decision::Slew { .. }) => report.slews += 1,
                Some(Decision::Panic { .. }) => report.panics += 1,
                None => {}
            }
            if report.panics > 0
                && matches!(
                    decision,
                    Some(Decision::Step { .. } | Decision::Slew { .. })
                )
            {
                report.steering_after_panic += 1;
            }
            if let Some(d) = decision {
                let Ok(()) = d.apply(&mut clock);
            }
            for (s, r) in sources.iter().zip(reports.iter_mut()) {
                r.updates += 1;
                match s.state() {
                    SourceState::Falseticker => r.falseticker_updates += 1,
                    SourceState::SystemPeer | SourceState::Selected => r.selected_updates += 1,
                    _ => {}
                }
            }
        }
        clock.advance(dt, &mut rng);
        t += dt;
        if let Some(every) = scenario.trace_every {
            if t >= next_trace {
                next_trace += every;
                report.trace.push(TracePoint {
                    time: t,
                    error: clock.error(),
                    frequency_error_ppm: clock.residual_frequency_ppm(),
                    poll: system.estimate().poll,
                    synchronized: system.estimate().sync.is_synchronized(),
                });
            }
        }
        let error = clock.error().abs();
        if t >= scenario.settle {
            errors.push(error);
        }
        if report.time_to_trust.is_none()
            && system.estimate().sync.is_synchronized()
            && error < scenario.trust_bound
        {
            report.time_to_trust = Some(t);
        }
    }
    errors.sort_by(f64::total_cmp);
    if !errors.is_empty() {
        let n = errors.len();
        report.rms = (errors.iter().map(|e| e * e).sum::<f64>() / n as f64).sqrt();
        let idx = ((n as f64) * 0.99).ceil() as usize;
        report.p99 = errors
            .get(idx.saturating_sub(1).min(n - 1))
            .copied()
            .unwrap_or(0.0);
        report.max = errors.last().copied().unwrap_or(0.0);
    }
    for (s, r) in sources.iter().zip(reports.iter_mut()) {
        r.final_state = s.state();
    }
    report.sources = reports;
    report.final_sync = system.estimate().sync;
    report.final_error = clock.error().abs();
    report.final_frequency_error_ppm = clock.residual_frequency_ppm();
    report
}

/// The scenarios of docs/ACCURACY.md, by name: all start 0.5 s and 30 ppm
/// off (except `panic`, 2000 s off) and run 4 simulated hours.
///
/// - `lan3`, `wan3`: three honest servers on LAN / WAN paths.
/// - `liar1of3`, `liar2of5`: falsetickers among honest servers.
/// - `peer_stops`: the LAN server (system peer) stops at 2 h; two WAN
///   servers remain.
/// - `server_steps`: one of three servers steps by 1 s at 2 h.
/// - `panic`: the local clock is 2000 s off.
pub fn standard_scenarios() -> Vec<(&'static str, Scenario)> {
    let clock = ClockModel {
        initial_offset: 0.5,
        frequency_ppm: 30.0,
        ..ClockModel::default()
    };
    let lan3 = Scenario {
        clock,
        ..Scenario::new(1)
    }
    .server(ServerModel::honest("a", 10e-6), PathModel::lan())
    .server(ServerModel::honest("b", -15e-6), PathModel::lan())
    .server(ServerModel::honest("c", 5e-6), PathModel::lan());
    let wan3 = Scenario {
        clock,
        ..Scenario::new(2)
    }
    .server(ServerModel::honest("a", 50e-6), PathModel::wan(0.5e-3))
    .server(ServerModel::honest("b", -50e-6), PathModel::wan(-0.3e-3))
    .server(ServerModel::honest("c", 0.0), PathModel::wan(0.0));
    let liar1of3 = Scenario {
        clock,
        ..Scenario::new(3)
    }
    .server(ServerModel::honest("a", 10e-6), PathModel::lan())
    .server(
        ServerModel::falseticker("liar", 0.25, 0.0),
        PathModel::lan(),
    )
    .server(ServerModel::honest("c", -10e-6), PathModel::lan());
    let liar2of5 = Scenario {
        clock,
        ..Scenario::new(4)
    }
    .server(ServerModel::honest("a", 10e-6), PathModel::lan())
    .server(
        ServerModel::falseticker("liar1", 0.08, 0.0),
        PathModel::lan(),
    )
    .server(ServerModel::honest("c", -10e-6), PathModel::lan())
    .server(
        ServerModel::falseticker("liar2", -0.4, 2.0),
        PathModel::lan(),
    )
    .server(ServerModel::honest("e", 0.0), PathModel::lan());
    let peer_stops = Scenario {
        clock,
        ..Scenario::new(5)
    }
    .server(ServerModel::stops_at("a", 0.0, 7200.0), PathModel::lan())
    .server(ServerModel::honest("b", 10e-6), PathModel::wan(0.0))
    .server(ServerModel::honest("c", -10e-6), PathModel::wan(0.0));
    let server_steps = Scenario {
        clock,
        ..Scenario::new(6)
    }
    .server(ServerModel::honest("a", 10e-6), PathModel::lan())
    .server(
        ServerModel::steps_at("stepper", 0.0, 7200.0, 1.0),
        PathModel::lan(),
    )
    .server(ServerModel::honest("c", -10e-6), PathModel::lan());
    let panic = Scenario {
        clock: ClockModel {
            initial_offset: 2000.0,
            ..clock
        },
        ..Scenario::new(7)
    }
    .server(ServerModel::honest("a", 0.0), PathModel::lan())
    .server(ServerModel::honest("b", 0.0), PathModel::lan())
    .server(ServerModel::honest("c", 0.0), PathModel::lan());
    vec![
        ("lan3", lan3),
        ("wan3", wan3),
        ("liar1of3", liar1of3),
        ("liar2of5", liar2of5),
        ("peer_stops", peer_stops),
        ("server_steps", server_steps),
        ("panic", panic),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_roughly_uniform() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let mean = (0..10_000).map(|_| a.uniform()).sum::<f64>() / 10_000.0;
        assert!((mean - 0.5).abs() < 0.02);
        let var = (0..10_000).map(|_| a.normal().powi(2)).sum::<f64>() / 10_000.0;
        assert!((var - 1.0).abs() < 0.1);
    }

    #[test]
    fn sim_clock_slews_at_a_bounded_rate() {
        let mut rng = Rng::new(1);
        let mut c = SimClock::new(
            ClockModel {
                wander_ppm_per_sqrt_s: 0.0,
                ..ClockModel::default()
            },
            NtpTimestamp::ZERO,
        );
        let Ok(()) = c.slew(NtpDuration::from_seconds_f64(0.001));
        c.advance(1.0, &mut rng);
        assert!((c.error() - 500e-6).abs() < 1e-9);
        c.advance(10.0, &mut rng);
        assert!((c.error() - 0.001).abs() < 1e-9);
    }
}
