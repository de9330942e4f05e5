//! The 48-byte NTP header (RFC 5905 §7.3) and the types of its fields.

use core::fmt;
use core::net::Ipv4Addr;

use bytes::BufMut;

use crate::error::ParseError;
use crate::time::{NtpShort, NtpTimestamp};

/// Length of the fixed NTP header in bytes.
pub const HEADER_LEN: usize = 48;

/// Precision that privacy-minded clients put in requests (chrony and NTPsec
/// send 0x20; the server ignores it).
pub const CLIENT_REQUEST_PRECISION: i8 = 0x20;

/// Stratum values 16 and above mean "unsynchronized" (RFC 5905 §7.3).
pub const MAX_STRATUM: u8 = 16;

/// The leap indicator: a warning of a leap second at the end of the current
/// UTC day, or that the clock is unsynchronized (RFC 5905 Figure 9).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum LeapIndicator {
    /// No leap second pending.
    NoWarning,
    /// The last minute of the day has 61 seconds.
    InsertSecond,
    /// The last minute of the day has 59 seconds.
    DeleteSecond,
    /// Unknown: the clock is unsynchronized (also set in Kiss-o'-Death).
    Unsynchronized,
}

impl LeapIndicator {
    /// The indicator for a 2-bit wire value (higher bits are ignored).
    pub const fn from_bits(bits: u8) -> Self {
        match bits & 0b11 {
            0 => Self::NoWarning,
            1 => Self::InsertSecond,
            2 => Self::DeleteSecond,
            _ => Self::Unsynchronized,
        }
    }

    /// The 2-bit wire value.
    pub const fn to_bits(self) -> u8 {
        match self {
            Self::NoWarning => 0,
            Self::InsertSecond => 1,
            Self::DeleteSecond => 2,
            Self::Unsynchronized => 3,
        }
    }
}

impl fmt::Display for LeapIndicator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoWarning => "no warning",
            Self::InsertSecond => "insert second",
            Self::DeleteSecond => "delete second",
            Self::Unsynchronized => "unsynchronized",
        })
    }
}

/// The association mode (RFC 5905 Figure 10).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Mode {
    /// 0: reserved.
    Reserved,
    /// 1: symmetric active.
    SymmetricActive,
    /// 2: symmetric passive.
    SymmetricPassive,
    /// 3: client.
    Client,
    /// 4: server.
    Server,
    /// 5: broadcast.
    Broadcast,
    /// 6: NTP control message (RFC 9327; a different message format).
    Control,
    /// 7: reserved for private use (ntpdc; a different message format).
    Private,
}

impl Mode {
    /// The mode for a 3-bit wire value (higher bits are ignored).
    pub const fn from_bits(bits: u8) -> Self {
        match bits & 0b111 {
            0 => Self::Reserved,
            1 => Self::SymmetricActive,
            2 => Self::SymmetricPassive,
            3 => Self::Client,
            4 => Self::Server,
            5 => Self::Broadcast,
            6 => Self::Control,
            _ => Self::Private,
        }
    }

    /// The 3-bit wire value.
    pub const fn to_bits(self) -> u8 {
        match self {
            Self::Reserved => 0,
            Self::SymmetricActive => 1,
            Self::SymmetricPassive => 2,
            Self::Client => 3,
            Self::Server => 4,
            Self::Broadcast => 5,
            Self::Control => 6,
            Self::Private => 7,
        }
    }

    /// Whether packets of this mode use the RFC 5905 48-byte header. Control
    /// (6) and private (7) messages have formats of their own.
    pub const fn uses_ntp_header(self) -> bool {
        !matches!(self, Self::Control | Self::Private)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Reserved => "reserved",
            Self::SymmetricActive => "symmetric active",
            Self::SymmetricPassive => "symmetric passive",
            Self::Client => "client",
            Self::Server => "server",
            Self::Broadcast => "broadcast",
            Self::Control => "control",
            Self::Private => "private",
        })
    }
}

