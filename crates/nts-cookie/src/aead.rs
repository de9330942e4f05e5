//! The NTS AEAD layer (RFC 8915 §5.1, §5.6; RFC 5297; RFC 8452).
//!
//! [`AeadKey`] wraps one key of one [`AeadAlgorithm`] and produces and checks the NTS
//! *Ciphertext* field: for the SIV algorithms that is `tag(16) ‖ ciphertext`
//! (RFC 5297 §2.6), for AES-128-GCM-SIV it is `ciphertext ‖ tag(16)` (RFC 8452 §4).
//!
//! For the SIV algorithms the NTS nonce is passed to S2V as the **last** associated-data
//! element, after the single AD string: `S2V(K, AD, N, P)` (RFC 5297 §3, RFC 8915 §5.6).
//! Any nonce length of at least one byte is accepted, as RFC 8915 requires of a server.
//!
//! The SIV algorithms run on this crate's own S2V/CTR over the `aes` block cipher
//! (module `siv`): a per-client key is expanded once per operation, and only its MAC
//! half when there is no plaintext to encrypt (a request authenticator).

use alloc::vec::Vec;
use core::fmt;

use aes::{Aes128Enc, Aes256Enc};
use zeroize::Zeroizing;

use crate::siv;

/// Length in bytes of the authentication tag of every supported algorithm.
pub const TAG_LEN: usize = 16;

/// An AEAD algorithm from the IANA "AEAD Algorithms" registry that NTS can negotiate
/// (RFC 8915 §5.1, record type 4).
///
/// Only the algorithms this crate implements are variants; use [`AeadAlgorithm::from_id`]
/// to map a negotiated numeric ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AeadAlgorithm {
    /// `AEAD_AES_SIV_CMAC_256` (ID 15, RFC 5297): 32-byte key. Mandatory to implement.
    AesSivCmac256,
    /// `AEAD_AES_SIV_CMAC_512` (ID 17, RFC 5297): 64-byte key.
    AesSivCmac512,
    /// `AEAD_AES_128_GCM_SIV` (ID 30, RFC 8452): 16-byte key, 12-byte nonce.
    #[cfg(feature = "gcm-siv")]
    Aes128GcmSiv,
}

impl AeadAlgorithm {
    /// Every algorithm this build supports, in ascending ID order.
    pub const ALL: &'static [Self] = &[
        Self::AesSivCmac256,
        Self::AesSivCmac512,
        #[cfg(feature = "gcm-siv")]
        Self::Aes128GcmSiv,
    ];

    /// Maps an IANA AEAD algorithm ID to a supported algorithm.
    ///
    /// Returns `None` for IDs this build does not implement (including 30 without the
    /// `gcm-siv` feature).
    #[must_use]
    pub const fn from_id(id: u16) -> Option<Self> {
        match id {
            15 => Some(Self::AesSivCmac256),
            17 => Some(Self::AesSivCmac512),
            #[cfg(feature = "gcm-siv")]
            30 => Some(Self::Aes128GcmSiv),
            _ => None,
        }
    }

    /// The IANA AEAD algorithm ID.
    #[must_use]
    pub const fn id(self) -> u16 {
        match self {
            Self::AesSivCmac256 => 15,
            Self::AesSivCmac512 => 17,
            #[cfg(feature = "gcm-siv")]
            Self::Aes128GcmSiv => 30,
        }
    }

    /// Key length in bytes; also the length the NTS-KE exporter must produce
    /// (RFC 8915 §5.1).
    #[must_use]
    pub const fn key_len(self) -> usize {
        match self {
            Self::AesSivCmac256 => 32,
            Self::AesSivCmac512 => 64,
            #[cfg(feature = "gcm-siv")]
            Self::Aes128GcmSiv => 16,
        }
    }

    /// The nonce length we generate: 16 for the SIV algorithms (the RFC 8915 §5.6
    /// padding rule then needs no additional padding), 12 for AES-128-GCM-SIV (its
    /// only valid length).
    #[must_use]
    pub const fn nonce_len(self) -> usize {
        match self {
            Self::AesSivCmac256 | Self::AesSivCmac512 => 16,
            #[cfg(feature = "gcm-siv")]
            Self::Aes128GcmSiv => 12,
        }
    }

    /// Length in bytes of the authentication tag (16 for every supported algorithm).
    #[must_use]
    pub const fn tag_len(self) -> usize {
        TAG_LEN
    }

    /// Whether any nonce length of at least one byte is valid (true for the SIV
    /// algorithms); otherwise exactly [`AeadAlgorithm::nonce_len`] bytes are required.
    #[must_use]
    pub const fn accepts_any_nonce_len(self) -> bool {
        match self {
            Self::AesSivCmac256 | Self::AesSivCmac512 => true,
            #[cfg(feature = "gcm-siv")]
            Self::Aes128GcmSiv => false,
        }
    }

    /// Checks a nonce length for this algorithm.
    fn check_nonce(self, nonce: &[u8]) -> Result<(), AeadError> {
        if nonce.is_empty() {
            return Err(AeadError::EmptyNonce);
        }
        if !self.accepts_any_nonce_len() && nonce.len() != self.nonce_len() {
            return Err(AeadError::NonceLength {
                expected: self.nonce_len(),
                actual: nonce.len(),
            });
        }
        Ok(())
    }
}

