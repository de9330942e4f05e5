//! Fleet mode: independently built key sets agree through the shared secret alone.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns may unwrap too

use nts_cookie::{AeadAlgorithm, CookieError, CookieKeys, KeySet, KeySetConfig};
use rand::SeedableRng;
use rand::rngs::StdRng;

const PERIOD: u64 = 86_400;
const T: u64 = 1_700_000_000;

fn config(kept: usize) -> KeySetConfig {
    KeySetConfig {
        rotation_period_s: PERIOD,
        old_keys_kept: kept,
    }
}

fn keys() -> CookieKeys {
    CookieKeys::generate(AeadAlgorithm::AesSivCmac256, &mut StdRng::seed_from_u64(1))
}

#[test]
fn same_secret_same_time_interoperate() {
    let secret = b"a fleet secret of at least 32 bytes!!";
    let mut r = StdRng::seed_from_u64(2);
    let a = KeySet::fleet(config(2), secret, T).unwrap();
    let b = KeySet::fleet(config(2), secret, T + 100).unwrap();
    assert!(a.is_fleet());
    assert_eq!(a.current_key_id(), u32::try_from(T / PERIOD).unwrap());
    let ca = a.seal_cookie(&keys(), &mut r);
    let cb = b.seal_cookie(&keys(), &mut r);
    assert_eq!(b.open_cookie(&ca).unwrap(), keys());
    assert_eq!(a.open_cookie(&cb).unwrap(), keys());
}

#[test]
fn different_secrets_do_not() {
    let mut r = StdRng::seed_from_u64(3);
    let a = KeySet::fleet(config(2), &[1; 32], T).unwrap();
    let b = KeySet::fleet(config(2), &[2; 32], T).unwrap();
    let c = a.seal_cookie(&keys(), &mut r);
    assert_eq!(b.open_cookie(&c), Err(CookieError::Authentication));
    // the secret is only prefixed, not truncated
    let mut long = [1u8; 33];
    let d = KeySet::fleet(config(2), &long, T).unwrap();
    assert_eq!(d.open_cookie(&c), Err(CookieError::Authentication));
    long[32] = 0;
    assert!(KeySet::fleet(config(2), &long[..31], T).is_err());
}

#[test]
fn old_epochs_accepted_future_and_expired_rejected() {
    let secret = [9u8; 32];
    let mut r = StdRng::seed_from_u64(4);
    let kept = 2;
    let now = KeySet::fleet(config(kept), &secret, T).unwrap();
    for back in 0..=5u64 {
        let then = KeySet::fleet(config(kept), &secret, T - back * PERIOD).unwrap();
        let cookie = then.seal_cookie(&keys(), &mut r);
        let result = now.open_cookie(&cookie);
        if back <= kept as u64 {
            assert_eq!(result.unwrap(), keys(), "{back} epochs back");
        } else {
            assert_eq!(
                result,
                Err(CookieError::UnknownKeyId(then.current_key_id())),
                "{back} epochs back"
            );
        }
    }
    let future = KeySet::fleet(config(kept), &secret, T + PERIOD).unwrap();
    let cookie = future.seal_cookie(&keys(), &mut r);
    assert!(matches!(
        now.open_cookie(&cookie),
        Err(CookieError::UnknownKeyId(_))
    ));
}

#[test]
fn epoch_boundary() {
    let secret = [5u8; 32];
    let mut r = StdRng::seed_from_u64(5);
    let boundary = (T / PERIOD + 1) * PERIOD;
    let before = KeySet::fleet(config(1), &secret, boundary - 1).unwrap();
    let after = KeySet::fleet(config(1), &secret, boundary).unwrap();
    assert_eq!(after.current_key_id(), before.current_key_id() + 1);
    assert_eq!(before.next_rotation_s(), boundary);
    let old = before.seal_cookie(&keys(), &mut r);
    let new = after.seal_cookie(&keys(), &mut r);
    // the server past the boundary still accepts the previous epoch ...
    assert_eq!(after.open_cookie(&old).unwrap(), keys());
    // ... but the one behind rejects the next epoch until it rotates itself
    let mut lagging = before.clone();
    assert!(matches!(
        lagging.open_cookie(&new),
        Err(CookieError::UnknownKeyId(_))
    ));
    assert_eq!(lagging.rotate_if_due(boundary - 1, &mut r), 0);
    assert_eq!(lagging.rotate_if_due(boundary, &mut r), 1);
    assert_eq!(lagging.open_cookie(&new).unwrap(), keys());
    assert_eq!(lagging.open_cookie(&old).unwrap(), keys());
    assert_eq!(
        lagging.key_ids().collect::<Vec<_>>(),
        after.key_ids().collect::<Vec<_>>()
    );
    // a rotated set and a freshly built one are identical in behaviour
    assert_eq!(
        lagging.dangerous_seal_cookie_with_nonce(&keys(), &[1; 16]),
        after.dangerous_seal_cookie_with_nonce(&keys(), &[1; 16])
    );
    // after kept + 1 more epochs the old cookie expires
    assert_eq!(lagging.rotate_if_due(boundary + PERIOD, &mut r), 1);
    assert!(matches!(
        lagging.open_cookie(&old),
        Err(CookieError::UnknownKeyId(_))
    ));
    assert_eq!(lagging.open_cookie(&new).unwrap(), keys());
}

#[test]
fn fleet_is_not_persisted() {
    let set = KeySet::fleet(config(1), &[0; 32], T).unwrap();
    assert!(set.to_bytes().is_err());
    let dir = tempfile::tempdir().unwrap();
    assert!(set.save(dir.path().join("keys")).is_err());
    assert!(!dir.path().join("keys").exists());
}
