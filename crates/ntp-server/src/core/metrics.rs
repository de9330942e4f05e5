//! Counters of the request handler, and their Prometheus text rendering.
//!
//! Every counter is an `AtomicU64` updated with `Relaxed` ordering: they are
//! independent event counts, read only for reporting, so no ordering between
//! them is needed and an increment costs one uncontended atomic add. The
//! counts are monotonic (Prometheus `counter`s).
//!
//! Each request is counted once in `received` and exactly once in either a
//! reply kind or a drop kind, so `received = Σ responses + Σ dropped`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// What was sent back, one counter each.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum ReplyKind {
    /// An unauthenticated NTP reply (RFC 5905).
    Plain,
    /// An NTS-protected reply with fresh cookies (RFC 8915 §5.7).
    Nts,
    /// A Kiss-o'-Death RATE: the client polls too often.
    KissRate,
    /// A Kiss-o'-Death DENY: the client is refused by the access lists.
    KissDeny,
    /// An NTS NAK (Kiss-o'-Death NTSN): the cookie did not open or the request
    /// did not verify.
    NtsNak,
}

impl ReplyKind {
    /// Every kind, in rendering order.
    pub const ALL: [Self; 5] = [
        Self::Plain,
        Self::Nts,
        Self::KissRate,
        Self::KissDeny,
        Self::NtsNak,
    ];

    /// The `kind` label value in [`Metrics::render_prometheus`].
    pub const fn label(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Nts => "nts",
            Self::KissRate => "kod_rate",
            Self::KissDeny => "kod_deny",
            Self::NtsNak => "nts_nak",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// Why a request got no answer, one counter each (the detailed reason is in
/// [`super::DropReason`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum DropKind {
    /// Not an NTP packet: too short, unaligned, bad extension fields, …
    Malformed,
    /// Version 0 or 5–7.
    UnsupportedVersion,
    /// Any mode but client (3).
    WrongMode,
    /// Refused by the access lists with `deny_action = "ignore"`.
    AccessIgnored,
    /// Rate limited with `action = "drop"`.
    RateLimited,
    /// An NTS request that is structurally unusable (no authenticator, two
    /// cookies, short padding, …).
    NtsInvalid,
    /// The NTS response could not be sealed.
    NtsSealFailed,
    /// A plain request while NTS is required.
    RequireNts,
    /// A reply would have been longer than its request.
    AmplificationGuard,
}

impl DropKind {
    /// Every kind, in rendering order.
    pub const ALL: [Self; 9] = [
        Self::Malformed,
        Self::UnsupportedVersion,
        Self::WrongMode,
        Self::AccessIgnored,
        Self::RateLimited,
        Self::NtsInvalid,
        Self::NtsSealFailed,
        Self::RequireNts,
        Self::AmplificationGuard,
    ];