impl fmt::Display for AeadAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::AesSivCmac256 => "AEAD_AES_SIV_CMAC_256",
            Self::AesSivCmac512 => "AEAD_AES_SIV_CMAC_512",
            #[cfg(feature = "gcm-siv")]
            Self::Aes128GcmSiv => "AEAD_AES_128_GCM_SIV",
        };
        f.write_str(name)
    }
}

/// A key of the wrong length was given for an algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{algorithm} needs a {expected}-byte key, got {actual} bytes")]
pub struct KeyLengthError {
    /// The algorithm the key was meant for.
    pub algorithm: AeadAlgorithm,
    /// The key length the algorithm needs.
    pub expected: usize,
    /// The length that was given.
    pub actual: usize,
}

/// Why an AEAD operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AeadError {
    /// The nonce was empty; NTS nonces are at least one byte long.
    #[error("empty nonce")]
    EmptyNonce,
    /// The algorithm needs a nonce of exactly `expected` bytes (AES-GCM-SIV).
    #[error("nonce must be {expected} bytes, got {actual}")]
    NonceLength {
        /// The nonce length the algorithm needs.
        expected: usize,
        /// The length that was given.
        actual: usize,
    },
    /// The ciphertext is shorter than the 16-byte tag.
    #[error("ciphertext of {0} bytes is shorter than the tag")]
    TooShort(usize),
    /// The tag did not verify: wrong key, or tampered AD, nonce, tag or ciphertext.
    #[error("authentication failed")]
    Authentication,
    /// The underlying cipher refused the input (e.g. a message over its length limit).
    #[error("the cipher rejected the input")]
    Cipher,
}

/// One key of one AEAD algorithm, such as the C2S or S2C key from the NTS-KE exporter.
///
/// The key bytes live in [`Zeroizing`] memory and are erased on drop; `Debug` prints
/// only the algorithm. Equality compares the bytes without an early exit.
#[derive(Clone)]
pub struct AeadKey {
    algorithm: AeadAlgorithm,
    key: Zeroizing<Vec<u8>>,
}

impl AeadKey {
    /// Builds a key for `algorithm` from raw bytes (copied into zeroizing memory).
    ///
    /// # Errors
    /// [`KeyLengthError`] if `key.len() != algorithm.key_len()`.
    pub fn new(algorithm: AeadAlgorithm, key: &[u8]) -> Result<Self, KeyLengthError> {
        if key.len() != algorithm.key_len() {
            return Err(KeyLengthError {
                algorithm,
                expected: algorithm.key_len(),
                actual: key.len(),
            });
        }
        Ok(Self {
            algorithm,
            key: Zeroizing::new(key.to_vec()),
        })
    }

