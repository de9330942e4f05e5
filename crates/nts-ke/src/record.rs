//! NTS-KE record codec (RFC 8915 §4).
//!
//! Two levels, as in smoltcp:
//!
//! - [`RecordHeader`] is the checked 4-byte header, read without copying;
//! - [`Record`] is the owned representation of one record, with
//!   [`Record::parse`], [`Record::emit`] and [`Record::encoded_len`].
//!
//! ```text
//! +-+-----------------------------+-------------------------------+
//! |C|   Record Type (15 bits)     |  Body Length (excludes header)|
//! +-+-----------------------------+-------------------------------+
//! |  Body (no padding)                                            |
//! ```
//!
//! The critical bit is kept as parsed for every record, so a parsed message re-emits to the
//! same bytes. Record types this crate does not model (8–14, 1024, private ones, …) become
//! [`Record::Unknown`] and keep their body byte for byte.

use core::fmt;

use bytes::BufMut;

/// Defines a wire-integer newtype over `u16` with named constants, in the style of rustls'
/// enum macros: unknown values round-trip unchanged.
macro_rules! wire_u16 {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$cmeta:meta])* $konst:ident = $value:expr, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u16);

        impl $name {
            $( $(#[$cmeta])* pub const $konst: Self = Self($value); )*

            /// The registry name of this value, or `None` if it is not one this crate knows.
            #[allow(clippy::match_single_binding)]
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $( Self::$konst => Some(stringify!($konst)), )*
                    _ => None,
                }
            }
        }

        impl From<u16> for $name {
            fn from(value: u16) -> Self {
                Self(value)
            }
        }

        impl From<$name> for u16 {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(name) => write!(f, "{}({})", name, self.0),
                    None => write!(f, "{}({})", stringify!($name), self.0),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }
    };
}

wire_u16! {
    /// An NTS-KE record type (15 bits on the wire; RFC 8915 §7.6).
    RecordType {
        /// End of Message (0).
        END_OF_MESSAGE = 0,
        /// NTS Next Protocol Negotiation (1).
        NEXT_PROTOCOL = 1,
        /// Error (2).
        ERROR = 2,
        /// Warning (3).
        WARNING = 3,
        /// AEAD Algorithm Negotiation (4).
        AEAD_ALGORITHM = 4,
        /// New Cookie for NTPv4 (5).
        NEW_COOKIE = 5,
        /// NTPv4 Server Negotiation (6).
        SERVER = 6,
        /// NTPv4 Port Negotiation (7).
        PORT = 7,
        /// chrony's empty "compliant AES-128-GCM-SIV export" record (1024; PROTOCOL.md §3.9).
        CHRONY_COMPLIANT_128GCM_EXPORT = 1024,
    }
}

wire_u16! {
    /// A Next Protocol ID (RFC 8915 §7.7).
    ProtocolId {
        /// NTPv4 (0), the only protocol this crate negotiates.
        NTPV4 = 0,
        /// Draft NTPv5 as used by ntpd-rs (0x8001, private range).
        NTPV5_DRAFT = 0x8001,
    }
}

wire_u16! {
    /// An AEAD algorithm ID (IANA AEAD registry; RFC 8915 §5.1).
    AeadId {
        /// AEAD_AES_SIV_CMAC_256 (15), mandatory to implement; 32-byte key.
        AES_SIV_CMAC_256 = 15,
        /// AEAD_AES_SIV_CMAC_384 (16); 48-byte key.
        AES_SIV_CMAC_384 = 16,
        /// AEAD_AES_SIV_CMAC_512 (17); 64-byte key.
        AES_SIV_CMAC_512 = 17,
        /// AEAD_AES_128_GCM_SIV (30); 16-byte key.
        AES_128_GCM_SIV = 30,
        /// AEAD_AES_256_GCM_SIV (31); 32-byte key.
        AES_256_GCM_SIV = 31,
    }
}