/// The protocol version number. Only 1–4 share the RFC 5905 header layout,
/// so only those can be built; NTPv4 is [`Version::V4`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Version(u8);

impl Version {
    /// NTPv3 (RFC 1305); answered like v4, without extension fields.
    pub const V3: Self = Self(3);
    /// NTPv4 (RFC 5905).
    pub const V4: Self = Self(4);

    /// The version for a wire value, if it is 1–4.
    pub const fn new(version: u8) -> Option<Self> {
        match version {
            1..=4 => Some(Self(version)),
            _ => None,
        }
    }

    /// The version number.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The 4-byte reference identifier (RFC 5905 §7.3): a kiss code at stratum 0,
/// a clock name at stratum 1, an upstream address (or the hash of one) above.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ReferenceId([u8; 4]);

impl ReferenceId {
    /// All zeros, as in client requests.
    pub const NONE: Self = Self([0; 4]);

    /// A reference id from its wire bytes.
    pub const fn from_bytes(bytes: [u8; 4]) -> Self {
        Self(bytes)
    }

    /// The wire bytes.
    pub const fn to_bytes(self) -> [u8; 4] {
        self.0
    }

    /// The reference id as a big-endian integer.
    pub const fn to_u32(self) -> u32 {
        u32::from_be_bytes(self.0)
    }

    /// The reference id of a stratum ≥ 2 server synchronized to an IPv4 peer.
    pub const fn from_ipv4(addr: Ipv4Addr) -> Self {
        Self(addr.octets())
    }

    /// The bytes read as an IPv4 address.
    pub const fn to_ipv4(self) -> Ipv4Addr {
        let [a, b, c, d] = self.0;
        Ipv4Addr::new(a, b, c, d)
    }

    /// A clock name such as `GPS` or `PPS`: up to four ASCII characters, left
    /// justified and zero filled. `None` for an empty, longer or non-ASCII name.
    pub fn from_ascii(name: &str) -> Option<Self> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() > 4 || !bytes.iter().all(u8::is_ascii_graphic) {
            return None;
        }
        let mut out = [0; 4];
        for (slot, byte) in out.iter_mut().zip(bytes) {
            *slot = *byte;
        }
        Some(Self(out))
    }

    /// The id as text when it is 1–4 printable ASCII characters followed only
    /// by zero bytes (a clock name or kiss code); `None` otherwise.
    pub fn as_ascii(&self) -> Option<&str> {
        ascii_text(&self.0)
    }
}

/// 1–4 printable ASCII characters followed only by zero bytes.
fn ascii_text(bytes: &[u8; 4]) -> Option<&str> {
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(4);
    let (text, zeros) = bytes.split_at(len);
    if len == 0 || !zeros.iter().all(|&b| b == 0) || !text.iter().all(u8::is_ascii_graphic) {
        return None;
    }
    core::str::from_utf8(text).ok()
}

impl fmt::Debug for ReferenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReferenceId({self})")
    }
}

/// Prints the 8 hex digits.
impl fmt::Display for ReferenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.to_u32())
    }
}

/// A Kiss-o'-Death code (RFC 5905 §7.4, RFC 8915 §5.7): four ASCII characters
/// in the reference id of a stratum-0 reply.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KissCode([u8; 4]);

macro_rules! kiss_codes {
    ($($name:ident = $text:literal, $desc:literal;)*) => {
        impl KissCode {
            $(#[doc = $desc] pub const $name: Self = Self(*$text);)*

            /// The RFC's meaning of a registered code.
            pub const fn description(self) -> Option<&'static str> {
                match &self.0 {
                    $($text => Some($desc),)*
                    _ => None,
                }
            }
        }
    };
}

