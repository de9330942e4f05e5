//! The system process: fitness, selection, clustering, combining and the
//! discipline, over all sources (RFC 5905 §11).

use ntp_proto::{LeapIndicator, NtpDuration, NtpShort, NtpTimestamp, ReferenceId, SystemInfo};

use crate::consts::{CMIN, MINDISP, NMIN, PHI};
use crate::discipline::{Decision, Discipline, DisciplineConfig, DisciplineStatus};
use crate::select::{Interval, Survivor, cluster, combine, select};
use crate::source::{Source, SourceState, UnfitReason};

/// System-wide settings.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct SystemConfig {
    /// The discipline's algorithm and thresholds.
    pub discipline: DisciplineConfig,
    /// The cluster algorithm keeps at least this many survivors (NMIN, 3).
    pub min_survivors: usize,
    /// Fewer fit sources than this means "no sources" (CMIN, 1).
    pub min_candidates: usize,
    /// At start-up and after a step, wait up to this long for every
    /// reachable source's first sample before steering, so one early reply
    /// cannot decide alone (default 10 s: a 4-request burst takes 6 s).
    pub acquire_wait: NtpDuration,
    /// Our clock's precision, log₂ seconds.
    pub local_precision: i8,
}

impl Default for SystemConfig {
    fn default() -> Self {
        Self {
            discipline: DisciplineConfig::default(),
            min_survivors: NMIN,
            min_candidates: CMIN,
            acquire_wait: NtpDuration::from_seconds(10),
            local_precision: -20,
        }
    }
}

/// Why the system is not synchronized.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum UnsyncReason {
    /// Waiting for the first samples.
    Startup,
    /// No source is fit for selection (unreachable, denied, unsynchronized,
    /// too distant).
    NoSources,
    /// The sources disagree: no majority shares an interval.
    NoMajority,
    /// The offset is beyond the step threshold; a step follows after the
    /// stepout unless it comes back.
    StepPending {
        /// The offset.
        offset: NtpDuration,
    },
    /// The offset is beyond the panic threshold: the clock is no longer
    /// steered; measuring goes on.
    Panic {
        /// The offset.
        offset: NtpDuration,
    },
}

impl core::fmt::Display for UnsyncReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Startup => f.write_str("waiting for the first samples"),
            Self::NoSources => f.write_str("no sources"),
            Self::NoMajority => f.write_str("no majority agrees"),
            Self::StepPending { offset } => {
                write!(f, "offset {offset} beyond step threshold, step pending")
            }
            Self::Panic { offset } => write!(f, "offset {offset} beyond panic threshold"),
        }
    }
}

/// Whether the system clock can be trusted.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum SyncState {
    /// A majority of sources agree and the clock is being steered to them.
    Synchronized,
    /// Not synchronized, with the reason.
    Unsynchronized {
        /// Why.
        reason: UnsyncReason,
    },
}

impl SyncState {
    /// Whether this is [`SyncState::Synchronized`].
    pub fn is_synchronized(&self) -> bool {
        matches!(self, Self::Synchronized)
    }
}

/// The system variables after the last update (RFC 5905 §11.2.3).
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct SystemEstimate {
    /// Synchronized or not, and why.
    pub sync: SyncState,
    /// Combined offset Θ of the survivors at the last update.
    pub offset: NtpDuration,
    /// System jitter Ψ, seconds.
    pub jitter: f64,
    /// Frequency correction in force, ppm.
    pub frequency_ppm: f64,
    /// Root delay to the primary reference.
    pub root_delay: NtpDuration,
    /// Root dispersion.
    pub root_dispersion: NtpDuration,
    /// Root distance Λ = root dispersion + root delay / 2.
    pub root_distance: NtpDuration,
    /// System peer stratum + 1 (16 when unsynchronized).
    pub stratum: u8,
    /// The system peer's reference id.
    pub reference_id: ReferenceId,
    /// The system peer's leap indicator (unsynchronized when we are).
    pub leap: LeapIndicator,
    /// Index of the system peer in the sources slice.
    pub system_peer: Option<usize>,
    /// System poll exponent.
    pub poll: i8,
    /// When the clock was last updated (local time).
    pub reference_time: NtpTimestamp,
    /// Truechimers at the last selection.
    pub truechimers: usize,
    /// Survivors of clustering at the last selection.
    pub survivors: usize,
}

