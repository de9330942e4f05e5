//! NTS protection of NTPv4 packets (RFC 8915 §5): the Unique Identifier, NTS Cookie,
//! Cookie Placeholder and Authenticator extension fields, for both ends.
//!
//! Everything here is a pure function over bytes: no I/O, no clock, and randomness
//! (unique identifiers, nonces, cookie nonces) from the caller's
//! [`rand_core::CryptoRng`]. Packets are verified as received, with the associated
//! data and nonce borrowed straight from the datagram through
//! [`ntp_proto::PacketView::nts_protected_parts`]; nothing is re-encoded before
//! verification.
//!
//! # Client
//!
//! 1. [`seal_request`] takes one cookie from the [`CookieJar`] (or fails with
//!    [`SealError::NoCookies`]: run NTS-KE again) and writes
//!    `header ‖ UID ‖ cookie ‖ N placeholders ‖ authenticator(C2S, empty plaintext)`.
//!    Keep [`SealedRequest::uid`] and the header's transmit timestamp with the
//!    outstanding request.
//! 2. [`open_response`] checks a reply against them and the S2C key, and returns the
//!    header and the new cookies from the encrypted part; store them with
//!    [`OpenedResponse::store_cookies`]. [`ResponseError::NtsNak`] means the server
//!    could not use the cookie: keep the keys until the next poll, then run NTS-KE
//!    again if that fails too (RFC 8915 §5.7).
//!
//! # Server
//!
//! 1. [`open_request`] checks the structure, opens the cookie with the [`KeySet`] and
//!    verifies the request under the C2S key it holds. [`RequestError::Nak`] carries
//!    the request header and UID: answer with [`nts_nak`]. [`RequestError::Drop`]:
//!    send nothing.
//! 2. Build the response header (e.g. [`Header::server_response`]) and write it with
//!    [`seal_response`], which adds the echoed UID and an authenticator under S2C
//!    holding up to [`OpenedRequest::cookies_wanted`] fresh cookies, never making the
//!    response longer than the request.
//!
//! # Wire layout
//!
//! Sizes for AEAD 15 (104-byte cookies), 32-byte UID, 16-byte nonces:
//!
//! ```text
//! request:  48 header + 36 UID + 108 cookie + N·108 placeholders + 40 authenticator
//! response: 48 header + 36 UID + (4 + 4 + 16 nonce + 16 tag + (N+1)·108 cookies)
//! ```
//!
//! With 7 placeholders both are 988 bytes. No additional padding is ever written:
//! NTPsec servers require a 40-byte request authenticator, and NTPsec clients decrypt
//! to the end of the packet, ignoring the ciphertext length.
//!
//! # Example
//!
//! ```
//! use nts_cookie::packet::{open_request, open_response, seal_request, seal_response};
//! use nts_cookie::{AeadAlgorithm, CookieJar, CookieKeys, KeySet, KeySetConfig};
//! use ntp_proto::{Header, LeapIndicator, NtpShort, NtpTimestamp, ReferenceId, SystemInfo};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut rng = rand::rng();
//! let server = KeySet::random(KeySetConfig::default(), 1_700_000_000, &mut rng)?;
//! let keys = CookieKeys::generate(AeadAlgorithm::AesSivCmac256, &mut rng);
//! let mut jar = CookieJar::with_cookies(keys.clone(), [server.seal_cookie(&keys, &mut rng)])?;
//!
//! // Client.
//! let header = Header::client_request_random(6, &mut rng);
//! let request = seal_request(&header, &mut jar, 1280, &mut rng)?;
//! assert_eq!(request.placeholders, 7);
//!
//! // Server. (`RequestError` borrows the request's UID for the NAK, so it is not
//! // `'static`; a real server matches on it and answers `Nak` with `nts_nak`.)
//! let opened = open_request(&request.bytes, &server).map_err(|e| e.to_string())?;
//! assert_eq!(opened.cookies_wanted, 8);
//! let system = SystemInfo {
//!     leap: LeapIndicator::NoWarning,
//!     stratum: 1,
//!     precision: -20,
//!     root_delay: NtpShort::ZERO,
//!     root_dispersion: NtpShort::ZERO,
//!     reference_id: ReferenceId::from_ascii("GPS").ok_or("refid")?,
//!     reference_timestamp: NtpTimestamp::from_seconds_and_fraction(3_913_056_000, 0),
//! };
//! let now = NtpTimestamp::from_seconds_and_fraction(3_913_056_001, 0);
//! let reply_header = Header::server_response(&opened.header, &system, now, now);
//! let mut reply = Vec::new();
//! seal_response(&reply_header, &opened, &server, &mut rng, &mut reply)?;
//! assert!(reply.len() <= request.bytes.len());
//!
//! // Client.
//! let mut response = open_response(&reply, &request.uid, header.transmit_timestamp, jar.keys())?;
//! assert_eq!(response.store_cookies(&mut jar), 8);
//! assert_eq!(jar.len(), 8);
//! # Ok(())
//! # }
//! ```

use alloc::vec::Vec;

use ntp_proto::{
    EncodeError, ExtensionField, ExtensionFieldType, FIELD_HEADER_LEN, HEADER_LEN, Header,
    InnerFieldWalker, KissCode, MAX_FIELD_LEN, MIN_FIELD_LEN, MIN_LAST_FIELD_LEN, Mode,
    NtpTimestamp, NtsAuthenticator, PacketView, ParseError, SystemInfo,
};
use rand_core::CryptoRng;

use crate::aead::{AeadAlgorithm, AeadError, TAG_LEN};
use crate::cookie::{COOKIE_NONCE_LEN, CookieError, CookieKeys, cookie_len};
use crate::jar::{CookieJar, MAX_COOKIES};
use crate::keyset::KeySet;

