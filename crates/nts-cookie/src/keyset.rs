//! Server master keys: rotation, persistence and fleet derivation (RFC 8915 §6).

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::aead::{AeadAlgorithm, AeadKey};
use crate::cookie::{self, COOKIE_NONCE_LEN, CookieError, CookieKeys, MasterCipher};

/// Length of a master key (AES-SIV-CMAC-256).
pub const MASTER_KEY_LEN: usize = 32;

/// Shortest fleet secret accepted.
pub const MIN_FLEET_SECRET_LEN: usize = 32;

/// Most old keys a [`KeySet`] keeps. Bounds memory, the key file and lookup time.
pub const MAX_OLD_KEYS: usize = 1024;

/// HKDF salt for fleet keys: domain separation from any other use of the secret.
pub const FLEET_HKDF_SALT: &[u8] = b"nts-cookie fleet master key salt v1";

/// HKDF info prefix for fleet keys; the info is this label followed by the epoch as a
/// u64 big-endian.
pub const FLEET_HKDF_LABEL: &[u8] = b"nts-cookie master key epoch";

/// The first bytes of a key file.
pub const KEY_FILE_MAGIC: [u8; 4] = *b"NTSK";

/// The key file format version written by [`KeySet::to_bytes`].
pub const KEY_FILE_VERSION: u8 = 1;

/// magic 4, version 1, current_start u64, count u16.
const KEY_FILE_HEADER_LEN: usize = 4 + 1 + 8 + 2;
/// id u32, key 32.
const KEY_FILE_ENTRY_LEN: usize = 4 + MASTER_KEY_LEN;
/// The length of the largest valid key file ([`MAX_OLD_KEYS`] + 1 keys).
pub const MAX_KEY_FILE_LEN: usize = KEY_FILE_HEADER_LEN + KEY_FILE_ENTRY_LEN * (MAX_OLD_KEYS + 1);

/// How often master keys rotate and how many old ones stay valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeySetConfig {
    /// Seconds between rotations (and the fleet epoch length). Must be non-zero.
    pub rotation_period_s: u64,
    /// How many previous keys still open cookies. A cookie stays valid for this many
    /// rotations after the one that made its key current, so its lifetime is between
    /// `old_keys_kept` and `old_keys_kept + 1` periods. At most [`MAX_OLD_KEYS`].
    pub old_keys_kept: usize,
}

impl Default for KeySetConfig {
    /// Daily rotation, a week of old keys.
    fn default() -> Self {
        Self {
            rotation_period_s: 86_400,
            old_keys_kept: 7,
        }
    }
}

impl KeySetConfig {
    /// Checks the limits documented on the fields.
    ///
    /// # Errors
    /// [`KeySetError::ZeroRotationPeriod`] or [`KeySetError::TooManyOldKeys`].
    pub fn validate(&self) -> Result<(), KeySetError> {
        if self.rotation_period_s == 0 {
            return Err(KeySetError::ZeroRotationPeriod);
        }
        if self.old_keys_kept > MAX_OLD_KEYS {
            return Err(KeySetError::TooManyOldKeys {
                requested: self.old_keys_kept,
                max: MAX_OLD_KEYS,
            });
        }
        Ok(())
    }
}

/// Why a key set could not be built, encoded or decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeySetError {
    /// `rotation_period_s` was zero.
    #[error("rotation period must be non-zero")]
    ZeroRotationPeriod,
    /// `old_keys_kept` is above the limit.
    #[error("{requested} old keys requested, at most {max} allowed")]
    TooManyOldKeys {
        /// The configured value.
        requested: usize,
        /// [`MAX_OLD_KEYS`].
        max: usize,
    },
    /// The fleet secret is too short.
    #[error("fleet secret of {actual} bytes is too short, need at least {min}")]
    SecretTooShort {
        /// The given length.
        actual: usize,
        /// [`MIN_FLEET_SECRET_LEN`].
        min: usize,
    },
    /// Fleet key sets are derived from the secret and are never written out.
    #[error("fleet key sets are derived, not persisted")]
    FleetNotPersistable,
    /// The key file does not start with [`KEY_FILE_MAGIC`].
    #[error("not a key file (bad magic)")]
    BadMagic,
    /// The key file has a version this build cannot read.
    #[error("unsupported key file version {0}")]
    UnsupportedVersion(u8),
    /// The key file ends early.
    #[error("key file truncated")]
    Truncated,
    /// The key file has bytes after the last key.
    #[error("key file has {0} trailing bytes")]
    TrailingBytes(usize),
    /// The key file holds no key, or more than [`MAX_OLD_KEYS`] + 1.
    #[error("key file holds {0} keys")]
    KeyCount(usize),
    /// The key file holds two keys with the same id.
    #[error("key file holds key id {0:#010x} twice")]
    DuplicateKeyId(u32),
}