impl AeadId {
    /// The key length in bytes, which is also the key export length (RFC 8915 §5.1), or
    /// `None` for an algorithm this crate does not know.
    pub fn key_len(self) -> Option<usize> {
        match self {
            Self::AES_SIV_CMAC_256 => Some(32),
            Self::AES_SIV_CMAC_384 => Some(48),
            Self::AES_SIV_CMAC_512 => Some(64),
            Self::AES_128_GCM_SIV => Some(16),
            Self::AES_256_GCM_SIV => Some(32),
            _ => None,
        }
    }
}

wire_u16! {
    /// An NTS-KE Error record code (RFC 8915 §4.1.3, §7.8).
    ErrorCode {
        /// Unrecognized Critical Record (0). The client should not retry unchanged.
        UNRECOGNIZED_CRITICAL_RECORD = 0,
        /// Bad Request (1): malformed, incomplete or timed out. Do not retry unchanged.
        BAD_REQUEST = 1,
        /// Internal Server Error (2). The client may retry.
        INTERNAL_SERVER_ERROR = 2,
    }
}

wire_u16! {
    /// An NTS-KE Warning record code (RFC 8915 §4.1.4, §7.9). No codes are defined, so a
    /// client treats every warning as an error.
    WarningCode {}
}

/// Why a record body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The body length does not fit the record type (e.g. an odd-length u16 list, or a Port
    /// body that is not 2 bytes).
    #[error("bad body length {len} for record type {record_type}")]
    BadLength {
        /// The record type.
        record_type: RecordType,
        /// The body length from the header.
        len: usize,
    },
    /// A Server Negotiation record body that is not ASCII.
    #[error("server negotiation record is not ascii")]
    NonAsciiServer,
}

/// Why a record could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The body is longer than the 16-bit length field allows.
    #[error("record body of {len} bytes exceeds 65535")]
    BodyTooLong {
        /// The body length that was asked for.
        len: usize,
    },
    /// An [`Record::Unknown`] type does not fit in 15 bits.
    #[error("record type {0} does not fit in 15 bits")]
    RecordTypeOutOfRange(RecordType),
    /// An [`Record::Unknown`] used a type this crate models (0–7); it would not parse back
    /// to the same value.
    #[error("record type {0} must not be emitted as an unknown record")]
    KnownTypeAsUnknown(RecordType),
    /// A Server Negotiation name that is not ASCII.
    #[error("server negotiation name is not ascii")]
    NonAsciiServer,
    /// The buffer has too little room for the record.
    #[error("buffer too small: need {needed} bytes, have {available}")]
    BufferTooSmall {
        /// Bytes the record needs.
        needed: usize,
        /// Bytes the buffer can take.
        available: usize,
    },
}

/// The checked 4-byte record header (RFC 8915 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// The critical bit (C).
    pub critical: bool,
    /// The 15-bit record type.
    pub record_type: RecordType,
    /// The body length, excluding this header.
    pub body_len: u16,
}

impl RecordHeader {
    /// Length of the header on the wire.
    pub const LEN: usize = 4;

    /// Reads the header at the start of `buf`, or `None` if fewer than 4 bytes are present.
    pub fn peek(buf: &[u8]) -> Option<Self> {
        let (&[b0, b1, l0, l1], _) = buf.split_first_chunk::<4>()?;
        Some(Self {
            critical: b0 & 0x80 != 0,
            record_type: RecordType(u16::from_be_bytes([b0 & 0x7f, b1])),
            body_len: u16::from_be_bytes([l0, l1]),
        })
    }

    /// Header plus body length.
    pub fn total_len(&self) -> usize {
        Self::LEN + usize::from(self.body_len)
    }
}

/// The result of [`Record::parse`] on a buffer that may hold only part of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// One whole record was decoded from the start of the buffer.
    Complete {
        /// The decoded record.
        record: Record,
        /// Bytes of the buffer it occupied (header and body).
        consumed: usize,
    },
    /// The buffer ends inside the record.
    Incomplete {
        /// At least this many more bytes are needed.
        needed: usize,
    },
}