    /// Generates a fresh random key for `algorithm`.
    pub fn generate<R: rand_core::CryptoRng + ?Sized>(
        algorithm: AeadAlgorithm,
        rng: &mut R,
    ) -> Self {
        let mut key = Zeroizing::new(alloc::vec![0u8; algorithm.key_len()]);
        rng.fill_bytes(&mut key);
        Self { algorithm, key }
    }

    /// The algorithm this key belongs to.
    #[must_use]
    pub fn algorithm(&self) -> AeadAlgorithm {
        self.algorithm
    }

    /// The raw key bytes. Only for storing client state across restarts and for tests:
    /// whatever copies them is responsible for erasing them.
    #[must_use]
    pub fn dangerous_key_bytes(&self) -> &[u8] {
        &self.key
    }

    /// Encrypts `plaintext` and returns the NTS Ciphertext field (see the module docs for
    /// where the tag goes), `plaintext.len() + 16` bytes long.
    ///
    /// # Errors
    /// [`AeadError::EmptyNonce`], or [`AeadError::NonceLength`] for a GCM-SIV nonce that
    /// is not 12 bytes.
    pub fn seal(
        &self,
        nonce: &[u8],
        associated_data: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, AeadError> {
        let mut out = Vec::with_capacity(TAG_LEN + plaintext.len());
        self.seal_into(nonce, associated_data, plaintext, &mut out)?;
        Ok(out)
    }

    /// Like [`AeadKey::seal`], but appends the Ciphertext field to `out`.
    ///
    /// On error `out` is left as it was.
    ///
    /// # Errors
    /// As [`AeadKey::seal`].
    pub fn seal_into(
        &self,
        nonce: &[u8],
        associated_data: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), AeadError> {
        self.algorithm.check_nonce(nonce)?;
        let start = out.len();
        out.resize(start + TAG_LEN, 0);
        out.extend_from_slice(plaintext);
        let result = match out.get_mut(start..) {
            Some(field) => self.seal_in_place(nonce, associated_data, field),
            None => Err(AeadError::Cipher),
        };
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    /// Encrypts in place, without allocating. On entry `field` is 16 bytes of room for
    /// the tag (any content) followed by the plaintext; on success it holds the NTS
    /// Ciphertext field. This suits the server, which can write the plaintext where the
    /// ciphertext goes and pass the packet prefix as `associated_data` via
    /// `split_at_mut`.
    ///
    /// # Errors
    /// [`AeadError::TooShort`] if `field` is shorter than 16 bytes; otherwise as
    /// [`AeadKey::seal`].
    pub fn seal_in_place(
        &self,
        nonce: &[u8],
        associated_data: &[u8],
        field: &mut [u8],
    ) -> Result<(), AeadError> {
        self.algorithm.check_nonce(nonce)?;
        let Some((tag_room, body)) = field.split_first_chunk_mut::<TAG_LEN>() else {
            return Err(AeadError::TooShort(field.len()));
        };
        match self.algorithm {
            AeadAlgorithm::AesSivCmac256 => {
                let tag = siv::seal_once::<Aes128Enc>(&self.key, &[associated_data, nonce], body)?;
                *tag_room = tag;
            }
            AeadAlgorithm::AesSivCmac512 => {
                let tag = siv::seal_once::<Aes256Enc>(&self.key, &[associated_data, nonce], body)?;
                *tag_room = tag;
            }
            #[cfg(feature = "gcm-siv")]
            AeadAlgorithm::Aes128GcmSiv => {
                let tag = gcm_siv::seal(&self.key, nonce, associated_data, body)?;
                // RFC 8452 output is ciphertext ‖ tag: shift the ciphertext forward.
                field.copy_within(TAG_LEN.., 0);
                let tag_at = field.len() - TAG_LEN;
                if let Some(room) = field.get_mut(tag_at..) {
                    room.copy_from_slice(&tag);
                }
            }
        }
        Ok(())
    }

    /// Verifies and decrypts an NTS Ciphertext field, returning the plaintext.
    ///
    /// # Errors
    /// [`AeadError::Authentication`] if anything was tampered with or the key is wrong,
    /// [`AeadError::TooShort`] if `ciphertext` is shorter than the tag, and the nonce
    /// errors of [`AeadKey::seal`].
    pub fn open(
        &self,
        nonce: &[u8],
        associated_data: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, AeadError> {
        let mut buf = ciphertext.to_vec();
        let len = self.open_in_place(nonce, associated_data, &mut buf)?.len();
        match self.algorithm {
            AeadAlgorithm::AesSivCmac256 | AeadAlgorithm::AesSivCmac512 => {
                buf.drain(..TAG_LEN);
            }
            #[cfg(feature = "gcm-siv")]
            AeadAlgorithm::Aes128GcmSiv => buf.truncate(len),
        }
        debug_assert_eq!(buf.len(), len);
        Ok(buf)
    }

    /// Verifies and decrypts an NTS Ciphertext field in place, returning the plaintext
    /// as a sub-slice of `field`. On failure `field` holds no plaintext.
    ///
    /// # Errors
    /// As [`AeadKey::open`].
    pub fn open_in_place<'a>(
        &self,
        nonce: &[u8],
        associated_data: &[u8],
        field: &'a mut [u8],
    ) -> Result<&'a mut [u8], AeadError> {
        self.algorithm.check_nonce(nonce)?;
        let len = field.len();
        match self.algorithm {
            AeadAlgorithm::AesSivCmac256 | AeadAlgorithm::AesSivCmac512 => {
                let Some((tag, body)) = field.split_first_chunk_mut::<TAG_LEN>() else {
                    return Err(AeadError::TooShort(len));
                };
                let tag = *tag;
                if self.algorithm == AeadAlgorithm::AesSivCmac256 {
                    siv::open_once::<Aes128Enc>(&self.key, &[associated_data, nonce], body, &tag)?;
                } else {
                    siv::open_once::<Aes256Enc>(&self.key, &[associated_data, nonce], body, &tag)?;
                }
                Ok(body)
            }
            #[cfg(feature = "gcm-siv")]
            AeadAlgorithm::Aes128GcmSiv => {
                let Some((body, tag)) = field.split_last_chunk_mut::<TAG_LEN>() else {
                    return Err(AeadError::TooShort(len));
                };
                let tag = *tag;
                gcm_siv::open(&self.key, nonce, associated_data, body, &tag)?;
                Ok(body)
            }
        }
    }
}

impl PartialEq for AeadKey {
    fn eq(&self, other: &Self) -> bool {
        self.algorithm == other.algorithm && ct_eq(&self.key, &other.key)
    }
}

impl Eq for AeadKey {}

impl fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AeadKey")
            .field("algorithm", &self.algorithm)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Compares two byte strings without an early exit on the first difference.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(feature = "gcm-siv")]