/// Length of the Unique Identifier our client sends (RFC 8915 §5.3 asks for at least
/// 32 bytes; NTPsec clients need exactly 32 echoed).
pub const UID_LEN: usize = 32;

/// The shortest Unique Identifier body a server accepts (RFC 8915 §5.3).
pub const MIN_UID_LEN: usize = 32;

/// The longest Unique Identifier body a server accepts. RFC 8915 sets no maximum; 64
/// is NTPsec's limit and keeps the echo (and an NTS NAK) small.
pub const MAX_UID_LEN: usize = 64;

/// The nonce length we generate is [`AeadAlgorithm::nonce_len`]: 16 for the SIV
/// algorithms, which satisfies the padding rule of RFC 8915 §5.6 with no additional
/// padding. This is the largest of them.
const MAX_NONCE_LEN: usize = 16;

/// A protected client request, ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SealedRequest {
    /// The datagram.
    pub bytes: Vec<u8>,
    /// The Unique Identifier to match the response against.
    pub uid: [u8; UID_LEN],
    /// How many Cookie Placeholder fields the request carries; the server returns up
    /// to one cookie more than this.
    pub placeholders: usize,
}

/// A verified server response.
///
/// An authenticated Kiss-o'-Death (e.g. RATE or DENY) is a success too: its header
/// and [`OpenedResponse::kiss_code`] are returned so the caller can react (reduce
/// the poll rate, stop sending). Its timestamps are not to be used for time.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenedResponse {
    /// The response header.
    pub header: Header,
    /// The cookies from the encrypted part, in wire order. Cookies outside the
    /// ciphertext are never taken.
    pub cookies: Vec<Vec<u8>>,
    /// The kiss code if the response is an (authenticated) Kiss-o'-Death.
    pub kiss_code: Option<KissCode>,
}

impl OpenedResponse {
    /// Moves the new cookies into `jar` and returns how many it accepted. A cookie the
    /// jar refuses (empty, or of another length than those it holds, see
    /// [`CookieJar::store`]) is dropped; beyond [`MAX_COOKIES`] the jar evicts its
    /// oldest cookies.
    pub fn store_cookies(&mut self, jar: &mut CookieJar) -> usize {
        self.cookies
            .drain(..)
            .filter_map(|cookie| jar.store(cookie).ok())
            .count()
    }
}

/// A verified client request, as [`open_request`] returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenedRequest<'a> {
    /// The request header.
    pub header: Header,
    /// The Unique Identifier field body, to be echoed exactly.
    pub uid: &'a [u8],
    /// The keys from the cookie: C2S verified the request, S2C protects the response.
    pub keys: CookieKeys,
    /// How many cookies to return: 1 plus the placeholders of the cookie's length
    /// (plaintext ones before the authenticator and encrypted ones inside it, as
    /// chrony counts them), at most [`MAX_COOKIES`].
    pub cookies_wanted: usize,
    /// Length of the request datagram: the response must not be longer.
    pub request_len: usize,
    /// Length of the cookie field body in the request.
    pub cookie_len: usize,
}

