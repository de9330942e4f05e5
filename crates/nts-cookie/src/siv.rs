//! AES-SIV (RFC 5297) on the `aes` block cipher directly: S2V over CMAC and AES-CTR.
//!
//! Why not the `aes-siv` crate: it expands the AES key schedule (with the decryption
//! round keys, which SIV never uses) for every CTR pass, recomputes the CMAC subkeys
//! at every CMAC finalisation (four times per NTS packet) and recomputes
//! `CMAC(<zero>)`, the first S2V step, on every call. Here a [`SivKey`] holds the
//! expanded encryption-only key schedules, the CMAC subkeys `K1`, `K2` and
//! `D0 = CMAC(<zero>)`; it is built once per master key and reused for every cookie,
//! while a per-client NTS key is expanded once per packet and, when the plaintext is
//! empty (a request authenticator), without the CTR half at all.
//!
//! All block arithmetic is on `u128` read big-endian, as RFC 5297 numbers bits. Each
//! S2V and each CTR pass runs inside one `encrypt_with_backend` closure, so with
//! AES-NI the rounds are inlined and no per-block dispatch is paid.
//!
//! Erasure: a [`SivKey`] erases its key schedules and constants on drop. The
//! temporaries of one operation are erased too (key stream, S2V state, subkeys),
//! except the AES key schedules of the one-shot functions (per-packet client keys):
//! as before with the `aes-siv` crate, those stay on the stack until the next packet
//! overwrites them, because the `aes` crate's own erasure (its `zeroize` feature)
//! writes 700 bytes one volatile byte at a time per schedule, which would double the
//! cost of a packet. The raw key bytes themselves live in erased heap memory
//! ([`crate::AeadKey`]).
//!
//! Checked against the RFC 5297 vectors (A.1, A.2), the AES-SIV-CMAC-512 vector, the
//! captured ntpd-rs packets, and differentially against the `aes-siv` crate.

use core::fmt;

use aes::cipher::array::Array;
use aes::cipher::consts::U16;
use aes::cipher::typenum::Unsigned;
use aes::cipher::{
    BlockCipherEncBackend, BlockCipherEncClosure, BlockCipherEncrypt, BlockSizeUser, KeyInit,
    ParBlocks, ParBlocksSizeUser,
};
use aes::{Aes128Enc, Aes256Enc};
use zeroize::Zeroize;

use crate::aead::{AeadError, TAG_LEN, ct_eq};

/// One AES block as a big-endian integer.
type Word = u128;

/// GF(2¹²⁸) doubling with the RFC 5297 polynomial (`dbl` in §2.3), without branches.
#[inline(always)]
fn dbl(x: Word) -> Word {
    (x << 1) ^ ((x >> 127) * 0x87)
}

/// Reads up to 16 bytes as a block; with fewer, appends the `10*` padding of §2.1.
#[inline(always)]
fn load(bytes: &[u8]) -> Word {
    let mut block = [0u8; TAG_LEN];
    match block.get_mut(..bytes.len()) {
        Some(head) => head.copy_from_slice(bytes),
        None => return 0,
    }
    if let Some(pad) = block.get_mut(bytes.len()) {
        *pad = 0x80;
    }
    Word::from_be_bytes(block)
}

/// Encrypts one block through a backend.
#[inline(always)]
fn encrypt<B: BlockCipherEncBackend<BlockSize = U16>>(backend: &B, x: Word) -> Word {
    let mut block = Array::from(x.to_be_bytes());
    backend.encrypt_block((&mut block).into());
    Word::from_be_bytes(block.into())
}

/// The per-key CMAC constants: `K1`, `K2` (RFC 4493 §2.3) and `D0 = CMAC(<zero>)`,
/// the first value of S2V.
#[derive(Clone, Default)]
struct Subkeys {
    k1: Word,
    k2: Word,
    d0: Word,
}

