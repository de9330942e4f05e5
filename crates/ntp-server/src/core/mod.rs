//! The sans-IO request handler: one datagram and the times in, at most one
//! reply datagram out.
//!
//! [`ServerCore`] holds the policy (access lists, rate limiting, whether NTS
//! is required) and the counters. It opens no socket, spawns no thread and
//! reads no clock: the shell passes the kernel receive time, a monotonic
//! millisecond count for rate limiting, and a closure that reads the transmit
//! time just before the reply is built. It is `Send + Sync`; all UDP workers
//! share one instance (in an `Arc`) and each keeps its own output buffer.
//!
//! # Call order
//!
//! Per received datagram the shell calls [`ServerCore::handle`] with the
//! current [`SystemInfo`] and [`KeySet`] (the shell owns key rotation), then
//! sends `out` to the source address if the outcome is [`Outcome::Reply`].
//! Nothing else is needed: there are no timers and no per-client protocol
//! state (the rate-limit table is the only memory, and it is bounded).
//!
//! # Order of checks
//!
//! 1. **Parse** with [`PacketView::new`]: header, length, extension field
//!    framing, MAC trailer. Failure → [`DropReason::Malformed`], or
//!    [`DropReason::UnsupportedVersion`] for version 0 or 5–7, or
//!    [`DropReason::WrongMode`] for modes 6 and 7.
//! 2. **Mode**: only client requests (3) are answered. Symmetric active (1)
//!    is dropped too — we are not anybody's peer — as are broadcast, server
//!    and reserved modes ([`DropReason::WrongMode`]). Versions 1–4 are
//!    answered with the request's own version.
//! 3. **Access**: deny list, then allow list ([`AccessList`]; deny wins).
//!    Refused → nothing ([`DenyAction::Ignore`]) or a DENY Kiss-o'-Death
//!    ([`DenyAction::Deny`]).
//! 4. **Rate limit** ([`RateLimiter`]): a request less than the cutoff after
//!    the previous one from the same client → a RATE Kiss-o'-Death or nothing
//!    ([`RateLimitAction`]). Access and rate limiting come before any
//!    cryptography, so refused clients cost no AEAD work.
//! 5. **NTS or plain.** A request is NTS if it carries *any* extension field
//!    of the four NTS types: Unique Identifier (0x0104), NTS Cookie (0x0204),
//!    Cookie Placeholder (0x0304) or Authenticator (0x0404). Such a request is
//!    never answered in plain: a client that sent NTS fields drops an
//!    unauthenticated reply anyway, and answering it in plain would let a
//!    broken NTS request pass as a plain one. (0x0204 is also Autokey's
//!    "Message Request"; Autokey is not supported and such requests are
//!    dropped as invalid NTS.)
//!    - NTS: [`nts_cookie::packet::open_request`] → on success a
//!      [`Header::server_response`] sealed by
//!      [`nts_cookie::packet::seal_response`] with 1 + placeholders fresh
//!      cookies ([`ReplyKind::Nts`]); on a cookie or authentication failure
//!      an NTS NAK ([`ReplyKind::NtsNak`]); on a structural failure nothing
//!      ([`DropReason::NtsInvalid`]).
//!    - Plain, with `require_nts` set: dropped ([`DropReason::RequireNts`]).
//!      A kiss code would be unauthenticated, so an NTS client could not
//!      trust it and a plain one would merely learn to retry elsewhere;
//!      silence is the cheapest and gives an attacker nothing to reflect.
//!    - Plain: a 48-byte [`Header::server_response`] (RFC 5905 fig. 31).
//!      Extension fields of other types and any MAC are ignored; the reply
//!      has none (symmetric-key MACs are not supported).
//! 6. **Never amplify**: every reply, whatever produced it, passes one check
//!    that it is no longer than the request; a longer one is discarded and
//!    counted as [`DropReason::AmplificationGuard`]. (A 48-byte reply always
//!    passes; nts-cookie already sizes NTS replies to fit.)
//!
//! # Kiss-o'-Death replies
//!
//! RATE and DENY are built with [`Header::kiss_of_death`] (stratum 0, leap
//! unsynchronized, origin = the request's transmit time) and are 48 bytes.
//! To an NTS request they also echo its Unique Identifier (when it is
//! 32–64 bytes), as ntpd-rs does, so the client can match the kiss to its
//! request. They carry no authenticator — no cryptography is spent on a
//! refused client — so an RFC 8915-strict client ignores them (RFC 8915
//! §5.7); for such clients they act as a drop.
//!
//! # NTS is stateless
//!
//! The server keeps nothing per NTS request: a replayed request is opened and
//! answered again, with a fresh nonce, fresh cookies and the new receive and
//! transmit times. Replay protection is the client's job (it matches the
//! Unique Identifier and origin timestamp of its one outstanding request);
//! rate limiting bounds what a replaying attacker can make us send, and the
//! reply is never larger than the replayed request.
//!
//! # Allocation
//!
//! Plain replies and kisses are written into `out` after `out.clear()`, so a
//! worker that keeps one buffer with capacity for its largest reply (the
//! request size is a bound) never allocates on the plain path. The NTS path
//! allocates inside nts-cookie (cookie sealing, the AEAD).

