//! Whole packets: a checked zero-copy view ([`PacketView`]) and an owned
//! representation ([`Packet`]).

use crate::error::ParseError;
use crate::extension::{
    ExtensionFieldType, MIN_FIELD_LEN, NtsAuthenticator, RawExtensionField, TrailerItem,
    TrailerWalker, read_field,
};
use crate::header::{HEADER_LEN, Header};

#[cfg(not(feature = "alloc"))]
use crate::extension::Mac;
#[cfg(feature = "alloc")]
use {
    crate::error::BufferTooSmall,
    crate::extension::{ExtensionField, MIN_LAST_FIELD_LEN, Mac},
    alloc::vec::Vec,
    bytes::BufMut,
};

/// A received packet, checked once and then read in place.
///
/// [`PacketView::new`] validates everything: header version and mode, the
/// length, every extension field's framing and the MAC trailer. After that no
/// accessor can fail or panic, and nothing is copied but the 48-byte header.
///
/// ```
/// use ntp_proto::{Header, PacketView};
///
/// let bytes = Header::client_request(6, 0x0123_4567_89ab_cdef).to_bytes();
/// let view = PacketView::new(&bytes)?;
/// assert_eq!(view.header().transmit_timestamp.to_bits(), 0x0123_4567_89ab_cdef);
/// assert_eq!(view.extension_fields().count(), 0);
/// assert!(view.mac().is_none());
/// # Ok::<(), ntp_proto::ParseError>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct PacketView<'a> {
    bytes: &'a [u8],
    header: Header,
    fields_end: usize,
    mac: Option<Mac>,
}

impl<'a> PacketView<'a> {
    /// Checks `bytes` (one UDP payload) and returns a view of it.
    ///
    /// # Errors
    /// The first problem found, with its byte offset: see [`ParseError`].
    pub fn new(bytes: &'a [u8]) -> Result<Self, ParseError> {
        let header = Header::parse(bytes)?;
        if bytes.len() % 4 != 0 {
            return Err(ParseError::UnalignedLength { len: bytes.len() });
        }
        let mut walker = TrailerWalker::new(bytes, HEADER_LEN, header.version);
        let mut fields_end = HEADER_LEN;
        let mut mac = None;
        for item in walker.by_ref() {
            match item? {
                TrailerItem::ExtensionField(f) => fields_end = f.offset + f.length(),
                TrailerItem::Mac(m) => mac = Some(m),
            }
        }
        Ok(Self {
            bytes,
            header,
            fields_end,
            mac,
        })
    }

    /// The parsed header.
    pub const fn header(&self) -> &Header {
        &self.header
    }

    /// The whole packet.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The extension fields in wire order.
    pub fn extension_fields(&self) -> ExtensionFields<'a> {
        ExtensionFields::new(
            self.bytes.get(..self.fields_end).unwrap_or(self.bytes),
            HEADER_LEN,
        )
    }

    /// The MAC trailer or crypto-NAK, if any.
    pub const fn mac(&self) -> Option<Mac> {
        self.mac
    }

    /// Splits an NTS packet into what the authenticator covers and the
    /// authenticator itself (RFC 8915 §5.6), so a key can verify the packet
    /// without re-encoding anything. `None` if there is no authenticator.
    ///
    /// The first authenticator field counts. Fields after it are not covered;
    /// RFC 8915 says to discard them, and [`NtsProtectedParts::trailing_fields`]
    /// lets a strict receiver reject the packet instead.
    ///
    /// # Errors
    /// [`ParseError::NtsField`] if the authenticator's lengths do not fit.
    pub fn nts_protected_parts(&self) -> Result<Option<NtsProtectedParts<'a>>, ParseError> {
        let Some(field) = self
            .extension_fields()
            .find(|f| f.field_type == ExtensionFieldType::NTS_AUTHENTICATOR)
        else {
            return Ok(None);
        };
        let authenticator =
            NtsAuthenticator::parse(field.body).map_err(|kind| ParseError::NtsField {
                offset: field.offset,
                kind,
            })?;
        let end = field.offset + field.length();
        Ok(Some(NtsProtectedParts {
            associated_data: self.bytes.get(..field.offset).unwrap_or(&[]),
            authenticator,
            authenticator_offset: field.offset,
            trailing: ExtensionFields::new(self.bytes.get(..self.fields_end).unwrap_or(&[]), end),
        }))
    }
}

/// The parts of an NTS-protected packet, as [`PacketView::nts_protected_parts`]
/// returns them.
#[derive(Clone, Debug)]
pub struct NtsProtectedParts<'a> {
    /// Bytes from the packet start to the authenticator field: the AEAD's
    /// associated data.
    pub associated_data: &'a [u8],
    /// The authenticator's nonce and ciphertext.
    pub authenticator: NtsAuthenticator<'a>,
    /// Offset of the authenticator field in the packet.
    pub authenticator_offset: usize,
    trailing: ExtensionFields<'a>,
}