mod gcm_siv {
    use aes_gcm_siv::{AeadInOut, Aes128GcmSiv, KeyInit, Nonce};

    use super::{AeadError, TAG_LEN};

    pub(super) fn seal(
        key: &[u8],
        nonce: &[u8],
        associated_data: &[u8],
        body: &mut [u8],
    ) -> Result<[u8; TAG_LEN], AeadError> {
        let cipher = Aes128GcmSiv::new_from_slice(key).map_err(|_| AeadError::Cipher)?;
        let nonce = Nonce::try_from(nonce).map_err(|_| AeadError::NonceLength {
            expected: 12,
            actual: nonce.len(),
        })?;
        let tag = cipher
            .encrypt_inout_detached(&nonce, associated_data, body.into())
            .map_err(|_| AeadError::Cipher)?;
        Ok(tag.into())
    }

    pub(super) fn open(
        key: &[u8],
        nonce: &[u8],
        associated_data: &[u8],
        body: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadError> {
        let cipher = Aes128GcmSiv::new_from_slice(key).map_err(|_| AeadError::Cipher)?;
        let nonce = Nonce::try_from(nonce).map_err(|_| AeadError::NonceLength {
            expected: 12,
            actual: nonce.len(),
        })?;
        cipher
            .decrypt_inout_detached(&nonce, associated_data, body.into(), &(*tag).into())
            .map_err(|_| AeadError::Authentication)
    }
}

#[cfg(test)]
mod tests {
    use hex_literal::hex;

