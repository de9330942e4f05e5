//! Cookie sealing and opening through the public API, including forgeries and rotation.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns may unwrap too

use nts_cookie::cookie::{COOKIE_HEADER_LEN, MIN_COOKIE_LEN};
use nts_cookie::{AeadAlgorithm, CookieError, CookieKeys, KeySet, KeySetConfig, cookie_len};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

fn rng() -> StdRng {
    StdRng::seed_from_u64(0x5eed)
}

fn config(kept: usize) -> KeySetConfig {
    KeySetConfig {
        rotation_period_s: 3600,
        old_keys_kept: kept,
    }
}

#[test]
fn round_trip_and_sizes() {
    let mut r = rng();
    let set = KeySet::random(config(3), 0, &mut r).unwrap();
    for (alg, len) in [
        (AeadAlgorithm::AesSivCmac256, 104),
        (AeadAlgorithm::AesSivCmac512, 168),
    ] {
        let keys = CookieKeys::generate(alg, &mut r);
        let cookie = set.seal_cookie(&keys, &mut r);
        assert_eq!(cookie.len(), len);
        assert_eq!(cookie.len(), cookie_len(alg));
        assert_eq!(cookie.len() % 4, 0);
        assert_eq!(cookie[..4], set.current_key_id().to_be_bytes());
        assert_eq!(
            usize::from(u16::from_be_bytes([cookie[4], cookie[5]])),
            len - COOKIE_HEADER_LEN
        );
        let opened = set.open_cookie(&cookie).unwrap();
        assert_eq!(opened, keys);
        assert_eq!(opened.algorithm(), alg);
        // two cookies for the same keys differ (random nonce) and both open
        let again = set.seal_cookie(&keys, &mut r);
        assert_ne!(again, cookie);
        assert_eq!(set.open_cookie(&again).unwrap(), keys);
        // the cookie holds no key bytes in the clear
        let k = keys.c2s().dangerous_key_bytes();
        assert!(!cookie.windows(8).any(|w| w == &k[..8]));
    }
}

#[test]
fn c2s_and_s2c_are_not_swapped() {
    let mut r = rng();
    let set = KeySet::random(config(0), 0, &mut r).unwrap();
    let keys = CookieKeys::new(AeadAlgorithm::AesSivCmac256, &[0xC2; 32], &[0x5C; 32]).unwrap();
    let opened = set.open_cookie(&set.seal_cookie(&keys, &mut r)).unwrap();
    assert_eq!(opened.c2s().dangerous_key_bytes(), &[0xC2; 32]);
    assert_eq!(opened.s2c().dangerous_key_bytes(), &[0x5C; 32]);
}

#[test]
fn forgeries_are_rejected_with_the_right_error() {
    let mut r = rng();
    let set = KeySet::random(config(1), 0, &mut r).unwrap();
    let keys = CookieKeys::generate(AeadAlgorithm::AesSivCmac256, &mut r);
    let cookie = set.seal_cookie(&keys, &mut r);
    let id = set.current_key_id();

    // random bytes of the right length: almost surely an unknown key id
    let mut random = vec![0u8; cookie.len()];
    r.fill_bytes(&mut random);
    if u32::from_be_bytes(random[..4].try_into().unwrap()) != id {
        assert!(matches!(
            set.open_cookie(&random),
            Err(CookieError::UnknownKeyId(_)) | Err(CookieError::LengthMismatch { .. })
        ));
    }
    // random body behind a valid header: authentication failure
    let mut forged = cookie[..COOKIE_HEADER_LEN].to_vec();
    let mut body = vec![0u8; cookie.len() - COOKIE_HEADER_LEN];
    r.fill_bytes(&mut body);
    forged.extend_from_slice(&body);
    assert_eq!(set.open_cookie(&forged), Err(CookieError::Authentication));

    // any flipped byte: header bytes give their own errors, the rest fails authentication
    for i in 0..cookie.len() {
        let mut bad = cookie.clone();
        bad[i] ^= 0x01;
        let err = set.open_cookie(&bad).unwrap_err();
        match i {
            0..4 => assert_eq!(
                err,
                CookieError::UnknownKeyId(u32::from_be_bytes(bad[..4].try_into().unwrap())),
                "byte {i}"
            ),
            4..6 => assert!(
                matches!(err, CookieError::LengthMismatch { .. }),
                "byte {i}: {err:?}"
            ),
            _ => assert_eq!(err, CookieError::Authentication, "byte {i}"),
        }
    }

    // truncated and extended
    assert_eq!(
        set.open_cookie(&cookie[..MIN_COOKIE_LEN - 1]),
        Err(CookieError::TooShort(MIN_COOKIE_LEN - 1))
    );
    assert_eq!(set.open_cookie(&[]), Err(CookieError::TooShort(0)));
    assert!(matches!(
        set.open_cookie(&cookie[..cookie.len() - 4]),
        Err(CookieError::LengthMismatch { .. })
    ));
    let mut long = cookie.clone();
    long.extend_from_slice(&[0; 4]);
    assert!(matches!(
        set.open_cookie(&long),
        Err(CookieError::LengthMismatch { .. })
    ));
    assert_eq!(set.open_cookie(&[0; 200]), Err(CookieError::TooLong(200)));

    // a truncated cookie with a consistent length field still fails authentication
    let mut short = cookie[..cookie.len() - 4].to_vec();
    let ct_len = u16::try_from(short.len() - COOKIE_HEADER_LEN).unwrap();
    short[4..6].copy_from_slice(&ct_len.to_be_bytes());
    assert_eq!(set.open_cookie(&short), Err(CookieError::Authentication));

    // a cookie from another (random) key set with the same id layout
    let other = KeySet::random(config(1), 0, &mut r).unwrap();
    let foreign = other.seal_cookie(&keys, &mut r);
    assert!(matches!(
        set.open_cookie(&foreign),
        Err(CookieError::UnknownKeyId(_))
    ));
}

