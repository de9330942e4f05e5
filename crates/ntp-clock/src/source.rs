//! Per-source state: clock filter, reachability, poll control and
//! Kiss-o'-Death handling (RFC 5905 §§10, 13; RFC 8915 §5.7).

use ntp_proto::{KissCode, LeapIndicator, NtpDuration, NtpShort, NtpTimestamp, ReferenceId};

use crate::consts::{MAXPOLL, PHI};
use crate::filter::{ClockFilter, FilterOutput, FilterSample, FilterVerdict};
use crate::measurement::{Measurement, log2_seconds};

/// How a source is polled.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SourceConfig {
    /// Shortest poll interval, log₂ seconds (default 6 = 64 s).
    pub min_poll: i8,
    /// Longest poll interval, log₂ seconds (default 10 = 1024 s).
    pub max_poll: i8,
    /// Send a burst on start-up and after the source was unreachable.
    pub burst: bool,
    /// Requests in a burst (default 4).
    pub burst_count: u8,
    /// Gap between burst requests, seconds (default 2).
    pub burst_interval_secs: u8,
    /// Consecutive unanswered polls after which the source is unreachable
    /// (default 8, the width of the reach register).
    pub unreach_polls: u8,
    /// Our clock's precision, log₂ seconds (floor of the filter jitter).
    pub local_precision: i8,
}

impl Default for SourceConfig {
    fn default() -> Self {
        Self {
            min_poll: 6,
            max_poll: 10,
            burst: true,
            burst_count: 4,
            burst_interval_secs: 2,
            unreach_polls: 8,
            local_precision: -20,
        }
    }
}

/// A source's standing after the last system update (RFC 5905 tally codes).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SourceState {
    /// The system peer: the head of the survivor list (`*`).
    SystemPeer,
    /// A survivor of clustering, used in the combined estimate (`+`).
    Selected,
    /// A truechimer discarded by the cluster algorithm (`-`), or a source
    /// not yet evaluated.
    Candidate,
    /// Rejected by interval intersection: it disagrees with the majority
    /// (`x`).
    Falseticker,
    /// Fit for nothing yet: see the reason (` `).
    Unfit(UnfitReason),
    /// No reply to the last [`SourceConfig::unreach_polls`] polls.
    Unreachable,
    /// The server sent DENY or RSTR; we no longer poll it.
    Denied,
}

/// Why a source cannot take part in selection (RFC 5905 §11.2 fitness).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum UnfitReason {
    /// No sample yet (or none since the last clock step).
    NoData,
    /// Leap indicator 3.
    Unsynchronized,
    /// Stratum 16 or more.
    Stratum,
    /// Root distance above MAXDIST + PHI·2^poll.
    Distance,
}

/// What [`Source::on_measurement`] did with a sample.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SampleOutcome {
    /// Stored; `updated` says whether the filter output moved to a newer
    /// sample (then run [`crate::System::update`]).
    Accepted {
        /// The filter output changed.
        updated: bool,
    },
    /// Held back by the popcorn spike suppressor.
    Spike,
    /// No request was outstanding (timed out, or cancelled by a step): the
    /// sample is dropped.
    Stale,
    /// The source is denied; the sample is dropped.
    Denied,
}

/// What the caller must do after a Kiss-o'-Death.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum KissAction {
    /// RATE: the poll interval was raised to `poll` (log₂ s); nothing else.
    BackOff {
        /// The new poll exponent.
        poll: i8,
    },
    /// DENY or RSTR: the source is now [`SourceState::Denied`] and never
    /// polled again; drop it or keep it for display.
    Stop,
    /// NTSN: the cookies were refused; run NTS-KE again for this source
    /// before its next request (RFC 8915 §5.7).
    RekeyNts,
    /// Any other code: logged and ignored.
    Ignored,
}

/// What the source last said about itself.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SourceInfo {
    /// Stratum.
    pub stratum: u8,
    /// Leap indicator.
    pub leap: LeapIndicator,
    /// Reference id the source reported.
    pub reference_id: ReferenceId,
    /// Root delay.
    pub root_delay: NtpShort,
    /// Root dispersion.
    pub root_dispersion: NtpShort,
    /// Whether the last sample was NTS-authenticated.
    pub nts: bool,
}