impl Subkeys {
    #[inline(always)]
    fn derive<B: BlockCipherEncBackend<BlockSize = U16>>(backend: &B) -> Self {
        let k1 = dbl(encrypt(backend, 0));
        let k2 = dbl(k1);
        // CMAC of one complete zero block: E(0 ⊕ 0 ⊕ K1).
        let d0 = encrypt(backend, k1);
        Self { k1, k2, d0 }
    }
}

impl Drop for Subkeys {
    fn drop(&mut self) {
        self.k1.zeroize();
        self.k2.zeroize();
        self.d0.zeroize();
    }
}

/// Splits CMAC input into its complete non-final blocks and the last block (1..=16
/// bytes; empty only for an empty input, which CMAC pads to one block).
#[inline(always)]
fn split_last(data: &[u8]) -> (&[u8], &[u8]) {
    let last_len = match data.len() % TAG_LEN {
        0 if data.is_empty() => 0,
        0 => TAG_LEN,
        r => r,
    };
    data.split_at(data.len() - last_len)
}

/// The last CMAC step (RFC 4493 §2.4): `last` (0..=16 bytes) is padded and masked
/// with `K1` or `K2` and encrypted onto the chaining value `state`.
#[inline(always)]
fn cmac_last<B: BlockCipherEncBackend<BlockSize = U16>>(
    backend: &B,
    keys: &Subkeys,
    state: Word,
    last: &[u8],
) -> Word {
    let mask = if last.len() == TAG_LEN {
        keys.k1
    } else {
        keys.k2
    };
    encrypt(backend, state ^ load(last) ^ mask)
}

/// Most CMAC chains S2V runs side by side: the message's and up to three headers'
/// (NTS uses two headers, RFC 5297 A.2 three).
const LANES: usize = 4;

/// S2V (RFC 5297 §2.4) over `headers` and `message`, inside one backend call.
///
/// The CMAC chains of the headers and of the message's leading blocks do not depend
/// on each other (only the message's last 16 bytes are masked with the running
/// value `D`), so they advance in lockstep and the processor overlaps their AES
/// latencies; the serial depth is the longest chain, not the sum.
struct S2v<'a> {
    /// Precomputed subkeys, or `None` to derive them here (one-shot keys).
    subkeys: Option<&'a Subkeys>,
    headers: &'a [&'a [u8]],
    message: &'a [u8],
    out: &'a mut Word,
}

impl BlockSizeUser for S2v<'_> {
    type BlockSize = U16;
}