impl SystemEstimate {
    fn unsynchronized(reason: UnsyncReason, poll: i8, frequency_ppm: f64) -> Self {
        Self {
            sync: SyncState::Unsynchronized { reason },
            offset: NtpDuration::ZERO,
            jitter: 0.0,
            frequency_ppm,
            root_delay: NtpDuration::ZERO,
            root_dispersion: NtpDuration::ZERO,
            root_distance: NtpDuration::ZERO,
            stratum: ntp_proto::MAX_STRATUM,
            reference_id: ReferenceId::NONE,
            leap: LeapIndicator::Unsynchronized,
            system_peer: None,
            poll,
            reference_time: NtpTimestamp::ZERO,
            truechimers: 0,
            survivors: 0,
        }
    }

    /// What a server should say about this clock in its replies.
    pub fn system_info(&self, precision: i8) -> SystemInfo {
        SystemInfo {
            leap: if self.sync.is_synchronized() {
                self.leap
            } else {
                LeapIndicator::Unsynchronized
            },
            stratum: if self.sync.is_synchronized() {
                self.stratum
            } else {
                ntp_proto::MAX_STRATUM
            },
            precision,
            root_delay: NtpShort::from_duration(self.root_delay),
            root_dispersion: NtpShort::from_duration(self.root_dispersion),
            reference_id: self.reference_id,
            reference_timestamp: self.reference_time,
        }
    }
}

/// The system process over a set of [`Source`]s.
///
/// # Call order
///
/// After every [`Source::on_measurement`] that returned
/// `Accepted { updated: true }` (calling it more often is harmless), call
/// [`System::update`]`(now, &mut sources)` with *all* sources, always in the
/// same order (indices in the estimate refer to it). Apply the returned
/// [`Decision`] to the clock before the next call (see
/// [`Decision::apply`]). After a [`Decision::Slew`] the sources' stored
/// offsets have already been reduced by the slewed amount. After a [`Decision::Step`] the sources have already
/// been reset and re-burst ([`Source::on_step`]); discard replies to
/// requests sent before the step. Read [`System::estimate`] for status, and
/// [`SystemEstimate::system_info`] for what a server should advertise.
#[derive(Clone, Debug)]
pub struct System {
    config: SystemConfig,
    discipline: Discipline,
    estimate: SystemEstimate,
    acquire_since: Option<NtpTimestamp>,
    acquiring: bool,
    last_update: Option<NtpTimestamp>,
    ever_synchronized: bool,
}

impl System {
    /// A system with no history.
    pub fn new(config: SystemConfig) -> Self {
        let discipline = Discipline::new(config.discipline);
        let estimate =
            SystemEstimate::unsynchronized(UnsyncReason::Startup, discipline.poll(), 0.0);
        Self {
            config,
            discipline,
            estimate,
            acquire_since: None,
            acquiring: true,
            last_update: None,
            ever_synchronized: false,
        }
    }

    /// The estimate after the last update.
    pub fn estimate(&self) -> &SystemEstimate {
        &self.estimate
    }

    /// The discipline (frequency, poll, status).
    pub fn discipline(&self) -> &Discipline {
        &self.discipline
    }

    /// Starts from a known frequency (a drift file), ppm.
    pub fn set_frequency_ppm(&mut self, ppm: f64) {
        self.discipline.set_frequency_ppm(ppm);
    }