/// One NTS-KE record, owned (RFC 8915 §4.1).
///
/// Every variant keeps the critical bit as received. The constructors ([`Record::end_of_message`],
/// [`Record::next_protocol`], …) set it the way chrony and ntpd-rs do: C=1 on every record
/// except New Cookie.
///
/// ```
/// use nts_ke::record::{Parsed, Record};
///
/// let record = Record::port(11123);
/// let bytes = record.to_vec()?;
/// assert_eq!(bytes, [0x80, 0x07, 0x00, 0x02, 0x2b, 0x73]);
/// assert_eq!(record.encoded_len(), bytes.len());
/// assert_eq!(
///     Record::parse(&bytes)?,
///     Parsed::Complete { record, consumed: 6 }
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// End of Message (0): empty body; must be last and critical.
    EndOfMessage {
        /// Critical bit.
        critical: bool,
    },
    /// NTS Next Protocol Negotiation (1): a list of protocol IDs.
    NextProtocol {
        /// Critical bit.
        critical: bool,
        /// Protocol IDs, in order.
        protocols: Vec<ProtocolId>,
    },
    /// Error (2): one error code.
    Error {
        /// Critical bit.
        critical: bool,
        /// The error code.
        code: ErrorCode,
    },
    /// Warning (3): one warning code.
    Warning {
        /// Critical bit.
        critical: bool,
        /// The warning code.
        code: WarningCode,
    },
    /// AEAD Algorithm Negotiation (4): a list of AEAD IDs.
    AeadAlgorithm {
        /// Critical bit.
        critical: bool,
        /// AEAD IDs, in preference order.
        algorithms: Vec<AeadId>,
    },
    /// New Cookie for NTPv4 (5): opaque bytes.
    NewCookie {
        /// Critical bit.
        critical: bool,
        /// The cookie.
        cookie: Vec<u8>,
    },
    /// NTPv4 Server Negotiation (6): an ASCII address or name.
    Server {
        /// Critical bit.
        critical: bool,
        /// IPv4 dotted quad, IPv6 text or FQDN.
        name: String,
    },
    /// NTPv4 Port Negotiation (7): a UDP port.
    Port {
        /// Critical bit.
        critical: bool,
        /// The port.
        port: u16,
    },
    /// Any other record type, kept byte for byte.
    Unknown {
        /// The record type (8 or above, below 0x8000).
        record_type: RecordType,
        /// Critical bit.
        critical: bool,
        /// The body.
        body: Vec<u8>,
    },
}

impl Record {
    /// End of Message with C=1.
    pub fn end_of_message() -> Self {
        Self::EndOfMessage { critical: true }
    }

    /// Next Protocol Negotiation with C=1.
    pub fn next_protocol(protocols: Vec<ProtocolId>) -> Self {
        Self::NextProtocol {
            critical: true,
            protocols,
        }
    }

    /// Error with C=1.
    pub fn error(code: ErrorCode) -> Self {
        Self::Error {
            critical: true,
            code,
        }
    }

    /// Warning with C=1.
    pub fn warning(code: WarningCode) -> Self {
        Self::Warning {
            critical: true,
            code,
        }
    }

    /// AEAD Algorithm Negotiation with C=1 (as chrony and ntpd-rs send it).
    pub fn aead_algorithm(algorithms: Vec<AeadId>) -> Self {
        Self::AeadAlgorithm {
            critical: true,
            algorithms,
        }
    }

    /// New Cookie with C=0.
    pub fn new_cookie(cookie: Vec<u8>) -> Self {
        Self::NewCookie {
            critical: false,
            cookie,
        }
    }

    /// Server Negotiation with C=1.
    pub fn server(name: String) -> Self {
        Self::Server {
            critical: true,
            name,
        }
    }

    /// Port Negotiation with C=1.
    pub fn port(port: u16) -> Self {
        Self::Port {
            critical: true,
            port,
        }
    }