/// Why a packet could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The jar is empty: run NTS-KE again.
    #[error("no cookie left, nts-ke must be run again")]
    NoCookies,
    /// A field would be too long for an extension field (a cookie over 65528 bytes).
    #[error("cannot encode field: {0}")]
    Encode(#[source] EncodeError),
    /// The AEAD refused the nonce or input.
    #[error("cannot seal: {0}")]
    Aead(#[source] AeadError),
    /// Even a response without cookies would be longer than the request.
    #[error("a {len}-byte response would be longer than the {limit}-byte request")]
    ResponseTooLong {
        /// The shortest response possible.
        len: usize,
        /// The request's length.
        limit: usize,
    },
}

impl From<EncodeError> for SealError {
    fn from(e: EncodeError) -> Self {
        Self::Encode(e)
    }
}

impl From<AeadError> for SealError {
    fn from(e: AeadError) -> Self {
        Self::Aead(e)
    }
}

/// Why a client drops a response. Every variant means "ignore this packet"; only
/// [`ResponseError::NtsNak`] says something about the association.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// Not an NTP packet.
    #[error("malformed response: {0}")]
    Parse(#[source] ParseError),
    /// The mode is not 4 (server).
    #[error("response mode is {mode}, not server")]
    NotServerMode {
        /// The mode received.
        mode: Mode,
    },
    /// The origin timestamp is not our request's transmit timestamp.
    #[error("origin timestamp does not match the request")]
    OriginMismatch,
    /// No Unique Identifier field (before the authenticator, if there is one).
    #[error("response has no unique identifier")]
    MissingUid,
    /// More than one Unique Identifier field.
    #[error("response has more than one unique identifier")]
    DuplicateUid,
    /// The Unique Identifier is not the one we sent.
    #[error("unique identifier does not match the request")]
    UidMismatch,
    /// An NTS NAK (Kiss-o'-Death NTSN with our UID and no authenticator, RFC 8915
    /// §5.7): the server could not use our cookie. Keep the keys and cookies until
    /// the next poll; if that is answered the same way, run NTS-KE again.
    #[error("server sent an nts nak")]
    NtsNak,
    /// No authenticator: unprotected responses, including any Kiss-o'-Death but an
    /// NTS NAK, are dropped (RFC 8915 §5.7).
    #[error("response is not authenticated")]
    Unauthenticated {
        /// The kiss code of an unauthenticated Kiss-o'-Death, for logging only.
        kiss_code: Option<KissCode>,
    },
    /// The authenticator did not verify under the S2C key.
    #[error("response authentication failed: {0}")]
    AuthenticationFailed(#[source] AeadError),
    /// The decrypted extension fields are malformed.
    #[error("malformed encrypted extension fields: {0}")]
    MalformedPlaintext(#[source] ParseError),
}

/// What the server does with a request it does not accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError<'a> {
    /// Well-formed, but the cookie did not open or the request did not verify: answer
    /// with [`nts_nak`] (RFC 8915 §5.7).
    #[error("answer with an nts nak: {reason}")]
    Nak {
        /// The request header, for the NAK's origin timestamp, version and poll.
        header: Header,
        /// The Unique Identifier field body, to echo.
        uid: &'a [u8],
        /// Why.
        reason: NakReason,
    },
    /// Malformed or not NTS: send nothing.
    #[error("drop request: {0}")]
    Drop(DropReason),
}

impl<'a> RequestError<'a> {
    /// The Unique Identifier to echo in an NTS NAK, if the server should send one.
    #[must_use]
    pub fn uid(&self) -> Option<&'a [u8]> {
        match *self {
            Self::Nak { uid, .. } => Some(uid),
            Self::Drop(_) => None,
        }
    }
}

/// Why a well-formed request earns an NTS NAK.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NakReason {
    /// The cookie did not open (unknown or dropped master key, forgery, …).
    #[error("cookie rejected: {0}")]
    Cookie(#[source] CookieError),
    /// The authenticator did not verify under the cookie's C2S key.
    #[error("request authentication failed: {0}")]
    Authentication(#[source] AeadError),
}

/// Why a request is dropped without an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DropReason {
    /// Not an NTP packet.
    #[error("malformed request: {0}")]
    Parse(#[source] ParseError),
    /// The mode is not 3 (client).
    #[error("request mode is {mode}, not client")]
    NotClientMode {
        /// The mode received.
        mode: Mode,
    },
    /// No authenticator field.
    #[error("no authenticator")]
    MissingAuthenticator,
    /// Extension fields or a MAC after the authenticator (chrony and NTPsec reject
    /// these too).
    #[error("the authenticator is not the last field")]
    AuthenticatorNotLast,
    /// No Unique Identifier field.
    #[error("no unique identifier")]
    MissingUid,
    /// More than one Unique Identifier field.
    #[error("more than one unique identifier")]
    DuplicateUid,
    /// The Unique Identifier is outside [`MIN_UID_LEN`]..=[`MAX_UID_LEN`] bytes.
    #[error("unique identifier of {len} bytes, not {MIN_UID_LEN} to {MAX_UID_LEN}")]
    UidLength {
        /// The field body length.
        len: usize,
    },
    /// No NTS Cookie field.
    #[error("no cookie")]
    MissingCookie,
    /// More than one NTS Cookie field.
    #[error("more than one cookie")]
    DuplicateCookie,
    /// A short nonce without the additional padding RFC 8915 §5.6 requires.
    #[error(
        "nonce of {nonce_len} bytes needs {required} bytes of additional padding, has {padding}"
    )]
    InsufficientPadding {
        /// The nonce length.
        nonce_len: usize,
        /// Additional padding present.
        padding: usize,
        /// Additional padding required.
        required: usize,
    },
    /// The decrypted extension fields are malformed.
    #[error("malformed encrypted extension fields: {0}")]
    MalformedPlaintext(#[source] ParseError),
}

/// Builds a protected request: the header, a random 32-byte Unique Identifier, one
/// cookie taken from `jar`, as many Cookie Placeholders as
/// [`CookieJar::placeholders_to_request_within`]`(max_packet_len)` allows (each the
/// cookie's length), and last an authenticator under the C2S key with a fresh nonce,
/// the preceding bytes as associated data and an empty plaintext (RFC 8915 §5.7).
///
/// `header` should be a client request ([`Header::client_request_random`]); keep its
/// transmit timestamp and [`SealedRequest::uid`] to check the response.
/// `max_packet_len` bounds only the placeholders: a request with none is sent even if
/// it is longer.
///
/// # Errors
/// [`SealError::NoCookies`] if the jar is empty (run NTS-KE again). The other errors
/// cannot occur with cookies from this crate; the cookie taken is consumed either way.
pub fn seal_request<R: CryptoRng + ?Sized>(
    header: &Header,
    jar: &mut CookieJar,
    max_packet_len: usize,
    rng: &mut R,
) -> Result<SealedRequest, SealError> {
    let cookie = jar.take().ok_or(SealError::NoCookies)?;
    let placeholders = jar.placeholders_to_request_within(max_packet_len);
    let keys = jar.keys();

    let mut uid = [0u8; UID_LEN];
    rng.fill_bytes(&mut uid);
    let uid_field = ExtensionField::unique_identifier(&uid)?;
    let cookie_field = ExtensionField::nts_cookie(&cookie)?;
    let placeholder = ExtensionField::nts_cookie_placeholder(cookie.len())?;

    let len = HEADER_LEN
        + uid_field.encoded_len(MIN_FIELD_LEN)
        + (1 + placeholders) * cookie_field.encoded_len(MIN_FIELD_LEN)
        + FIELD_HEADER_LEN
        + NtsAuthenticator::body_len(MAX_NONCE_LEN, TAG_LEN, 0);
    let mut bytes = Vec::with_capacity(len);
    header.emit(&mut bytes);
    uid_field.emit(&mut bytes, MIN_FIELD_LEN);
    cookie_field.emit(&mut bytes, MIN_FIELD_LEN);
    for _ in 0..placeholders {
        placeholder.emit(&mut bytes, MIN_FIELD_LEN);
    }

    let mut nonce_buf = [0u8; MAX_NONCE_LEN];
    let nonce = random_nonce(keys.algorithm(), &mut nonce_buf, rng);
    let tag = keys.c2s().seal(nonce, &bytes, &[])?;
    ExtensionField::nts_authenticator(nonce, &tag, 0)?.emit(&mut bytes, MIN_LAST_FIELD_LEN);

    Ok(SealedRequest {
        bytes,
        uid,
        placeholders,
    })
}

/// Checks a response to the request whose Unique Identifier was `expected_uid` and
/// whose transmit timestamp was `expected_origin`, and decrypts it with the S2C key of
/// `keys` (RFC 8915 §5.7).
///
/// The checks, in order: the packet parses; its mode is server; its origin timestamp
/// is `expected_origin`; exactly one Unique Identifier field precedes the
/// authenticator (or is in the packet, if there is none) and equals `expected_uid`;
/// an NTS NAK is reported as such; an authenticator is present and verifies, with the
/// bytes before it as associated data; its plaintext consists of well-formed inner
/// extension fields. NTS Cookie fields inside the plaintext become
/// [`OpenedResponse::cookies`]; cookies outside it and any field after the
/// authenticator are ignored.
///
/// # Errors
/// A [`ResponseError`] naming the first check that failed. All of them mean the
/// packet must be ignored; [`ResponseError::NtsNak`] also says the cookie was
/// refused.
pub fn open_response(
    bytes: &[u8],
    expected_uid: &[u8],
    expected_origin: NtpTimestamp,
    keys: &CookieKeys,
) -> Result<OpenedResponse, ResponseError> {
    let view = PacketView::new(bytes).map_err(ResponseError::Parse)?;
    let header = *view.header();
    if header.mode != Mode::Server {
        return Err(ResponseError::NotServerMode { mode: header.mode });
    }
    if header.origin_timestamp != expected_origin {
        return Err(ResponseError::OriginMismatch);
    }
    let parts = view.nts_protected_parts().map_err(ResponseError::Parse)?;
    let covered = match &parts {
        Some(parts) => parts.covered_fields(),
        None => view.extension_fields(),
    };
    let mut uids = covered.filter(|f| f.field_type == ExtensionFieldType::UNIQUE_IDENTIFIER);
    let uid = uids.next().ok_or(ResponseError::MissingUid)?;
    if uids.next().is_some() {
        return Err(ResponseError::DuplicateUid);
    }
    if !uid_matches(uid.body, expected_uid) {
        return Err(ResponseError::UidMismatch);
    }
    let kiss_code = header.kiss_code();
    let Some(parts) = parts else {
        return Err(if kiss_code == Some(KissCode::NTSN) {
            ResponseError::NtsNak
        } else {
            ResponseError::Unauthenticated { kiss_code }
        });
    };
    let authenticator = parts.authenticator;
    let plaintext = keys
        .s2c()
        .open(
            authenticator.nonce,
            parts.associated_data,
            authenticator.ciphertext,
        )
        .map_err(ResponseError::AuthenticationFailed)?;
    let mut cookies = Vec::new();
    for field in InnerFieldWalker::new(&plaintext) {
        let field = field.map_err(ResponseError::MalformedPlaintext)?;
        if field.field_type == ExtensionFieldType::NTS_COOKIE {
            cookies.push(field.body.to_vec());
        }
    }
    Ok(OpenedResponse {
        header,
        cookies,
        kiss_code,
    })
}

/// Checks a client request and recovers its keys (RFC 8915 §5.7).
///
/// Structure first, each failure a [`RequestError::Drop`]: the packet parses; its mode
/// is client; it has an authenticator and nothing after it (no field, no MAC); before
/// it, exactly one Unique Identifier of [`MIN_UID_LEN`]..=[`MAX_UID_LEN`] bytes and
/// exactly one NTS Cookie. Then the cookie is opened with `keyset` and the
/// authenticator verified under its C2S key, with the bytes before it as associated
/// data; either failure is a [`RequestError::Nak`] carrying the UID. A nonce shorter
/// than the algorithm requires (16 bytes for SIV, 12 for GCM-SIV, padded to 4) without
/// additional padding making up the difference is dropped (RFC 8915 §5.6), as are
/// malformed encrypted fields.
///
/// Cookie Placeholders whose body length equals the cookie's count towards
/// [`OpenedRequest::cookies_wanted`], whether before the authenticator or encrypted in
/// it; other lengths are ignored. Unknown fields are ignored.
///
/// # Errors
/// [`RequestError::Nak`] (answer with [`nts_nak`]) or [`RequestError::Drop`] (do not
/// answer).
pub fn open_request<'a>(
    bytes: &'a [u8],
    keyset: &KeySet,
) -> Result<OpenedRequest<'a>, RequestError<'a>> {
    let request = parse_request(bytes)?;
    let keys = keyset
        .open_cookie(request.cookie)
        .map_err(|e| request.nak(NakReason::Cookie(e)))?;
    authenticate_request(request, keys)
}

