//! Extension fields (RFC 7822), the legacy MAC trailer, and the NTS fields
//! of RFC 8915 §5.
//!
//! Everything after the 48-byte header is read by one walk,
//! [`TrailerWalker`], following chrony's rules (PROTOCOL.md §2): 4 zero bytes
//! at the end are a crypto-NAK, a 20–24 byte remainder is a MAC, anything else
//! must be an extension field of at least 16 bytes, a multiple of 4, that fits.
//! The walk is the one place these rules live; [`crate::PacketView`] runs it
//! once and afterwards iterates without re-checking.
//!
//! Inside the NTS ciphertext, fields follow RFC 8915's relaxed rule (any
//! multiple of 4, at least the 4-byte header): see [`InnerFieldWalker`].

use core::fmt;

use bytes::BufMut;

use crate::error::{EncodeError, ExtensionFieldError, NtsFieldError, ParseError};
use crate::header::Version;

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

/// Length of an extension field's type-and-length header.
pub const FIELD_HEADER_LEN: usize = 4;
/// Minimum length of an extension field outside NTS ciphertext (RFC 7822 §3).
pub const MIN_FIELD_LEN: usize = 16;
/// Minimum length of the last extension field when no MAC follows
/// (RFC 7822 §7.5.1.4).
pub const MIN_LAST_FIELD_LEN: usize = 28;
/// Largest length an extension field can have (the largest multiple of 4
/// that fits the 16-bit length field).
pub const MAX_FIELD_LEN: usize = 65_532;
/// Length of the crypto-NAK trailer (a MAC with key id 0 and no digest).
pub const CRYPTO_NAK_LEN: usize = 4;
/// Shortest MAC trailer: key id and a 16-byte digest.
pub const MIN_MAC_LEN: usize = 20;
/// Longest MAC trailer: key id and a 20-byte digest (RFC 7822 §7.5.1.3).
pub const MAX_MAC_LEN: usize = 24;

const NTS_LENGTHS_LEN: usize = 4;

/// An extension field type (RFC 7822 §3, RFC 9748 registry). Any value
/// round-trips; the registered ones have names.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtensionFieldType(pub u16);

impl ExtensionFieldType {
    /// NTS Unique Identifier (RFC 8915 §5.3).
    pub const UNIQUE_IDENTIFIER: Self = Self(0x0104);
    /// NTS Cookie (RFC 8915 §5.4). Also Autokey "Message Request" (RFC 9748).
    pub const NTS_COOKIE: Self = Self(0x0204);
    /// NTS Cookie Placeholder (RFC 8915 §5.5).
    pub const NTS_COOKIE_PLACEHOLDER: Self = Self(0x0304);
    /// NTS Authenticator and Encrypted Extension Fields (RFC 8915 §5.6).
    pub const NTS_AUTHENTICATOR: Self = Self(0x0404);

    /// The registered name, if this type has one we know.
    pub const fn name(self) -> Option<&'static str> {
        match self.0 {
            0x0104 => Some("Unique Identifier"),
            0x0204 => Some("NTS Cookie"),
            0x0304 => Some("NTS Cookie Placeholder"),
            0x0404 => Some("NTS Authenticator and Encrypted Extension Fields"),
            0x0002 => Some("No-Operation Request"),
            0x0102 => Some("Association Message Request"),
            0x0302 => Some("Cookie Message Request"),
            0x0402 => Some("Autokey Message Request"),
            0x0502 => Some("Leapseconds Values Message Request"),
            0x0602 => Some("Sign Message Request"),
            0x0702 => Some("IFF Identity Message Request"),
            0x0802 => Some("GQ Identity Message Request"),
            0x0902 => Some("MV Identity Message Request"),
            0x2005 => Some("Checksum Complement"),
            0xF000..=0xFFFF => Some("Experimental"),
            _ => None,
        }
    }
}

impl fmt::Debug for ExtensionFieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExtensionFieldType({:#06x})", self.0)
    }
}

impl fmt::Display for ExtensionFieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({:#06x})", self.0),
            None => write!(f, "unknown ({:#06x})", self.0),
        }
    }
}

/// An extension field inside a received packet, borrowed and unparsed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RawExtensionField<'a> {
    /// The field type.
    pub field_type: ExtensionFieldType,
    /// Everything after the 4-byte header up to the length field's end,
    /// padding included, exactly as on the wire.
    pub body: &'a [u8],
    /// Offset of the field's first byte in the packet (or plaintext).
    pub offset: usize,
}

