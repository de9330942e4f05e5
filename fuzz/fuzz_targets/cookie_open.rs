//! Opens arbitrary bytes as a cookie with a fixed fleet key set.
//!
//! Oracle: never panics; a cookie that opens re-seals (same nonce, SIV is
//! deterministic) to exactly the input bytes and re-opens to the same keys. Inputs
//! starting with an odd byte instead build a valid cookie from the input, flip one
//! chosen byte, and check that only the unmodified cookie opens — so the fuzzer
//! exercises the success path without a seed corpus.
#![no_main]

mod common;

use common::key_set;
use libfuzzer_sys::fuzz_target;
use nts_cookie::{AeadAlgorithm, CookieKeys, KeySet};

fn check_reseal(set: &KeySet, cookie: &[u8], keys: &CookieKeys) {
    let nonce: [u8; 16] = cookie[6..22]
        .try_into()
        .expect("opened cookies have a nonce");
    // Only cookies under the current key re-seal to the same bytes.
    if cookie[..4] == set.current_key_id().to_be_bytes() {
        let again = set.dangerous_seal_cookie_with_nonce(keys, &nonce);
        assert_eq!(again, cookie, "re-seal differs");
    }
    let fresh = set.dangerous_seal_cookie_with_nonce(keys, &nonce);
    assert_eq!(&set.open_cookie(&fresh).expect("fresh cookie opens"), keys);
}

fuzz_target!(|data: &[u8]| {
    let set = key_set();
    let Some((&mode, rest)) = data.split_first() else {
        let _ = set.open_cookie(data);
        return;
    };
    if mode & 1 == 0 {
        if let Ok(keys) = set.open_cookie(rest) {
            check_reseal(set, rest, &keys);
        }
        return;
    }
    // Structured: build a real cookie from the input.
    let algs = AeadAlgorithm::ALL;
    let alg = algs[usize::from(mode >> 1) % algs.len()];
    let byte = |i: usize| rest.get(i % rest.len().max(1)).copied().unwrap_or(0);
    let c2s: Vec<u8> = (0..alg.key_len()).map(|i| byte(i)).collect();
    let s2c: Vec<u8> = (0..alg.key_len()).map(|i| byte(i + 64) ^ 0x5c).collect();
    let nonce: [u8; 16] = std::array::from_fn(|i| byte(i + 128));
    let keys = CookieKeys::new(alg, &c2s, &s2c).expect("key lengths match the algorithm");
    let mut cookie = set.dangerous_seal_cookie_with_nonce(&keys, &nonce);
    assert_eq!(cookie.len(), nts_cookie::cookie_len(alg));
    let pos = usize::from(byte(200)) % cookie.len();
    let flip = byte(201);
    cookie[pos] ^= flip;
    match set.open_cookie(&cookie) {
        Ok(opened) => {
            assert_eq!(flip, 0, "a modified cookie opened");
            assert_eq!(opened, keys);
            check_reseal(set, &cookie, &opened);
        }
        Err(e) => assert_ne!(flip, 0, "an unmodified cookie failed: {e}"),
    }
});