impl BlockCipherEncClosure for S2v<'_> {
    #[inline(always)]
    fn call<B: BlockCipherEncBackend<BlockSize = U16>>(self, backend: &B) {
        let message = self.message;
        // The message's blocks that `xorend` leaves alone: all complete blocks before
        // the block holding its 16th-last byte. The rest is 16..=31 bytes (or the
        // whole message, if shorter than a block).
        let head_len = message.len().saturating_sub(TAG_LEN) / TAG_LEN * TAG_LEN;
        let (head, tail) = message.split_at(head_len);

        // Lane 0: the message head; lanes 1..: the first headers' non-final blocks.
        let mut input: [&[u8]; LANES] = [&[]; LANES];
        let mut state: [Word; LANES] = [0; LANES];
        let mut lasts: [&[u8]; LANES] = [&[]; LANES];
        input[0] = head;
        for ((lane, last), header) in input
            .iter_mut()
            .zip(lasts.iter_mut())
            .skip(1)
            .zip(self.headers)
        {
            (*lane, *last) = split_last(header);
        }
        let rounds = input
            .iter()
            .map(|lane| lane.len() / TAG_LEN)
            .max()
            .unwrap_or(0);
        for round in 0..rounds {
            let at = round * TAG_LEN;
            for (lane, s) in input.iter().zip(state.iter_mut()) {
                if let Some(block) = lane.get(at..at + TAG_LEN) {
                    *s = encrypt(backend, *s ^ load(block));
                }
            }
        }

        let derived;
        let keys = match self.subkeys {
            Some(keys) => keys,
            None => {
                derived = Subkeys::derive(backend);
                &derived
            }
        };
        let mut d = keys.d0;
        for (i, header) in self.headers.iter().enumerate() {
            let mac = match (state.get(i + 1), lasts.get(i + 1)) {
                (Some(&s), Some(last)) if i + 1 < LANES => cmac_last(backend, keys, s, last),
                // Headers beyond the lanes, one after the other.
                _ => {
                    let (blocks, last) = split_last(header);
                    let mut s = 0;
                    for block in blocks.chunks_exact(TAG_LEN) {
                        s = encrypt(backend, s ^ load(block));
                    }
                    cmac_last(backend, keys, s, last)
                }
            };
            d = dbl(d) ^ mac;
        }

        *self.out = if message.len() >= TAG_LEN {
            // T = message xorend D. The tail is A (16 bytes) then B (r = 0..=15
            // bytes); its last 16 bytes are A[r..] ‖ B, so D lands on both.
            let (a, b) = tail.split_at(TAG_LEN);
            let r = b.len();
            let a = load(a) ^ (d >> (8 * r));
            if r == 0 {
                encrypt(backend, state[0] ^ a ^ keys.k1)
            } else {
                let s = encrypt(backend, state[0] ^ a);
                encrypt(backend, s ^ load(b) ^ (d << (8 * (TAG_LEN - r))) ^ keys.k2)
            }
        } else {
            // T = dbl(D) ⊕ pad(message): one complete block.
            encrypt(backend, dbl(d) ^ load(message) ^ keys.k1)
        };
        d.zeroize();
        state.zeroize();
    }
}

/// AES-CTR with SIV's IV (the two bits of §2.5 cleared), inside one backend call.
struct Ctr<'a> {
    iv: Word,
    body: &'a mut [u8],
}

impl BlockSizeUser for Ctr<'_> {
    type BlockSize = U16;
}

impl BlockCipherEncClosure for Ctr<'_> {
    #[inline(always)]
    fn call<B: BlockCipherEncBackend<BlockSize = U16>>(self, backend: &B) {
        let mut counter = self.iv & !((1 << 63) | (1 << 31));
        let par = <B as ParBlocksSizeUser>::ParBlocksSize::USIZE;
        let mut stream = ParBlocks::<B>::default();
        for chunk in self.body.chunks_mut(par * TAG_LEN) {
            let blocks = chunk.len().div_ceil(TAG_LEN);
            if blocks == 1 {
                if let Some(block) = stream.get_mut(0) {
                    *block = Array::from(counter.to_be_bytes());
                    counter = counter.wrapping_add(1);
                    backend.encrypt_block(block.into());
                }
            } else {
                for block in stream.iter_mut().take(blocks) {
                    *block = Array::from(counter.to_be_bytes());
                    counter = counter.wrapping_add(1);
                }
                backend.encrypt_par_blocks((&mut stream).into());
            }
            for (data, key) in chunk.chunks_mut(TAG_LEN).zip(stream.iter()) {
                let key: [u8; TAG_LEN] = (*key).into();
                match <&mut [u8; TAG_LEN]>::try_from(&mut *data) {
                    Ok(data) => {
                        *data =
                            (Word::from_ne_bytes(*data) ^ Word::from_ne_bytes(key)).to_ne_bytes();
                    }
                    Err(_) => {
                        for (byte, k) in data.iter_mut().zip(key) {
                            *byte ^= k;
                        }
                    }
                }
            }
        }
        // The key stream is as secret as the plaintext (the ciphertext is public).
        wipe(&mut stream);
        counter.zeroize();
    }
}

/// Overwrites a stack temporary with its default value. `black_box` keeps the
/// compiler from treating the store as dead, at the cost of an ordinary store rather
/// than `zeroize`'s byte-by-byte volatile writes (which would cost about as much as
/// the AES work on a 128-byte key stream).
#[inline(always)]
fn wipe<T: Default>(value: &mut T) {
    *value = T::default();
    core::hint::black_box(value);
}