    /// Runs selection, clustering and combining over `sources` at local time
    /// `now`; feeds the discipline when the system peer has a newer sample;
    /// sets every source's [`SourceState`]. Returns the decision for the
    /// clock, if any.
    pub fn update(&mut self, now: NtpTimestamp, sources: &mut [Source]) -> Option<Decision> {
        let poll = self.discipline.poll();
        for s in sources.iter_mut() {
            s.set_system_poll(poll);
        }
        let acquire_since = *self.acquire_since.get_or_insert(now);

        // Fitness.
        let mut index = Vec::new();
        let mut intervals = Vec::new();
        let mut survivors = Vec::new();
        let mut missing = false;
        for (i, s) in sources.iter_mut().enumerate() {
            match s.fitness(now) {
                Ok(distance) => {
                    let (Some(out), Some(info)) = (s.filter_output(), s.info()) else {
                        continue;
                    };
                    index.push(i);
                    intervals.push(Interval {
                        offset: out.offset,
                        distance,
                    });
                    survivors.push(Survivor {
                        offset: out.offset,
                        distance,
                        stratum: info.stratum,
                        jitter: out.jitter,
                    });
                }
                Err(state) => {
                    missing |= state == SourceState::Unfit(UnfitReason::NoData);
                    s.set_state(state);
                }
            }
        }
        if self.acquiring {
            let waited = now.duration_since(acquire_since) >= self.config.acquire_wait;
            if missing && !waited {
                if !self.ever_synchronized {
                    self.set_unsync(UnsyncReason::Startup);
                }
                for &i in &index {
                    if let Some(s) = sources.get_mut(i) {
                        s.set_state(SourceState::Candidate);
                    }
                }
                return None;
            }
            self.acquiring = false;
        }
        if index.len() < self.config.min_candidates.max(1) {
            self.set_unsync(UnsyncReason::NoSources);
            return None;
        }

        // Selection.
        let Some(selection) = select(&intervals) else {
            for &i in &index {
                if let Some(s) = sources.get_mut(i) {
                    s.set_state(SourceState::Candidate);
                }
            }
            self.set_unsync(UnsyncReason::NoMajority);
            return None;
        };
        for (k, &i) in index.iter().enumerate() {
            let state = if selection.truechimers.contains(&k) {
                SourceState::Candidate
            } else {
                SourceState::Falseticker
            };
            if let Some(s) = sources.get_mut(i) {
                s.set_state(state);
            }
        }

        // Cluster and combine over the truechimers.
        let true_survivors: Vec<Survivor> = selection
            .truechimers
            .iter()
            .filter_map(|&k| survivors.get(k).copied())
            .collect();
        let mut list = cluster(&true_survivors, self.config.min_survivors);
        // Keep the old system peer if it survived at the head's stratum.
        if let (Some(old), Some(&head)) = (self.estimate.system_peer, list.first()) {
            let head_stratum = true_survivors.get(head).map(|s| s.stratum);
            if let Some(pos) = list.iter().position(|&k| {
                selection.truechimers.get(k).and_then(|&c| index.get(c)) == Some(&old)
                    && true_survivors.get(k).map(|s| s.stratum) == head_stratum
            }) {
                list.swap(0, pos);
            }
        }
        let combined = combine(&true_survivors, &list)?;
        let to_source = |k: usize| {
            selection
                .truechimers
                .get(k)
                .and_then(|&c| index.get(c))
                .copied()
        };
        for (pos, &k) in list.iter().enumerate() {
            if let Some(s) = to_source(k).and_then(|i| sources.get_mut(i)) {
                s.set_state(if pos == 0 {
                    SourceState::SystemPeer
                } else {
                    SourceState::Selected
                });
            }
        }
        let peer_index = to_source(*list.first()?)?;
        let peer = sources.get(peer_index)?;
        let out = peer.filter_output()?;
        let info = peer.info()?;

        // Discipline, only for a sample newer than the last one used.
        let newer = self.last_update.is_none_or(|t| t.is_before(out.time));
        let mut decision = None;
        let frequency_before = self.discipline.frequency_ppm();
        if newer {
            self.last_update = Some(out.time);
            // While the PLL/FLL measures the frequency nothing corrects the
            // drift, so survivors' samples of different ages disagree by it:
            // use the system peer's own sample, whose time is known.
            let offset = if self.discipline.status() == DisciplineStatus::MeasuringFrequency {
                out.offset
            } else {
                combined.offset
            };
            decision = self
                .discipline
                .update(now, out.time, offset, combined.jitter);
        }
        let sync = match self.discipline.status() {
            DisciplineStatus::Unset => SyncState::Unsynchronized {
                reason: UnsyncReason::Startup,
            },
            DisciplineStatus::MeasuringFrequency | DisciplineStatus::Tracking => {
                SyncState::Synchronized
            }
            DisciplineStatus::StepPending { offset } => SyncState::Unsynchronized {
                reason: UnsyncReason::StepPending {
                    offset: NtpDuration::from_seconds_f64(offset),
                },
            },
            DisciplineStatus::Panic { offset } => SyncState::Unsynchronized {
                reason: UnsyncReason::Panic {
                    offset: NtpDuration::from_seconds_f64(offset),
                },
            },
        };
        self.ever_synchronized |= sync.is_synchronized();
        let age = now.duration_since(out.time).to_seconds_f64().max(0.0);
        let root_delay = info.root_delay.to_seconds_f64() + out.delay;
        let root_dispersion = info.root_dispersion.to_seconds_f64()
            + MINDISP.max(out.dispersion + out.jitter + PHI * age + combined.offset.abs());
        self.estimate = SystemEstimate {
            sync,
            offset: NtpDuration::from_seconds_f64(combined.offset),
            jitter: combined.jitter,
            frequency_ppm: self.discipline.frequency_ppm(),
            root_delay: NtpDuration::from_seconds_f64(root_delay),
            root_dispersion: NtpDuration::from_seconds_f64(root_dispersion),
            root_distance: NtpDuration::from_seconds_f64(root_dispersion + root_delay / 2.0),
            stratum: info.stratum.saturating_add(1).min(ntp_proto::MAX_STRATUM),
            reference_id: peer.reference_id(),
            leap: info.leap,
            system_peer: Some(peer_index),
            poll: self.discipline.poll(),
            reference_time: if newer {
                now
            } else {
                self.estimate.reference_time
            },
            truechimers: selection.truechimers.len(),
            survivors: list.len(),
        };
        if let Some(Decision::Slew {
            offset,
            frequency_ppm,
        }) = decision
        {
            for s in sources.iter_mut() {
                s.on_slew(now, offset, frequency_ppm - frequency_before);
            }
        }
        if let Some(Decision::Step { .. }) = decision {
            for s in sources.iter_mut() {
                s.on_step(now);
            }
            self.acquiring = true;
            self.acquire_since = Some(now);
            self.last_update = None;
        }
        decision
    }