    /// The `reason` label value in [`Metrics::render_prometheus`].
    pub const fn label(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UnsupportedVersion => "unsupported_version",
            Self::WrongMode => "wrong_mode",
            Self::AccessIgnored => "access_ignore",
            Self::RateLimited => "rate_limit",
            Self::NtsInvalid => "nts_invalid",
            Self::NtsSealFailed => "nts_seal_failed",
            Self::RequireNts => "require_nts",
            Self::AmplificationGuard => "amplification_guard",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// The handler's counters; see the module documentation.
#[derive(Debug, Default)]
pub struct Metrics {
    received: AtomicU64,
    replies: [AtomicU64; ReplyKind::ALL.len()],
    drops: [AtomicU64; DropKind::ALL.len()],
}

impl Metrics {
    /// All counters at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests received (every call of [`super::ServerCore::handle`]).
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Replies sent of `kind`.
    pub fn replies(&self, kind: ReplyKind) -> u64 {
        self.replies
            .get(kind.index())
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Requests dropped for `kind`.
    pub fn drops(&self, kind: DropKind) -> u64 {
        self.drops
            .get(kind.index())
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Replies of every kind.
    pub fn replies_total(&self) -> u64 {
        ReplyKind::ALL.iter().map(|&k| self.replies(k)).sum()
    }

    /// Drops for every reason.
    pub fn drops_total(&self) -> u64 {
        DropKind::ALL.iter().map(|&k| self.drops(k)).sum()
    }

    pub(crate) fn count_received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_reply(&self, kind: ReplyKind) {
        if let Some(c) = self.replies.get(kind.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn count_drop(&self, kind: DropKind) {
        if let Some(c) = self.drops.get(kind.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Appends the counters to `out` in the Prometheus text exposition format
    /// (version 0.0.4), each family with its `# HELP` and `# TYPE` lines:
    ///
    /// ```text
    /// ntp_server_requests_received_total 3
    /// ntp_server_responses_total{kind="plain"|"nts"|"kod_rate"|"kod_deny"|"nts_nak"} …
    /// ntp_server_requests_dropped_total{reason="malformed"|…} …
    /// ```
    ///
    /// Appending lets the caller add its own families (NTS-KE, sockets) to the
    /// same page. Every label value is always present, zero or not.
    pub fn render_prometheus(&self, out: &mut String) {
        render_prometheus_sum(&[self], out);
    }
}

/// Renders the sum of several handlers' counters as one page (a server with
/// several `[[server]]` listeners has one handler each); the same families
/// and labels as [`Metrics::render_prometheus`].
pub fn render_prometheus_sum(all: &[&Metrics], out: &mut String) {
    let received: u64 = all.iter().map(|m| m.received()).sum();
    family(
        out,
        "ntp_server_requests_received_total",
        "NTP requests received by the request handler.",
    );
    // Writing to a String cannot fail.
    let _ = writeln!(out, "ntp_server_requests_received_total {received}");

    family(
        out,
        "ntp_server_responses_total",
        "NTP responses sent, by kind.",
    );
    for kind in ReplyKind::ALL {
        let n: u64 = all.iter().map(|m| m.replies(kind)).sum();
        let _ = writeln!(
            out,
            "ntp_server_responses_total{{kind=\"{}\"}} {n}",
            kind.label()
        );
    }

    family(
        out,
        "ntp_server_requests_dropped_total",
        "NTP requests dropped without a response, by reason.",
    );
    for kind in DropKind::ALL {
        let n: u64 = all.iter().map(|m| m.drops(kind)).sum();
        let _ = writeln!(
            out,
            "ntp_server_requests_dropped_total{{reason=\"{}\"}} {n}",
            kind.label()
        );
    }
}

fn family(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} counter");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_match_all() {
        for (i, k) in ReplyKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
        for (i, k) in DropKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
    }

    #[test]
    fn sums_several_handlers() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.count_received();
        b.count_received();
        b.count_received();
        a.count_reply(ReplyKind::Plain);
        b.count_reply(ReplyKind::Plain);
        b.count_drop(DropKind::RateLimited);
        let mut out = String::new();
        render_prometheus_sum(&[&a, &b], &mut out);
        for line in [
            "ntp_server_requests_received_total 3",
            "ntp_server_responses_total{kind=\"plain\"} 2",
            "ntp_server_requests_dropped_total{reason=\"rate_limit\"} 1",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
        }
        // One family header each, not one per handler.
        assert_eq!(out.matches("# TYPE ntp_server_responses_total").count(), 1);
    }

    #[test]
    fn renders_every_family_and_label() {
        let m = Metrics::new();
        m.count_received();
        m.count_received();
        m.count_reply(ReplyKind::Nts);
        m.count_drop(DropKind::RateLimited);
        let mut out = String::from("# existing\n");
        m.render_prometheus(&mut out);
        assert!(out.starts_with("# existing\n"));
        for line in [
            "# HELP ntp_server_requests_received_total NTP requests received by the request handler.",
            "# TYPE ntp_server_requests_received_total counter",
            "ntp_server_requests_received_total 2",
            "# TYPE ntp_server_responses_total counter",
            "ntp_server_responses_total{kind=\"plain\"} 0",
            "ntp_server_responses_total{kind=\"nts\"} 1",
            "ntp_server_responses_total{kind=\"kod_rate\"} 0",
            "ntp_server_responses_total{kind=\"kod_deny\"} 0",
            "ntp_server_responses_total{kind=\"nts_nak\"} 0",
            "# TYPE ntp_server_requests_dropped_total counter",
            "ntp_server_requests_dropped_total{reason=\"rate_limit\"} 1",
            "ntp_server_requests_dropped_total{reason=\"amplification_guard\"} 0",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
        }
        // 3 families × 2 comment lines + 1 + 5 + 9 samples.
        assert_eq!(out.lines().count(), 1 + 6 + 1 + 5 + 9);
        assert!(out.ends_with('\n'));
    }
}