    /// The record type.
    pub fn record_type(&self) -> RecordType {
        match self {
            Self::EndOfMessage { .. } => RecordType::END_OF_MESSAGE,
            Self::NextProtocol { .. } => RecordType::NEXT_PROTOCOL,
            Self::Error { .. } => RecordType::ERROR,
            Self::Warning { .. } => RecordType::WARNING,
            Self::AeadAlgorithm { .. } => RecordType::AEAD_ALGORITHM,
            Self::NewCookie { .. } => RecordType::NEW_COOKIE,
            Self::Server { .. } => RecordType::SERVER,
            Self::Port { .. } => RecordType::PORT,
            Self::Unknown { record_type, .. } => *record_type,
        }
    }

    /// The critical bit.
    pub fn critical(&self) -> bool {
        match self {
            Self::EndOfMessage { critical }
            | Self::NextProtocol { critical, .. }
            | Self::Error { critical, .. }
            | Self::Warning { critical, .. }
            | Self::AeadAlgorithm { critical, .. }
            | Self::NewCookie { critical, .. }
            | Self::Server { critical, .. }
            | Self::Port { critical, .. }
            | Self::Unknown { critical, .. } => *critical,
        }
    }

    /// Decodes the record at the start of `buf`.
    ///
    /// Returns [`Parsed::Incomplete`] when `buf` ends inside the record, so a stream reader
    /// can wait for more bytes; bytes after the record are left for the caller.
    ///
    /// # Errors
    ///
    /// [`ParseError`] when the body does not fit the type (RFC 8915 §4.1): a non-empty End of
    /// Message, an odd-length u16 list, an Error/Warning/Port body that is not 2 bytes, or a
    /// non-ASCII Server name.
    pub fn parse(buf: &[u8]) -> Result<Parsed, ParseError> {
        let Some(header) = RecordHeader::peek(buf) else {
            return Ok(Parsed::Incomplete {
                needed: RecordHeader::LEN.saturating_sub(buf.len()),
            });
        };
        let total = header.total_len();
        let Some(body) = buf.get(RecordHeader::LEN..total) else {
            return Ok(Parsed::Incomplete {
                needed: total.saturating_sub(buf.len()),
            });
        };
        let record = Self::from_parts(header, body)?;
        Ok(Parsed::Complete {
            record,
            consumed: total,
        })
    }

    /// Decodes a record from its header and exactly its body.
    ///
    /// # Errors
    ///
    /// As [`Record::parse`]; also [`ParseError::BadLength`] if `body` is not
    /// `header.body_len` bytes long.
    pub fn from_parts(header: RecordHeader, body: &[u8]) -> Result<Self, ParseError> {
        let critical = header.critical;
        let record_type = header.record_type;
        let bad_len = || ParseError::BadLength {
            record_type,
            len: body.len(),
        };
        if body.len() != usize::from(header.body_len) {
            return Err(bad_len());
        }
        let record = match record_type {
            RecordType::END_OF_MESSAGE => {
                if !body.is_empty() {
                    return Err(bad_len());
                }
                Self::EndOfMessage { critical }
            }
            RecordType::NEXT_PROTOCOL => Self::NextProtocol {
                critical,
                protocols: u16_list(body)
                    .ok_or_else(bad_len)?
                    .map(ProtocolId)
                    .collect(),
            },
            RecordType::ERROR => Self::Error {
                critical,
                code: ErrorCode(single_u16(body).ok_or_else(bad_len)?),
            },
            RecordType::WARNING => Self::Warning {
                critical,
                code: WarningCode(single_u16(body).ok_or_else(bad_len)?),
            },
            RecordType::AEAD_ALGORITHM => Self::AeadAlgorithm {
                critical,
                algorithms: u16_list(body).ok_or_else(bad_len)?.map(AeadId).collect(),
            },
            RecordType::NEW_COOKIE => Self::NewCookie {
                critical,
                cookie: body.to_vec(),
            },
            RecordType::SERVER => {
                if !body.is_ascii() {
                    return Err(ParseError::NonAsciiServer);
                }
                let name = core::str::from_utf8(body)
                    .map_err(|_| ParseError::NonAsciiServer)?
                    .to_owned();
                Self::Server { critical, name }
            }
            RecordType::PORT => Self::Port {
                critical,
                port: single_u16(body).ok_or_else(bad_len)?,
            },
            _ => Self::Unknown {
                record_type,
                critical,
                body: body.to_vec(),
            },
        };
        Ok(record)
    }