    use super::*;

    /// Runs our internal SIV path over an arbitrary header list and returns tag ‖ ct.
    fn siv_vector<S: siv::SivAes>(key: &[u8], headers: &[&[u8]], pt: &[u8]) -> Vec<u8> {
        let mut body = pt.to_vec();
        let tag = siv::seal_once::<S>(key, headers, &mut body).unwrap();
        let mut out = tag.to_vec();
        out.extend_from_slice(&body);
        // and back
        let mut back = out[TAG_LEN..].to_vec();
        siv::open_once::<S>(key, headers, &mut back, &tag).unwrap();
        assert_eq!(back, pt);
        out
    }

    #[test]
    fn ids_round_trip() {
        for &alg in AeadAlgorithm::ALL {
            assert_eq!(AeadAlgorithm::from_id(alg.id()), Some(alg));
        }
        assert_eq!(
            AeadAlgorithm::from_id(15),
            Some(AeadAlgorithm::AesSivCmac256)
        );
        assert_eq!(
            AeadAlgorithm::from_id(17),
            Some(AeadAlgorithm::AesSivCmac512)
        );
        assert_eq!(AeadAlgorithm::from_id(16), None);
        assert_eq!(AeadAlgorithm::from_id(0), None);
        assert_eq!(AeadAlgorithm::AesSivCmac256.key_len(), 32);
        assert_eq!(AeadAlgorithm::AesSivCmac512.key_len(), 64);
        assert_eq!(AeadAlgorithm::AesSivCmac256.nonce_len(), 16);
        assert_eq!(AeadAlgorithm::AesSivCmac512.nonce_len(), 16);
    }

    #[test]
    fn wrong_key_length_is_an_error() {
        let err = AeadKey::new(AeadAlgorithm::AesSivCmac256, &[0; 31]).unwrap_err();
        assert_eq!(err.expected, 32);
        assert_eq!(err.actual, 31);
        assert!(AeadKey::new(AeadAlgorithm::AesSivCmac512, &[0; 32]).is_err());
        assert!(AeadKey::new(AeadAlgorithm::AesSivCmac256, &[0; 32]).is_ok());
    }

    // The RFC 5297 A.1/A.2 and AEAD 17 vectors are checked in `siv.rs`, on
    // both the one-shot and the cached-key paths that `AeadKey` uses.

    /// Our public API puts the nonce last: `seal(nonce, ad, pt)` equals S2V over
    /// `[ad, nonce]` and differs from `[nonce, ad]`.
    #[test]
    fn nonce_is_the_last_header() {
        let key = hex!("7f7e7d7c7b7a79787776757473727170404142434445464748494a4b4c4d4e4f");
        let ad = hex!(
            "00112233445566778899aabbccddeeffdeaddadadeaddadaffeeddccbbaa99887766554433221100"
        );
        let nonce = hex!("09f911029d74e35bd84156c5635688c0");
        let pt = hex!("7468697320697320736f6d6520706c61696e74657874");
        let k = AeadKey::new(AeadAlgorithm::AesSivCmac256, &key).unwrap();
        let ours = k.seal(&nonce, &ad, &pt).unwrap();
        assert_eq!(ours, siv_vector::<Aes128Enc>(&key, &[&ad, &nonce], &pt));
        assert_ne!(ours, siv_vector::<Aes128Enc>(&key, &[&nonce, &ad], &pt));
        assert_eq!(k.open(&nonce, &ad, &ours).unwrap(), pt);
    }

