//! The run loop: rounds on the schedule, each source checked with retries
//! (plain NTP or NTS through `ntp-io`), every attempt logged as it ends, the
//! round fed to the policy, the verdict and alerts logged and published.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context as _;
use ntp_io::{KeError, Measurement, QueryClient, QueryError, QueryOptions};
use ntp_policy::{
    Alert, CheckFailure, CheckResult, Leap, PolicyState, Round, Sample, UnixMs, ValidPolicy,
    Verdict, VerdictState, evaluate_attempt, next,
};
use tokio::sync::watch;

use crate::alerts::Dispatcher;
use crate::config::{Config, Source};
use crate::store::{CheckRecord, Store};
use crate::timefmt;

/// Samples kept per source for the jitter figure.
const JITTER_SAMPLES: usize = 8;
/// How often old rows are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Alerts kept for `/health` while the time is not trusted.
const MAX_OPEN_ALERTS: usize = 50;
/// NTP's frequency tolerance φ (RFC 5905): 15 ppm.
const PHI: f64 = 15e-6;

/// What the monitor knows about one source now (for `/metrics`, the source
/// table and the API).
#[derive(Debug, Clone, serde::Serialize)]
pub struct SourceLive {
    /// Configured name.
    pub name: String,
    /// Operator label.
    pub operator: String,
    /// Configured address.
    pub address: String,
    /// Whether the source is configured for NTS.
    pub nts: bool,
    /// Reachability register, as `chronyc sources`' Reach: bit 0 is the
    /// last round, set when a reply came.
    pub reach: u8,
    /// Whether the source passed the last round (`None` before the first
    /// round, and when `first-pass` skipped it).
    pub passed: Option<bool>,
    /// The last attempt.
    pub last: Option<CheckRecord>,
    /// The last attempt that produced a sample.
    pub last_sample: Option<CheckRecord>,
    /// Attempts logged since start.
    pub checks: u64,
}

/// The monitor's current state, shared with the HTTP server.
#[derive(Debug)]
pub struct Live {
    /// The latest verdict (`None` before the first round ends).
    pub verdict: Option<Verdict>,
    /// Round outcome of the latest verdict.
    pub outcome: Option<String>,
    /// The latest round number.
    pub round: i64,
    /// Rounds since start.
    pub rounds: u64,
    /// Per source, in configured order.
    pub sources: Vec<SourceLive>,
    /// Alerts since the verdict was last clean TRUSTED (what `/health`
    /// shows while unhealthy).
    pub open_alerts: Vec<Alert>,
    /// Alerts since start, per kind.
    pub alert_counts: std::collections::BTreeMap<&'static str, u64>,
    /// Whether DEGRADED counts as healthy.
    pub degraded_healthy: bool,
    /// When the monitor started.
    pub started: UnixMs,
    /// The policy in force.
    pub policy: ValidPolicy,
    /// Why the last round could not be written to the log, if it could
    /// not: without evidence the time is not vouched for, so `/health`
    /// answers 503 until a round is logged again.
    pub log_failure: Option<String>,
    /// Failed log writes since start.
    pub log_errors: u64,
}

impl Live {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            verdict: None,
            outcome: None,
            round: 0,
            rounds: 0,
            sources: config
                .sources
                .iter()
                .map(|s| SourceLive {
                    name: s.name.clone(),
                    operator: s.operator.clone(),
                    address: s.address.clone(),
                    nts: s.nts,
                    reach: 0,
                    passed: None,
                    last: None,
                    last_sample: None,
                    checks: 0,
                })
                .collect(),
            open_alerts: Vec::new(),
            alert_counts: Default::default(),
            degraded_healthy: config.monitor.degraded_healthy,
            started: timefmt::now(),
            policy: config.policy.clone(),
            log_failure: None,
            log_errors: 0,
        }
    }

    /// The verdict as it stands at `now` (stale ones read UNTRUSTED) and
    /// whether `/health` should answer 200.
    pub fn health(&self, now: UnixMs) -> (Option<Verdict>, bool) {
        let Some(v) = &self.verdict else {
            return (None, false);
        };
        let v = v.as_of(now);
        let healthy = self.log_failure.is_none()
            && match v.state {
                VerdictState::Trusted => true,
                VerdictState::Degraded => self.degraded_healthy,
                VerdictState::Untrusted => false,
            };
        (Some(v), healthy)
    }
}

/// Shared handle on [`Live`].
pub type SharedLive = Arc<Mutex<Live>>;

/// Locks the live state, surviving a poisoned lock (the data stays usable).
pub fn lock(live: &SharedLive) -> MutexGuard<'_, Live> {
    match live.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// A running monitor: the round loop and the HTTP server.