impl<'a> NtsProtectedParts<'a> {
    /// The extension fields the authenticator covers (those before it).
    pub fn covered_fields(&self) -> ExtensionFields<'a> {
        ExtensionFields::new(self.associated_data, HEADER_LEN)
    }

    /// Extension fields after the authenticator: not authenticated.
    pub fn trailing_fields(&self) -> ExtensionFields<'a> {
        self.trailing.clone()
    }
}

/// Iterator over the extension fields of a checked packet.
///
/// Built only over ranges [`PacketView::new`] has validated, so it never
/// meets an error; should it, it stops.
#[derive(Clone, Debug)]
pub struct ExtensionFields<'a> {
    /// The packet up to the end of the last field to yield.
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> ExtensionFields<'a> {
    fn new(bytes: &'a [u8], start: usize) -> Self {
        Self { bytes, pos: start }
    }
}

impl<'a> Iterator for ExtensionFields<'a> {
    type Item = RawExtensionField<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        // Only fields here: the MAC-size rule of the trailer walk must not be
        // applied again to a range that ends before the MAC.
        let rest = self.bytes.get(self.pos..)?;
        if rest.is_empty() {
            return None;
        }
        let field = read_field(rest, self.pos, MIN_FIELD_LEN).ok()?;
        self.pos += field.length();
        Some(field)
    }
}

/// An owned NTP packet: header, extension fields and optional MAC.
///
/// `emit` writes RFC-conformant output: every field padded to a multiple of 4
/// and to at least 16 bytes, and the last one to at least 28 when no MAC
/// follows (RFC 7822 §7.5.1.4) or when the trailer is a crypto-NAK (so the
/// output cannot be misread as a MAC). A packet parsed from conformant bytes
/// emits the same bytes.
///
/// ```
/// use ntp_proto::{ExtensionField, Header, Packet};
///
/// let packet = Packet {
///     header: Header::client_request(6, 42),
///     extension_fields: vec![ExtensionField::unique_identifier(&[0xAB; 32])?],
///     mac: None,
/// };
/// let bytes = packet.to_vec();
/// assert_eq!(bytes.len(), packet.encoded_len());
/// assert_eq!(Packet::parse(&bytes)?, packet);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(feature = "alloc")]
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Packet {
    /// The header.
    pub header: Header,
    /// Extension fields in wire order.
    pub extension_fields: Vec<ExtensionField>,
    /// The legacy MAC or crypto-NAK.
    pub mac: Option<Mac>,
}

#[cfg(feature = "alloc")]
impl Packet {
    /// A packet with just a header.
    pub const fn from_header(header: Header) -> Self {
        Self {
            header,
            extension_fields: Vec::new(),
            mac: None,
        }
    }