/// A structurally valid request, before any cryptography.
struct ParsedRequest<'a> {
    header: Header,
    uid: &'a [u8],
    cookie: &'a [u8],
    placeholders: usize,
    associated_data: &'a [u8],
    nonce: &'a [u8],
    ciphertext: &'a [u8],
    additional_padding: usize,
    request_len: usize,
}

impl<'a> ParsedRequest<'a> {
    fn nak(&self, reason: NakReason) -> RequestError<'a> {
        RequestError::Nak {
            header: self.header,
            uid: self.uid,
            reason,
        }
    }
}

fn drop_request<'a>(reason: DropReason) -> RequestError<'a> {
    RequestError::Drop(reason)
}

/// The structural checks of [`open_request`].
fn parse_request(bytes: &[u8]) -> Result<ParsedRequest<'_>, RequestError<'_>> {
    let view = PacketView::new(bytes).map_err(|e| drop_request(DropReason::Parse(e)))?;
    let header = *view.header();
    if header.mode != Mode::Client {
        return Err(drop_request(DropReason::NotClientMode {
            mode: header.mode,
        }));
    }
    let parts = view
        .nts_protected_parts()
        .map_err(|e| drop_request(DropReason::Parse(e)))?
        .ok_or(drop_request(DropReason::MissingAuthenticator))?;
    if parts.trailing_fields().next().is_some() || view.mac().is_some() {
        return Err(drop_request(DropReason::AuthenticatorNotLast));
    }

    let mut uid = None;
    let mut cookie = None;
    for field in parts.covered_fields() {
        let (slot, duplicate) = match field.field_type {
            ExtensionFieldType::UNIQUE_IDENTIFIER => (&mut uid, DropReason::DuplicateUid),
            ExtensionFieldType::NTS_COOKIE => (&mut cookie, DropReason::DuplicateCookie),
            _ => continue,
        };
        if slot.replace(field.body).is_some() {
            return Err(drop_request(duplicate));
        }
    }
    let uid = uid.ok_or(drop_request(DropReason::MissingUid))?;
    if !(MIN_UID_LEN..=MAX_UID_LEN).contains(&uid.len()) {
        return Err(drop_request(DropReason::UidLength { len: uid.len() }));
    }
    let cookie = cookie.ok_or(drop_request(DropReason::MissingCookie))?;
    let placeholders = parts
        .covered_fields()
        .filter(|f| {
            f.field_type == ExtensionFieldType::NTS_COOKIE_PLACEHOLDER
                && f.body.len() == cookie.len()
        })
        .count();

    Ok(ParsedRequest {
        header,
        uid,
        cookie,
        placeholders,
        associated_data: parts.associated_data,
        nonce: parts.authenticator.nonce,
        ciphertext: parts.authenticator.ciphertext,
        additional_padding: parts.authenticator.additional_padding,
        request_len: bytes.len(),
    })
}