    fn set_unsync(&mut self, reason: UnsyncReason) {
        let mut e = SystemEstimate::unsynchronized(
            reason,
            self.discipline.poll(),
            self.discipline.frequency_ppm(),
        );
        e.reference_time = self.estimate.reference_time;
        self.estimate = e;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measurement::Measurement;
    use crate::source::SourceConfig;

    fn at(s: f64) -> NtpTimestamp {
        NtpTimestamp::from_seconds_and_fraction(3_913_056_000, 0) + NtpDuration::from_seconds_f64(s)
    }

    fn feed(s: &mut Source, offset: f64, t: f64) {
        s.on_sent(at(t));
        let m = Measurement {
            offset: NtpDuration::from_seconds_f64(offset),
            delay: NtpDuration::from_seconds_f64(0.01),
            dispersion: NtpDuration::from_seconds_f64(1e-6),
            time: at(t),
            stratum: 1,
            leap: LeapIndicator::NoWarning,
            reference_id: ReferenceId::NONE,
            root_delay: NtpShort::ZERO,
            root_dispersion: NtpShort::ZERO,
            poll: 6,
            precision: -20,
            nts: false,
        };
        s.on_measurement(&m, at(t));
    }

    fn sources(n: u8) -> Vec<Source> {
        (0..n)
            .map(|i| {
                Source::new(
                    SourceConfig::default(),
                    ReferenceId::from_bytes([10, 0, 0, i]),
                )
            })
            .collect()
    }

    #[test]
    fn waits_for_all_sources_then_marks_the_liar() {
        let mut sys = System::new(SystemConfig::default());
        let mut src = sources(3);
        feed(&mut src[0], 0.001, 0.0);
        assert_eq!(sys.update(at(0.0), &mut src), None);
        assert_eq!(
            sys.estimate().sync,
            SyncState::Unsynchronized {
                reason: UnsyncReason::Startup
            }
        );
        feed(&mut src[1], 0.5, 0.0);
        feed(&mut src[2], 0.002, 0.0);
        let d = sys.update(at(0.0), &mut src);
        assert!(matches!(d, Some(Decision::Slew { .. })), "{d:?}");
        assert_eq!(src[1].state(), SourceState::Falseticker);
        assert!(matches!(
            src[0].state(),
            SourceState::SystemPeer | SourceState::Selected
        ));
        assert!(sys.estimate().sync.is_synchronized());
        assert_eq!(sys.estimate().stratum, 2);
        assert_eq!(sys.estimate().truechimers, 2);
    }

    #[test]
    fn no_majority_is_unsynchronized() {
        let mut sys = System::new(SystemConfig::default());
        let mut src = sources(2);
        feed(&mut src[0], 0.0, 0.0);
        feed(&mut src[1], 0.9, 0.0);
        assert_eq!(sys.update(at(0.0), &mut src), None);
        assert_eq!(
            sys.estimate().sync,
            SyncState::Unsynchronized {
                reason: UnsyncReason::NoMajority
            }
        );
        assert_eq!(sys.estimate().system_info(-20).stratum, 16);
    }

    #[test]
    fn no_sources() {
        let mut sys = System::new(SystemConfig::default());
        let mut src: Vec<Source> = vec![];
        assert_eq!(sys.update(at(100.0), &mut src), None);
        assert_eq!(
            sys.estimate().sync,
            SyncState::Unsynchronized {
                reason: UnsyncReason::NoSources
            }
        );
    }

    #[test]
    fn startup_step_resets_the_sources() {
        let mut sys = System::new(SystemConfig::default());
        let mut src = sources(3);
        for s in &mut src {
            feed(s, 0.5, 0.0);
        }
        assert!(matches!(
            sys.update(at(0.0), &mut src),
            Some(Decision::Step { .. })
        ));
        for s in &src {
            assert!(s.filter_output().is_none());
            assert!(s.poll_due(at(0.5)));
        }
    }
}