pub struct Running {
    /// Where the HTTP server listens.
    pub http_addr: SocketAddr,
    /// The live state.
    pub live: SharedLive,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Stops the loop and the server and waits for them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        if let Some(thread) = self.thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// Opens the log, binds the HTTP server and starts the round loop.
///
/// # Errors
/// The log cannot be opened or the HTTP address bound.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let store = Store::open(&config.monitor.database)?;
    let listener = tokio::net::TcpListener::bind(config.monitor.http_listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.monitor.http_listen))?;
    let http_addr = listener.local_addr()?;
    let live = Arc::new(Mutex::new(Live::new(&config)));
    let (stop, stop_rx) = watch::channel(false);
    let server = crate::http::Server {
        live: live.clone(),
        database: config.monitor.database.clone(),
    };
    let http = tokio::spawn(crate::http::serve(
        listener,
        Arc::new(server),
        stop_rx.clone(),
    ));
    // ntp-io's query futures are not `Send`: the rounds run on a thread of
    // their own, in a single-threaded runtime with a `LocalSet`.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("round loop runtime")?;
    let loop_live = live.clone();
    let thread = std::thread::Builder::new()
        .name("ntp-monitor-rounds".into())
        .spawn(move || {
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, run_loop(config, store, loop_live, stop_rx));
        })
        .context("cannot start the round loop")?;
    Ok(Running {
        http_addr,
        live,
        stop,
        tasks: vec![http],
        thread: Some(thread),
    })
}

struct SourceState {
    client: Option<QueryClient>,
    offsets: VecDeque<f64>,
}

async fn run_loop(config: Config, store: Store, live: SharedLive, mut stop: watch::Receiver<bool>) {
    let config = Arc::new(config);
    let store = Arc::new(Mutex::new(store));
    let dispatcher = Arc::new(Dispatcher::new(config.alerts.clone()));
    let mut states: Vec<Option<SourceState>> = config
        .sources
        .iter()
        .map(|_| {
            Some(SourceState {
                client: None,
                offsets: VecDeque::new(),
            })
        })
        .collect();
    let mut policy_state = PolicyState::new();
    let mut round = match with_store(&store, |s| s.next_round()).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot read the log: {e:#}");
            1
        }
    };
    let mut tick = tokio::time::interval(config.policy.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_prune: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            last_prune = Some(tokio::time::Instant::now());
            let days = u64::from(config.monitor.retention_days);
            let cutoff = UnixMs(
                timefmt::now()
                    .as_millis()
                    .saturating_sub(days.saturating_mul(86_400_000)),
            );
            match with_store(&store, move |s| s.prune(cutoff)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!("pruned {n} rows older than {days} days"),
                Err(e) => tracing::error!("pruning the log failed: {e:#}"),
            }
        }
        // A failed write sets `log_failure` at once; only a round written
        // in full clears it.
        let errors_before = lock(&live).log_errors;
        let mut log_ok = false;
        let round_fut = run_round(&config, &store, &live, &mut states, round);
        let results = tokio::select! {
            r = round_fut => r,
            _ = stop.changed() => return,
        };
        let now = timefmt::now();
        let step = next(&config.policy, policy_state, &Round::new(results), now);
        policy_state = step.state;
        let outcome = format!("{:?}", step.round.outcome).to_lowercase();
        {
            let verdict = step.verdict.clone();
            let alerts = step.alerts.clone();
            let outcome = outcome.clone();
            let r = with_store(&store, move |s| {
                s.insert_round(round, &verdict, &outcome, &alerts)
            })
            .await;
            match r {
                Err(e) => {
                    tracing::error!("cannot log the verdict of round {round}: {e:#}");
                    let mut l = lock(&live);
                    l.log_errors += 1;
                    l.log_failure = Some(format!("cannot log the verdict of round {round}: {e:#}"));
                }
                Ok(()) => log_ok = true,
            }
        }
        let v = &step.verdict;
        let reasons: Vec<String> = v.reasons.iter().map(ToString::to_string).collect();
        tracing::info!(
            round,
            verdict = v.state.as_str(),
            valid_until = %timefmt::rfc3339(v.valid_until),
            "round {outcome}{}{}",
            if reasons.is_empty() { "" } else { ": " },
            reasons.join("; ")
        );
        for a in &step.alerts {
            tracing::warn!(
                alert = a.kind.as_str(),
                source = a.source.as_deref().unwrap_or(""),
                "{}",
                a.message
            );
            dispatcher.dispatch(a.clone());
        }
        {
            let mut l = lock(&live);
            if log_ok && l.log_errors == errors_before {
                l.log_failure = None;
            }
            l.round = round;
            l.rounds += 1;
            if v.state == VerdictState::Trusted && v.reasons.is_empty() {
                l.open_alerts.clear();
            }
            for a in &step.alerts {
                *l.alert_counts.entry(a.kind.as_str()).or_default() += 1;
                l.open_alerts.push(a.clone());
            }
            // A flapping source must not grow /health without bound: keep
            // the latest; the log has them all.
            let excess = l.open_alerts.len().saturating_sub(MAX_OPEN_ALERTS);
            l.open_alerts.drain(..excess);
            for (src, eval) in l.sources.iter_mut().zip(&step.round.sources) {
                // `first-pass`: a source after the deciding one is skipped,
                // neither passed nor failed.
                src.passed = match eval.status {
                    ntp_policy::SourceStatus::Skipped => None,
                    _ => Some(eval.passed()),
                };
            }
            l.verdict = Some(step.verdict);
            l.outcome = Some(outcome);
        }
        round += 1;
    }
}