/// The cryptographic half of [`open_request`], once the cookie has given `keys`.
fn authenticate_request<'a>(
    request: ParsedRequest<'a>,
    keys: CookieKeys,
) -> Result<OpenedRequest<'a>, RequestError<'a>> {
    let required = required_padding(keys.algorithm(), request.nonce.len());
    if request.additional_padding < required {
        return Err(drop_request(DropReason::InsufficientPadding {
            nonce_len: request.nonce.len(),
            padding: request.additional_padding,
            required,
        }));
    }
    // Requests nearly always encrypt nothing (a 16-byte tag alone, as ours, chrony's
    // and ntpd-rs's do): decrypt those on the stack, anything longer on the heap.
    let mut small = [0u8; SMALL_CIPHERTEXT];
    let mut large = Vec::new();
    let buf = match small.get_mut(..request.ciphertext.len()) {
        Some(buf) => {
            buf.copy_from_slice(request.ciphertext);
            buf
        }
        None => {
            large.extend_from_slice(request.ciphertext);
            large.as_mut_slice()
        }
    };
    let plaintext = keys
        .c2s()
        .open_in_place(request.nonce, request.associated_data, buf)
        .map_err(|e| request.nak(NakReason::Authentication(e)))?;
    let mut encrypted_placeholders = 0;
    for field in InnerFieldWalker::new(plaintext) {
        let field = field.map_err(|e| drop_request(DropReason::MalformedPlaintext(e)))?;
        if field.field_type == ExtensionFieldType::NTS_COOKIE_PLACEHOLDER
            && field.body.len() == request.cookie.len()
        {
            encrypted_placeholders += 1;
        }
    }
    let placeholders = request.placeholders.saturating_add(encrypted_placeholders);
    Ok(OpenedRequest {
        header: request.header,
        uid: request.uid,
        keys,
        cookies_wanted: placeholders.saturating_add(1).min(MAX_COOKIES),
        request_len: request.request_len,
        cookie_len: request.cookie.len(),
    })
}

/// Request ciphertexts up to this long are decrypted in a stack buffer: room for the
/// tag and a few encrypted placeholders' headers.
const SMALL_CIPHERTEXT: usize = 64;

/// The additional padding RFC 8915 §5.6 requires after a request's ciphertext:
/// `N_REQ − N_LEN` if positive, with `N_LEN` the padded nonce length and `N_REQ` =
/// min(16, the algorithm's maximum nonce length) padded to 4: 16 for SIV (any nonce
/// length), 12 for GCM-SIV.
fn required_padding(algorithm: AeadAlgorithm, nonce_len: usize) -> usize {
    let n_max = if algorithm.accepts_any_nonce_len() {
        usize::MAX
    } else {
        algorithm.nonce_len()
    };
    pad4(n_max.min(16)).saturating_sub(pad4(nonce_len))
}

/// Writes the response to `request` into `out` (cleared first): `response_header`,
/// the request's Unique Identifier field body echoed exactly, and last an
/// authenticator under the S2C key with a fresh nonce, the preceding bytes as
/// associated data, and as plaintext up to [`OpenedRequest::cookies_wanted`] new
/// cookies sealed by `keyset`, encoded as inner NTS Cookie fields (padded to 4 only,
/// RFC 8915 §5.6). No additional padding follows.
///
/// The response is never longer than the request (RFC 8915 §5.7, and chrony refuses
/// such replies): if it would be, fewer cookies are sent, down to none.
///
/// `response_header` is normally [`Header::server_response`] to
/// [`OpenedRequest::header`]; an authenticated Kiss-o'-Death such as RATE is built the
/// same way with [`Header::kiss_of_death`].
///
/// # Errors
/// [`SealError::ResponseTooLong`] if even a response without cookies would be longer
/// than the request (impossible for a request [`open_request`] accepted), or a
/// [`SealError::Aead`] the AEAD reports. On error `out` is left empty.
pub fn seal_response<R: CryptoRng + ?Sized>(
    response_header: &Header,
    request: &OpenedRequest<'_>,
    keyset: &KeySet,
    rng: &mut R,
    out: &mut Vec<u8>,
) -> Result<(), SealError> {
    out.clear();
    let result = write_response(response_header, request, keyset, rng, out);
    if result.is_err() {
        out.clear();
    }
    result
}

