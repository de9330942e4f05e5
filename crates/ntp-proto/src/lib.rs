//! An NTPv4 packet codec: the RFC 5905 header, timestamps that survive the
//! 2036 rollover, RFC 7822 extension fields, the NTS fields of RFC 8915 and
//! Kiss-o'-Death codes. It does no I/O, reads no clock, does no cryptography,
//! and never panics on untrusted input.
//!
//! # Design overview
//!
//! The crate has two levels, in the manner of smoltcp's `wire` module:
//!
//! - **Views** borrow the received bytes. [`PacketView::new`] checks a
//!   datagram once — length, version, mode, the framing of every extension
//!   field and the MAC trailer — and after that its accessors cannot fail.
//!   Only the 48-byte [`Header`] is decoded eagerly; extension fields are read
//!   in place as [`RawExtensionField`]s, and [`RawExtensionField::nts`] types
//!   them as [`NtsField`]s on demand. A server can answer plain NTP without
//!   allocating: [`Header`] is `Copy` and [`Header::emit_to_slice`] writes
//!   into its own buffer.
//! - **Representations** own their data ([`Packet`], [`ExtensionField`], with
//!   the `alloc` feature). They are built with constructors that say what they
//!   build ([`Header::client_request`], [`Header::server_response`],
//!   [`Header::kiss_of_death`], [`ExtensionField::nts_authenticator`], …) and
//!   written with `emit` into any [`bytes::BufMut`]; `encoded_len` is always
//!   exactly what `emit` writes.
//!
//! For NTS, [`PacketView::nts_protected_parts`] hands a cryptographic layer
//! (our `nts-cookie` crate) the associated data — the bytes from the packet
//! start to the authenticator — and the authenticator's nonce and ciphertext
//! as borrowed slices, so packets are verified as received, never
//! re-encoded. Decrypted plaintext is walked with [`InnerFieldWalker`], which
//! applies RFC 8915's relaxed length rule.
//!
//! # Guarantees
//!
//! - Parsing never panics and never allocates beyond the input's own size;
//!   every failure is a [`ParseError`] that names the byte offset.
//! - Unknown extension field types are kept byte for byte, padding included.
//! - Output follows RFC 7822: fields padded to 4 bytes and at least 16 long;
//!   the last at least 28 when no MAC follows. Bytes that already follow those
//!   rules re-emit identically.
//! - Timestamps are era-less newtypes; differences wrap and are signed, so
//!   arithmetic is right across 2036. An era is chosen only when converting
//!   to [`UnixTime`] ([`NtpTimestamp::to_unix_near`]).
//!
//! # Example
//!
//! ```
//! use ntp_proto::{Header, KissCode, LeapIndicator, NtpShort, NtpTimestamp, PacketView,
//!                 ReferenceId, SystemInfo};
//!
//! // Client: a request with 64 random bits as its transmit timestamp.
//! let request = Header::client_request(6, 0x5eed_5eed_5eed_5eed);
//! let wire = request.to_bytes();
//!
//! // Server: parse, answer.
//! let received = PacketView::new(&wire)?;
//! let system = SystemInfo {
//!     leap: LeapIndicator::NoWarning,
//!     stratum: 1,
//!     precision: -20,
//!     root_delay: NtpShort::ZERO,
//!     root_dispersion: NtpShort::from_seconds_f64(0.001),
//!     reference_id: ReferenceId::from_ascii("GPS").expect("valid name"),
//!     reference_timestamp: NtpTimestamp::from_seconds_and_fraction(3_913_056_000, 0),
//! };
//! let t2 = NtpTimestamp::from_seconds_and_fraction(3_913_056_001, 0);
//! let reply = Header::server_response(received.header(), &system, t2, t2);
//!
//! // Client: the reply answers our request and is not a kiss of death.
//! let reply = PacketView::new(&reply.to_bytes())?.header().to_owned();
//! assert_eq!(reply.origin_timestamp, request.transmit_timestamp);
//! assert_eq!(reply.kiss_code(), None::<KissCode>);
//! # Ok::<(), ntp_proto::ParseError>(())
//! ```
//!
//! # Features
//!
//! - `std` (default): implies `alloc`; `std::error::Error` via `core`, and
//!   [`UnixTime::from_system_time`].
//! - `alloc`: the owned [`Packet`] and [`ExtensionField`]. Without it the
//!   crate is `no_std` and allocation-free.

#![cfg_attr(not(test), no_std)]
#![warn(clippy::indexing_slicing)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod error;
mod extension;
mod header;
mod packet;
mod time;

pub use error::{BufferTooSmall, EncodeError, ExtensionFieldError, NtsFieldError, ParseError};
#[cfg(feature = "alloc")]
pub use extension::ExtensionField;
pub use extension::{
    CRYPTO_NAK_LEN, ExtensionFieldType, FIELD_HEADER_LEN, InnerFieldWalker, MAX_FIELD_LEN,
    MAX_MAC_LEN, MIN_FIELD_LEN, MIN_LAST_FIELD_LEN, MIN_MAC_LEN, Mac, NtsAuthenticator, NtsField,
    RawExtensionField, TrailerItem, TrailerWalker,
};
pub use header::{
    CLIENT_REQUEST_PRECISION, HEADER_LEN, Header, KissCode, LeapIndicator, MAX_STRATUM, Mode,
    ReferenceId, SystemInfo, Version,
};
#[cfg(feature = "alloc")]
pub use packet::Packet;
pub use packet::{ExtensionFields, NtsProtectedParts, PacketView};
pub use time::{CivilDateTime, NtpDuration, NtpShort, NtpTimestamp, UNIX_OFFSET_SECONDS, UnixTime};