    /// Length of the body in bytes (saturating; [`Record::emit`] rejects anything over
    /// 65535).
    pub fn body_len(&self) -> usize {
        match self {
            Self::EndOfMessage { .. } => 0,
            Self::NextProtocol { protocols, .. } => protocols.len().saturating_mul(2),
            Self::AeadAlgorithm { algorithms, .. } => algorithms.len().saturating_mul(2),
            Self::Error { .. } | Self::Warning { .. } | Self::Port { .. } => 2,
            Self::NewCookie { cookie, .. } => cookie.len(),
            Self::Server { name, .. } => name.len(),
            Self::Unknown { body, .. } => body.len(),
        }
    }

    /// Exactly the number of bytes [`Record::emit`] writes (header plus body).
    pub fn encoded_len(&self) -> usize {
        RecordHeader::LEN.saturating_add(self.body_len())
    }

    /// Checks that the record can be encoded, without writing it.
    ///
    /// # Errors
    ///
    /// See [`Record::emit`].
    pub fn check_encodable(&self) -> Result<(), EncodeError> {
        let len = self.body_len();
        if len > usize::from(u16::MAX) {
            return Err(EncodeError::BodyTooLong { len });
        }
        match self {
            Self::Unknown { record_type, .. } if record_type.0 > 0x7fff => {
                Err(EncodeError::RecordTypeOutOfRange(*record_type))
            }
            Self::Unknown { record_type, .. } if record_type.0 <= RecordType::PORT.0 => {
                Err(EncodeError::KnownTypeAsUnknown(*record_type))
            }
            Self::Server { name, .. } if !name.is_ascii() => Err(EncodeError::NonAsciiServer),
            _ => Ok(()),
        }
    }

    /// Writes the record (header and body) to `buf`. Nothing is written on error.
    ///
    /// # Errors
    ///
    /// [`EncodeError`] if the body is over 65535 bytes, an [`Record::Unknown`] type is not in
    /// 8..=0x7fff, a Server name is not ASCII, or `buf` has less room than
    /// [`Record::encoded_len`].
    pub fn emit<B: BufMut + ?Sized>(&self, buf: &mut B) -> Result<(), EncodeError> {
        self.check_encodable()?;
        let needed = self.encoded_len();
        let available = buf.remaining_mut();
        if available < needed {
            return Err(EncodeError::BufferTooSmall { needed, available });
        }
        let type_bits = self.record_type().0 & 0x7fff;
        let c_bit = if self.critical() { 0x8000 } else { 0 };
        buf.put_u16(c_bit | type_bits);
        // Checked above: the body length fits in 16 bits.
        buf.put_u16(u16::try_from(self.body_len()).unwrap_or(u16::MAX));
        match self {
            Self::EndOfMessage { .. } => {}
            Self::NextProtocol { protocols, .. } => protocols.iter().for_each(|p| buf.put_u16(p.0)),
            Self::AeadAlgorithm { algorithms, .. } => {
                algorithms.iter().for_each(|a| buf.put_u16(a.0));
            }
            Self::Error { code, .. } => buf.put_u16(code.0),
            Self::Warning { code, .. } => buf.put_u16(code.0),
            Self::Port { port, .. } => buf.put_u16(*port),
            Self::NewCookie { cookie, .. } => buf.put_slice(cookie),
            Self::Server { name, .. } => buf.put_slice(name.as_bytes()),
            Self::Unknown { body, .. } => buf.put_slice(body),
        }
        Ok(())
    }

    /// Encodes the record into a new vector.
    ///
    /// # Errors
    ///
    /// See [`Record::emit`].
    pub fn to_vec(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.emit(&mut out)?;
        Ok(out)
    }
}