/// The two AES variants behind AES-SIV-CMAC-256 and -512.
pub(crate) trait SivAes: BlockCipherEncrypt<BlockSize = U16> + KeyInit + Clone {
    /// The AES key length: half the SIV key.
    const KEY_LEN: usize;
}

impl SivAes for Aes128Enc {
    const KEY_LEN: usize = 16;
}

impl SivAes for Aes256Enc {
    const KEY_LEN: usize = 32;
}

/// Splits a SIV key into the CMAC half and the CTR half.
fn halves<C: SivAes>(key: &[u8]) -> Result<(C, &[u8]), AeadError> {
    if key.len() != 2 * C::KEY_LEN {
        return Err(AeadError::Cipher);
    }
    let (mac, ctr) = key.split_at(C::KEY_LEN);
    let mac = C::new_from_slice(mac).map_err(|_| AeadError::Cipher)?;
    Ok((mac, ctr))
}

fn s2v<C: SivAes>(mac: &C, subkeys: Option<&Subkeys>, headers: &[&[u8]], message: &[u8]) -> Word {
    let mut out = 0;
    mac.encrypt_with_backend(S2v {
        subkeys,
        headers,
        message,
        out: &mut out,
    });
    out
}

fn ctr<C: SivAes>(cipher: &C, iv: Word, body: &mut [u8]) {
    if !body.is_empty() {
        cipher.encrypt_with_backend(Ctr { iv, body });
    }
}

/// Checks `computed` against `tag` without an early exit; on a mismatch erases the
/// decrypted `body`.
fn verify(mut computed: Word, tag: &[u8; TAG_LEN], body: &mut [u8]) -> Result<(), AeadError> {
    let mut bytes = computed.to_be_bytes();
    let ok = ct_eq(&bytes, tag);
    bytes.zeroize();
    computed.zeroize();
    if ok {
        Ok(())
    } else {
        body.zeroize();
        Err(AeadError::Authentication)
    }
}

/// One-shot SIV encryption in place with a raw `2 · C::KEY_LEN`-byte key: S2V over
/// `headers` and `body`, then CTR. Returns the tag.
pub(crate) fn seal_once<C: SivAes>(
    key: &[u8],
    headers: &[&[u8]],
    body: &mut [u8],
) -> Result<[u8; TAG_LEN], AeadError> {
    let (mac, ctr_key) = halves::<C>(key)?;
    let v = s2v(&mac, None, headers, body);
    if !body.is_empty() {
        let ctr_cipher = C::new_from_slice(ctr_key).map_err(|_| AeadError::Cipher)?;
        ctr(&ctr_cipher, v, body);
    }
    Ok(v.to_be_bytes())
}