/// One master key and its id.
#[derive(Clone)]
struct MasterKey {
    id: u32,
    /// An AES-SIV-CMAC-256 key, kept for [`KeySet::to_bytes`]; its bytes are on the
    /// heap, so moving `MasterKey` around in the deque leaves no copy behind.
    key: AeadKey,
    /// The same key expanded once (round keys, CMAC subkeys), on the heap for the same
    /// reason; every cookie seal and open uses it. Erased on drop.
    cipher: Box<MasterCipher>,
}

impl MasterKey {
    fn from_bytes(id: u32, bytes: &[u8; MASTER_KEY_LEN]) -> Self {
        let key = AeadKey::new(AeadAlgorithm::AesSivCmac256, bytes)
            .expect("MASTER_KEY_LEN is the AES-SIV-CMAC-256 key length");
        let cipher = Box::new(
            MasterCipher::new(bytes).expect("MASTER_KEY_LEN is the AES-SIV-CMAC-256 key length"),
        );
        Self { id, key, cipher }
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &format_args!("{:#010x}", self.id))
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Where keys come from.
#[derive(Clone)]
enum Source {
    /// Random keys, persisted with [`KeySet::to_bytes`].
    Random,
    /// HKDF-SHA256 of a shared secret and the epoch number.
    Fleet { secret: Zeroizing<Vec<u8>> },
}

/// The server's master keys: one current key that seals new cookies and up to
/// `old_keys_kept` older ones that still open cookies.
///
/// Time is passed in (`now_unix_s`); call [`KeySet::rotate_if_due`] before sealing,
/// or at [`KeySet::next_rotation_s`]. A dropped key is erased from memory.
///
/// Two modes:
/// - **random** ([`KeySet::random`]): each rotation draws a fresh key with a fresh random
///   id; persist with `save`/`load` (feature `std`) or [`KeySet::to_bytes`] so cookies
///   survive restarts;
/// - **fleet** ([`KeySet::fleet`]): the key of epoch `e = now / period` is
///   `HKDF-SHA256(salt = FLEET_HKDF_SALT, ikm = secret, info = FLEET_HKDF_LABEL ‖ e as u64 BE)`
///   with key id `e mod 2³²` (it wraps after 2³² periods, far beyond any retention).
///   Servers sharing the secret and a roughly synchronised clock accept each other's
///   cookies with no coordination; cookies from epochs after the current one are
///   rejected, so a server whose clock is behind rejects its peers' fresh cookies for
///   the amount of skew.
#[derive(Clone)]
pub struct KeySet {
    config: KeySetConfig,
    source: Source,
    /// Newest (current) first; never empty; at most `old_keys_kept + 1` long.
    keys: VecDeque<MasterKey>,
    /// Unix time at which the current key became current (random mode), or the start
    /// of the current epoch (fleet mode).
    current_start_s: u64,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("config", &self.config)
            .field("fleet", &matches!(self.source, Source::Fleet { .. }))
            .field("keys", &self.keys)
            .field("current_start_s", &self.current_start_s)
            .finish()
    }
}

impl KeySet {
    /// A key set of random keys whose first key becomes current at `now_unix_s`.
    ///
    /// # Errors
    /// An invalid `config` (see [`KeySetConfig::validate`]).
    pub fn random<R: rand_core::CryptoRng + ?Sized>(
        config: KeySetConfig,
        now_unix_s: u64,
        rng: &mut R,
    ) -> Result<Self, KeySetError> {
        config.validate()?;
        let mut set = Self {
            config,
            source: Source::Random,
            keys: VecDeque::with_capacity(config.old_keys_kept + 1),
            current_start_s: now_unix_s,
        };
        set.push_random_key(rng);
        Ok(set)
    }