    /// Parses and copies a packet.
    ///
    /// # Errors
    /// As [`PacketView::new`].
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        PacketView::new(bytes).map(|v| Self::from_view(&v))
    }

    /// Copies a checked view.
    pub fn from_view(view: &PacketView<'_>) -> Self {
        Self {
            header: *view.header(),
            extension_fields: view
                .extension_fields()
                .map(|f| f.to_owned_field())
                .collect(),
            mac: view.mac(),
        }
    }

    /// The minimum length of field `index`: 28 for the last field when no MAC
    /// follows (RFC 7822 §7.5.1.4), and also when a crypto-NAK follows,
    /// because a 16- or 20-byte field plus the 4-byte NAK would read back as
    /// a 20–24 byte MAC; 16 otherwise.
    fn field_minimum(&self, index: usize) -> usize {
        let last = index + 1 == self.extension_fields.len();
        if last && self.mac.is_none_or(|m| m.is_crypto_nak()) {
            MIN_LAST_FIELD_LEN
        } else {
            MIN_FIELD_LEN
        }
    }

    /// Bytes `emit` writes.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN
            + self
                .extension_fields
                .iter()
                .enumerate()
                .map(|(i, f)| f.encoded_len(self.field_minimum(i)))
                .sum::<usize>()
            + self.mac.map_or(0, |m| m.encoded_len())
    }

    /// Writes the packet.
    ///
    /// # Panics
    /// If `buf` has too little room (a `Vec` grows; use
    /// [`Packet::emit_to_slice`] for a fixed buffer).
    pub fn emit(&self, buf: &mut impl BufMut) {
        self.header.emit(buf);
        for (i, field) in self.extension_fields.iter().enumerate() {
            field.emit(buf, self.field_minimum(i));
        }
        if let Some(mac) = self.mac {
            mac.emit(buf);
        }
    }

    /// Writes the packet to the start of `buf` and returns its length.
    ///
    /// # Errors
    /// [`BufferTooSmall`] if it does not fit.
    pub fn emit_to_slice(&self, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let needed = self.encoded_len();
        let available = buf.len();
        let mut dst = buf
            .get_mut(..needed)
            .ok_or(BufferTooSmall { needed, available })?;
        self.emit(&mut dst);
        Ok(needed)
    }

    /// The packet as a new `Vec`.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.emit(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ExtensionFieldError;
    use crate::extension::NtsField;
    use hex_literal::hex;

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

    #[test]
    fn deconstruct_ntpdrs_nts_request() {
        let view = PacketView::new(&NTPDRS_REQUEST).unwrap();
        let fields: Vec<_> = view.extension_fields().collect();
        let layout: Vec<_> = fields
            .iter()
            .map(|f| (f.field_type.0, f.offset, f.length()))
            .collect();
        assert_eq!(
            layout,
            [(0x0104, 48, 36), (0x0204, 84, 172), (0x0404, 256, 40)]
        );
        assert!(matches!(fields[1].nts().unwrap(), Some(NtsField::Cookie(c)) if c.len() == 168));
        let parts = view.nts_protected_parts().unwrap().unwrap();
        assert_eq!(parts.associated_data, &NTPDRS_REQUEST[..256]);
        assert_eq!(parts.authenticator_offset, 256);
        assert_eq!(
            parts.authenticator.nonce,
            hex!("ce89ee973442bc0f43aace4999bdf58e")
        );
        assert_eq!(parts.authenticator.ciphertext.len(), 16);
        assert_eq!(parts.authenticator.additional_padding, 0);
        assert_eq!(parts.covered_fields().count(), 2);
        assert_eq!(parts.trailing_fields().count(), 0);
        assert_eq!(
            Packet::parse(&NTPDRS_REQUEST).unwrap().to_vec(),
            NTPDRS_REQUEST
        );
    }

    #[test]
    fn fields_after_the_authenticator_are_not_covered() {
        let mut p = Packet::parse(&NTPDRS_REQUEST).unwrap();
        p.extension_fields
            .push(ExtensionField::new(ExtensionFieldType(0xF00F), vec![1; 24]).unwrap());
        let bytes = p.to_vec();
        let view = PacketView::new(&bytes).unwrap();
        let parts = view.nts_protected_parts().unwrap().unwrap();
        assert_eq!(parts.associated_data, &NTPDRS_REQUEST[..256]);
        let trailing: Vec<_> = parts.trailing_fields().collect();
        assert_eq!(trailing.len(), 1);
        assert_eq!(trailing[0].offset, 296);
        assert_eq!(trailing[0].field_type, ExtensionFieldType(0xF00F));
    }

    #[test]
    fn no_authenticator_means_no_parts() {
        let bytes = Header::client_request(6, 1).to_bytes();
        assert!(
            PacketView::new(&bytes)
                .unwrap()
                .nts_protected_parts()
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn last_field_without_mac_is_padded_to_28() {
        let p = Packet {
            header: Header::client_request(6, 1),
            extension_fields: vec![
                ExtensionField::new(ExtensionFieldType(0xF000), vec![]).unwrap(),
                ExtensionField::new(ExtensionFieldType(0xF001), vec![]).unwrap(),
            ],
            mac: None,
        };
        let bytes = p.to_vec();
        assert_eq!(bytes.len(), 48 + 16 + 28);
        assert_eq!(p.encoded_len(), bytes.len());
        let with_mac = Packet {
            mac: Some(Mac::new(1, &[0; 20]).unwrap()),
            ..p.clone()
        };
        assert_eq!(with_mac.to_vec().len(), 48 + 16 + 16 + 24);
        assert_eq!(Packet::parse(&with_mac.to_vec()).unwrap(), {
            let mut q = with_mac.clone();
            for f in &mut q.extension_fields {
                *f = ExtensionField::new(f.field_type(), vec![0; 12]).unwrap();
            }
            q
        });
    }

    #[test]
    fn view_rejects_with_offsets() {
        let mut bytes = NTPDRS_REQUEST.to_vec();
        assert_eq!(
            PacketView::new(&bytes[..50]).unwrap_err(),
            ParseError::UnalignedLength { len: 50 }
        );
        bytes[86] = 0x00;
        bytes[87] = 0xae; // cookie length 174: unaligned
        let err = PacketView::new(&bytes).unwrap_err();
        assert_eq!(
            err,
            ParseError::ExtensionField {
                offset: 84,
                kind: ExtensionFieldError::Unaligned { length: 174 }
            }
        );
        assert_eq!(err.offset(), 84);
    }

    #[test]
    fn emit_to_slice_checks_room() {
        let p = Packet::parse(&NTPDRS_REQUEST).unwrap();
        let mut small = [0u8; 100];
        assert_eq!(
            p.emit_to_slice(&mut small),
            Err(BufferTooSmall {
                needed: 296,
                available: 100
            })
        );
        let mut big = [0u8; 400];
        assert_eq!(p.emit_to_slice(&mut big), Ok(296));
        assert_eq!(big[..296], NTPDRS_REQUEST);
    }
}