fn write_response<R: CryptoRng + ?Sized>(
    response_header: &Header,
    request: &OpenedRequest<'_>,
    keyset: &KeySet,
    rng: &mut R,
    out: &mut Vec<u8>,
) -> Result<(), SealError> {
    let keys = &request.keys;
    let algorithm = keys.algorithm();
    let nonce_len = algorithm.nonce_len();
    let uid_field = ExtensionField::unique_identifier(request.uid)?;
    let cookie_field_len = FIELD_HEADER_LEN + pad4(cookie_len(algorithm));

    // Everything but the cookies.
    let fixed = HEADER_LEN
        + uid_field.encoded_len(MIN_FIELD_LEN)
        + FIELD_HEADER_LEN
        + NtsAuthenticator::body_len(nonce_len, TAG_LEN, 0);
    let room = request
        .request_len
        .checked_sub(fixed)
        .ok_or(SealError::ResponseTooLong {
            len: fixed,
            limit: request.request_len,
        })?;
    let cookies = request
        .cookies_wanted
        .min(MAX_COOKIES)
        .min(room / cookie_field_len);
    let ciphertext_len = TAG_LEN + cookies * cookie_field_len;
    let field_len = FIELD_HEADER_LEN + NtsAuthenticator::body_len(nonce_len, ciphertext_len, 0);
    // ≤ 4 + 4 + 16 + 16 + 8 · (4 + 168): far below the limits of the u16 fields.
    let too_long = SealError::Encode(EncodeError::FieldTooLong { len: field_len });
    if field_len > MAX_FIELD_LEN {
        return Err(too_long);
    }
    let (Ok(field_len_u16), Ok(nonce_len_u16), Ok(ciphertext_len_u16)) = (
        u16::try_from(field_len),
        u16::try_from(nonce_len),
        u16::try_from(ciphertext_len),
    ) else {
        return Err(too_long);
    };

    out.reserve(fixed + cookies * cookie_field_len);
    response_header.emit(out);
    uid_field.emit(out, MIN_FIELD_LEN);
    let associated_data_len = out.len();

    let mut nonce_buf = [0u8; MAX_NONCE_LEN];
    let nonce = random_nonce(algorithm, &mut nonce_buf, rng);
    out.extend_from_slice(&ExtensionFieldType::NTS_AUTHENTICATOR.0.to_be_bytes());
    out.extend_from_slice(&field_len_u16.to_be_bytes());
    out.extend_from_slice(&nonce_len_u16.to_be_bytes());
    out.extend_from_slice(&ciphertext_len_u16.to_be_bytes());
    out.extend_from_slice(nonce);
    out.resize(out.len() + pad4(nonce.len()) - nonce.len(), 0);

    // Tag room, then the plaintext, sealed in place.
    let ciphertext_start = out.len();
    out.resize(ciphertext_start + TAG_LEN, 0);
    // Inner NTS Cookie fields, each sealed straight into the packet.
    let cookie_field_len_u16 = u16::try_from(cookie_field_len).map_err(|_| too_long)?;
    for _ in 0..cookies {
        let field_start = out.len();
        out.extend_from_slice(&ExtensionFieldType::NTS_COOKIE.0.to_be_bytes());
        out.extend_from_slice(&cookie_field_len_u16.to_be_bytes());
        let mut cookie_nonce = [0u8; COOKIE_NONCE_LEN];
        rng.fill_bytes(&mut cookie_nonce);
        keyset.seal_cookie_into(keys, &cookie_nonce, out);
        out.resize(field_start + cookie_field_len, 0);
    }
    debug_assert_eq!(out.len(), ciphertext_start + ciphertext_len);
    let (head, field) = out.split_at_mut(ciphertext_start);
    let associated_data = head.get(..associated_data_len).unwrap_or(&[]);
    keys.s2c().seal_in_place(nonce, associated_data, field)?;
    out.resize(ciphertext_start + pad4(ciphertext_len), 0);
    debug_assert_eq!(out.len(), associated_data_len + field_len);
    Ok(())
}

/// Writes an NTS NAK (RFC 8915 §5.7) into `out` (cleared first): a Kiss-o'-Death
/// NTSN header ([`Header::kiss_of_death`]: stratum 0, leap unsynchronized, origin =
/// the request's transmit timestamp) and the request's Unique Identifier field body
/// echoed, with no cookie and no authenticator. Laid out as chrony sends it.
///
/// `uid` is normally [`RequestError::uid`]. A `uid` too long for an extension field
/// (over 65528 bytes, never the case for one taken from a datagram) is cut short.
pub fn nts_nak(
    request: &Header,
    uid: &[u8],
    system: &SystemInfo,
    receive: NtpTimestamp,
    transmit: NtpTimestamp,
    out: &mut Vec<u8>,
) {
    out.clear();
    Header::kiss_of_death(request, KissCode::NTSN, system, receive, transmit).emit(out);
    let uid = uid.get(..MAX_FIELD_LEN - FIELD_HEADER_LEN).unwrap_or(uid);
    if let Ok(field) = ExtensionField::unique_identifier(uid) {
        // The only field and no MAC: at least 28 bytes (RFC 7822 §7.5.1.4).
        field.emit(out, MIN_LAST_FIELD_LEN);
    }
}