    /// A fleet key set derived from `secret` for the epoch of `now_unix_s` and the
    /// `old_keys_kept` epochs before it.
    ///
    /// # Errors
    /// [`KeySetError::SecretTooShort`] for a secret under [`MIN_FLEET_SECRET_LEN`]
    /// bytes, or an invalid `config`.
    pub fn fleet(
        config: KeySetConfig,
        secret: &[u8],
        now_unix_s: u64,
    ) -> Result<Self, KeySetError> {
        config.validate()?;
        if secret.len() < MIN_FLEET_SECRET_LEN {
            return Err(KeySetError::SecretTooShort {
                actual: secret.len(),
                min: MIN_FLEET_SECRET_LEN,
            });
        }
        let mut set = Self {
            config,
            source: Source::Fleet {
                secret: Zeroizing::new(secret.to_vec()),
            },
            keys: VecDeque::with_capacity(config.old_keys_kept + 1),
            current_start_s: 0,
        };
        set.derive_fleet_keys(now_unix_s / config.rotation_period_s);
        Ok(set)
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> KeySetConfig {
        self.config
    }

    /// Whether the keys are derived from a fleet secret.
    #[must_use]
    pub fn is_fleet(&self) -> bool {
        matches!(self.source, Source::Fleet { .. })
    }

    /// The id of the key that seals new cookies.
    #[must_use]
    pub fn current_key_id(&self) -> u32 {
        self.keys.front().map_or(0, |k| k.id)
    }

    /// The ids of all keys that open cookies, newest first.
    pub fn key_ids(&self) -> impl ExactSizeIterator<Item = u32> + '_ {
        self.keys.iter().map(|k| k.id)
    }

    /// The Unix time at which the next rotation is due.
    #[must_use]
    pub fn next_rotation_s(&self) -> u64 {
        self.current_start_s
            .saturating_add(self.config.rotation_period_s)
    }