async fn with_store<T: Send + 'static>(
    store: &Arc<Mutex<Store>>,
    f: impl FnOnce(&mut Store) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let mut guard = match store.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut guard)
    })
    .await
    .context("log writer task")?
}

/// Checks every source (in parallel), each with up to `1 + retries`
/// attempts, logging each attempt; returns the attempts in source order.
async fn run_round(
    config: &Arc<Config>,
    store: &Arc<Mutex<Store>>,
    live: &SharedLive,
    states: &mut [Option<SourceState>],
    round: i64,
) -> Vec<CheckResult> {
    let mut tasks = Vec::new();
    for (i, slot) in states.iter_mut().enumerate() {
        let Some(mut state) = slot.take() else {
            continue;
        };
        let (config, store, live) = (config.clone(), store.clone(), live.clone());
        tasks.push((
            i,
            tokio::task::spawn_local(async move {
                let results = check_source(&config, i, &mut state, &store, &live, round).await;
                (state, results)
            }),
        ));
    }
    let mut all = Vec::new();
    for (i, task) in tasks {
        match task.await {
            Ok((state, results)) => {
                if let Some(slot) = states.get_mut(i) {
                    *slot = Some(state);
                }
                all.extend(results);
            }
            Err(e) => {
                tracing::error!("check task failed: {e}");
                if let Some(slot) = states.get_mut(i) {
                    *slot = Some(SourceState {
                        client: None,
                        offsets: VecDeque::new(),
                    });
                }
            }
        }
    }
    all
}

async fn check_source(
    config: &Config,
    index: usize,
    state: &mut SourceState,
    store: &Arc<Mutex<Store>>,
    live: &SharedLive,
    round: i64,
) -> Vec<CheckResult> {
    let Some(source) = config.sources.get(index) else {
        return Vec::new();
    };
    let policy = &config.policy;
    let mut results = Vec::new();
    let mut replied = false;
    for attempt in 1..=policy.retries.saturating_add(1) {
        if attempt > 1 {
            tokio::time::sleep(policy.retry_interval).await;
        }
        let at = timefmt::now();
        let outcome = query(source, state, config.monitor.query_timeout).await;
        let (result, mut record) = to_result(source, &outcome, at, state);
        let evaluation = evaluate_attempt(policy, &result);
        record.round = round;
        record.attempt = i64::from(attempt);
        record.passed = evaluation.passed;
        if result.outcome.is_ok() {
            replied = true;
            if evaluation.passed {
                record.result = "pass".into();
                record.diagnostic = if evaluation.warnings.is_empty() {
                    "ok".into()
                } else {
                    join(&evaluation.warnings)
                };
            } else if let Some(first) = evaluation.failures.first() {
                record.result = first.code().into();
                record.diagnostic = join(&evaluation.failures);
            }
        }
        let passed = evaluation.passed;
        let insert = record.clone();
        match with_store(store, move |s| s.insert_check(&insert)).await {
            Ok(id) => record.id = id,
            Err(e) => {
                tracing::error!(source = %source.name, "cannot log a check: {e:#}");
                let mut l = lock(live);
                l.log_errors += 1;
                l.log_failure = Some(format!("cannot log a check of {}: {e:#}", source.name));
            }
        }
        {
            let mut l = lock(live);
            if let Some(s) = l.sources.get_mut(index) {
                s.checks += 1;
                if record.offset_s.is_some() {
                    s.last_sample = Some(record.clone());
                }
                s.last = Some(record);
            }
        }
        results.push(result);
        if passed {
            break;
        }
    }
    let mut l = lock(live);
    if let Some(s) = l.sources.get_mut(index) {
        s.reach = (s.reach << 1) | u8::from(replied);
    }
    results
}