    const S2C_53: [u8; 64] = hex!(
        "f4063f0d2fe2b41968d42f0eba46bb5d868c0252eefe714f5a1f878a7bd2792f"
        "e4d0f34c7ed5c4e9410f21a3c41e06c5de69280e498ac82deb7f30f8ab088db4"
    );
    const C2S_53: [u8; 64] = hex!(
        "aa6fa17607c8e88091faaaba578fabfc6ef1aab30d968693d3f83ecf7a9bc66d"
        "a70f1276923fba92d4bcaf1b5903edd434711c15cbc8e61108ba7e0134e65628"
    );
    const RESPONSE_53: [u8; 296] = hex!(
        "240104e80000000000000060544d4e4ce8494892f929579e6287db473ff75f58"
        "e84948b2b640d701e84948b2b644bff801040024e4833a8d600e1342435cb29d"
        "e550acc0f8d8fa16e5c5370a620b155f586adad6040400d4001000bc6a1de3c2"
        "6e13eb10c739d70b841fad1b86e230c63e9ea5f71b62a8a79881ce7c6b17cb31"
        "32490fdecf2110564e368892ddeef1f423f6555341c2c9176120a518dc1a7edc"
        "5ee3c83b05087b7303f7ab86d52cc7490ce829397223dcef2d94faf8d71d1280"
        "da032dd70469e9ac5f82ef5781d207fbacb4a8b6319114d5f56fb22a0cb6d7dc"
        "f77df02146f67e4601b53b217ca8ac1a4d97d59bceeb9833997f100ed469858b"
        "cd735201adec38cf8cb2c6d0541a9767ddb3ea091d63d98d03dd6e48153dc9b6"
        "1fe5d91d74ae3548"
    );
    const REQUEST_53: [u8; 296] = hex!(
        "2300040000000000000000000000000000000000000000000000000000000000"
        "00000000000000006287db473ff75f5801040024e4833a8d600e1342435cb29d"
        "e550acc0f8d8fa16e5c5370a620b155f586adad6020400ac1cc40a94da3f94a4"
        "d12ac2d609f16f7211596a0acefc62d11f283ad108d801b591385d9bf507f90d"
        "2182e6812a58a735dc49c4d3e9b79c72b7f64464f8fc0ded25ea1f7c9b315cd8"
        "6086fd677490f50e61e6680e290d49770ced44d42f2d9ba89f4d5dce4fdd5749"
        "51495a1f38dbc7ec1b865ba58f231edd76ee1dafdd66b2b2641f03c6479b429c"
        "7ff6596b8244cf67b5a2cd209d39bbe6402bf62045df9550f038770689791218"
        "0404002800100010ce89ee973442bc0f43aace4999bdf58e8fee7b1a2d58af6d"
        "e9a20e561f7ff06a"
    );