    /// Rotates if `now_unix_s` has reached [`KeySet::next_rotation_s`], and returns how
    /// many new keys were made current (0 if none was due).
    ///
    /// Random mode: one rotation per elapsed period, so after a long pause keys older
    /// than `old_keys_kept` periods are dropped (at most `old_keys_kept + 1` new keys
    /// are drawn). The schedule stays aligned to the first key's start. A clock that
    /// went backwards rotates nothing.
    ///
    /// Fleet mode: the set is re-derived for the epoch of `now_unix_s` (also when the
    /// clock went backwards, so it matches the fleet at that time); `rng` is unused.
    pub fn rotate_if_due<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        now_unix_s: u64,
        rng: &mut R,
    ) -> usize {
        let period = self.config.rotation_period_s.max(1);
        match self.source {
            Source::Random => {
                let Some(elapsed) = now_unix_s.checked_sub(self.current_start_s) else {
                    return 0;
                };
                let periods = elapsed / period;
                if periods == 0 {
                    return 0;
                }
                self.current_start_s = self
                    .current_start_s
                    .saturating_add(periods.saturating_mul(period));
                let cap = self.config.old_keys_kept.saturating_add(1);
                let new = usize::try_from(periods).map_or(cap, |p| p.min(cap));
                for _ in 0..new {
                    self.push_random_key(rng);
                }
                new
            }
            Source::Fleet { .. } => {
                let epoch = now_unix_s / period;
                if epoch == self.current_start_s / period {
                    return 0;
                }
                self.derive_fleet_keys(epoch)
            }
        }
    }

    /// Seals `keys` into a new cookie under the current key with a random nonce.
    /// The result is [`crate::cookie_len`]`(keys.algorithm())` bytes long.
    pub fn seal_cookie<R: rand_core::CryptoRng + ?Sized>(
        &self,
        keys: &CookieKeys,
        rng: &mut R,
    ) -> Vec<u8> {
        let mut nonce = [0u8; COOKIE_NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        self.dangerous_seal_cookie_with_nonce(keys, &nonce)
    }

    /// Seals with a caller-chosen nonce. Deterministic, for tests and fuzzing: reusing
    /// a nonce makes equal key pairs produce equal cookies, which links clients.
    #[must_use]
    pub fn dangerous_seal_cookie_with_nonce(
        &self,
        keys: &CookieKeys,
        nonce: &[u8; COOKIE_NONCE_LEN],
    ) -> Vec<u8> {
        let mut out = Vec::new();
        self.seal_cookie_into(keys, nonce, &mut out);
        out
    }

    /// Appends a cookie sealed with `nonce` to `out` (the packet code writes cookies
    /// straight into the response this way).
    pub(crate) fn seal_cookie_into(
        &self,
        keys: &CookieKeys,
        nonce: &[u8; COOKIE_NONCE_LEN],
        out: &mut Vec<u8>,
    ) {
        // Every constructor installs a key and rotation never removes the newest one;
        // without one nothing is written and the cookie simply fails to open.
        if let Some(current) = self.keys.front() {
            cookie::seal_into(current.id, &current.cipher, keys, nonce, out);
        }
    }

    /// Opens a cookie sealed by this set (or a fleet peer) and returns the client's keys.
    ///
    /// # Errors
    /// A [`CookieError`] saying why; never panics on any input.
    pub fn open_cookie(&self, cookie: &[u8]) -> Result<CookieKeys, CookieError> {
        let (id, nonce, ct) = cookie::split(cookie)?;
        let master = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or(CookieError::UnknownKeyId(id))?;
        cookie::open(id, &master.cipher, nonce, ct)
    }

    /// Encodes a random-mode key set (the keys and the rotation state, not the config):
    ///
    /// ```text
    /// "NTSK" | version u8 = 1 | current_start_s u64 BE | count u16 BE
    ///        | count × (key_id u32 BE | key 32), newest first
    /// ```
    ///
    /// The result holds key material and is erased on drop.
    ///
    /// # Errors
    /// [`KeySetError::FleetNotPersistable`] for a fleet key set.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, KeySetError> {
        if self.is_fleet() {
            return Err(KeySetError::FleetNotPersistable);
        }
        let count =
            u16::try_from(self.keys.len()).map_err(|_| KeySetError::KeyCount(self.keys.len()))?;
        let mut out = Zeroizing::new(Vec::with_capacity(
            KEY_FILE_HEADER_LEN + KEY_FILE_ENTRY_LEN * self.keys.len(),
        ));
        out.extend_from_slice(&KEY_FILE_MAGIC);
        out.push(KEY_FILE_VERSION);
        out.extend_from_slice(&self.current_start_s.to_be_bytes());
        out.extend_from_slice(&count.to_be_bytes());
        for k in &self.keys {
            out.extend_from_slice(&k.id.to_be_bytes());
            out.extend_from_slice(k.key.dangerous_key_bytes());
        }
        Ok(out)
    }

    /// Decodes [`KeySet::to_bytes`] output into a random-mode key set using `config`.
    /// If the file holds more keys than `config` keeps, the oldest are dropped; rotation
    /// continues from the stored state at the next [`KeySet::rotate_if_due`].
    ///
    /// # Errors
    /// A [`KeySetError`] for a bad magic, version, count, duplicate id, truncated or
    /// over-long input, or an invalid `config`.
    pub fn from_bytes(bytes: &[u8], config: KeySetConfig) -> Result<Self, KeySetError> {
        config.validate()?;
        let (magic, rest) = bytes
            .split_first_chunk::<4>()
            .ok_or(KeySetError::Truncated)?;
        if *magic != KEY_FILE_MAGIC {
            return Err(KeySetError::BadMagic);
        }
        let (&version, rest) = rest.split_first().ok_or(KeySetError::Truncated)?;
        if version != KEY_FILE_VERSION {
            return Err(KeySetError::UnsupportedVersion(version));
        }
        let (start, rest) = rest
            .split_first_chunk::<8>()
            .ok_or(KeySetError::Truncated)?;
        let (count, mut rest) = rest
            .split_first_chunk::<2>()
            .ok_or(KeySetError::Truncated)?;
        let count = usize::from(u16::from_be_bytes(*count));
        if count == 0 || count > MAX_OLD_KEYS + 1 {
            return Err(KeySetError::KeyCount(count));
        }
        let mut keys: VecDeque<MasterKey> = VecDeque::with_capacity(count);
        for _ in 0..count {
            let (id, after_id) = rest
                .split_first_chunk::<4>()
                .ok_or(KeySetError::Truncated)?;
            let (key, after_key) = after_id
                .split_first_chunk::<MASTER_KEY_LEN>()
                .ok_or(KeySetError::Truncated)?;
            let id = u32::from_be_bytes(*id);
            if keys.iter().any(|k| k.id == id) {
                return Err(KeySetError::DuplicateKeyId(id));
            }
            keys.push_back(MasterKey::from_bytes(id, key));
            rest = after_key;
        }
        if !rest.is_empty() {
            return Err(KeySetError::TrailingBytes(rest.len()));
        }
        keys.truncate(config.old_keys_kept + 1);
        Ok(Self {
            config,
            source: Source::Random,
            keys,
            current_start_s: u64::from_be_bytes(*start),
        })
    }

    /// Installs a fresh random key as current, dropping (and erasing) the oldest keys
    /// beyond `old_keys_kept`.
    fn push_random_key<R: rand_core::CryptoRng + ?Sized>(&mut self, rng: &mut R) {
        let mut key = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        rng.fill_bytes(key.as_mut());
        // A fresh id that no held key uses, so a cookie never meets the wrong key.
        let id = loop {
            let id = rng.next_u32();
            if !self.keys.iter().any(|k| k.id == id) {
                break id;
            }
        };
        self.keys.push_front(MasterKey::from_bytes(id, &key));
        self.keys.truncate(self.config.old_keys_kept + 1);
    }

    /// Sets the keys to those of `epoch` and the `old_keys_kept` epochs before it,
    /// reusing held keys. Returns the number of keys newly derived.
    fn derive_fleet_keys(&mut self, epoch: u64) -> usize {
        let Source::Fleet { secret } = &self.source else {
            return 0;
        };
        let hkdf = Hkdf::<Sha256>::new(Some(FLEET_HKDF_SALT), secret);
        let oldest =
            epoch.saturating_sub(u64::try_from(self.config.old_keys_kept).unwrap_or(u64::MAX));
        let mut keys = VecDeque::with_capacity(self.config.old_keys_kept + 1);
        let mut derived = 0;
        for e in (oldest..=epoch).rev() {
            let id = fleet_key_id(e);
            if let Some(pos) = self.keys.iter().position(|k| k.id == id) {
                if let Some(k) = self.keys.remove(pos) {
                    keys.push_back(k);
                    continue;
                }
            }
            let mut info = [0u8; FLEET_HKDF_LABEL.len() + 8];
            let (label, num) = info.split_at_mut(FLEET_HKDF_LABEL.len());
            label.copy_from_slice(FLEET_HKDF_LABEL);
            num.copy_from_slice(&e.to_be_bytes());
            let mut key = Zeroizing::new([0u8; MASTER_KEY_LEN]);
            hkdf.expand(&info, key.as_mut())
                .expect("32 bytes is far below the HKDF-SHA256 output limit");
            keys.push_back(MasterKey::from_bytes(id, &key));
            derived += 1;
        }
        self.keys = keys;
        self.current_start_s = epoch.saturating_mul(self.config.rotation_period_s);
        derived
    }
}