/// The per-source state machine (an RFC 5905 association, client mode).
///
/// Sans-IO: it never sends or reads a clock. `now` is always the local
/// clock's time.
///
/// # Call order
///
/// 1. `Source::new(config, id)`; the first poll is due at once.
/// 2. Loop: when [`Source::poll_due`]`(now)` (or at [`Source::next_poll`]),
///    send a request and call [`Source::on_sent`]`(now)` with T1; use
///    [`Source::poll`] as the request's poll field.
/// 3. For the reply: build a [`Measurement`] with
///    [`Measurement::from_reply`]. On success call
///    [`Source::on_measurement`]; on `OnWireError::Kiss(code)` call
///    [`Source::on_kiss`] and act on the [`KissAction`]; other errors drop
///    the reply (the request stays outstanding until its timeout).
/// 4. If no reply arrives within your timeout, call [`Source::on_timeout`].
/// 5. After any accepted measurement, call [`crate::System::update`] with all
///    sources; it sets [`Source::state`] and, after a step, calls
///    [`Source::on_step`] itself.
#[derive(Clone, Debug)]
pub struct Source {
    config: SourceConfig,
    reference_id: ReferenceId,
    filter: ClockFilter,
    reach: u8,
    unanswered: u32,
    system_poll: i8,
    kiss_poll: Option<i8>,
    denied: bool,
    burst_remaining: u8,
    next_poll: Option<NtpTimestamp>,
    outstanding: Option<NtpTimestamp>,
    info: Option<SourceInfo>,
    state: SourceState,
    spikes: u64,
}

