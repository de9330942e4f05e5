//! NTS keys and cookies (RFC 8915): the AEAD layer, server cookies under rotating or
//! fleet-derived master keys, and the client's cookie jar.
//!
//! This crate is sans-IO: it opens no sockets, reads no clock (callers pass
//! `now_unix_s`) and parses no configuration. Randomness comes from a caller-supplied
//! [`rand_core::CryptoRng`].
//!
//! # Design overview
//!
//! **AEAD layer** ([`AeadAlgorithm`], [`AeadKey`]). Algorithms 15 (AES-SIV-CMAC-256) and
//! 17 (AES-SIV-CMAC-512), and 30 (AES-128-GCM-SIV) with the `gcm-siv` feature.
//! [`AeadKey::seal`] returns exactly the NTS *Ciphertext* field: `tag ‖ ciphertext` for
//! SIV (the NTS nonce is the last S2V header, after the associated data), and
//! `ciphertext ‖ tag` for GCM-SIV (RFC 8452's output). SIV keys accept any non-empty
//! nonce, as a server must; we generate [`AeadAlgorithm::nonce_len`] bytes.
//! [`AeadKey::seal_in_place`] / [`AeadKey::open_in_place`] work inside a packet buffer
//! without allocating.
//!
//! The SIV algorithms are implemented here on the `aes` block cipher (S2V over CMAC,
//! then CTR; RFC 5297), not with the `aes-siv` crate, which re-expanded the AES key
//! schedules and recomputed the CMAC subkeys on every call; ours is about twice as
//! fast and is tested against the RFC 5297 vectors, captured ntpd-rs packets and,
//! differentially, the `aes-siv` crate.
//!
//! **Cookies** ([`CookieKeys`], [`KeySet::seal_cookie`], [`KeySet::open_cookie`]). The
//! layout follows ntpd-rs: `key_id u32 ‖ ct_len u16 ‖ nonce 16 ‖ AES-SIV-CMAC-256(tag 16 ‖
//! aead_id u16 ‖ S2C ‖ C2S)`, with the key id as associated data. A cookie is
//! [`cookie_len`] = `40 + 2·key_len` bytes: 104 for AEAD 15, 168 for AEAD 17, always a
//! multiple of 4. Opening never panics and reports a [`CookieError`] saying why it
//! failed; the server answers every failure with an NTS NAK.
//!
//! Cookies are the server's most frequent cryptography (one open and one seal per
//! request, eight seals for a full refill), so each master key is expanded once, when
//! it is created or loaded — AES round keys, CMAC subkeys and the first S2V value —
//! and every cookie reuses that state: a seal costs about 150 ns, an open 200 ns, less
//! than half of what re-expanding the key each time cost. Cookies are opaque to
//! clients, so the algorithm is the server's choice; AES-SIV stays because, with the
//! key state cached, it is faster here than AES-128-GCM-SIV (whose RFC 8452 design
//! derives and expands a fresh AES key for every nonce: about 240 ns per seal even with
//! the key-generating key cached), and because keeping it keeps the format: cookies,
//! key files and fleet keys from earlier versions all still work, in both directions.
//!
//! **Key sets** ([`KeySet`]). One current master key seals; the `old_keys_kept`
//! previous ones still open. [`KeySet::rotate_if_due`] rotates every
//! `rotation_period_s`; a dropped key is erased from memory, which gives forward
//! secrecy for cookies older than the retention. Keys come either from the RNG
//! (persisted with `KeySet::save`/`KeySet::load`, feature `std`: an atomic write of a
//! 0600 file, and a load that refuses files accessible by group or others), or, in
//! fleet mode, from HKDF-SHA256 over a shared secret and the epoch number
//! `now / period`, so every server of a fleet holds the same keys with no coordination
//! and no storage.
//!
//! **Cookie jar** ([`CookieJar`]). The client side: up to 8 cookies of one length, each
//! used once, plus how many placeholders to request so the reply refills the jar,
//! optionally within a packet-size budget.
//!
//! **Packets** ([`packet`]). NTS protection of NTPv4 packets on top of `ntp-proto`:
//! the Unique Identifier, NTS Cookie, Cookie Placeholder and Authenticator extension
//! fields (RFC 8915 §5.3–5.7). Pure functions over bytes; packets are verified as
//! received, never re-encoded. The call order:
//!
//! - client: [`packet::seal_request`] (takes a cookie from the jar, asks for enough
//!   new ones to refill it) → send → [`packet::open_response`] (checks mode, origin,
//!   UID and the S2C authenticator; reports an NTS NAK) →
//!   [`packet::OpenedResponse::store_cookies`];
//! - server: [`packet::open_request`] (checks the structure, opens the cookie with the
//!   [`KeySet`], verifies under C2S) → on success [`packet::seal_response`] (fresh
//!   cookies under S2C, never longer than the request); on
//!   [`packet::RequestError::Nak`] answer with [`packet::nts_nak`]; on
//!   [`packet::RequestError::Drop`] send nothing.
//!
//! # Secrets
//!
//! All key material lives in [`zeroize::Zeroizing`] buffers on the heap and is erased
//! on drop; so are the expanded master keys (their AES round keys are overwritten when
//! the key is dropped). Every `Debug` implementation redacts it. Methods that expose
//! raw key bytes or weaken a guarantee are named `dangerous_*`. One exception, as
//! before: the AES key schedules expanded for a single packet from a client's C2S or
//! S2C key are left on the stack, to be overwritten by the next packet's (erasing them
//! through the `aes` crate would double the cost of a packet); the temporaries of
//! every operation (key stream, MAC state, decrypted cookies) are erased.
//!
//! # Example
//!
//! ```
//! use nts_cookie::{AeadAlgorithm, CookieJar, CookieKeys, KeySet, KeySetConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut rng = rand::rng();
//! let now = 1_700_000_000;
//! let config = KeySetConfig { rotation_period_s: 86_400, old_keys_kept: 7 };
//! let server = KeySet::random(config, now, &mut rng)?;
//!
//! // NTS-KE exported these keys on both sides.
//! let keys = CookieKeys::new(AeadAlgorithm::AesSivCmac256, &[1; 32], &[2; 32])?;
//! let cookie = server.seal_cookie(&keys, &mut rng);
//! assert_eq!(cookie.len(), 104);
//!
//! // The client keeps the cookies and sends one per request.
//! let mut jar = CookieJar::with_cookies(keys.clone(), [cookie])?;
//! let sent = jar.take().ok_or("no cookie")?;
//! assert_eq!(jar.placeholders_to_request(), 7);
//!
//! // The server recovers the keys from the cookie alone.
//! let opened = server.open_cookie(&sent)?;
//! assert_eq!(opened, keys);
//!
//! // Packets are protected with the C2S / S2C keys.
//! let nonce = [9; 16];
//! let field = opened.c2s().seal(&nonce, b"packet bytes before the authenticator", b"")?;
//! assert!(keys.c2s().open(&nonce, b"packet bytes before the authenticator", &field)?.is_empty());
//! # Ok(())
//! # }
//! ```

#![cfg_attr(not(feature = "std"), no_std)]
#![warn(clippy::indexing_slicing)]

extern crate alloc;

pub mod aead;
pub mod cookie;
pub mod jar;
#[cfg(feature = "std")]
mod keyfile;
pub mod keyset;
pub mod packet;
mod siv;

pub use aead::{AeadAlgorithm, AeadError, AeadKey, KeyLengthError, TAG_LEN};
pub use cookie::{CookieError, CookieKeys, MAX_COOKIE_LEN, cookie_len};
pub use jar::{CookieJar, JarError, MAX_COOKIES};
#[cfg(feature = "std")]
pub use keyfile::KeyFileError;
pub use keyset::{KeySet, KeySetConfig, KeySetError};
/// The RNG traits in this crate's signatures.
pub use rand_core;