/// The key id of fleet epoch `epoch`: its low 32 bits (wraps after 2³² periods).
#[must_use]
pub fn fleet_key_id(epoch: u64) -> u32 {
    // Intentional wrap; documented on `KeySet`.
    (epoch & u64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    fn cfg(period: u64, kept: usize) -> KeySetConfig {
        KeySetConfig {
            rotation_period_s: period,
            old_keys_kept: kept,
        }
    }

    #[test]
    fn config_validation() {
        let mut r = rng();
        assert_eq!(
            KeySet::random(cfg(0, 1), 0, &mut r).unwrap_err(),
            KeySetError::ZeroRotationPeriod
        );
        assert!(matches!(
            KeySet::random(cfg(1, MAX_OLD_KEYS + 1), 0, &mut r),
            Err(KeySetError::TooManyOldKeys { .. })
        ));
        assert!(matches!(
            KeySet::fleet(cfg(10, 1), &[0; 31], 0),
            Err(KeySetError::SecretTooShort {
                actual: 31,
                min: 32
            })
        ));
        assert!(KeySet::random(cfg(1, 0), 0, &mut r).is_ok());
    }

    #[test]
    fn random_rotation_schedule() {
        let mut r = rng();
        let mut set = KeySet::random(cfg(100, 2), 1000, &mut r).unwrap();
        assert_eq!(set.next_rotation_s(), 1100);
        assert_eq!(set.rotate_if_due(1099, &mut r), 0);
        assert_eq!(set.rotate_if_due(500, &mut r), 0, "clock went backwards");
        let first = set.current_key_id();
        assert_eq!(set.rotate_if_due(1100, &mut r), 1);
        assert_ne!(set.current_key_id(), first);
        assert_eq!(set.key_ids().len(), 2);
        assert_eq!(set.next_rotation_s(), 1200);
        // 2.5 periods later: two rotations, alignment kept
        assert_eq!(set.rotate_if_due(1350, &mut r), 2);
        assert_eq!(set.next_rotation_s(), 1400);
        assert_eq!(set.key_ids().len(), 3);
        assert!(!set.key_ids().any(|id| id == first));
        // a long pause replaces every key, but draws at most kept + 1
        let before: Vec<u32> = set.key_ids().collect();
        assert_eq!(set.rotate_if_due(1_000_050, &mut r), 3);
        assert!(set.key_ids().all(|id| !before.contains(&id)));
        assert_eq!(set.next_rotation_s(), 1_000_100, "schedule stays aligned");
    }

    #[test]
    fn fleet_ids_and_boundaries() {
        let secret = [42u8; 32];
        let set = KeySet::fleet(cfg(100, 2), &secret, 12_345).unwrap();
        assert_eq!(set.key_ids().collect::<Vec<_>>(), vec![123, 122, 121]);
        assert_eq!(set.next_rotation_s(), 12_400);
        // near epoch 0 there are fewer old epochs
        let early = KeySet::fleet(cfg(100, 2), &secret, 150).unwrap();
        assert_eq!(early.key_ids().collect::<Vec<_>>(), vec![1, 0]);
        assert_eq!(fleet_key_id(u64::from(u32::MAX) + 5), 4);
        assert!(set.to_bytes().is_err());
    }

    #[test]
    fn fleet_keys_are_deterministic_and_secret_bound() {
        let a = KeySet::fleet(cfg(100, 1), &[1; 32], 1000).unwrap();
        let b = KeySet::fleet(cfg(100, 1), &[1; 32], 1050).unwrap();
        let c = KeySet::fleet(cfg(100, 1), &[2; 32], 1000).unwrap();
        let ka: Vec<_> = a.keys.iter().map(|k| k.key.clone()).collect();
        let kb: Vec<_> = b.keys.iter().map(|k| k.key.clone()).collect();
        let kc: Vec<_> = c.keys.iter().map(|k| k.key.clone()).collect();
        assert_eq!(ka, kb);
        assert_ne!(ka[0], kc[0]);
        assert_ne!(ka[0], ka[1], "each epoch has its own key");
    }

    #[test]
    fn debug_redacts_master_keys() {
        let set = KeySet::random(cfg(100, 0), 0, &mut rng()).unwrap();
        let dbg = format!("{set:?}");
        let key = set.keys[0].key.dangerous_key_bytes();
        assert!(dbg.contains("redacted"));
        assert!(!dbg.contains(&format!("{:?}", key)), "{dbg}");
        assert!(!dbg.contains(&format!("{}, {}", key[0], key[1])), "{dbg}");
        let fleet = KeySet::fleet(cfg(100, 0), &[0x77; 32], 0).unwrap();
        let dbg = format!("{fleet:?}");
        assert!(!dbg.contains("119"), "{dbg}");
    }
}