/// One-shot SIV decryption in place, checked against `tag`. On failure `body` is
/// zeroed.
pub(crate) fn open_once<C: SivAes>(
    key: &[u8],
    headers: &[&[u8]],
    body: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> Result<(), AeadError> {
    let (mac, ctr_key) = halves::<C>(key)?;
    if !body.is_empty() {
        let ctr_cipher = C::new_from_slice(ctr_key).map_err(|_| AeadError::Cipher)?;
        ctr(&ctr_cipher, Word::from_be_bytes(*tag), body);
    }
    verify(s2v(&mac, None, headers, body), tag, body)
}

/// An AES-SIV key with its key schedules and CMAC constants expanded, for a key that
/// is used many times (a server master key).
///
/// Erased on drop: the CMAC constants are zeroized, and both AES key schedules are
/// overwritten with those of the all-zero key (the `aes` crate erases its round keys
/// itself only with its `zeroize` feature, whose byte-by-byte erasure of the whole
/// 700-byte cipher state on every drop would cost the per-packet keys more than the
/// AES work; this way only the long-lived keys pay, once).
#[derive(Clone)]
pub(crate) struct SivKey<C: SivAes> {
    mac: C,
    ctr: C,
    subkeys: Subkeys,
}

impl<C: SivAes> SivKey<C> {
    /// Expands a raw `2 · C::KEY_LEN`-byte SIV key.
    pub(crate) fn new(key: &[u8]) -> Result<Self, AeadError> {
        let (mac, ctr_key) = halves::<C>(key)?;
        let ctr = C::new_from_slice(ctr_key).map_err(|_| AeadError::Cipher)?;
        let mut subkeys = Subkeys::default();
        mac.encrypt_with_backend(DeriveSubkeys { out: &mut subkeys });
        Ok(Self { mac, ctr, subkeys })
    }

    /// As [`seal_once`], with the expanded key.
    pub(crate) fn seal(&self, headers: &[&[u8]], body: &mut [u8]) -> [u8; TAG_LEN] {
        let v = s2v(&self.mac, Some(&self.subkeys), headers, body);
        ctr(&self.ctr, v, body);
        v.to_be_bytes()
    }

    /// As [`open_once`], with the expanded key.
    pub(crate) fn open(
        &self,
        headers: &[&[u8]],
        body: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadError> {
        ctr(&self.ctr, Word::from_be_bytes(*tag), body);
        verify(
            s2v(&self.mac, Some(&self.subkeys), headers, body),
            tag,
            body,
        )
    }
}

impl<C: SivAes> Drop for SivKey<C> {
    fn drop(&mut self) {
        let zero = [0u8; 32];
        if let Some(zero) = zero.get(..C::KEY_LEN) {
            if let (Ok(mac), Ok(ctr)) = (C::new_from_slice(zero), C::new_from_slice(zero)) {
                self.mac = mac;
                self.ctr = ctr;
            }
        }
        // The subkeys zeroize themselves. Keep the overwrite from being optimised
        // away as a store to memory that is about to be freed.
        core::hint::black_box(&mut *self);
    }
}

impl<C: SivAes> fmt::Debug for SivKey<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SivKey(<redacted>)")
    }
}

/// Computes [`Subkeys`] inside one backend call.
struct DeriveSubkeys<'a> {
    out: &'a mut Subkeys,
}

impl BlockSizeUser for DeriveSubkeys<'_> {
    type BlockSize = U16;
}

impl BlockCipherEncClosure for DeriveSubkeys<'_> {
    fn call<B: BlockCipherEncBackend<BlockSize = U16>>(self, backend: &B) {
        *self.out = Subkeys::derive(backend);
    }
}

#[cfg(test)]
mod tests {
    use aes_siv::siv::{Aes128Siv, Aes256Siv};
    use hex_literal::hex;
    use proptest::prelude::*;

    use super::*;

    fn seal_both<C: SivAes>(key: &[u8], headers: &[&[u8]], pt: &[u8]) -> Vec<u8> {
        let mut once = pt.to_vec();
        let tag = seal_once::<C>(key, headers, &mut once).unwrap();
        let cached = SivKey::<C>::new(key).unwrap();
        let mut again = pt.to_vec();
        assert_eq!(cached.seal(headers, &mut again), tag);
        assert_eq!(again, once);
        let mut back = once.clone();
        open_once::<C>(key, headers, &mut back, &tag).unwrap();
        assert_eq!(back, pt);
        let mut back = once.clone();
        cached.open(headers, &mut back, &tag).unwrap();
        assert_eq!(back, pt);
        let mut out = tag.to_vec();
        out.extend_from_slice(&once);
        out
    }