/// Encodes a sequence of records back to back (a whole message when the last one is End of
/// Message).
///
/// # Errors
///
/// The first [`EncodeError`] of any record; see [`Record::emit`].
pub fn encode_records(records: &[Record]) -> Result<Vec<u8>, EncodeError> {
    let len = records
        .iter()
        .fold(0usize, |acc, r| acc.saturating_add(r.encoded_len()));
    let mut out = Vec::with_capacity(len);
    for record in records {
        record.emit(&mut out)?;
    }
    Ok(out)
}

fn u16_list(body: &[u8]) -> Option<impl Iterator<Item = u16> + '_> {
    (body.len() % 2 == 0).then(|| {
        body.chunks_exact(2)
            .filter_map(|c| c.first_chunk::<2>().map(|b| u16::from_be_bytes(*b)))
    })
}

fn single_u16(body: &[u8]) -> Option<u16> {
    let bytes: [u8; 2] = body.try_into().ok()?;
    Some(u16::from_be_bytes(bytes))
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use hex_literal::hex;

    #[test]
    fn header_bits() {
        let header = RecordHeader::peek(&hex!("8004 0002")).expect("4 bytes");
        assert!(header.critical);
        assert_eq!(header.record_type, RecordType::AEAD_ALGORITHM);
        assert_eq!(header.body_len, 2);
        let header = RecordHeader::peek(&hex!("7fff 0000")).expect("4 bytes");
        assert!(!header.critical);
        assert_eq!(header.record_type, RecordType(0x7fff));
        assert_eq!(RecordHeader::peek(&hex!("8000 00")), None);
    }

    #[test]
    fn deconstruct_request_records() {
        // PROTOCOL.md §3.3 request bytes, record by record.
        let buf = hex!("8001 0002 0000 8004 0002 000f 8000 0000");
        let Ok(Parsed::Complete { record, consumed }) = Record::parse(&buf) else {
            panic!("npn");
        };
        assert_eq!(record, Record::next_protocol(vec![ProtocolId::NTPV4]));
        assert_eq!(consumed, 6);
        let Ok(Parsed::Complete { record, consumed }) = Record::parse(&buf[6..]) else {
            panic!("aead");
        };
        assert_eq!(
            record,
            Record::aead_algorithm(vec![AeadId::AES_SIV_CMAC_256])
        );
        assert_eq!(consumed, 6);
        assert_eq!(
            Record::parse(&buf[12..]),
            Ok(Parsed::Complete {
                record: Record::end_of_message(),
                consumed: 4
            })
        );
    }

    #[test]
    fn construct_error_response() {
        let mut out = Vec::new();
        Record::error(ErrorCode::INTERNAL_SERVER_ERROR)
            .emit(&mut out)
            .expect("fits");
        Record::end_of_message().emit(&mut out).expect("fits");
        assert_eq!(out, hex!("8002 0002 0002 8000 0000"));
    }

    #[test]
    fn every_type_round_trips() {
        let records = [
            Record::end_of_message(),
            Record::EndOfMessage { critical: false },
            Record::next_protocol(vec![]),
            Record::next_protocol(vec![ProtocolId::NTPV4, ProtocolId::NTPV5_DRAFT]),
            Record::error(ErrorCode::BAD_REQUEST),
            Record::warning(WarningCode(7)),
            Record::aead_algorithm(vec![AeadId::AES_SIV_CMAC_512, AeadId(999)]),
            Record::new_cookie(vec![1, 2, 3]),
            Record::NewCookie {
                critical: true,
                cookie: vec![],
            },
            Record::server("ntp.example.org".into()),
            Record::Port {
                critical: false,
                port: 123,
            },
            Record::Unknown {
                record_type: RecordType(1024),
                critical: false,
                body: vec![],
            },
            Record::Unknown {
                record_type: RecordType(0x4003),
                critical: true,
                body: vec![0xde, 0xad],
            },
        ];
        for record in records {
            let bytes = record.to_vec().expect("encodable");
            assert_eq!(bytes.len(), record.encoded_len());
            assert_eq!(
                Record::parse(&bytes),
                Ok(Parsed::Complete {
                    record,
                    consumed: bytes.len()
                })
            );
        }
    }

    #[test]
    fn incomplete() {
        assert_eq!(Record::parse(&[]), Ok(Parsed::Incomplete { needed: 4 }));
        assert_eq!(Record::parse(&[0x80]), Ok(Parsed::Incomplete { needed: 3 }));
        assert_eq!(
            Record::parse(&hex!("8007 0002 2b")),
            Ok(Parsed::Incomplete { needed: 1 })
        );
    }

    #[test]
    fn bad_lengths() {
        let cases: &[(&[u8], RecordType, usize)] = &[
            (&hex!("8000 0001 00"), RecordType::END_OF_MESSAGE, 1),
            (&hex!("8001 0003 000000"), RecordType::NEXT_PROTOCOL, 3),
            (&hex!("8002 0000"), RecordType::ERROR, 0),
            (&hex!("8003 0003 000000"), RecordType::WARNING, 3),
            (&hex!("8004 0001 0f"), RecordType::AEAD_ALGORITHM, 1),
            (&hex!("8007 0001 01"), RecordType::PORT, 1),
            (&hex!("8007 0004 00000001"), RecordType::PORT, 4),
        ];
        for (bytes, record_type, len) in cases {
            assert_eq!(
                Record::parse(bytes),
                Err(ParseError::BadLength {
                    record_type: *record_type,
                    len: *len
                }),
                "{}",
                hex::encode(bytes)
            );
        }
        assert_eq!(
            Record::parse(&hex!("8006 0002 c3a9")),
            Err(ParseError::NonAsciiServer)
        );
    }

    #[test]
    fn emit_rejects_unencodable() {
        let long = Record::new_cookie(vec![0; 65536]);
        assert_eq!(long.to_vec(), Err(EncodeError::BodyTooLong { len: 65536 }));
        let known = Record::Unknown {
            record_type: RecordType::PORT,
            critical: true,
            body: vec![],
        };
        assert_eq!(
            known.to_vec(),
            Err(EncodeError::KnownTypeAsUnknown(RecordType::PORT))
        );
        let wide = Record::Unknown {
            record_type: RecordType(0x8000),
            critical: true,
            body: vec![],
        };
        assert_eq!(
            wide.to_vec(),
            Err(EncodeError::RecordTypeOutOfRange(RecordType(0x8000)))
        );
        assert_eq!(
            Record::server("é".into()).to_vec(),
            Err(EncodeError::NonAsciiServer)
        );
        let mut small = [0u8; 5];
        let mut slice = &mut small[..];
        assert_eq!(
            Record::port(1).emit(&mut slice),
            Err(EncodeError::BufferTooSmall {
                needed: 6,
                available: 5
            })
        );
        assert_eq!(small, [0; 5], "nothing written on error");
    }

    #[test]
    fn chrony_response_record_by_record() {
        let text = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/chrony-server-ntske-response.hex"
        ));
        let bytes = hex::decode(text.trim()).expect("hex");
        let mut rest = &bytes[..];
        let mut out = Vec::new();
        let mut types = Vec::new();
        while !rest.is_empty() {
            let Ok(Parsed::Complete { record, consumed }) = Record::parse(rest) else {
                panic!("corpus record does not parse");
            };
            record.emit(&mut out).expect("re-encodes");
            types.push((record.record_type().0, record.critical()));
            rest = &rest[consumed..];
        }
        assert_eq!(out, bytes);
        let mut expected = vec![(1, true), (4, true), (7, true)];
        expected.extend([(5, false); 8]);
        expected.push((0, true));
        assert_eq!(types, expected);
    }

    #[test]
    fn newtype_names() {
        assert_eq!(format!("{:?}", AeadId(15)), "AES_SIV_CMAC_256(15)");
        assert_eq!(format!("{}", AeadId(99)), "AeadId(99)");
        assert_eq!(WarningCode(3).name(), None);
        assert_eq!(AeadId::AES_SIV_CMAC_512.key_len(), Some(64));
        assert_eq!(AeadId(1).key_len(), None);
    }
}
