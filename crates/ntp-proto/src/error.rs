//! Errors of the codec. Every error says what is wrong and, through
//! [`ParseError::offset`], at which byte of the input.

use crate::header::Mode;

/// Why bytes are not an acceptable NTP packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Fewer than the 48 bytes of the header.
    #[error("packet is {len} bytes, shorter than the 48-byte NTP header")]
    TooShort {
        /// The input length.
        len: usize,
    },
    /// The length is not a multiple of 4 (RFC 7822 §3; chrony drops these too).
    #[error("packet length {len} is not a multiple of 4")]
    UnalignedLength {
        /// The input length.
        len: usize,
    },
    /// The version field is not 1–4 (0 is invalid, 5 is NTPv5, a different format).
    #[error("version {version} is not NTP version 1 to 4")]
    UnsupportedVersion {
        /// The version bits.
        version: u8,
    },
    /// Control (6) and private (7) messages do not use the RFC 5905 header.
    #[error("mode {} ({mode}) messages do not use the NTP header format", .mode.to_bits())]
    UnsupportedMode {
        /// The mode.
        mode: Mode,
    },
    /// An extension field whose length field is unusable.
    #[error("extension field at byte {offset}: {kind}")]
    ExtensionField {
        /// Offset of the field's first byte in the input.
        offset: usize,
        /// What is wrong with it.
        kind: ExtensionFieldError,
    },
    /// Bytes after the header and extension fields that are neither a MAC nor
    /// a crypto-NAK (RFC 7822 §7.5.1).
    #[error("{len} bytes at byte {offset} are neither an extension field nor a MAC")]
    BadTrailer {
        /// Offset of the first unexplained byte.
        offset: usize,
        /// How many bytes remain.
        len: usize,
    },
    /// An NTS extension field whose contents do not match its type (RFC 8915 §5).
    #[error("NTS extension field at byte {offset}: {kind}")]
    NtsField {
        /// Offset of the field's first byte in the input.
        offset: usize,
        /// What is wrong with it.
        kind: NtsFieldError,
    },
}

impl ParseError {
    /// The byte offset in the input where the problem is.
    pub const fn offset(&self) -> usize {
        match *self {
            Self::TooShort { len } | Self::UnalignedLength { len } => len,
            Self::UnsupportedVersion { .. } | Self::UnsupportedMode { .. } => 0,
            Self::ExtensionField { offset, .. }
            | Self::BadTrailer { offset, .. }
            | Self::NtsField { offset, .. } => offset,
        }
    }
}

/// What is wrong with an extension field's framing (RFC 7822 §3).
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtensionFieldError {
    /// Fewer than 4 bytes left for the type and length.
    #[error("only {available} bytes left, too few for a field header")]
    Truncated {
        /// Bytes left in the input.
        available: usize,
    },
    /// The length is below the minimum (16 in a packet, 4 inside NTS ciphertext).
    #[error("length {length} is below the minimum of {minimum}")]
    TooShort {
        /// The length field.
        length: usize,
        /// The minimum that applies.
        minimum: usize,
    },
    /// The length is not a multiple of 4.
    #[error("length {length} is not a multiple of 4")]
    Unaligned {
        /// The length field.
        length: usize,
    },
    /// The length runs past the end of the input.
    #[error("length {length} runs past the end ({available} bytes left)")]
    PastEnd {
        /// The length field.
        length: usize,
        /// Bytes left in the input.
        available: usize,
    },
}

/// What is wrong inside an NTS extension field (RFC 8915 §5.3–5.6).
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NtsFieldError {
    /// The authenticator body is shorter than its two length fields.
    #[error("authenticator body of {len} bytes has no room for its length fields")]
    AuthenticatorTooShort {
        /// Body length.
        len: usize,
    },
    /// Nonce and ciphertext (each padded to 4) do not fit in the field.
    #[error(
        "nonce of {nonce_len} and ciphertext of {ciphertext_len} bytes do not fit in a {body_len}-byte body"
    )]
    AuthenticatorOverflow {
        /// The nonce length field.
        nonce_len: usize,
        /// The ciphertext length field.
        ciphertext_len: usize,
        /// The field body length.
        body_len: usize,
    },
}

/// The output buffer is too small for what is being written.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[error("buffer of {available} bytes is too small, {needed} needed")]
pub struct BufferTooSmall {
    /// Bytes the encoding needs.
    pub needed: usize,
    /// Bytes the buffer has.
    pub available: usize,
}

/// A value that cannot be encoded.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// An extension field would exceed the 65532-byte maximum length.
    #[error("extension field of {len} bytes exceeds the 65532-byte maximum")]
    FieldTooLong {
        /// The length it would have.
        len: usize,
    },
    /// A MAC digest must be 16 (MD5, AES-CMAC) or 20 (SHA-1) bytes.
    #[error("MAC digest of {len} bytes is neither 16 nor 20")]
    BadDigestLength {
        /// The digest length given.
        len: usize,
    },
}