#![warn(clippy::indexing_slicing)]

mod access;
mod metrics;
mod ratelimit;

use std::net::IpAddr;

use ntp_proto::{
    ExtensionFieldType, HEADER_LEN, Header, KissCode, Mode, NtpTimestamp, PacketView, ParseError,
    SystemInfo,
};
use nts_cookie::KeySet;
use nts_cookie::packet::{
    MAX_UID_LEN, MIN_UID_LEN, RequestError, SealError, nts_nak, open_request, seal_response,
};
use nts_cookie::rand_core::CryptoRng;

pub use access::{AccessList, DenyAction, IpNet, IpNetParseError};
pub use metrics::{DropKind, Metrics, ReplyKind, render_prometheus_sum};
pub use ratelimit::{MAX_SHARDS, RateLimitAction, RateLimitConfig, RateLimiter, WAYS};

/// The handler's policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CoreConfig {
    /// Networks allowed to query; empty allows everyone not denied.
    pub allow: Vec<IpNet>,
    /// Networks refused; deny wins over allow.
    pub deny: Vec<IpNet>,
    /// What refused clients get.
    pub deny_action: DenyAction,
    /// Rate limiting, or `None` (as is a capacity of 0) for none.
    pub rate_limit: Option<RateLimitConfig>,
    /// Answer only NTS requests.
    pub require_nts: bool,
    /// What a plain request gets when `require_nts` is on: nothing
    /// (`Ignore`, the default) or a DENY Kiss-o'-Death (`Deny`, ntpd-rs's
    /// `require-nts = "deny"`).
    pub require_nts_action: DenyAction,
}

/// One received datagram and its times.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The source address (IPv4-mapped IPv6 is treated as IPv4).
    pub from: IpAddr,
    /// The UDP payload.
    pub bytes: &'a [u8],
    /// T2: when the datagram arrived, ideally the kernel's receive timestamp.
    pub receive: NtpTimestamp,
    /// A monotonic clock in milliseconds, for rate limiting only.
    pub now_ms: u64,
}

/// What [`ServerCore::handle`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Outcome {
    /// Send the bytes now in `out` back to the source.
    Reply(ReplyKind),
    /// Send nothing; `out` is empty.
    Drop(DropReason),
}

impl Outcome {
    /// Whether there is a reply to send.
    pub const fn is_reply(&self) -> bool {
        matches!(self, Self::Reply(_))
    }
}