impl Source {
    /// A new source. `reference_id` is what we advertise as our reference id
    /// when this source is the system peer (its IPv4 address, or the first
    /// four bytes of the MD5 of its IPv6 address, RFC 5905 §7.3).
    pub fn new(config: SourceConfig, reference_id: ReferenceId) -> Self {
        let min_poll = config.min_poll.clamp(0, MAXPOLL);
        let config = SourceConfig {
            min_poll,
            max_poll: config.max_poll.clamp(min_poll, MAXPOLL),
            ..config
        };
        Self {
            config,
            reference_id,
            filter: ClockFilter::new(config.local_precision),
            reach: 0,
            unanswered: 0,
            system_poll: config.min_poll,
            kiss_poll: None,
            denied: false,
            burst_remaining: if config.burst { config.burst_count } else { 0 },
            next_poll: None,
            outstanding: None,
            info: None,
            state: SourceState::Unfit(UnfitReason::NoData),
            spikes: 0,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &SourceConfig {
        &self.config
    }

    /// The reference id we advertise when this is the system peer.
    pub fn reference_id(&self) -> ReferenceId {
        self.reference_id
    }

    /// Whether a request should be sent now.
    pub fn poll_due(&self, now: NtpTimestamp) -> bool {
        match self.next_poll(now) {
            Some(at) => !now.is_before(at),
            None => false,
        }
    }

    /// When the next request is due (`now` if overdue), or `None` if the
    /// source is denied.
    pub fn next_poll(&self, now: NtpTimestamp) -> Option<NtpTimestamp> {
        if self.denied {
            return None;
        }
        Some(self.next_poll.unwrap_or(now))
    }

    /// The poll exponent in force (log₂ s): the system's poll clamped to
    /// the configured range, raised by a RATE kiss and while unreachable.
    pub fn poll(&self) -> i8 {
        let mut poll = self
            .system_poll
            .clamp(self.config.min_poll, self.config.max_poll);
        if self.is_unreachable() {
            // Back off towards max poll while nobody answers.
            let extra = i8::try_from(
                self.unanswered
                    .saturating_sub(self.config.unreach_polls.into()),
            )
            .unwrap_or(i8::MAX);
            poll = poll.saturating_add(extra).min(self.config.max_poll);
        }
        if let Some(k) = self.kiss_poll {
            poll = poll.max(k);
        }
        poll
    }

    /// The 8-bit reachability register: bit 0 is the latest poll.
    pub fn reach(&self) -> u8 {
        self.reach
    }

    /// Whether the last [`SourceConfig::unreach_polls`] polls went
    /// unanswered.
    pub fn is_unreachable(&self) -> bool {
        self.unanswered >= u32::from(self.config.unreach_polls)
    }

    /// Whether a DENY or RSTR kiss stopped this source.
    pub fn is_denied(&self) -> bool {
        self.denied
    }

    /// The state set by the last [`crate::System::update`] (or by
    /// reachability and KoD since).
    pub fn state(&self) -> SourceState {
        if self.denied {
            SourceState::Denied
        } else if self.is_unreachable() {
            SourceState::Unreachable
        } else {
            self.state
        }
    }

    /// The clock filter's current output.
    pub fn filter_output(&self) -> Option<FilterOutput> {
        self.filter.output()
    }

    /// What the source last said about itself.
    pub fn info(&self) -> Option<SourceInfo> {
        self.info
    }

    /// Number of samples the popcorn suppressor held back.
    pub fn spikes(&self) -> u64 {
        self.spikes
    }

    /// Root distance at `now` (RFC 5905 §11.2): `max(MINDISP, root delay +
    /// δ)/2 + root dispersion + ε + PHI·age + ψ`, seconds; `None` without a
    /// sample.
    pub fn root_distance(&self, now: NtpTimestamp) -> Option<f64> {
        let out = self.filter.output()?;
        let info = self.info?;
        let age = now.duration_since(out.time).to_seconds_f64().max(0.0);
        Some(
            (crate::consts::MINDISP).max(info.root_delay.to_seconds_f64() + out.delay) / 2.0
                + info.root_dispersion.to_seconds_f64()
                + out.dispersion
                + PHI * age
                + out.jitter,
        )
    }

    /// A request was sent at `now` (T1).
    ///
    /// Shifts the reach register; after three silent polls a dummy stage
    /// enters the filter so the source's dispersion grows (RFC 5905 §13).
    pub fn on_sent(&mut self, now: NtpTimestamp) {
        if self.denied {
            return;
        }
        self.reach <<= 1;
        self.unanswered = self.unanswered.saturating_add(1);
        if self.reach & 0b111 == 0 && self.filter.output().is_some() {
            self.filter.add_dummy(now);
        }
        self.outstanding = Some(now);
        let wait = if self.burst_remaining > 1 {
            self.burst_remaining -= 1;
            NtpDuration::from_seconds(self.config.burst_interval_secs.into())
        } else {
            self.burst_remaining = 0;
            NtpDuration::from_seconds_f64(log2_seconds(self.poll()))
        };
        self.next_poll = Some(now + wait);
    }

    /// The outstanding request got no reply in time.
    pub fn on_timeout(&mut self, _now: NtpTimestamp) {
        self.outstanding = None;
    }

    /// A valid reply arrived at `now` (its T4) and gave `m`.
    pub fn on_measurement(&mut self, m: &Measurement, now: NtpTimestamp) -> SampleOutcome {
        if self.denied {
            return SampleOutcome::Denied;
        }
        if self.outstanding.take().is_none() {
            return SampleOutcome::Stale;
        }
        let was_unreachable = self.is_unreachable();
        self.reach |= 1;
        self.unanswered = 0;
        if was_unreachable && self.config.burst {
            // Fast re-acquisition: the next poll starts a burst.
            self.burst_remaining = self.config.burst_count;
            self.next_poll = Some(now);
        }
        self.info = Some(SourceInfo {
            stratum: m.stratum,
            leap: m.leap,
            reference_id: m.reference_id,
            root_delay: m.root_delay,
            root_dispersion: m.root_dispersion,
            nts: m.nts,
        });
        let sample = FilterSample {
            offset: m.offset.to_seconds_f64(),
            delay: m.delay.to_seconds_f64(),
            dispersion: m.dispersion.to_seconds_f64(),
            time: m.time,
        };
        match self.filter.add(sample, now, self.poll()) {
            FilterVerdict::Updated => SampleOutcome::Accepted { updated: true },
            FilterVerdict::NotNewer => SampleOutcome::Accepted { updated: false },
            FilterVerdict::Spike => {
                self.spikes += 1;
                SampleOutcome::Spike
            }
        }
    }

    /// A Kiss-o'-Death with `code` answered our request (only pass kisses
    /// whose origin matched, as [`Measurement::from_reply`] ensures).
    pub fn on_kiss(&mut self, code: KissCode, now: NtpTimestamp) -> KissAction {
        self.outstanding = None;
        if code == KissCode::RATE {
            let poll = self
                .poll()
                .saturating_add(1)
                .clamp(self.config.min_poll + 1, MAXPOLL);
            self.kiss_poll = Some(poll);
            self.burst_remaining = 0;
            self.next_poll = Some(now + NtpDuration::from_seconds_f64(log2_seconds(poll)));
            KissAction::BackOff { poll }
        } else if code.is_stop() {
            self.denied = true;
            self.burst_remaining = 0;
            self.next_poll = None;
            KissAction::Stop
        } else if code == KissCode::NTSN {
            KissAction::RekeyNts
        } else {
            KissAction::Ignored
        }
    }

    /// The local clock was stepped: forget the filter (its offsets are
    /// stale), cancel the outstanding request (its T1 is on the old
    /// timescale) and re-acquire with a burst.
    pub fn on_step(&mut self, now: NtpTimestamp) {
        self.filter.reset();
        self.outstanding = None;
        if self.denied {
            return;
        }
        if self.config.burst {
            self.burst_remaining = self.config.burst_count;
        }
        self.next_poll = Some(now);
        self.state = SourceState::Unfit(UnfitReason::NoData);
    }

    /// The local clock was slewed at `now` by `offset` (added to it) and its
    /// frequency correction changed by `frequency_change_ppm`: the stored
    /// samples are re-expressed accordingly (see
    /// [`ClockFilter::adjust`]). [`crate::System::update`] calls this for its
    /// own decisions.
    pub fn on_slew(&mut self, now: NtpTimestamp, offset: NtpDuration, frequency_change_ppm: f64) {
        self.filter
            .adjust(now, offset.to_seconds_f64(), frequency_change_ppm * 1e-6);
    }

    pub(crate) fn set_system_poll(&mut self, poll: i8) {
        self.system_poll = poll;
    }

    pub(crate) fn set_state(&mut self, state: SourceState) {
        self.state = state;
    }

    /// Fitness for selection (RFC 5905 §11.2 `accept`): `Ok(root distance)`.
    pub(crate) fn fitness(&self, now: NtpTimestamp) -> Result<f64, SourceState> {
        if self.denied {
            return Err(SourceState::Denied);
        }
        if self.is_unreachable() {
            return Err(SourceState::Unreachable);
        }
        let (Some(info), Some(distance)) = (self.info, self.root_distance(now)) else {
            return Err(SourceState::Unfit(UnfitReason::NoData));
        };
        if info.leap == LeapIndicator::Unsynchronized {
            return Err(SourceState::Unfit(UnfitReason::Unsynchronized));
        }
        if info.stratum == 0 || info.stratum >= ntp_proto::MAX_STRATUM {
            return Err(SourceState::Unfit(UnfitReason::Stratum));
        }
        if distance > crate::consts::MAXDIST + PHI * log2_seconds(self.poll()) {
            return Err(SourceState::Unfit(UnfitReason::Distance));
        }
        Ok(distance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: f64) -> NtpTimestamp {
        NtpTimestamp::from_seconds_and_fraction(3_913_056_000, 0) + NtpDuration::from_seconds_f64(s)
    }

    fn m(offset: f64, delay: f64, t: f64) -> Measurement {
        Measurement {
            offset: NtpDuration::from_seconds_f64(offset),
            delay: NtpDuration::from_seconds_f64(delay),
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
        }
    }

    #[test]
    fn burst_then_poll_interval() {
        let mut s = Source::new(SourceConfig::default(), ReferenceId::NONE);
        let mut t = 0.0;
        let mut sends = vec![];
        while t < 200.0 {
            if s.poll_due(at(t)) {
                sends.push(t);
                s.on_sent(at(t));
                assert!(matches!(
                    s.on_measurement(&m(0.0, 0.01, t), at(t)),
                    SampleOutcome::Accepted { .. }
                ));
            }
            t += 0.5;
        }
        assert_eq!(sends, vec![0.0, 2.0, 4.0, 6.0, 70.0, 134.0, 198.0]);
        assert_eq!(s.reach(), 0x7f);
    }

    #[test]
    fn unreachable_after_missed_polls_then_burst_again() {
        let mut s = Source::new(SourceConfig::default(), ReferenceId::NONE);
        s.on_sent(at(0.0));
        s.on_measurement(&m(0.0, 0.01, 0.0), at(0.0));
        for i in 1..=8 {
            s.on_sent(at(f64::from(i)));
            s.on_timeout(at(f64::from(i)));
        }
        assert_eq!(s.state(), SourceState::Unreachable);
        assert_eq!(s.reach(), 0);
        let before = s.poll();
        s.on_sent(at(100.0));
        assert!(s.poll() >= before);
        assert_eq!(
            s.on_measurement(&m(0.0, 0.01, 100.0), at(100.0)),
            SampleOutcome::Accepted { updated: true }
        );
        assert_ne!(s.state(), SourceState::Unreachable);
        // The burst restarts at once, then 2 s apart.
        assert!(s.poll_due(at(100.0)));
        s.on_sent(at(100.0));
        assert_eq!(s.next_poll(at(100.0)), Some(at(102.0)));
    }

    #[test]
    fn stale_reply_is_dropped() {
        let mut s = Source::new(SourceConfig::default(), ReferenceId::NONE);
        s.on_sent(at(0.0));
        s.on_timeout(at(1.0));
        assert_eq!(
            s.on_measurement(&m(0.0, 0.01, 1.0), at(1.0)),
            SampleOutcome::Stale
        );
    }

    #[test]
    fn kiss_rate_backs_off() {
        let mut s = Source::new(SourceConfig::default(), ReferenceId::NONE);
        s.on_sent(at(0.0));
        let action = s.on_kiss(KissCode::RATE, at(0.0));
        assert_eq!(action, KissAction::BackOff { poll: 7 });
        assert_eq!(s.poll(), 7);
        assert_eq!(s.next_poll(at(0.0)), Some(at(128.0)));
        s.on_sent(at(128.0));
        assert_eq!(
            s.on_kiss(KissCode::RATE, at(128.0)),
            KissAction::BackOff { poll: 8 }
        );
    }

    #[test]
    fn kiss_deny_and_rstr_stop() {
        for code in [KissCode::DENY, KissCode::RSTR] {
            let mut s = Source::new(SourceConfig::default(), ReferenceId::NONE);
            s.on_sent(at(0.0));
            assert_eq!(s.on_kiss(code, at(0.0)), KissAction::Stop);
            assert_eq!(s.state(), SourceState::Denied);
            assert!(!s.poll_due(at(1e6)));
            assert_eq!(s.next_poll(at(0.0)), None);
            assert_eq!(
                s.on_measurement(&m(0.0, 0.01, 1.0), at(1.0)),
                SampleOutcome::Denied
            );
        }
    }

    #[test]
    fn kiss_ntsn_asks_for_rekey_and_keeps_polling() {
        let mut s = Source::new(SourceConfig::default(), ReferenceId::NONE);
        s.on_sent(at(0.0));
        assert_eq!(s.on_kiss(KissCode::NTSN, at(0.0)), KissAction::RekeyNts);
        assert!(s.next_poll(at(0.0)).is_some());
        assert_ne!(s.state(), SourceState::Denied);
        assert_eq!(s.on_kiss(KissCode::INIT, at(0.0)), KissAction::Ignored);
    }
}