kiss_codes! {
    ACST = b"ACST", "The association belongs to an anycast server.";
    AUTH = b"AUTH", "Server authentication failed.";
    AUTO = b"AUTO", "Autokey sequence failed.";
    BCST = b"BCST", "The association belongs to a broadcast server.";
    CRYP = b"CRYP", "Cryptographic authentication or identification failed.";
    DENY = b"DENY", "Access denied by remote server: stop sending.";
    DROP = b"DROP", "Lost peer in symmetric mode.";
    RSTR = b"RSTR", "Access denied due to local policy: stop sending.";
    INIT = b"INIT", "The association has not yet synchronized for the first time.";
    MCST = b"MCST", "The association belongs to a dynamically discovered server.";
    NKEY = b"NKEY", "No key found.";
    NTSN = b"NTSN", "NTS cookie could not be used (NTS NAK, RFC 8915 §5.7).";
    RATE = b"RATE", "Rate exceeded: reduce the polling rate.";
    RMOT = b"RMOT", "Alteration of association from a remote host running ntpdc.";
    STEP = b"STEP", "A step change in system time has occurred.";
}

impl KissCode {
    /// The kiss code carried by a reference id: 1–4 upper-case letters or
    /// digits, left justified and zero filled; `None` for anything else.
    pub fn from_reference_id(id: ReferenceId) -> Option<Self> {
        let text = id.as_ascii()?;
        if !text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return None;
        }
        Some(Self(id.to_bytes()))
    }

    /// The code as a reference id.
    pub const fn to_reference_id(self) -> ReferenceId {
        ReferenceId(self.0)
    }

    /// The code as text (trailing zero bytes removed).
    pub fn as_str(&self) -> &str {
        ascii_text(&self.0).unwrap_or("")
    }

    /// DENY or RSTR: the client MUST stop sending to this server
    /// (RFC 5905 §7.4).
    pub fn is_stop(self) -> bool {
        self == Self::DENY || self == Self::RSTR
    }

    /// An experimental code (starts with `X`), which receivers ignore.
    pub fn is_experimental(self) -> bool {
        self.0[0] == b'X'
    }
}

impl fmt::Debug for KissCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KissCode({})", self.as_str())
    }
}

impl fmt::Display for KissCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state a server reports about its own clock in every response
/// (RFC 5905 §9, the "system variables").
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SystemInfo {
    /// Leap warning for the end of the current day.
    pub leap: LeapIndicator,
    /// Our stratum; 16 or more is sent as 0 (unsynchronized).
    pub stratum: u8,
    /// Clock precision in log₂ seconds.
    pub precision: i8,
    /// Round-trip delay to the primary reference.
    pub root_delay: NtpShort,
    /// Dispersion to the primary reference.
    pub root_dispersion: NtpShort,
    /// Clock name (stratum 1) or upstream id.
    pub reference_id: ReferenceId,
    /// When the clock was last set or corrected.
    pub reference_timestamp: NtpTimestamp,
}

/// The NTP header (RFC 5905 §7.3, Figure 8), owned and `Copy`: parse and emit
/// never allocate.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Header {
    /// Leap indicator.
    pub leap: LeapIndicator,
    /// Version number (1–4).
    pub version: Version,
    /// Association mode.
    pub mode: Mode,
    /// Stratum as on the wire: 0 means unspecified or a kiss code.
    pub stratum: u8,
    /// Maximum poll interval, log₂ seconds.
    pub poll: i8,
    /// Clock precision, log₂ seconds.
    pub precision: i8,
    /// Total round-trip delay to the reference clock.
    pub root_delay: NtpShort,
    /// Total dispersion to the reference clock.
    pub root_dispersion: NtpShort,
    /// Reference id (kiss code, clock name or upstream address).
    pub reference_id: ReferenceId,
    /// When the server's clock was last set or corrected.
    pub reference_timestamp: NtpTimestamp,
    /// T1: the request's transmit time, echoed by the server.
    pub origin_timestamp: NtpTimestamp,
    /// T2: when the server received the request.
    pub receive_timestamp: NtpTimestamp,
    /// T3: when the packet left its sender.
    pub transmit_timestamp: NtpTimestamp,
}