    #[test]
    fn rfc5297_a1() {
        let key = hex!("fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
        let ad = hex!("101112131415161718191a1b1c1d1e1f2021222324252627");
        let pt = hex!("112233445566778899aabbccddee");
        assert_eq!(
            seal_both::<Aes128Enc>(&key, &[&ad], &pt),
            hex!("85632d07c6e8f37f950acd320a2ecc93 40c02b9690c4dc04daef7f6afe5c")
        );
    }

    #[test]
    fn rfc5297_a2() {
        let key = hex!("7f7e7d7c7b7a79787776757473727170404142434445464748494a4b4c4d4e4f");
        let ad1 = hex!(
            "00112233445566778899aabbccddeeffdeaddadadeaddadaffeeddccbbaa99887766554433221100"
        );
        let ad2 = hex!("102030405060708090a0");
        let nonce = hex!("09f911029d74e35bd84156c5635688c0");
        let pt = hex!(
            "7468697320697320736f6d6520706c61696e7465787420746f20656e6372797074207573696e67205349562d414553"
        );
        assert_eq!(
            seal_both::<Aes128Enc>(&key, &[&ad1, &ad2, &nonce], &pt),
            hex!(
                "7bdb6e3b432667eb06f4d14bff2fbd0f cb900f2fddbe404326601965c889bf17"
                "dba77ceb094fa663b7a3f748ba8af829ea64ad544a272e9c485b62a3fd5c0d"
            )
        );
    }

    #[test]
    fn aes_siv_cmac_512_vector() {
        let key = hex!(
            "fffefdfcfbfaf9f8f7f6f5f4f3f2f1f06f6e6d6c6b6a69686766656463626160"
            "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f"
        );
        let ad = hex!("101112131415161718191a1b1c1d1e1f2021222324252627");
        let pt = hex!("112233445566778899aabbccddee");
        assert_eq!(
            seal_both::<Aes256Enc>(&key, &[&ad], &pt),
            hex!("f125274c598065cfc26b0e71575029088b035217e380cac8919ee800c126")
        );
    }

    #[test]
    fn wrong_key_length_is_refused() {
        assert!(SivKey::<Aes128Enc>::new(&[0; 31]).is_err());
        assert!(seal_once::<Aes256Enc>(&[0; 32], &[], &mut []).is_err());
        assert!(open_once::<Aes128Enc>(&[0; 64], &[], &mut [], &[0; 16]).is_err());
    }

    #[test]
    fn failed_open_erases_the_body() {
        let key = [7u8; 32];
        let mut body = *b"some secret plaintext";
        let mut tag = seal_once::<Aes128Enc>(&key, &[b"ad"], &mut body).unwrap();
        tag[3] ^= 1;
        assert_eq!(
            open_once::<Aes128Enc>(&key, &[b"ad"], &mut body, &tag),
            Err(AeadError::Authentication)
        );
        assert_eq!(body, [0; 21]);
    }

    /// The `aes-siv` crate's answer for the same input.
    fn reference<S: KeyInit>(
        key: &[u8],
        headers: &[&[u8]],
        pt: &[u8],
        encrypt: impl Fn(&mut S, &[&[u8]], &[u8]) -> Vec<u8>,
    ) -> Vec<u8> {
        let mut cipher = S::new_from_slice(key).unwrap();
        encrypt(&mut cipher, headers, pt)
    }

    proptest! {
        /// Every length boundary of S2V and CTR (empty, < 16, = 16, 17..31, long;
        /// 0..=5 headers, so also past the lanes) agrees with the `aes-siv` crate, both key
        /// sizes.
        #[test]
        fn matches_aes_siv_crate(
            key in any::<[u8; 64]>(),
            headers in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..70), 0..6),
            pt in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let headers: Vec<&[u8]> = headers.iter().map(Vec::as_slice).collect();
            let ours = seal_both::<Aes128Enc>(&key[..32], &headers, &pt);
            let theirs = reference::<Aes128Siv>(&key[..32], &headers, &pt, |c, h, p| c.encrypt(h, p).unwrap());
            prop_assert_eq!(ours, theirs);
            let ours = seal_both::<Aes256Enc>(&key, &headers, &pt);
            let theirs = reference::<Aes256Siv>(&key, &headers, &pt, |c, h, p| c.encrypt(h, p).unwrap());
            prop_assert_eq!(ours, theirs);
        }
    }
}
