//! Per-client keys and the server cookie format (RFC 8915 §6).
//!
//! A cookie is opaque to the client. Ours follows ntpd-rs:
//!
//! ```text
//! offset  len  field
//!      0    4  key_id      u32 BE, names the master key (see `KeySet`)
//!      4    2  ct_len      u16 BE, length of the rest after the nonce
//!      6   16  nonce       random
//!     22  ...  ciphertext  AES-SIV-CMAC-256 under the master key:
//!                          tag(16) ‖ E(aead_id u16 BE ‖ S2C ‖ C2S)
//! ```
//!
//! The associated data is the 4-byte key id, so a ciphertext cannot be replayed under
//! another key id. The total is `40 + 2 · key_len`: 104 bytes for AEAD 15, 168 for
//! AEAD 17 and 72 for AEAD 30 — all multiples of 4, so no padding is needed.
//!
//! The master key is used in its expanded form (`MasterCipher`, built once per key
//! by the `KeySet`), so sealing and opening a cookie expand no key. The bytes are
//! exactly what `AeadKey::seal` with AEAD 15 produces (S2V over the key id, the nonce
//! and the plaintext), so cookies from earlier versions open unchanged.

use alloc::vec::Vec;

use aes::Aes128Enc;
use zeroize::Zeroize;

use crate::aead::{AeadAlgorithm, AeadKey, KeyLengthError, TAG_LEN};
use crate::siv::SivKey;

/// A master key, expanded once: AES-SIV-CMAC-256 (two AES-128 halves).
pub(crate) type MasterCipher = SivKey<Aes128Enc>;

/// Length of the random nonce inside a cookie.
pub const COOKIE_NONCE_LEN: usize = 16;

/// Length of the plaintext cookie header: key id (4), ciphertext length (2), nonce (16).
pub const COOKIE_HEADER_LEN: usize = 4 + 2 + COOKIE_NONCE_LEN;

/// Shortest input [`crate::KeySet::open_cookie`] looks at: the header, the tag and the
/// AEAD ID (no keys).
pub const MIN_COOKIE_LEN: usize = COOKIE_HEADER_LEN + TAG_LEN + 2;

/// Longest cookie this crate produces or accepts (AEAD 17: 168 bytes), within NTPsec's
/// 192-byte limit.
pub const MAX_COOKIE_LEN: usize = cookie_len(AeadAlgorithm::AesSivCmac512);

/// The length of a cookie holding keys for `algorithm`: `40 + 2 · key_len`.
#[must_use]
pub const fn cookie_len(algorithm: AeadAlgorithm) -> usize {
    COOKIE_HEADER_LEN + TAG_LEN + 2 + 2 * algorithm.key_len()
}

/// The two keys of one NTS association, as the NTS-KE exporter produced them
/// (RFC 8915 §5.1): C2S protects requests, S2C protects responses.
///
/// Both keys always belong to [`CookieKeys::algorithm`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieKeys {
    algorithm: AeadAlgorithm,
    c2s: AeadKey,
    s2c: AeadKey,
}

impl CookieKeys {
    /// Builds the key pair from raw exporter output.
    ///
    /// # Errors
    /// [`KeyLengthError`] if either key is not `algorithm.key_len()` bytes long.
    pub fn new(algorithm: AeadAlgorithm, c2s: &[u8], s2c: &[u8]) -> Result<Self, KeyLengthError> {
        Ok(Self {
            algorithm,
            c2s: AeadKey::new(algorithm, c2s)?,
            s2c: AeadKey::new(algorithm, s2c)?,
        })
    }

    /// Random keys, for tests and benchmarks.
    pub fn generate<R: rand_core::CryptoRng + ?Sized>(
        algorithm: AeadAlgorithm,
        rng: &mut R,
    ) -> Self {
        Self {
            algorithm,
            c2s: AeadKey::generate(algorithm, rng),
            s2c: AeadKey::generate(algorithm, rng),
        }
    }

    /// The negotiated AEAD algorithm.
    #[must_use]
    pub fn algorithm(&self) -> AeadAlgorithm {
        self.algorithm
    }

    /// The client-to-server key (protects requests).
    #[must_use]
    pub fn c2s(&self) -> &AeadKey {
        &self.c2s
    }