impl Header {
    /// Parses the first 48 bytes of `bytes` (anything after is ignored here;
    /// [`crate::PacketView`] checks the rest).
    ///
    /// # Errors
    /// [`ParseError::TooShort`] below 48 bytes, [`ParseError::UnsupportedVersion`]
    /// for a version outside 1–4 and [`ParseError::UnsupportedMode`] for
    /// control (6) and private (7) messages, which are not in this format.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let Some((fixed, _)) = bytes.split_first_chunk::<HEADER_LEN>() else {
            return Err(ParseError::TooShort { len: bytes.len() });
        };
        Self::parse_fixed(fixed)
    }

    /// Parses exactly one 48-byte header.
    ///
    /// # Errors
    /// As [`Header::parse`], except that the length is already right.
    pub fn parse_fixed(b: &[u8; HEADER_LEN]) -> Result<Self, ParseError> {
        let [first, stratum, poll, precision, rest @ ..] = *b;
        let version_bits = (first >> 3) & 0b111;
        let version = Version::new(version_bits).ok_or(ParseError::UnsupportedVersion {
            version: version_bits,
        })?;
        let mode = Mode::from_bits(first);
        if !mode.uses_ntp_header() {
            return Err(ParseError::UnsupportedMode { mode });
        }
        let mut r = FixedReader(&rest);
        Ok(Self {
            leap: LeapIndicator::from_bits(first >> 6),
            version,
            mode,
            stratum,
            poll: poll as i8,
            precision: precision as i8,
            root_delay: NtpShort::from_bits(r.u32()),
            root_dispersion: NtpShort::from_bits(r.u32()),
            reference_id: ReferenceId::from_bytes(r.u32().to_be_bytes()),
            reference_timestamp: NtpTimestamp::from_bits(r.u64()),
            origin_timestamp: NtpTimestamp::from_bits(r.u64()),
            receive_timestamp: NtpTimestamp::from_bits(r.u64()),
            transmit_timestamp: NtpTimestamp::from_bits(r.u64()),
        })
    }

    /// Writes the 48 header bytes.
    ///
    /// # Panics
    /// If `buf` has less than 48 bytes of room (a `Vec` grows; use
    /// [`Header::emit_to_slice`] for a fixed buffer).
    pub fn emit(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.to_bytes());
    }

    /// The 48 header bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let mut w: &mut [u8] = &mut out;
        w.put_u8((self.leap.to_bits() << 6) | (self.version.get() << 3) | self.mode.to_bits());
        w.put_u8(self.stratum);
        w.put_i8(self.poll);
        w.put_i8(self.precision);
        w.put_u32(self.root_delay.to_bits());
        w.put_u32(self.root_dispersion.to_bits());
        w.put_slice(&self.reference_id.to_bytes());
        w.put_u64(self.reference_timestamp.to_bits());
        w.put_u64(self.origin_timestamp.to_bits());
        w.put_u64(self.receive_timestamp.to_bits());
        w.put_u64(self.transmit_timestamp.to_bits());
        debug_assert!(w.is_empty());
        out
    }

    /// Writes the header into the start of `buf` and returns 48.
    ///
    /// # Errors
    /// [`crate::BufferTooSmall`] if `buf` is shorter than 48 bytes.
    pub fn emit_to_slice(&self, buf: &mut [u8]) -> Result<usize, crate::BufferTooSmall> {
        let available = buf.len();
        let dst = buf.get_mut(..HEADER_LEN).ok_or(crate::BufferTooSmall {
            needed: HEADER_LEN,
            available,
        })?;
        dst.copy_from_slice(&self.to_bytes());
        Ok(HEADER_LEN)
    }

    /// The kiss code if this is a Kiss-o'-Death packet: stratum 0 in a reply
    /// (any mode but client) with an ASCII code in the reference id
    /// (RFC 5905 §7.4).
    pub fn kiss_code(&self) -> Option<KissCode> {
        if self.stratum != 0 || matches!(self.mode, Mode::Client | Mode::Reserved) {
            return None;
        }
        KissCode::from_reference_id(self.reference_id)
    }

    /// A client request that reveals nothing about the client
    /// (draft-ietf-ntp-data-minimization, as chrony and NTPsec send it): all
    /// fields zero but the version, mode, poll, the fixed precision 0x20, and
    /// the transmit timestamp, which the caller fills with 64 random bits to
    /// match the reply's origin timestamp against (keep the real T1 locally).
    pub const fn client_request(poll: i8, random_transmit: u64) -> Self {
        Self {
            leap: LeapIndicator::NoWarning,
            version: Version::V4,
            mode: Mode::Client,
            stratum: 0,
            poll,
            precision: CLIENT_REQUEST_PRECISION,
            root_delay: NtpShort::ZERO,
            root_dispersion: NtpShort::ZERO,
            reference_id: ReferenceId::NONE,
            reference_timestamp: NtpTimestamp::ZERO,
            origin_timestamp: NtpTimestamp::ZERO,
            receive_timestamp: NtpTimestamp::ZERO,
            transmit_timestamp: NtpTimestamp::from_bits(random_transmit),
        }
    }

    /// [`Header::client_request`] with the transmit timestamp drawn from `rng`.
    pub fn client_request_random(poll: i8, rng: &mut impl rand_core::RngCore) -> Self {
        Self::client_request(poll, rng.next_u64())
    }

    /// The server's reply to `request` (RFC 5905 Figure 31): system state from
    /// `system` (stratum 16 or more is sent as 0), version and poll copied,
    /// origin = the request's transmit timestamp. A symmetric-active request
    /// is answered in symmetric-passive mode, anything else in server mode.
    pub fn server_response(
        request: &Self,
        system: &SystemInfo,
        receive: NtpTimestamp,
        transmit: NtpTimestamp,
    ) -> Self {
        Self {
            leap: system.leap,
            version: request.version,
            mode: if request.mode == Mode::SymmetricActive {
                Mode::SymmetricPassive
            } else {
                Mode::Server
            },
            stratum: if system.stratum >= MAX_STRATUM {
                0
            } else {
                system.stratum
            },
            poll: request.poll,
            precision: system.precision,
            root_delay: system.root_delay,
            root_dispersion: system.root_dispersion,
            reference_id: system.reference_id,
            reference_timestamp: system.reference_timestamp,
            origin_timestamp: request.transmit_timestamp,
            receive_timestamp: receive,
            transmit_timestamp: transmit,
        }
    }

    /// A Kiss-o'-Death reply to `request` (RFC 5905 §7.4), laid out as chrony
    /// sends it: leap unsynchronized, stratum 0, the code as reference id,
    /// zero root delay and dispersion, origin = the request's transmit
    /// timestamp. The receive and transmit times are filled in (clients treat
    /// a zero transmit time as invalid before they look for a kiss code),
    /// although RFC 5905 says they must not be used.
    pub fn kiss_of_death(
        request: &Self,
        code: KissCode,
        system: &SystemInfo,
        receive: NtpTimestamp,
        transmit: NtpTimestamp,
    ) -> Self {
        Self {
            leap: LeapIndicator::Unsynchronized,
            stratum: 0,
            root_delay: NtpShort::ZERO,
            root_dispersion: NtpShort::ZERO,
            reference_id: code.to_reference_id(),
            ..Self::server_response(request, system, receive, transmit)
        }
    }

    /// Stratum with 0 (unspecified) read as 16, as RFC 5905 §7.3 asks
    /// receivers to do.
    pub const fn effective_stratum(&self) -> u8 {
        if self.stratum == 0 || self.stratum > MAX_STRATUM {
            MAX_STRATUM
        } else {
            self.stratum
        }
    }
}