/// Builds cookies by hand under a fleet master key derived as documented
/// (HKDF-SHA256, salt `FLEET_HKDF_SALT`, info `FLEET_HKDF_LABEL ‖ epoch u64 BE`), which
/// pins the derivation and the cookie layout, and reaches the inner-plaintext errors.
#[test]
fn documented_layout_and_inner_errors() {
    use nts_cookie::AeadKey;
    use nts_cookie::keyset::{FLEET_HKDF_LABEL, FLEET_HKDF_SALT};

    let secret = [3u8; 32];
    let epoch = 1234u64;
    let set = KeySet::fleet(config(0), &secret, epoch * 3600 + 5).unwrap();
    let mut info = FLEET_HKDF_LABEL.to_vec();
    info.extend_from_slice(&epoch.to_be_bytes());
    let mut master = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(FLEET_HKDF_SALT), &secret)
        .expand(&info, &mut master)
        .unwrap();
    let master = AeadKey::new(AeadAlgorithm::AesSivCmac256, &master).unwrap();
    let key_id = u32::try_from(epoch).unwrap();
    let nonce = [7u8; 16];
    let build = |plaintext: &[u8]| {
        let ct = master
            .seal(&nonce, &key_id.to_be_bytes(), plaintext)
            .unwrap();
        let mut c = key_id.to_be_bytes().to_vec();
        c.extend_from_slice(&u16::try_from(ct.len()).unwrap().to_be_bytes());
        c.extend_from_slice(&nonce);
        c.extend_from_slice(&ct);
        c
    };

    let keys = CookieKeys::new(AeadAlgorithm::AesSivCmac256, &[0xC2; 32], &[0x5C; 32]).unwrap();
    let mut pt = vec![0, 15];
    pt.extend_from_slice(&[0x5C; 32]); // S2C first
    pt.extend_from_slice(&[0xC2; 32]);
    let by_hand = build(&pt);
    assert_eq!(by_hand, set.dangerous_seal_cookie_with_nonce(&keys, &nonce));
    assert_eq!(set.open_cookie(&by_hand).unwrap(), keys);

    let mut unknown = pt.clone();
    unknown[1] = 16;
    assert_eq!(
        set.open_cookie(&build(&unknown)),
        Err(CookieError::UnknownAlgorithm(16))
    );
    assert_eq!(
        set.open_cookie(&build(&pt[..pt.len() - 4])),
        Err(CookieError::KeyLength {
            algorithm: AeadAlgorithm::AesSivCmac256,
            actual: 60
        })
    );
    // AEAD 17 id with AEAD 15-sized keys
    let mut wrong = pt.clone();
    wrong[1] = 17;
    assert!(matches!(
        set.open_cookie(&build(&wrong)),
        Err(CookieError::KeyLength { .. })
    ));
    // the key id is authenticated: the same ciphertext under another id does not open
    // (even with a key set that holds both ids)
    let two = KeySet::fleet(config(1), &secret, (epoch + 1) * 3600).unwrap();
    assert_eq!(two.open_cookie(&by_hand).unwrap(), keys);
    let mut moved = by_hand.clone();
    moved[..4].copy_from_slice(&(key_id + 1).to_be_bytes());
    assert_eq!(two.open_cookie(&moved), Err(CookieError::Authentication));
}