impl<'a> RawExtensionField<'a> {
    /// The value of the field's length field (header plus body).
    pub const fn length(&self) -> usize {
        FIELD_HEADER_LEN + self.body.len()
    }

    /// The field read as an NTS field, or `None` if its type is not one of
    /// the four NTS types.
    ///
    /// # Errors
    /// [`ParseError::NtsField`] if an authenticator's lengths do not fit.
    pub fn nts(&self) -> Result<Option<NtsField<'a>>, ParseError> {
        Ok(Some(match self.field_type {
            ExtensionFieldType::UNIQUE_IDENTIFIER => NtsField::UniqueIdentifier(self.body),
            ExtensionFieldType::NTS_COOKIE => NtsField::Cookie(self.body),
            ExtensionFieldType::NTS_COOKIE_PLACEHOLDER => NtsField::CookiePlaceholder {
                len: self.body.len(),
            },
            ExtensionFieldType::NTS_AUTHENTICATOR => {
                NtsField::Authenticator(NtsAuthenticator::parse(self.body).map_err(|kind| {
                    ParseError::NtsField {
                        offset: self.offset,
                        kind,
                    }
                })?)
            }
            _ => return Ok(None),
        }))
    }

    /// An owned copy.
    #[cfg(feature = "alloc")]
    pub fn to_owned_field(&self) -> ExtensionField {
        ExtensionField {
            field_type: self.field_type,
            body: self.body.to_vec(),
        }
    }
}

/// The NTS fields of RFC 8915 §5.3–5.6, borrowed from a packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NtsField<'a> {
    /// The request's unique identifier (≥ 32 random bytes), echoed by the server.
    UniqueIdentifier(&'a [u8]),
    /// A cookie (request: exactly one, in the clear; response: only encrypted).
    Cookie(&'a [u8]),
    /// A request for one more cookie; only the length matters.
    CookiePlaceholder {
        /// Body length, which must equal the cookie length.
        len: usize,
    },
    /// The authenticator with the encrypted extension fields.
    Authenticator(NtsAuthenticator<'a>),
}

/// The body of an NTS Authenticator and Encrypted Extension Fields field
/// (RFC 8915 §5.6): nonce and ciphertext as bytes, no cryptography.
///
/// ```text
/// | nonce length u16 | ciphertext length u16 | nonce, pad to 4 | ciphertext, pad to 4 | additional padding |
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NtsAuthenticator<'a> {
    /// The nonce (unpadded).
    pub nonce: &'a [u8],
    /// The ciphertext (unpadded): for SIV, `tag ‖ encrypted fields`.
    pub ciphertext: &'a [u8],
    /// Bytes of additional padding after the padded ciphertext.
    pub additional_padding: usize,
}

impl<'a> NtsAuthenticator<'a> {
    /// Reads an authenticator body (the field minus its 4-byte header).
    ///
    /// # Errors
    /// If the body is shorter than its length fields or they point past it.
    pub fn parse(body: &'a [u8]) -> Result<Self, NtsFieldError> {
        let Some((lengths, rest)) = body.split_first_chunk::<NTS_LENGTHS_LEN>() else {
            return Err(NtsFieldError::AuthenticatorTooShort { len: body.len() });
        };
        let nonce_len = usize::from(u16::from_be_bytes([lengths[0], lengths[1]]));
        let ciphertext_len = usize::from(u16::from_be_bytes([lengths[2], lengths[3]]));
        let overflow = NtsFieldError::AuthenticatorOverflow {
            nonce_len,
            ciphertext_len,
            body_len: body.len(),
        };
        let nonce = rest.get(..nonce_len).ok_or(overflow)?;
        let rest = rest.get(pad4(nonce_len)..).ok_or(overflow)?;
        let ciphertext = rest.get(..ciphertext_len).ok_or(overflow)?;
        let rest = rest.get(pad4(ciphertext_len)..).ok_or(overflow)?;
        Ok(Self {
            nonce,
            ciphertext,
            additional_padding: rest.len(),
        })
    }

    /// The body length for a nonce and ciphertext of these lengths plus
    /// `additional_padding` bytes (rounded up to keep the body aligned).
    pub const fn body_len(
        nonce_len: usize,
        ciphertext_len: usize,
        additional_padding: usize,
    ) -> usize {
        NTS_LENGTHS_LEN + pad4(nonce_len) + pad4(ciphertext_len) + pad4(additional_padding)
    }
}

/// A legacy MAC trailer (RFC 5905 §7.3): a key id and a 16-byte (MD5,
/// AES-CMAC) or 20-byte (SHA-1) digest, or the 4-byte crypto-NAK (key id 0,
/// no digest). Kept apart from extension fields.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Mac {
    key_id: u32,
    digest: [u8; 20],
    digest_len: u8,
}