/// Reads big-endian words off the fixed 44 bytes after the first four. The
/// header's layout consumes exactly those 44 bytes, so the zero fallback is
/// never taken; it exists so that no code path can panic.
struct FixedReader<'a>(&'a [u8]);

impl FixedReader<'_> {
    fn u32(&mut self) -> u32 {
        match self.0.split_first_chunk::<4>() {
            Some((word, rest)) => {
                self.0 = rest;
                u32::from_be_bytes(*word)
            }
            None => 0,
        }
    }

    fn u64(&mut self) -> u64 {
        (u64::from(self.u32()) << 32) | u64::from(self.u32())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    const CHRONY_REQUEST: [u8; 48] = hex!(
        "23000620000000000000000000000000000000000000000000000000000000000000000000000000b1305188f6a7f3ae"
    );
    const CHRONY_RESPONSE: [u8; 48] = hex!(
        "240106e700000000000000007f7f0101eeaca26014ffeda9b1305188f6a7f3aeeeaca261fdf0bec9eeaca261fdf78432"
    );

    #[test]
    fn deconstruct_chrony_request() {
        let h = Header::parse(&CHRONY_REQUEST).unwrap();
        assert_eq!(h, Header::client_request(6, 0xb1305188f6a7f3ae));
        assert_eq!(h.to_bytes(), CHRONY_REQUEST);
    }

    #[test]
    fn deconstruct_chrony_response() {
        let h = Header::parse(&CHRONY_RESPONSE).unwrap();
        assert_eq!(h.leap, LeapIndicator::NoWarning);
        assert_eq!(h.version, Version::V4);
        assert_eq!(h.mode, Mode::Server);
        assert_eq!(h.stratum, 1);
        assert_eq!(h.poll, 6);
        assert_eq!(h.precision, -25);
        assert_eq!(h.reference_id.to_u32(), 0x7f7f0101);
        assert_eq!(h.origin_timestamp.to_bits(), 0xb1305188f6a7f3ae);
        assert_eq!(h.kiss_code(), None);
        assert_eq!(h.to_bytes(), CHRONY_RESPONSE);
    }

    #[test]
    fn construct_response_like_chrony() {
        let request = Header::parse(&CHRONY_REQUEST).unwrap();
        let chrony = Header::parse(&CHRONY_RESPONSE).unwrap();
        let system = SystemInfo {
            leap: LeapIndicator::NoWarning,
            stratum: 1,
            precision: -25,
            root_delay: NtpShort::ZERO,
            root_dispersion: NtpShort::ZERO,
            reference_id: ReferenceId::from_bytes([0x7f, 0x7f, 1, 1]),
            reference_timestamp: chrony.reference_timestamp,
        };
        let ours = Header::server_response(
            &request,
            &system,
            chrony.receive_timestamp,
            chrony.transmit_timestamp,
        );
        assert_eq!(ours.to_bytes(), CHRONY_RESPONSE);
    }

    #[test]
    fn construct_nak_like_chrony() {
        let nak = hex!(
            "e40004e700000000000000004e54534eeeaca2e24d6547c2eeaca2ea12796000eeaca2ea1280be23eeaca2ea128663ac"
        );
        let theirs = Header::parse(&nak).unwrap();
        assert_eq!(theirs.kiss_code(), Some(KissCode::NTSN));
        let mut request = Header::client_request(4, theirs.origin_timestamp.to_bits());
        request.poll = 4;
        let system = SystemInfo {
            leap: LeapIndicator::NoWarning,
            stratum: 1,
            precision: -25,
            root_delay: NtpShort::from_bits(5),
            root_dispersion: NtpShort::from_bits(7),
            reference_id: ReferenceId::from_ascii("GPS").unwrap(),
            reference_timestamp: theirs.reference_timestamp,
        };
        let ours = Header::kiss_of_death(
            &request,
            KissCode::NTSN,
            &system,
            theirs.receive_timestamp,
            theirs.transmit_timestamp,
        );
        assert_eq!(ours.to_bytes(), nak);
    }

    #[test]
    fn unsynchronized_stratum_is_sent_as_zero() {
        let system = SystemInfo {
            leap: LeapIndicator::Unsynchronized,
            stratum: 16,
            precision: -20,
            root_delay: NtpShort::ZERO,
            root_dispersion: NtpShort::ZERO,
            reference_id: ReferenceId::NONE,
            reference_timestamp: NtpTimestamp::ZERO,
        };
        let r = Header::server_response(
            &Header::client_request(6, 1),
            &system,
            NtpTimestamp::ZERO,
            NtpTimestamp::ZERO,
        );
        assert_eq!(r.stratum, 0);
        assert_eq!(r.effective_stratum(), 16);
        // Stratum 0 with a zero reference id is not a kiss code.
        assert_eq!(r.kiss_code(), None);
    }

    #[test]
    fn symmetric_active_is_answered_passive() {
        let mut request = Header::client_request(6, 1);
        request.mode = Mode::SymmetricActive;
        let system = SystemInfo {
            leap: LeapIndicator::NoWarning,
            stratum: 2,
            precision: -20,
            root_delay: NtpShort::ZERO,
            root_dispersion: NtpShort::ZERO,
            reference_id: ReferenceId::NONE,
            reference_timestamp: NtpTimestamp::ZERO,
        };
        let r = Header::server_response(&request, &system, NtpTimestamp::ZERO, NtpTimestamp::ZERO);
        assert_eq!(r.mode, Mode::SymmetricPassive);
    }

    #[test]
    fn bad_version_and_mode_and_length() {
        let mut b = CHRONY_REQUEST;
        b[0] = 0x03; // version 0
        assert_eq!(
            Header::parse(&b),
            Err(ParseError::UnsupportedVersion { version: 0 })
        );
        b[0] = 0x2b; // version 5
        assert_eq!(
            Header::parse(&b),
            Err(ParseError::UnsupportedVersion { version: 5 })
        );
        b[0] = 0x26; // mode 6
        assert_eq!(
            Header::parse(&b),
            Err(ParseError::UnsupportedMode {
                mode: Mode::Control
            })
        );
        b[0] = 0x1b; // v3 client
        assert_eq!(Header::parse(&b).unwrap().version, Version::V3);
        assert_eq!(
            Header::parse(&CHRONY_REQUEST[..47]),
            Err(ParseError::TooShort { len: 47 })
        );
    }

    #[test]
    fn kiss_codes() {
        let rate = KissCode::from_reference_id(ReferenceId::from_bytes(*b"RATE")).unwrap();
        assert_eq!(rate, KissCode::RATE);
        assert_eq!(rate.as_str(), "RATE");
        assert!(!rate.is_stop());
        assert!(KissCode::DENY.is_stop() && KissCode::RSTR.is_stop());
        assert_eq!(
            KissCode::NTSN.description(),
            Some("NTS cookie could not be used (NTS NAK, RFC 8915 §5.7).")
        );
        let x = KissCode::from_reference_id(ReferenceId::from_bytes(*b"XYZ\0")).unwrap();
        assert!(x.is_experimental());
        assert_eq!(x.description(), None);
        assert_eq!(
            KissCode::from_reference_id(ReferenceId::from_bytes(*b"ra\0e")),
            None
        );
        assert_eq!(
            KissCode::from_reference_id(ReferenceId::from_bytes([127, 0, 0, 1])),
            None
        );
        assert_eq!(
            ReferenceId::from_ascii("GPS").unwrap().as_ascii(),
            Some("GPS")
        );
        assert_eq!(ReferenceId::from_ascii("TOOLONG"), None);
    }
}
