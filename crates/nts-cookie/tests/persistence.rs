//! Key set files: round trip, permissions, corruption.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns may unwrap too
#![cfg(unix)]

use std::fs;
use std::os::unix::fs::PermissionsExt;

use nts_cookie::keyset::{KEY_FILE_MAGIC, KEY_FILE_VERSION};
use nts_cookie::{
    AeadAlgorithm, CookieError, CookieKeys, KeyFileError, KeySet, KeySetConfig, KeySetError,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn config() -> KeySetConfig {
    KeySetConfig {
        rotation_period_s: 100,
        old_keys_kept: 2,
    }
}

fn keys() -> CookieKeys {
    CookieKeys::generate(AeadAlgorithm::AesSivCmac512, &mut StdRng::seed_from_u64(9))
}

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn save_load_round_trip() {
    let mut r = StdRng::seed_from_u64(1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cookie-keys.bin");
    let mut set = KeySet::random(config(), 1000, &mut r).unwrap();
    set.rotate_if_due(1100, &mut r);
    let c = set.seal_cookie(&keys(), &mut r);
    set.save(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    // no temporary file left behind
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

    let mut loaded = KeySet::load(&path, config()).unwrap();
    assert_eq!(
        loaded.key_ids().collect::<Vec<_>>(),
        set.key_ids().collect::<Vec<_>>()
    );
    assert_eq!(loaded.next_rotation_s(), set.next_rotation_s());
    assert_eq!(loaded.open_cookie(&c).unwrap(), keys());
    assert_eq!(loaded.to_bytes().unwrap(), set.to_bytes().unwrap());

    // rotation continues from the stored state
    assert_eq!(loaded.rotate_if_due(1199, &mut r), 0);
    assert_eq!(loaded.rotate_if_due(1200, &mut r), 1);
    assert_eq!(loaded.open_cookie(&c).unwrap(), keys());
    assert_eq!(loaded.rotate_if_due(1300, &mut r), 1);
    assert_eq!(
        loaded.open_cookie(&c).unwrap(),
        keys(),
        "kept for old_keys_kept = 2 rotations"
    );
    assert_eq!(loaded.rotate_if_due(1400, &mut r), 1);
    assert!(matches!(
        loaded.open_cookie(&c),
        Err(CookieError::UnknownKeyId(_))
    ));

    // overwriting an existing file keeps it private
    loaded.save(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(
        KeySet::load(&path, config()).unwrap().current_key_id(),
        loaded.current_key_id()
    );
}

#[test]
fn overwrite_of_a_public_file_becomes_private() {
    let mut r = StdRng::seed_from_u64(2);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    fs::write(&path, b"old").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    KeySet::random(config(), 0, &mut r)
        .unwrap()
        .save(&path)
        .unwrap();
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn group_or_world_accessible_file_is_refused() {
    let mut r = StdRng::seed_from_u64(3);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    KeySet::random(config(), 0, &mut r)
        .unwrap()
        .save(&path)
        .unwrap();
    for bad in [0o644, 0o640, 0o604, 0o620, 0o602, 0o660] {
        fs::set_permissions(&path, fs::Permissions::from_mode(bad)).unwrap();
        match KeySet::load(&path, config()) {
            Err(KeyFileError::InsecurePermissions { path: p, mode }) => {
                assert_eq!(p, path);
                assert_eq!(mode & 0o777, bad);
            }
            other => panic!("mode {bad:o}: {other:?}"),
        }
    }
    let msg = KeySet::load(&path, config()).unwrap_err().to_string();
    assert!(msg.contains("0660") && msg.contains("keys"), "{msg}");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
    assert!(KeySet::load(&path, config()).is_ok());
}

#[test]
fn missing_file_and_load_or_create() {
    let mut r = StdRng::seed_from_u64(4);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub-missing").join("keys");
    assert!(matches!(
        KeySet::load(&path, config()),
        Err(KeyFileError::Io { .. })
    ));
    let path = dir.path().join("keys");
    let created = KeySet::load_or_create(&path, config(), 500, &mut r).unwrap();
    assert_eq!(mode(&path), 0o600);
    let again = KeySet::load_or_create(&path, config(), 550, &mut r).unwrap();
    assert_eq!(again.current_key_id(), created.current_key_id());
    let rotated = KeySet::load_or_create(&path, config(), 600, &mut r).unwrap();
    assert_ne!(rotated.current_key_id(), created.current_key_id());
    assert_eq!(
        KeySet::load(&path, config()).unwrap().current_key_id(),
        rotated.current_key_id()
    );
    // a directory is not a key file
    assert!(KeySet::load(dir.path(), config()).is_err());
}

#[test]
fn corrupt_bytes_give_typed_errors() {
    let mut r = StdRng::seed_from_u64(5);
    let mut set = KeySet::random(config(), 0, &mut r).unwrap();
    set.rotate_if_due(100, &mut r);
    let good = set.to_bytes().unwrap();
    assert_eq!(good.len(), 15 + 2 * 36);
    assert_eq!(good[..4], KEY_FILE_MAGIC);
    assert_eq!(good[4], KEY_FILE_VERSION);

    let err = |b: &[u8]| KeySet::from_bytes(b, config()).unwrap_err();
    assert_eq!(err(&[]), KeySetError::Truncated);
    let mut b = good.to_vec();
    b[0] = b'X';
    assert_eq!(err(&b), KeySetError::BadMagic);
    let mut b = good.to_vec();
    b[4] = 2;
    assert_eq!(err(&b), KeySetError::UnsupportedVersion(2));
    assert_eq!(err(&good[..good.len() - 1]), KeySetError::Truncated);
    assert_eq!(err(&good[..14]), KeySetError::Truncated);
    let mut b = good.to_vec();
    b.push(0);
    assert_eq!(err(&b), KeySetError::TrailingBytes(1));
    let mut b = good.to_vec();
    b[13..15].copy_from_slice(&0u16.to_be_bytes());
    assert_eq!(err(&b), KeySetError::KeyCount(0));
    let mut b = good.to_vec();
    b[13..15].copy_from_slice(&3u16.to_be_bytes());
    assert_eq!(err(&b), KeySetError::Truncated);
    let mut b = good.to_vec();
    let first_id: [u8; 4] = b[15..19].try_into().unwrap();
    b[51..55].copy_from_slice(&first_id);
    assert_eq!(
        err(&b),
        KeySetError::DuplicateKeyId(u32::from_be_bytes(first_id))
    );

    // a corrupt file on disk names the path
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    fs::write(&path, b"garbage").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    match KeySet::load(&path, config()) {
        Err(KeyFileError::Format { path: p, source }) => {
            assert_eq!(p, path);
            assert_eq!(source, KeySetError::BadMagic);
        }
        other => panic!("{other:?}"),
    }
    fs::write(&path, vec![0u8; 1 << 20]).unwrap();
    assert!(matches!(
        KeySet::load(&path, config()),
        Err(KeyFileError::TooLarge { .. })
    ));
}

#[test]
fn smaller_config_drops_oldest_on_load() {
    let mut r = StdRng::seed_from_u64(6);
    let mut set = KeySet::random(config(), 0, &mut r).unwrap();
    set.rotate_if_due(100, &mut r);
    set.rotate_if_due(200, &mut r);
    let ids: Vec<u32> = set.key_ids().collect();
    assert_eq!(ids.len(), 3);
    let small = KeySetConfig {
        rotation_period_s: 100,
        old_keys_kept: 1,
    };
    let loaded = KeySet::from_bytes(&set.to_bytes().unwrap(), small).unwrap();
    assert_eq!(loaded.key_ids().collect::<Vec<_>>(), ids[..2]);
}