/// Why a request got no reply, with the detail a log line wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DropReason {
    /// Not an acceptable NTP packet.
    #[error("malformed request: {0}")]
    Malformed(#[source] ParseError),
    /// The version field is 0 or 5–7.
    #[error("unsupported version {0}")]
    UnsupportedVersion(u8),
    /// Not a client (mode 3) request.
    #[error("mode {0} is not client")]
    WrongMode(Mode),
    /// Refused by the access lists, with [`DenyAction::Ignore`].
    #[error("client refused by the access lists")]
    AccessIgnored,
    /// Rate limited, with [`RateLimitAction::Drop`].
    #[error("client rate limited")]
    RateLimited,
    /// An NTS request that nts-cookie drops (see
    /// [`nts_cookie::packet::DropReason`]).
    #[error("invalid nts request: {0}")]
    NtsInvalid(#[source] nts_cookie::packet::DropReason),
    /// An NTS request nts-cookie rejected in a way this version does not
    /// know; treated as [`DropReason::NtsInvalid`].
    #[error("nts request rejected")]
    NtsRejected,
    /// The NTS response could not be sealed.
    #[error("cannot seal nts response: {0}")]
    NtsSealFailed(#[source] SealError),
    /// A plain request while NTS is required.
    #[error("plain request while nts is required")]
    RequireNts,
    /// The reply would have been longer than the request.
    #[error("a {reply_len}-byte reply to a {request_len}-byte request was suppressed")]
    AmplificationGuard {
        /// The length of the reply that was built.
        reply_len: usize,
        /// The request's length.
        request_len: usize,
    },
}

impl DropReason {
    /// The counter this reason is counted in.
    pub const fn kind(&self) -> DropKind {
        match self {
            Self::Malformed(_) => DropKind::Malformed,
            Self::UnsupportedVersion(_) => DropKind::UnsupportedVersion,
            Self::WrongMode(_) => DropKind::WrongMode,
            Self::AccessIgnored => DropKind::AccessIgnored,
            Self::RateLimited => DropKind::RateLimited,
            Self::NtsInvalid(_) | Self::NtsRejected => DropKind::NtsInvalid,
            Self::NtsSealFailed(_) => DropKind::NtsSealFailed,
            Self::RequireNts => DropKind::RequireNts,
            Self::AmplificationGuard { .. } => DropKind::AmplificationGuard,
        }
    }
}

/// The request handler shared by all UDP workers; see the module docs for
/// the order of checks.
///
/// ```
/// use ntp_proto::{Header, LeapIndicator, NtpShort, NtpTimestamp, PacketView, ReferenceId,
///                 SystemInfo};
/// use ntp_server::core::{CoreConfig, Outcome, ReplyKind, Request, ServerCore};
/// use nts_cookie::{KeySet, KeySetConfig};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut rng = rand::rng();
/// let keys = KeySet::random(KeySetConfig::default(), 1_700_000_000, &mut rng)?;
/// let core = ServerCore::new(CoreConfig::default(), 42);
/// let system = SystemInfo {
///     leap: LeapIndicator::NoWarning,
///     stratum: 2,
///     precision: -20,
///     root_delay: NtpShort::ZERO,
///     root_dispersion: NtpShort::ZERO,
///     reference_id: ReferenceId::from_ascii("GPS").ok_or("refid")?,
///     reference_timestamp: NtpTimestamp::from_seconds_and_fraction(3_913_056_000, 0),
/// };
/// let query = Header::client_request(6, 0xfeed).to_bytes();
/// let t = NtpTimestamp::from_seconds_and_fraction(3_913_056_001, 0);
/// let request = Request { from: "192.0.2.1".parse()?, bytes: &query, receive: t, now_ms: 0 };
///
/// let mut out = Vec::with_capacity(1280); // one per worker, reused
/// let outcome = core.handle(&request, &system, &keys, || t, &mut rng, &mut out);
/// assert_eq!(outcome, Outcome::Reply(ReplyKind::Plain));
/// let reply = PacketView::new(&out)?;
/// assert_eq!(reply.header().origin_timestamp.to_bits(), 0xfeed);
/// assert_eq!(core.metrics().replies(ReplyKind::Plain), 1);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct ServerCore {
    access: AccessList,
    deny_action: DenyAction,
    rate_limiter: Option<RateLimiter>,
    rate_action: RateLimitAction,
    require_nts: bool,
    require_nts_action: DenyAction,
    metrics: Metrics,
}

impl ServerCore {
    /// A handler with `config`. `seed` keys the rate-limit table's hash so
    /// clients cannot aim collisions at each other: pass a random value.
    pub fn new(config: CoreConfig, seed: u64) -> Self {
        let (rate_limiter, rate_action) = match config.rate_limit {
            Some(rl) => (RateLimiter::new(rl.capacity, rl.cutoff_ms, seed), rl.action),
            None => (None, RateLimitAction::default()),
        };
        Self {
            access: AccessList::new(config.allow, config.deny),
            deny_action: config.deny_action,
            rate_limiter,
            rate_action,
            require_nts: config.require_nts,
            require_nts_action: config.require_nts_action,
            metrics: Metrics::new(),
        }
    }

    /// The counters.
    pub const fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The rate-limit table, if rate limiting is on.
    pub const fn rate_limiter(&self) -> Option<&RateLimiter> {
        self.rate_limiter.as_ref()
    }

    /// Handles one datagram: decides, writes the reply (if any) into `out`
    /// (cleared first; empty on [`Outcome::Drop`]) and counts the outcome.
    ///
    /// `system` is our clock's current state; `keys` opens cookies and seals
    /// new ones; `transmit` is called at most once, just before the reply is
    /// built, for T3; `rng` supplies NTS nonces and cookie nonces.
    ///
    /// Never panics, and a reply is never longer than `request.bytes`.
    pub fn handle<R: CryptoRng + ?Sized>(
        &self,
        request: &Request<'_>,
        system: &SystemInfo,
        keys: &KeySet,
        transmit: impl FnOnce() -> NtpTimestamp,
        rng: &mut R,
        out: &mut Vec<u8>,
    ) -> Outcome {
        self.metrics.count_received();
        out.clear();
        let outcome = self.decide(request, system, keys, transmit, rng, out);
        let outcome = guard_amplification(outcome, request.bytes.len(), out);
        match outcome {
            Outcome::Reply(kind) => self.metrics.count_reply(kind),
            Outcome::Drop(reason) => self.metrics.count_drop(reason.kind()),
        }
        outcome
    }

    fn decide<R: CryptoRng + ?Sized>(
        &self,
        request: &Request<'_>,
        system: &SystemInfo,
        keys: &KeySet,
        transmit: impl FnOnce() -> NtpTimestamp,
        rng: &mut R,
        out: &mut Vec<u8>,
    ) -> Outcome {
        // 1. Parse.
        let view = match PacketView::new(request.bytes) {
            Ok(view) => view,
            Err(ParseError::UnsupportedVersion { version }) => {
                return Outcome::Drop(DropReason::UnsupportedVersion(version));
            }
            Err(ParseError::UnsupportedMode { mode }) => {
                return Outcome::Drop(DropReason::WrongMode(mode));
            }
            Err(e) => return Outcome::Drop(DropReason::Malformed(e)),
        };
        // 2. Mode.
        let header = *view.header();
        if header.mode != Mode::Client {
            return Outcome::Drop(DropReason::WrongMode(header.mode));
        }
        let nts = carries_nts(&view);
        // 3. Access.
        if !self.access.allows(request.from) {
            return match self.deny_action {
                DenyAction::Ignore => Outcome::Drop(DropReason::AccessIgnored),
                DenyAction::Deny => kiss(
                    KissCode::DENY,
                    &header,
                    system,
                    request.receive,
                    transmit,
                    nts.then_some(&view),
                    out,
                ),
            };
        }
        // 4. Rate limit.
        if let Some(limiter) = &self.rate_limiter {
            if !limiter.check(request.from, request.now_ms) {
                return match self.rate_action {
                    RateLimitAction::Drop => Outcome::Drop(DropReason::RateLimited),
                    RateLimitAction::Kod => kiss(
                        KissCode::RATE,
                        &header,
                        system,
                        request.receive,
                        transmit,
                        nts.then_some(&view),
                        out,
                    ),
                };
            }
        }
        // 5. NTS or plain.
        if nts {
            return answer_nts(request, system, keys, transmit, rng, out);
        }
        if self.require_nts {
            return match self.require_nts_action {
                DenyAction::Ignore => Outcome::Drop(DropReason::RequireNts),
                DenyAction::Deny => kiss(
                    KissCode::DENY,
                    &header,
                    system,
                    request.receive,
                    transmit,
                    None,
                    out,
                ),
            };
        }
        let reply = Header::server_response(&header, system, request.receive, transmit());
        out.extend_from_slice(&reply.to_bytes());
        Outcome::Reply(ReplyKind::Plain)
    }
}

/// A Kiss-o'-Death reply (RATE or DENY) to `request`, with the UID echoed
/// for an NTS request (see [`write_kiss`]).
fn kiss(
    code: KissCode,
    request: &Header,
    system: &SystemInfo,
    receive: NtpTimestamp,
    transmit: impl FnOnce() -> NtpTimestamp,
    nts_request: Option<&PacketView<'_>>,
    out: &mut Vec<u8>,
) -> Outcome {
    let kod = Header::kiss_of_death(request, code, system, receive, transmit());
    write_kiss(&kod, nts_request, out);
    Outcome::Reply(if code == KissCode::RATE {
        ReplyKind::KissRate
    } else {
        ReplyKind::KissDeny
    })
}

/// Step 5 for an NTS request.
fn answer_nts<R: CryptoRng + ?Sized>(
    request: &Request<'_>,
    system: &SystemInfo,
    keys: &KeySet,
    transmit: impl FnOnce() -> NtpTimestamp,
    rng: &mut R,
    out: &mut Vec<u8>,
) -> Outcome {
    match open_request(request.bytes, keys) {
        Ok(opened) => {
            let header =
                Header::server_response(&opened.header, system, request.receive, transmit());
            match seal_response(&header, &opened, keys, rng, out) {
                Ok(()) => Outcome::Reply(ReplyKind::Nts),
                Err(SealError::ResponseTooLong { len, limit }) => {
                    Outcome::Drop(DropReason::AmplificationGuard {
                        reply_len: len,
                        request_len: limit,
                    })
                }
                Err(e) => Outcome::Drop(DropReason::NtsSealFailed(e)),
            }
        }
        Err(RequestError::Nak { header, uid, .. }) => {
            nts_nak(&header, uid, system, request.receive, transmit(), out);
            Outcome::Reply(ReplyKind::NtsNak)
        }
        Err(RequestError::Drop(reason)) => Outcome::Drop(DropReason::NtsInvalid(reason)),
        Err(_) => Outcome::Drop(DropReason::NtsRejected),
    }
}

/// Step 6, the one place every reply passes: a reply longer than the request
/// is discarded. A drop always leaves `out` empty.
fn guard_amplification(outcome: Outcome, request_len: usize, out: &mut Vec<u8>) -> Outcome {
    let outcome = match outcome {
        Outcome::Reply(_) if out.len() > request_len || out.len() < HEADER_LEN => {
            Outcome::Drop(DropReason::AmplificationGuard {
                reply_len: out.len(),
                request_len,
            })
        }
        other => other,
    };
    if !outcome.is_reply() {
        out.clear();
    }
    outcome
}

/// Whether the request carries any NTS extension field (see the module docs).
fn carries_nts(view: &PacketView<'_>) -> bool {
    view.extension_fields().any(|f| {
        matches!(
            f.field_type,
            ExtensionFieldType::UNIQUE_IDENTIFIER
                | ExtensionFieldType::NTS_COOKIE
                | ExtensionFieldType::NTS_COOKIE_PLACEHOLDER
                | ExtensionFieldType::NTS_AUTHENTICATOR
        )
    })
}

/// Writes a Kiss-o'-Death: the 48-byte header, then, for an NTS request
/// (`nts_request`), its first Unique Identifier field echoed if its body is
/// 32–64 bytes and a multiple of 4. That field is at least 36 bytes, above
/// the 28 RFC 7822 asks of a last field, and no longer than the request's own.
fn write_kiss(kod: &Header, nts_request: Option<&PacketView<'_>>, out: &mut Vec<u8>) {
    out.extend_from_slice(&kod.to_bytes());
    let Some(view) = nts_request else {
        return;
    };
    let uid = view
        .extension_fields()
        .find(|f| f.field_type == ExtensionFieldType::UNIQUE_IDENTIFIER)
        .map(|f| f.body)
        .filter(|body| (MIN_UID_LEN..=MAX_UID_LEN).contains(&body.len()) && body.len() % 4 == 0);
    let Some(uid) = uid else {
        return;
    };
    let Ok(len) = u16::try_from(uid.len() + 4) else {
        return;
    };
    out.extend_from_slice(&ExtensionFieldType::UNIQUE_IDENTIFIER.0.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(uid);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn server_core_is_send_and_sync() {
        assert_send_sync::<ServerCore>();
    }

    #[test]
    fn guard_discards_oversized_and_empty_replies() {
        let mut out = vec![0u8; 100];
        let outcome = guard_amplification(Outcome::Reply(ReplyKind::Nts), 96, &mut out);
        assert_eq!(
            outcome,
            Outcome::Drop(DropReason::AmplificationGuard {
                reply_len: 100,
                request_len: 96
            })
        );
        assert!(out.is_empty());

        let mut out = vec![0u8; 96];
        let outcome = guard_amplification(Outcome::Reply(ReplyKind::Nts), 96, &mut out);
        assert_eq!(outcome, Outcome::Reply(ReplyKind::Nts));
        assert_eq!(out.len(), 96);

        let mut out = Vec::new();
        let outcome = guard_amplification(Outcome::Reply(ReplyKind::Plain), 48, &mut out);
        assert!(!outcome.is_reply(), "an empty reply is a bug, not sent");

        let mut out = vec![1, 2, 3];
        let outcome = guard_amplification(Outcome::Drop(DropReason::RequireNts), 48, &mut out);
        assert_eq!(outcome, Outcome::Drop(DropReason::RequireNts));
        assert!(out.is_empty(), "a drop leaves out empty");
    }
}