    /// PROTOCOL.md §5.3 (ntpd-rs captured exchange): the response authenticator at
    /// offset 84: EF header 4, nonce len 2, ct len 2, nonce 16 at 92, ct 188 at 108.
    #[test]
    fn captured_response_aead17() {
        let key = AeadKey::new(AeadAlgorithm::AesSivCmac512, &S2C_53).unwrap();
        let ad = &RESPONSE_53[..84];
        assert_eq!(RESPONSE_53[84..92], hex!("0404 00d4 0010 00bc"));
        let nonce = &RESPONSE_53[92..108];
        assert_eq!(nonce, hex!("6a1de3c26e13eb10c739d70b841fad1b"));
        let ct = &RESPONSE_53[108..108 + 188];
        let pt = key.open(nonce, ad, ct).unwrap();
        assert_eq!(pt.len(), 172);
        assert_eq!(pt[..4], hex!("020400ac"));
        // Re-sealing with the same nonce gives identical bytes (SIV is deterministic).
        assert_eq!(key.seal(nonce, ad, &pt).unwrap(), ct);
        // The C2S key does not open it.
        let wrong = AeadKey::new(AeadAlgorithm::AesSivCmac512, &C2S_53).unwrap();
        assert_eq!(wrong.open(nonce, ad, ct), Err(AeadError::Authentication));
    }

    /// PROTOCOL.md §5.3: the request authenticator at 256 with an empty plaintext.
    #[test]
    fn captured_request_aead17() {
        let key = AeadKey::new(AeadAlgorithm::AesSivCmac512, &C2S_53).unwrap();
        assert_eq!(REQUEST_53[256..264], hex!("0404 0028 0010 0010"));
        let nonce = &REQUEST_53[264..280];
        let ct = &REQUEST_53[280..296];
        let pt = key.open(nonce, &REQUEST_53[..256], ct).unwrap();
        assert!(pt.is_empty());
        assert_eq!(key.seal(nonce, &REQUEST_53[..256], &[]).unwrap(), ct);
    }

    #[test]
    fn any_single_bit_flip_fails() {
        let key = AeadKey::new(AeadAlgorithm::AesSivCmac512, &S2C_53).unwrap();
        let ad = RESPONSE_53[..84].to_vec();
        let nonce = RESPONSE_53[92..108].to_vec();
        let ct = RESPONSE_53[108..].to_vec();
        assert!(key.open(&nonce, &ad, &ct).is_ok());
        for bit in [0usize, 7, 100, 8 * 83 + 7] {
            let mut ad2 = ad.clone();
            ad2[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                key.open(&nonce, &ad2, &ct),
                Err(AeadError::Authentication),
                "ad bit {bit}"
            );
        }
        for bit in [0usize, 64, 127] {
            let mut n2 = nonce.clone();
            n2[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                key.open(&n2, &ad, &ct),
                Err(AeadError::Authentication),
                "nonce bit {bit}"
            );
        }
        // bits 0..128 are the tag, the rest the ciphertext
        for bit in [0usize, 77, 127, 128, 129, 8 * 187 + 7] {
            let mut c2 = ct.clone();
            c2[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                key.open(&nonce, &ad, &c2),
                Err(AeadError::Authentication),
                "ct bit {bit}"
            );
        }
        // truncation and extension also fail
        assert!(key.open(&nonce, &ad, &ct[..ct.len() - 1]).is_err());
        let mut longer = ct.clone();
        longer.push(0);
        assert!(key.open(&nonce, &ad, &longer).is_err());
        let mut shorter_nonce = nonce.clone();
        shorter_nonce.pop();
        assert!(key.open(&shorter_nonce, &ad, &ct).is_err());
    }

    #[test]
    fn empty_nonce_and_short_input_are_errors() {
        for &alg in AeadAlgorithm::ALL {
            let key = AeadKey::new(alg, &vec![7; alg.key_len()]).unwrap();
            assert_eq!(key.seal(&[], b"ad", b"pt"), Err(AeadError::EmptyNonce));
            assert_eq!(key.open(&[], b"ad", &[0; 32]), Err(AeadError::EmptyNonce));
            let nonce = vec![1; alg.nonce_len()];
            assert_eq!(
                key.open(&nonce, b"ad", &[0; 15]),
                Err(AeadError::TooShort(15))
            );
            assert_eq!(key.open(&nonce, b"ad", &[]), Err(AeadError::TooShort(0)));
            assert_eq!(
                key.open(&nonce, b"ad", &[0; 16]),
                Err(AeadError::Authentication)
            );
            let mut small = [0u8; 3];
            assert_eq!(
                key.seal_in_place(&nonce, b"", &mut small),
                Err(AeadError::TooShort(3))
            );
        }
    }