impl Mac {
    /// A MAC with a digest of 16 or 20 bytes.
    ///
    /// # Errors
    /// [`EncodeError::BadDigestLength`] for other digest lengths.
    pub fn new(key_id: u32, digest: &[u8]) -> Result<Self, EncodeError> {
        let len = digest.len();
        if len != 16 && len != 20 {
            return Err(EncodeError::BadDigestLength { len });
        }
        let mut buf = [0; 20];
        for (dst, src) in buf.iter_mut().zip(digest) {
            *dst = *src;
        }
        Ok(Self {
            key_id,
            digest: buf,
            digest_len: len as u8,
        })
    }

    /// The crypto-NAK: four zero bytes, telling the client its MAC failed.
    pub const fn crypto_nak() -> Self {
        Self {
            key_id: 0,
            digest: [0; 20],
            digest_len: 0,
        }
    }

    /// The key id.
    pub const fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The digest (empty for a crypto-NAK).
    pub fn digest(&self) -> &[u8] {
        self.digest
            .get(..usize::from(self.digest_len))
            .unwrap_or(&[])
    }

    /// Whether this is the crypto-NAK.
    pub const fn is_crypto_nak(&self) -> bool {
        self.digest_len == 0
    }

    /// Bytes on the wire: 4, 20 or 24.
    pub const fn encoded_len(&self) -> usize {
        4 + self.digest_len as usize
    }

    /// Writes the trailer.
    ///
    /// # Panics
    /// If `buf` has too little room (a `Vec` grows).
    pub fn emit(&self, buf: &mut impl BufMut) {
        buf.put_u32(self.key_id);
        buf.put_slice(self.digest());
    }

    fn parse(bytes: &[u8]) -> Option<Self> {
        let (key_id, digest) = bytes.split_first_chunk::<4>()?;
        let key_id = u32::from_be_bytes(*key_id);
        if digest.is_empty() {
            return (key_id == 0).then(Self::crypto_nak);
        }
        Self::new(key_id, digest).ok()
    }
}

/// One item of what follows the header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TrailerItem<'a> {
    /// An extension field.
    ExtensionField(RawExtensionField<'a>),
    /// The MAC (or crypto-NAK) that ends the packet.
    Mac(Mac),
}

/// Walks everything after the 48-byte header: extension fields, then an
/// optional MAC (RFC 7822 §7.5; rules in the module docs). Yields an error
/// at most once, then stops.
///
/// For versions below 4 no extension fields exist: only a MAC or nothing may
/// follow the header.
#[derive(Clone, Debug)]
pub struct TrailerWalker<'a> {
    packet: &'a [u8],
    pos: usize,
    version: Version,
    done: bool,
}

impl<'a> TrailerWalker<'a> {
    /// A walker over `packet`, starting at `start` (48 for a whole packet).
    pub const fn new(packet: &'a [u8], start: usize, version: Version) -> Self {
        Self {
            packet,
            pos: start,
            version,
            done: false,
        }
    }

    /// Offset of the next unread byte.
    pub const fn position(&self) -> usize {
        self.pos
    }

    fn step(&mut self) -> Result<Option<TrailerItem<'a>>, ParseError> {
        let rest = self.packet.get(self.pos..).unwrap_or(&[]);
        let offset = self.pos;
        let bad_trailer = ParseError::BadTrailer {
            offset,
            len: rest.len(),
        };
        match rest.len() {
            0 => return Ok(None),
            CRYPTO_NAK_LEN | MIN_MAC_LEN..=MAX_MAC_LEN => {
                let mac = Mac::parse(rest).ok_or(bad_trailer)?;
                self.pos = self.packet.len();
                self.done = true;
                return Ok(Some(TrailerItem::Mac(mac)));
            }
            _ if self.version < Version::V4 => return Err(bad_trailer),
            _ => {}
        }
        let field = read_field(rest, offset, MIN_FIELD_LEN)?;
        self.pos += field.length();
        Ok(Some(TrailerItem::ExtensionField(field)))
    }
}