    /// The server-to-client key (protects responses).
    #[must_use]
    pub fn s2c(&self) -> &AeadKey {
        &self.s2c
    }

    /// The cookie plaintext: `aead_id ‖ S2C ‖ C2S`, preceded by `TAG_LEN` zero bytes of
    /// room for the tag, in a buffer sized exactly so it never reallocates.
    fn write_sealed_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[0; TAG_LEN]);
        out.extend_from_slice(&self.algorithm.id().to_be_bytes());
        out.extend_from_slice(self.s2c.dangerous_key_bytes());
        out.extend_from_slice(self.c2s.dangerous_key_bytes());
    }

    /// Parses a decrypted cookie plaintext.
    fn from_plaintext(plaintext: &[u8]) -> Result<Self, CookieError> {
        let Some((id, keys)) = plaintext.split_first_chunk::<2>() else {
            return Err(CookieError::Malformed);
        };
        let id = u16::from_be_bytes(*id);
        let algorithm = AeadAlgorithm::from_id(id).ok_or(CookieError::UnknownAlgorithm(id))?;
        if keys.len() != 2 * algorithm.key_len() {
            return Err(CookieError::KeyLength {
                algorithm,
                actual: keys.len(),
            });
        }
        let (s2c, c2s) = keys.split_at(algorithm.key_len());
        Self::new(algorithm, c2s, s2c).map_err(|e| CookieError::KeyLength {
            algorithm,
            actual: e.actual,
        })
    }
}

/// Why a cookie did not open. Every variant means the server answers with an NTS NAK
/// (RFC 8915 §5.7); the variants exist for logging and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CookieError {
    /// Shorter than any cookie we issue.
    #[error("cookie of {0} bytes is too short")]
    TooShort(usize),
    /// Longer than any cookie we issue.
    #[error("cookie of {0} bytes is too long")]
    TooLong(usize),
    /// The ciphertext length field disagrees with the cookie length.
    #[error("cookie ciphertext length field says {declared} bytes, {actual} present")]
    LengthMismatch {
        /// The value of the `ct_len` field.
        declared: u16,
        /// The number of bytes after the nonce.
        actual: usize,
    },
    /// No master key with this id is held: expired, from the future, or forged.
    #[error("unknown cookie key id {0:#010x}")]
    UnknownKeyId(u32),
    /// The master key did not authenticate the cookie (forged or corrupted).
    #[error("cookie authentication failed")]
    Authentication,
    /// The cookie decrypted but names an AEAD algorithm we do not implement.
    #[error("cookie names unsupported aead algorithm {0}")]
    UnknownAlgorithm(u16),
    /// The cookie decrypted but its keys have the wrong length for the algorithm.
    #[error("cookie holds {actual} key bytes, wrong for {algorithm}")]
    KeyLength {
        /// The algorithm named in the cookie.
        algorithm: AeadAlgorithm,
        /// The total length of S2C ‖ C2S found.
        actual: usize,
    },
    /// The plaintext is too short to hold an AEAD ID.
    #[error("malformed cookie plaintext")]
    Malformed,
}