/// Whether an echoed UID field body is `expected`, zero-padded to 4 as we sent it.
fn uid_matches(body: &[u8], expected: &[u8]) -> bool {
    let Some((uid, padding)) = body.split_at_checked(expected.len()) else {
        return false;
    };
    uid == expected && body.len() == pad4(expected.len()) && padding.iter().all(|&b| b == 0)
}

/// `algorithm`'s nonce length (at most [`MAX_NONCE_LEN`]) of random bytes, in `buf`.
fn random_nonce<'b, R: CryptoRng + ?Sized>(
    algorithm: AeadAlgorithm,
    buf: &'b mut [u8; MAX_NONCE_LEN],
    rng: &mut R,
) -> &'b [u8] {
    let len = algorithm.nonce_len().min(MAX_NONCE_LEN);
    let (nonce, _) = buf.split_at_mut(len);
    rng.fill_bytes(nonce);
    nonce
}

const fn pad4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyset::KeySetConfig;
    use hex_literal::hex;
    use ntp_proto::{LeapIndicator, NtpShort, ReferenceId};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    /// PROTOCOL.md §5.3: ntpd-rs's captured NTS request (AEAD 17).
    const NTPDRS_REQUEST: [u8; 296] = hex!(
        "2300040000000000000000000000000000000000000000000000000000000000
         00000000000000006287db473ff75f5801040024e4833a8d600e1342435cb29d
         e550acc0f8d8fa16e5c5370a620b155f586adad6020400ac1cc40a94da3f94a4
         d12ac2d609f16f7211596a0acefc62d11f283ad108d801b591385d9bf507f90d
         2182e6812a58a735dc49c4d3e9b79c72b7f64464f8fc0ded25ea1f7c9b315cd8
         6086fd677490f50e61e6680e290d49770ced44d42f2d9ba89f4d5dce4fdd5749
         51495a1f38dbc7ec1b865ba58f231edd76ee1dafdd66b2b2641f03c6479b429c
         7ff6596b8244cf67b5a2cd209d39bbe6402bf62045df9550f038770689791218
         0404002800100010ce89ee973442bc0f43aace4999bdf58e8fee7b1a2d58af6d
         e9a20e561f7ff06a"
    );

    /// PROTOCOL.md §5.3: ntpd-rs's response to it.
    const NTPDRS_RESPONSE: [u8; 296] = hex!(
        "240104e80000000000000060544d4e4ce8494892f929579e6287db473ff75f58
         e84948b2b640d701e84948b2b644bff801040024e4833a8d600e1342435cb29d
         e550acc0f8d8fa16e5c5370a620b155f586adad6040400d4001000bc6a1de3c2
         6e13eb10c739d70b841fad1b86e230c63e9ea5f71b62a8a79881ce7c6b17cb31
         32490fdecf2110564e368892ddeef1f423f6555341c2c9176120a518dc1a7edc
         5ee3c83b05087b7303f7ab86d52cc7490ce829397223dcef2d94faf8d71d1280
         da032dd70469e9ac5f82ef5781d207fbacb4a8b6319114d5f56fb22a0cb6d7dc
         f77df02146f67e4601b53b217ca8ac1a4d97d59bceeb9833997f100ed469858b
         cd735201adec38cf8cb2c6d0541a9767ddb3ea091d63d98d03dd6e48153dc9b6
         1fe5d91d74ae3548"
    );

    const C2S: [u8; 64] = hex!(
        "aa6fa17607c8e88091faaaba578fabfc6ef1aab30d968693d3f83ecf7a9bc66d
         a70f1276923fba92d4bcaf1b5903edd434711c15cbc8e61108ba7e0134e65628"
    );
    const S2C: [u8; 64] = hex!(
        "f4063f0d2fe2b41968d42f0eba46bb5d868c0252eefe714f5a1f878a7bd2792f
         e4d0f34c7ed5c4e9410f21a3c41e06c5de69280e498ac82deb7f30f8ab088db4"
    );

    /// /work/shared/corpus/chrony-server-nts-nak.hex: chrony's NTS NAK.
    const CHRONY_NAK: [u8; 84] = hex!(
        "e40004e700000000000000004e54534eeeaca2e24d6547c2eeaca2ea12796000
         eeaca2ea1280be23eeaca2ea128663ac0104002434b179daf3d9f8ce3878f2cc
         c3bbe85bc0710e15cf8354d7f95b4b93816d1ae6"
    );

    fn ntpdrs_keys() -> CookieKeys {
        CookieKeys::new(AeadAlgorithm::AesSivCmac512, &C2S, &S2C).unwrap()
    }

    fn key_set() -> KeySet {
        let config = KeySetConfig {
            rotation_period_s: 3600,
            old_keys_kept: 1,
        };
        KeySet::random(config, 0, &mut StdRng::seed_from_u64(1)).unwrap()
    }

    #[test]
    fn ntpdrs_request_verifies_under_its_c2s_key() {
        let parsed = parse_request(&NTPDRS_REQUEST).unwrap();
        assert_eq!(parsed.uid, &NTPDRS_REQUEST[52..84]);
        assert_eq!(parsed.cookie.len(), 168);
        assert_eq!(parsed.associated_data, &NTPDRS_REQUEST[..256]);
        assert_eq!(parsed.nonce, hex!("ce89ee973442bc0f43aace4999bdf58e"));
        assert_eq!(parsed.placeholders, 0);
        let opened = authenticate_request(parsed, ntpdrs_keys()).unwrap();
        assert_eq!(opened.cookies_wanted, 1);
        assert_eq!(opened.request_len, 296);
        assert_eq!(opened.cookie_len, 168);
        assert_eq!(opened.header.mode, Mode::Client);

        // The S2C key does not verify it: the check is real.
        let swapped = CookieKeys::new(AeadAlgorithm::AesSivCmac512, &S2C, &C2S).unwrap();
        let err = authenticate_request(parse_request(&NTPDRS_REQUEST).unwrap(), swapped);
        assert!(matches!(
            err,
            Err(RequestError::Nak {
                reason: NakReason::Authentication(AeadError::Authentication),
                ..
            })
        ));
    }

    #[test]
    fn ntpdrs_cookie_is_naked_by_our_key_set() {
        let err = open_request(&NTPDRS_REQUEST, &key_set()).unwrap_err();
        assert_eq!(err.uid(), Some(&NTPDRS_REQUEST[52..84]));
        let RequestError::Nak { header, reason, .. } = err else {
            panic!("{err:?}")
        };
        assert!(matches!(reason, NakReason::Cookie(_)), "{reason:?}");
        assert_eq!(header.transmit_timestamp.to_bits(), 0x6287_db47_3ff7_5f58);
    }

    #[test]
    fn ntpdrs_response_opens_under_its_s2c_key() {
        let request = PacketView::new(&NTPDRS_REQUEST).unwrap();
        let origin = request.header().transmit_timestamp;
        let uid = &NTPDRS_REQUEST[52..84];
        let opened = open_response(&NTPDRS_RESPONSE, uid, origin, &ntpdrs_keys()).unwrap();
        assert_eq!(opened.cookies.len(), 1);
        assert_eq!(opened.cookies[0].len(), 168);
        assert_eq!(opened.kiss_code, None);
        assert_eq!(opened.header.stratum, 1);
        assert_eq!(opened.header.reference_id.as_ascii(), Some("TMNL"));

        // Wrong key, UID or origin.
        let c2s_as_s2c = CookieKeys::new(AeadAlgorithm::AesSivCmac512, &S2C, &C2S).unwrap();
        assert!(matches!(
            open_response(&NTPDRS_RESPONSE, uid, origin, &c2s_as_s2c),
            Err(ResponseError::AuthenticationFailed(_))
        ));
        assert_eq!(
            open_response(&NTPDRS_RESPONSE, &[0; 32], origin, &ntpdrs_keys()),
            Err(ResponseError::UidMismatch)
        );
        assert_eq!(
            open_response(
                &NTPDRS_RESPONSE,
                uid,
                NtpTimestamp::from_bits(origin.to_bits() ^ 1),
                &ntpdrs_keys()
            ),
            Err(ResponseError::OriginMismatch)
        );
        // A request is not a response.
        assert_eq!(
            open_response(&NTPDRS_REQUEST, uid, origin, &ntpdrs_keys()),
            Err(ResponseError::NotServerMode { mode: Mode::Client })
        );
    }

    #[test]
    fn nak_matches_chronys() {
        let chrony = PacketView::new(&CHRONY_NAK).unwrap();
        let theirs = chrony.header();
        let uid = &CHRONY_NAK[52..84];
        let mut request = Header::client_request(theirs.poll, 0);
        request.transmit_timestamp = theirs.origin_timestamp;
        let system = SystemInfo {
            leap: LeapIndicator::NoWarning,
            stratum: 2,
            precision: theirs.precision,
            root_delay: NtpShort::from_bits(0x1234),
            root_dispersion: NtpShort::from_bits(0x5678),
            reference_id: ReferenceId::from_ascii("GPS").unwrap(),
            reference_timestamp: theirs.reference_timestamp,
        };
        let mut out = vec![0xAA; 7];
        nts_nak(
            &request,
            uid,
            &system,
            theirs.receive_timestamp,
            theirs.transmit_timestamp,
            &mut out,
        );
        assert_eq!(out.len(), 84);
        assert_eq!(out, CHRONY_NAK);

        // Our client reads chrony's NAK as one, for the right UID only.
        let keys = ntpdrs_keys();
        assert_eq!(
            open_response(&CHRONY_NAK, uid, theirs.origin_timestamp, &keys),
            Err(ResponseError::NtsNak)
        );
        assert_eq!(
            open_response(&CHRONY_NAK, &[7; 32], theirs.origin_timestamp, &keys),
            Err(ResponseError::UidMismatch)
        );
    }

    #[test]
    fn padding_rule() {
        let siv = AeadAlgorithm::AesSivCmac256;
        assert_eq!(required_padding(siv, 16), 0);
        assert_eq!(required_padding(siv, 32), 0);
        assert_eq!(required_padding(siv, 12), 4);
        assert_eq!(required_padding(siv, 13), 0);
        assert_eq!(required_padding(siv, 1), 12);
        assert_eq!(required_padding(siv, 0), 16);
        #[cfg(feature = "gcm-siv")]
        assert_eq!(required_padding(AeadAlgorithm::Aes128GcmSiv, 12), 0);
    }

    #[test]
    fn uid_comparison_expects_our_padding() {
        assert!(uid_matches(&[1; 32], &[1; 32]));
        assert!(!uid_matches(&[1; 36], &[1; 32]));
        assert!(!uid_matches(&[1; 28], &[1; 32]));
        assert!(uid_matches(&[1, 1, 1, 0], &[1, 1, 1]));
        assert!(!uid_matches(&[1, 1, 1, 9], &[1, 1, 1]));
        assert!(!uid_matches(&[], &[1]));
    }
}