impl<'a> Iterator for TrailerWalker<'a> {
    type Item = Result<TrailerItem<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.step();
        if !matches!(item, Ok(Some(TrailerItem::ExtensionField(_)))) {
            self.done = true;
        }
        item.transpose()
    }
}

/// Walks the extension fields inside decrypted NTS plaintext (RFC 8915 §5.6):
/// each a multiple of 4 and at least its 4-byte header; no MAC. Offsets are
/// relative to the plaintext. Yields an error at most once, then stops.
#[derive(Clone, Debug)]
pub struct InnerFieldWalker<'a> {
    plaintext: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> InnerFieldWalker<'a> {
    /// A walker over decrypted plaintext.
    pub const fn new(plaintext: &'a [u8]) -> Self {
        Self {
            plaintext,
            pos: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for InnerFieldWalker<'a> {
    type Item = Result<RawExtensionField<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.plaintext.get(self.pos..).unwrap_or(&[]);
        if self.done || rest.is_empty() {
            return None;
        }
        match read_field(rest, self.pos, FIELD_HEADER_LEN) {
            Ok(field) => {
                self.pos += field.length();
                Some(Ok(field))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Reads one field at the start of `rest` (which begins at `offset`).
pub(crate) fn read_field(
    rest: &[u8],
    offset: usize,
    minimum: usize,
) -> Result<RawExtensionField<'_>, ParseError> {
    let err = |kind| ParseError::ExtensionField { offset, kind };
    let Some((head, _)) = rest.split_first_chunk::<FIELD_HEADER_LEN>() else {
        return Err(err(ExtensionFieldError::Truncated {
            available: rest.len(),
        }));
    };
    let field_type = ExtensionFieldType(u16::from_be_bytes([head[0], head[1]]));
    let length = usize::from(u16::from_be_bytes([head[2], head[3]]));
    if length < minimum {
        return Err(err(ExtensionFieldError::TooShort { length, minimum }));
    }
    if length % 4 != 0 {
        return Err(err(ExtensionFieldError::Unaligned { length }));
    }
    let body = rest
        .get(FIELD_HEADER_LEN..length)
        .ok_or(err(ExtensionFieldError::PastEnd {
            length,
            available: rest.len(),
        }))?;
    Ok(RawExtensionField {
        field_type,
        body,
        offset,
    })
}

/// `n` rounded up to a multiple of 4.
pub(crate) const fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// An owned extension field, for building packets.
///
/// The body is kept exactly as given (a parsed field keeps its padding, so it
/// re-emits byte for byte); on output it is zero-padded to a multiple of 4 and
/// to the minimum length that applies where it is placed.
#[cfg(feature = "alloc")]
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct ExtensionField {
    field_type: ExtensionFieldType,
    body: Vec<u8>,
}

#[cfg(feature = "alloc")]
impl ExtensionField {
    /// A field of any type.
    ///
    /// # Errors
    /// [`EncodeError::FieldTooLong`] if the field would exceed 65532 bytes.
    pub fn new(field_type: ExtensionFieldType, body: Vec<u8>) -> Result<Self, EncodeError> {
        let len = FIELD_HEADER_LEN + pad4(body.len());
        if len > MAX_FIELD_LEN {
            return Err(EncodeError::FieldTooLong { len });
        }
        Ok(Self { field_type, body })
    }

    /// A Unique Identifier field (RFC 8915 §5.3).
    ///
    /// # Errors
    /// [`EncodeError::FieldTooLong`] for an identifier over 65528 bytes.
    pub fn unique_identifier(uid: &[u8]) -> Result<Self, EncodeError> {
        Self::new(ExtensionFieldType::UNIQUE_IDENTIFIER, uid.to_vec())
    }

    /// An NTS Cookie field (RFC 8915 §5.4).
    ///
    /// # Errors
    /// [`EncodeError::FieldTooLong`] for a cookie over 65528 bytes.
    pub fn nts_cookie(cookie: &[u8]) -> Result<Self, EncodeError> {
        Self::new(ExtensionFieldType::NTS_COOKIE, cookie.to_vec())
    }

    /// An NTS Cookie Placeholder of `len` zero bytes, `len` being the length
    /// of the cookies the client holds (RFC 8915 §5.5).
    ///
    /// # Errors
    /// [`EncodeError::FieldTooLong`] for a length over 65528.
    pub fn nts_cookie_placeholder(len: usize) -> Result<Self, EncodeError> {
        if len > MAX_FIELD_LEN {
            return Err(EncodeError::FieldTooLong { len });
        }
        Self::new(
            ExtensionFieldType::NTS_COOKIE_PLACEHOLDER,
            alloc::vec![0; len],
        )
    }

    /// An NTS Authenticator and Encrypted Extension Fields field
    /// (RFC 8915 §5.6) with `additional_padding` zero bytes after the
    /// ciphertext (rounded up to a multiple of 4).
    ///
    /// # Errors
    /// [`EncodeError::FieldTooLong`] if nonce, ciphertext and padding exceed
    /// the field's maximum length.
    pub fn nts_authenticator(
        nonce: &[u8],
        ciphertext: &[u8],
        additional_padding: usize,
    ) -> Result<Self, EncodeError> {
        let body_len =
            NtsAuthenticator::body_len(nonce.len(), ciphertext.len(), additional_padding);
        let too_long = EncodeError::FieldTooLong {
            len: body_len.saturating_add(FIELD_HEADER_LEN),
        };
        let (Ok(nonce_len), Ok(ciphertext_len)) =
            (u16::try_from(nonce.len()), u16::try_from(ciphertext.len()))
        else {
            return Err(too_long);
        };
        if body_len + FIELD_HEADER_LEN > MAX_FIELD_LEN {
            return Err(too_long);
        }
        let mut body = Vec::with_capacity(body_len);
        body.put_u16(nonce_len);
        body.put_u16(ciphertext_len);
        body.put_slice(nonce);
        body.put_bytes(0, pad4(nonce.len()) - nonce.len());
        body.put_slice(ciphertext);
        body.resize(body_len, 0);
        Self::new(ExtensionFieldType::NTS_AUTHENTICATOR, body)
    }

    /// The field type.
    pub const fn field_type(&self) -> ExtensionFieldType {
        self.field_type
    }

    /// The body as stored (without the padding `emit` may add).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The field viewed as if received at `offset`.
    pub fn as_raw(&self, offset: usize) -> RawExtensionField<'_> {
        RawExtensionField {
            field_type: self.field_type,
            body: &self.body,
            offset,
        }
    }

    /// Bytes on the wire with the minimum length `minimum` (16 for a field in
    /// a packet, 28 for the last field when no MAC follows, 4 for a field
    /// inside NTS ciphertext).
    pub fn encoded_len(&self, minimum: usize) -> usize {
        (FIELD_HEADER_LEN + pad4(self.body.len())).max(pad4(minimum.min(MAX_FIELD_LEN)))
    }

    /// Writes the field, zero-padded to [`ExtensionField::encoded_len`] for
    /// the same `minimum`.
    ///
    /// # Panics
    /// If `buf` has too little room (a `Vec` grows).
    pub fn emit(&self, buf: &mut impl BufMut, minimum: usize) {
        let len = self.encoded_len(minimum);
        buf.put_u16(self.field_type.0);
        // `new` bounds the padded body and `encoded_len` clamps `minimum`, so
        // `len` is at most 65532 and the fallback is never taken.
        buf.put_u16(u16::try_from(len).unwrap_or(0xFFFC));
        buf.put_slice(&self.body);
        buf.put_bytes(0, len - FIELD_HEADER_LEN - self.body.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    fn fields(bytes: &[u8]) -> Result<Vec<TrailerItem<'_>>, ParseError> {
        TrailerWalker::new(bytes, 0, Version::V4).collect()
    }

    #[test]
    fn walk_fields_then_mac() {
        let mut b = Vec::new();
        b.extend_from_slice(&hex!("0104 0010 000102030405060708090a0b"));
        b.extend_from_slice(&hex!("00000007 00112233445566778899aabbccddeeff"));
        let items = fields(&b).unwrap();
        assert_eq!(items.len(), 2);
        let TrailerItem::ExtensionField(f) = items[0] else {
            panic!()
        };
        assert_eq!(f.field_type, ExtensionFieldType::UNIQUE_IDENTIFIER);
        assert_eq!(f.length(), 16);
        assert_eq!(f.offset, 0);
        let TrailerItem::Mac(m) = items[1] else {
            panic!()
        };
        assert_eq!(m.key_id(), 7);
        assert_eq!(m.digest().len(), 16);
    }

    #[test]
    fn crypto_nak_and_bad_short_trailers() {
        assert_eq!(
            fields(&[0, 0, 0, 0]).unwrap(),
            [TrailerItem::Mac(Mac::crypto_nak())]
        );
        assert_eq!(
            fields(&[0, 0, 0, 1]),
            Err(ParseError::BadTrailer { offset: 0, len: 4 })
        );
        // 8 bytes: too short for a field, wrong size for a MAC.
        assert_eq!(
            fields(&hex!("0104 0008 00000000")),
            Err(ParseError::ExtensionField {
                offset: 0,
                kind: ExtensionFieldError::TooShort {
                    length: 8,
                    minimum: 16
                }
            })
        );
    }

    #[test]
    fn bad_lengths_name_the_offset() {
        let mut b = hex!("0104 0010 000102030405060708090a0b 0204 0011 0000000000000000000000000000000000000000000000000000000000000000").to_vec();
        assert_eq!(
            fields(&b),
            Err(ParseError::ExtensionField {
                offset: 16,
                kind: ExtensionFieldError::Unaligned { length: 17 }
            })
        );
        b[19] = 0x40; // length 64, past the end
        assert_eq!(
            fields(&b),
            Err(ParseError::ExtensionField {
                offset: 16,
                kind: ExtensionFieldError::PastEnd {
                    length: 64,
                    available: 36
                }
            })
        );
    }

    #[test]
    fn v3_allows_only_a_mac() {
        let f = hex!("0104 0010 000102030405060708090a0b 0104 0010 000102030405060708090a0b");
        let r: Result<Vec<_>, _> = TrailerWalker::new(&f, 0, Version::V3).collect();
        assert_eq!(r, Err(ParseError::BadTrailer { offset: 0, len: 32 }));
    }

    #[test]
    fn inner_fields_may_be_short() {
        let pt = hex!("0204 0008 aabbccdd 1234 0004");
        let v: Vec<_> = InnerFieldWalker::new(&pt)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].body, hex!("aabbccdd"));
        assert_eq!(v[1].offset, 8);
        assert!(v[1].body.is_empty());
        let bad = hex!("0204 0002");
        assert!(InnerFieldWalker::new(&bad).next().unwrap().is_err());
    }

    #[test]
    fn authenticator_construct_and_deconstruct() {
        let nonce = [7u8; 16];
        let ct = [9u8; 17];
        let f = ExtensionField::nts_authenticator(&nonce, &ct, 5).unwrap();
        // 4 + 16 + 20 + 8 body bytes.
        assert_eq!(f.body().len(), 48);
        let Some(NtsField::Authenticator(a)) = f.as_raw(0).nts().unwrap() else {
            panic!()
        };
        assert_eq!(a.nonce, nonce);
        assert_eq!(a.ciphertext, ct);
        assert_eq!(a.additional_padding, 8);
        let mut overflow = f.body().to_vec();
        overflow[3] = 200;
        assert_eq!(
            NtsAuthenticator::parse(&overflow),
            Err(NtsFieldError::AuthenticatorOverflow {
                nonce_len: 16,
                ciphertext_len: 200,
                body_len: 48
            })
        );
        assert_eq!(
            NtsAuthenticator::parse(&[0, 1]),
            Err(NtsFieldError::AuthenticatorTooShort { len: 2 })
        );
    }

    #[test]
    fn emit_pads_to_the_minimum_that_applies() {
        let f = ExtensionField::new(ExtensionFieldType(0xF001), vec![1, 2, 3, 4, 5]).unwrap();
        for (min, len) in [(4, 12), (MIN_FIELD_LEN, 16), (MIN_LAST_FIELD_LEN, 28)] {
            let mut out = Vec::new();
            f.emit(&mut out, min);
            assert_eq!(out.len(), len);
            assert_eq!(f.encoded_len(min), len);
            assert_eq!(&out[..4], &[0xF0, 0x01, 0, len as u8]);
        }
        assert_eq!(
            ExtensionField::new(ExtensionFieldType(1), vec![0; 65_529]),
            Err(EncodeError::FieldTooLong { len: 65_536 })
        );
        assert!(ExtensionField::new(ExtensionFieldType(1), vec![0; 65_528]).is_ok());
    }
}