/// Appends a cookie sealing `keys` under `master` (AES-SIV-CMAC-256) with key id
/// `key_id` to `out`: [`cookie_len`]`(keys.algorithm())` bytes.
pub(crate) fn seal_into(
    key_id: u32,
    master: &MasterCipher,
    keys: &CookieKeys,
    nonce: &[u8; COOKIE_NONCE_LEN],
    out: &mut Vec<u8>,
) {
    let total = cookie_len(keys.algorithm);
    let ct_len = total - COOKIE_HEADER_LEN;
    let start = out.len();
    out.reserve(total);
    let id = key_id.to_be_bytes();
    out.extend_from_slice(&id);
    // ct_len ≤ 146 for every supported algorithm.
    out.extend_from_slice(&u16::try_from(ct_len).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(nonce);
    keys.write_sealed_body(out);
    debug_assert_eq!(out.len(), start + total);
    if let Some((tag, body)) = out
        .get_mut(start + COOKIE_HEADER_LEN..)
        .and_then(|field| field.split_first_chunk_mut::<TAG_LEN>())
    {
        // S2V(K, key_id, nonce, plaintext), as AeadKey::seal does for AEAD 15.
        *tag = master.seal(&[&id, nonce], body);
    }
}

/// Parses the cookie header and returns `(key_id, nonce, ciphertext)`.
pub(crate) fn split(cookie: &[u8]) -> Result<(u32, &[u8; COOKIE_NONCE_LEN], &[u8]), CookieError> {
    if cookie.len() < MIN_COOKIE_LEN {
        return Err(CookieError::TooShort(cookie.len()));
    }
    if cookie.len() > MAX_COOKIE_LEN {
        return Err(CookieError::TooLong(cookie.len()));
    }
    let (id, rest) = cookie
        .split_first_chunk::<4>()
        .ok_or(CookieError::TooShort(cookie.len()))?;
    let (ct_len, rest) = rest
        .split_first_chunk::<2>()
        .ok_or(CookieError::TooShort(cookie.len()))?;
    let (nonce, ct) = rest
        .split_first_chunk::<COOKIE_NONCE_LEN>()
        .ok_or(CookieError::TooShort(cookie.len()))?;
    let declared = u16::from_be_bytes(*ct_len);
    if usize::from(declared) != ct.len() {
        return Err(CookieError::LengthMismatch {
            declared,
            actual: ct.len(),
        });
    }
    Ok((u32::from_be_bytes(*id), nonce, ct))
}

/// Opens the ciphertext part of a cookie (after [`split`]) with `master`.
pub(crate) fn open(
    key_id: u32,
    master: &MasterCipher,
    nonce: &[u8],
    ct: &[u8],
) -> Result<CookieKeys, CookieError> {
    let (tag, body) = ct
        .split_first_chunk::<TAG_LEN>()
        .ok_or(CookieError::TooShort(ct.len()))?;
    // Decrypt on the stack: `split` bounds the body to fit.
    let mut buf = [0u8; MAX_COOKIE_LEN];
    let Some(plaintext) = buf.get_mut(..body.len()) else {
        return Err(CookieError::TooLong(ct.len()));
    };
    plaintext.copy_from_slice(body);
    let result = match master.open(&[&key_id.to_be_bytes(), nonce], plaintext, tag) {
        Ok(()) => CookieKeys::from_plaintext(plaintext),
        Err(_) => Err(CookieError::Authentication),
    };
    // Only this part was ever written.
    plaintext.zeroize();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        assert_eq!(cookie_len(AeadAlgorithm::AesSivCmac256), 104);
        assert_eq!(cookie_len(AeadAlgorithm::AesSivCmac512), 168);
        for &alg in AeadAlgorithm::ALL {
            assert_eq!(cookie_len(alg) % 4, 0, "{alg}");
            assert!(cookie_len(alg) <= MAX_COOKIE_LEN);
            assert!(cookie_len(alg) <= 192);
        }
        assert_eq!(MIN_COOKIE_LEN, 40);
    }

    #[test]
    fn plaintext_errors() {
        assert_eq!(
            CookieKeys::from_plaintext(&[0]),
            Err(CookieError::Malformed)
        );
        assert_eq!(
            CookieKeys::from_plaintext(&[0, 16, 1, 2]),
            Err(CookieError::UnknownAlgorithm(16))
        );
        assert_eq!(
            CookieKeys::from_plaintext(&[0, 15, 1, 2]),
            Err(CookieError::KeyLength {
                algorithm: AeadAlgorithm::AesSivCmac256,
                actual: 2
            })
        );
        let mut ok = vec![0, 15];
        ok.extend_from_slice(&[1; 32]);
        ok.extend_from_slice(&[2; 32]);
        let keys = CookieKeys::from_plaintext(&ok).unwrap();
        assert_eq!(keys.s2c().dangerous_key_bytes(), &[1; 32]);
        assert_eq!(keys.c2s().dangerous_key_bytes(), &[2; 32]);
    }

    #[test]
    fn debug_redacts() {
        let keys = CookieKeys::new(AeadAlgorithm::AesSivCmac256, &[0x5A; 32], &[0xC3; 32]).unwrap();
        let dbg = format!("{keys:?}");
        assert!(
            !dbg.contains("90") && !dbg.contains("195") && !dbg.to_lowercase().contains("5a"),
            "{dbg}"
        );
        assert!(dbg.contains("redacted"));
    }
}
