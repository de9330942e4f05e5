//! Property tests: opening never panics, and sealing round-trips arbitrary keys.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns may unwrap too

use nts_cookie::cookie::{COOKIE_HEADER_LEN, MAX_COOKIE_LEN};
use nts_cookie::{AeadAlgorithm, AeadKey, CookieKeys, KeySet, KeySetConfig};
use proptest::prelude::*;

fn fleet() -> KeySet {
    KeySet::fleet(
        KeySetConfig {
            rotation_period_s: 3600,
            old_keys_kept: 3,
        },
        &[0x42; 32],
        1_700_000_000,
    )
    .unwrap()
}

fn algorithm() -> impl Strategy<Value = AeadAlgorithm> {
    proptest::sample::select(AeadAlgorithm::ALL.to_vec())
}

proptest! {
    #[test]
    fn open_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = fleet().open_cookie(&bytes);
    }

    /// Arbitrary bytes behind a held key id and a consistent length field reach the
    /// AEAD and fail authentication.
    #[test]
    fn forged_body_fails_authentication(body in proptest::collection::vec(any::<u8>(), 18..=(MAX_COOKIE_LEN - COOKIE_HEADER_LEN))) {
        let set = fleet();
        let mut cookie = set.current_key_id().to_be_bytes().to_vec();
        cookie.extend_from_slice(&u16::try_from(body.len() - 16).unwrap().to_be_bytes());
        cookie.extend_from_slice(&[0; 16]);
        cookie.extend_from_slice(&body);
        let cookie = &cookie[..];
        prop_assert!(set.open_cookie(cookie).is_err());
    }

    #[test]
    fn seal_open_round_trips(alg in algorithm(), seed in any::<[u8; 64]>(), seed2 in any::<[u8; 64]>(), nonce in any::<[u8; 16]>()) {
        let keys = CookieKeys::new(alg, &seed[..alg.key_len()], &seed2[..alg.key_len()]).unwrap();
        let set = fleet();
        let cookie = set.dangerous_seal_cookie_with_nonce(&keys, &nonce);
        prop_assert_eq!(cookie.len(), nts_cookie::cookie_len(alg));
        prop_assert_eq!(set.open_cookie(&cookie).unwrap(), keys);
    }

    #[test]
    fn aead_round_trips(alg in algorithm(), key in any::<[u8; 64]>(), nonce in proptest::collection::vec(any::<u8>(), 1..40),
                        ad in proptest::collection::vec(any::<u8>(), 0..100), pt in proptest::collection::vec(any::<u8>(), 0..100)) {
        let key = AeadKey::new(alg, &key[..alg.key_len()]).unwrap();
        let nonce = if alg.accepts_any_nonce_len() { nonce } else { vec![7; alg.nonce_len()] };
        let ct = key.seal(&nonce, &ad, &pt).unwrap();
        prop_assert_eq!(ct.len(), pt.len() + 16);
        prop_assert_eq!(key.open(&nonce, &ad, &ct).unwrap(), pt);
    }

    #[test]
    fn aead_open_arbitrary_never_panics(alg in algorithm(), nonce in proptest::collection::vec(any::<u8>(), 0..20),
                                        ct in proptest::collection::vec(any::<u8>(), 0..64)) {
        let key = AeadKey::new(alg, &vec![1; alg.key_len()]).unwrap();
        prop_assert!(key.open(&nonce, b"", &ct).is_err());
    }
}