    #[test]
    fn siv_accepts_any_nonce_length() {
        for &alg in &[AeadAlgorithm::AesSivCmac256, AeadAlgorithm::AesSivCmac512] {
            let key = AeadKey::new(alg, &vec![9; alg.key_len()]).unwrap();
            for n in [1usize, 3, 12, 16, 17, 64] {
                let nonce = vec![0xA5; n];
                let ct = key.seal(&nonce, b"header", b"hello").unwrap();
                assert_eq!(ct.len(), TAG_LEN + 5);
                assert_eq!(key.open(&nonce, b"header", &ct).unwrap(), b"hello");
            }
        }
    }

    #[test]
    fn in_place_and_into_match_seal() {
        for &alg in AeadAlgorithm::ALL {
            let key = AeadKey::new(alg, &vec![3; alg.key_len()]).unwrap();
            let nonce = vec![4; alg.nonce_len()];
            let sealed = key.seal(&nonce, b"ad", b"some plaintext").unwrap();
            let mut out = b"prefix".to_vec();
            key.seal_into(&nonce, b"ad", b"some plaintext", &mut out)
                .unwrap();
            assert_eq!(&out[..6], b"prefix");
            assert_eq!(&out[6..], &sealed[..]);
            let mut field = vec![0u8; 16];
            field.extend_from_slice(b"some plaintext");
            key.seal_in_place(&nonce, b"ad", &mut field).unwrap();
            assert_eq!(field, sealed);
            let pt = key.open_in_place(&nonce, b"ad", &mut field).unwrap();
            assert_eq!(pt, b"some plaintext");
            // a failed seal_into leaves the buffer alone
            let mut out = b"keep".to_vec();
            assert!(key.seal_into(&[], b"ad", b"x", &mut out).is_err());
            assert_eq!(out, b"keep");
        }
    }

    #[test]
    fn debug_redacts_key() {
        let key = AeadKey::new(AeadAlgorithm::AesSivCmac256, &[0xAB; 32]).unwrap();
        let dbg = format!("{key:?}");
        assert!(dbg.contains("redacted"), "{dbg}");
        assert!(
            !dbg.to_lowercase().contains("ab, ab") && !dbg.contains("171"),
            "{dbg}"
        );
    }

    #[test]
    fn equality_compares_bytes() {
        let a = AeadKey::new(AeadAlgorithm::AesSivCmac256, &[1; 32]).unwrap();
        let b = AeadKey::new(AeadAlgorithm::AesSivCmac256, &[1; 32]).unwrap();
        let mut other = [1; 32];
        other[31] = 2;
        let c = AeadKey::new(AeadAlgorithm::AesSivCmac256, &other).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    /// RFC 8452 C.1, first AEAD_AES_128_GCM_SIV vector with a non-empty plaintext and AD.
    #[cfg(feature = "gcm-siv")]
    #[test]
    fn rfc8452_vector() {
        let key = AeadKey::new(
            AeadAlgorithm::Aes128GcmSiv,
            &hex!("01000000000000000000000000000000"),
        )
        .unwrap();
        let nonce = hex!("030000000000000000000000");
        let ad = hex!("01");
        let pt = hex!("0200000000000000");
        let ct = key.seal(&nonce, &ad, &pt).unwrap();
        assert_eq!(ct, hex!("1e6daba35669f4273b0a1a2560969cdf790d99759abd1508"));
        assert_eq!(key.open(&nonce, &ad, &ct).unwrap(), pt);
        assert_eq!(
            key.seal(&nonce[..11], &ad, &pt),
            Err(AeadError::NonceLength {
                expected: 12,
                actual: 11
            })
        );
    }
}