fn join(reasons: &[ntp_policy::Reason]) -> String {
    reasons
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

async fn query(
    source: &Source,
    state: &mut SourceState,
    timeout: Duration,
) -> Result<Measurement, QueryError> {
    // Name resolution has no timeout of its own: bound the whole attempt.
    let limit = timeout.saturating_mul(3);
    let fut = async {
        if state.client.is_none() {
            let options = QueryOptions {
                nts: source.nts,
                port: if source.nts { None } else { source.port },
                ke_port: if source.nts {
                    source.port.unwrap_or(ntp_io::DEFAULT_KE_PORT)
                } else {
                    ntp_io::DEFAULT_KE_PORT
                },
                ca_file: source.ca_file.clone(),
                timeout,
                retries: 0,
                aead: Vec::new(),
            };
            state.client = Some(QueryClient::connect(&source.host, options).await?);
        }
        match state.client.as_mut() {
            Some(c) => c.sample().await,
            None => Err(QueryError::Seal("no client".into())),
        }
    };
    let r = match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(QueryError::KeyExchange(KeError::Timeout {
            host: source.host.clone(),
            after: limit,
        })),
    };
    if r.is_err() {
        // Start afresh next time: new resolution, new NTS session.
        state.client = None;
    }
    r
}

/// Maps a query error to the policy's failure and a result code for the log.
pub fn failure_of(e: &QueryError) -> (CheckFailure, &'static str) {
    match e {
        QueryError::Resolve { .. } => (CheckFailure::Unreachable, "unresolved"),
        QueryError::KeyExchange(_) | QueryError::Trust(_) => {
            (CheckFailure::NtsKeFailed, "nts-ke-failed")
        }
        QueryError::Refused { .. } => (CheckFailure::Unreachable, "refused"),
        QueryError::Unreachable { .. } => (CheckFailure::Timeout, "timeout"),
        QueryError::Io { .. } => (CheckFailure::Unreachable, "unreachable"),
        QueryError::Kiss { code, .. } => (
            CheckFailure::KissOfDeath(code.to_reference_id().to_bytes()),
            "kiss-o-death",
        ),
        QueryError::NtsNak { .. } => (CheckFailure::NtsAuthFailed, "nts-nak"),
        QueryError::Unsynchronized { .. } => (CheckFailure::Unsynchronized, "unsynchronized"),
        QueryError::Seal(_) => (CheckFailure::NtsAuthFailed, "nts-failed"),
        _ => (CheckFailure::Other(e.to_string()), "error"),
    }
}

fn refid_text(m: &Measurement) -> String {
    let id = m.reference_id;
    if m.stratum <= 1
        && let Some(a) = id.as_ascii()
    {
        return a.trim_end_matches('\0').to_string();
    }
    let b = id.to_bytes();
    format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
}

fn to_result(
    source: &Source,
    outcome: &Result<Measurement, QueryError>,
    at: UnixMs,
    state: &mut SourceState,
) -> (CheckResult, CheckRecord) {
    let mut record = CheckRecord {
        at_ms: i64::try_from(at.as_millis()).unwrap_or(i64::MAX),
        source: source.name.clone(),
        operator: source.operator.clone(),
        address: source.address.clone(),
        nts: source.nts,
        ..Default::default()
    };
    let outcome = match outcome {
        Ok(m) => {
            state.offsets.push_front(m.offset);
            state.offsets.truncate(JITTER_SAMPLES);
            let jitter = (state.offsets.len() > 1).then(|| {
                let n = (state.offsets.len() - 1) as f64;
                (state
                    .offsets
                    .iter()
                    .skip(1)
                    .map(|o| (o - m.offset).powi(2))
                    .sum::<f64>()
                    / n)
                    .sqrt()
            });
            let leap = Leap::from_indicator(m.leap.to_bits());
            let mut sample = Sample::new(
                m.offset,
                m.delay,
                m.root_delay,
                m.root_dispersion,
                m.stratum,
                leap,
            );
            sample.jitter_s = jitter;
            record.server = Some(m.server.to_string());
            record.nts = m.nts.is_some();
            record.version = Some(i64::from(m.version));
            record.stratum = Some(i64::from(m.stratum));
            record.refid = Some(refid_text(m));
            record.precision = Some(i64::from(m.precision));
            record.leap = Some(i64::from(m.leap.to_bits()));
            record.offset_s = Some(m.offset);
            record.delay_s = Some(m.delay);
            record.dispersion_s = Some(2f64.powi(i32::from(m.precision)) + PHI * m.delay);
            record.jitter_s = jitter;
            record.root_delay_s = Some(m.root_delay);
            record.root_dispersion_s = Some(m.root_dispersion);
            record.result = "pass".into();
            Ok(sample)
        }
        Err(e) => {
            let (failure, code) = failure_of(e);
            record.result = code.into();
            record.diagnostic = e.to_string();
            Err(failure)
        }
    };
    let result = CheckResult {
        source: source.name.clone(),
        operator: source.operator.clone(),
        address: source.address.clone(),
        nts: record.nts,
        outcome,
        at,
    };
    (result, record)
}