#[test]
fn cookie_valid_for_exactly_old_keys_kept_rotations() {
    for kept in [0usize, 1, 3] {
        let mut r = rng();
        let mut set = KeySet::random(config(kept), 1_000, &mut r).unwrap();
        let keys = CookieKeys::generate(AeadAlgorithm::AesSivCmac512, &mut r);
        let cookie = set.seal_cookie(&keys, &mut r);
        let id = set.current_key_id();
        let mut now = 1_000;
        for rotation in 1..=kept {
            now += 3600;
            assert_eq!(set.rotate_if_due(now, &mut r), 1);
            assert_eq!(
                set.open_cookie(&cookie).unwrap(),
                keys,
                "kept {kept}, rotation {rotation}"
            );
            // new cookies go under the new key and open too
            let fresh = set.seal_cookie(&keys, &mut r);
            assert_ne!(fresh[..4], id.to_be_bytes());
            assert_eq!(set.open_cookie(&fresh).unwrap(), keys);
        }
        now += 3600;
        assert_eq!(set.rotate_if_due(now, &mut r), 1);
        assert_eq!(
            set.open_cookie(&cookie),
            Err(CookieError::UnknownKeyId(id)),
            "kept {kept}"
        );
        assert_eq!(set.key_ids().len(), kept + 1);
    }
}

/// Cookies, key files and fleet keys of the version before master keys were cached
/// expanded (which sealed with the `aes-siv` crate): the same file opens the same
/// cookies, and sealing with the same nonce gives the same bytes, so an upgrade (or a
/// downgrade) invalidates no cookie.
#[test]
fn cookies_of_the_previous_implementation_still_open() {
    use hex_literal::hex;
    const FILE: [u8; 87] = hex!(
        "4e54534b01000000006553f1000002123456785a5d544f4679706b62651c170e"
        "0138332a2d24dfd6c9c0fbf2f5ece79e9188839abcdef0a5a8bf8291e4ebfecd"
        "d0272a390c136675784f52a1b4bb8e9de0f7fac9dc2336"
    );
    const COOKIE_15: [u8; 104] = hex!(
        "1234567800520104070a0d101316191c1f2225282b2ef0c52a7d42af0bbe568c"
        "4a5cd144f8f81f069d8ec15fa6af423081e28ac94adce96fb71c4aa534b87e7e"
        "9f1933bb9fd694f27a03ecd584195951c05134d3da4871e97a8c5385acbeae64"
        "1f5f4c59a4f313e6"
    );
    const COOKIE_17: [u8; 168] = hex!(
        "1234567800920104070a0d101316191c1f2225282b2eae05a9ef4230c49d573d"
        "b0c46e5c543c7850d0636c823f85603b689b59cff2a9d520b885cb6d051b9e6b"
        "2086668e1d428cc190796fdafea10c13dd72efa2a821d4c8ed42004d3320e689"
        "812b2b3a28f2a46f5272d3b92b16c23adc1794a254530a4b1714ba44e4b8fba6"
        "db512458b3c97d5c0c694ece74d76f9061098c509f6311cc19630524eebf0b75"
        "ac2e4db16634dd27"
    );
    const FLEET_15: [u8; 104] = hex!(
        "0007349e005211111111111111111111111111111111a6cc0babc94a420d0ca7"
        "70ec581772b63206963ae3e7f7cc16e4833f07a4bc9c4fba21e4a99c4bf4c238"
        "f6f0bac523762d3fede07e0236112ed97f7b1bbf14a5d6351e79f7f58d53a08d"
        "1b028599b77228ed"
    );
    let set = KeySet::from_bytes(&FILE, config(7)).unwrap();
    let nonce: [u8; 16] = core::array::from_fn(|i| i as u8 * 3 + 1);
    for (alg, old) in [
        (AeadAlgorithm::AesSivCmac256, &COOKIE_15[..]),
        (AeadAlgorithm::AesSivCmac512, &COOKIE_17[..]),
    ] {
        let c2s: Vec<u8> = (0..alg.key_len() as u8).map(|i| i ^ 0xc2).collect();
        let s2c: Vec<u8> = (0..alg.key_len() as u8).map(|i| i ^ 0x5c).collect();
        let keys = CookieKeys::new(alg, &c2s, &s2c).unwrap();
        assert_eq!(set.open_cookie(old).unwrap(), keys, "{alg}");
        assert_eq!(
            set.dangerous_seal_cookie_with_nonce(&keys, &nonce),
            old,
            "{alg}"
        );
    }
    let fleet = KeySet::fleet(
        KeySetConfig {
            rotation_period_s: 3600,
            old_keys_kept: 2,
        },
        &[0x42; 32],
        1_700_000_000,
    )
    .unwrap();
    let keys = CookieKeys::new(AeadAlgorithm::AesSivCmac256, &[0xc2; 32], &[0x5c; 32]).unwrap();
    assert_eq!(fleet.open_cookie(&FLEET_15).unwrap(), keys);
    assert_eq!(
        fleet.dangerous_seal_cookie_with_nonce(&keys, &[0x11; 16]),
        FLEET_15
    );
}
