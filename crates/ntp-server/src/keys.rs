//! The server's cookie master keys: where they come from, rotation on a
//! timer, and persistence after each rotation.
//!
//! Readers (UDP workers, NTS-KE exchanges) take a read lock for the length of
//! one cookie operation; the rotation task takes the write lock once per
//! rotation period, so contention is negligible.

use std::path::PathBuf;
use std::sync::{RwLock, RwLockReadGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use nts_cookie::{KeyFileError, KeySet, KeySetConfig, KeySetError};
use zeroize::Zeroizing;

/// Where the master keys come from.
#[derive(Debug)]
pub enum KeySource {
    /// Random keys, kept in a 0600 file when a path is given (otherwise
    /// cookies become invalid on restart).
    Random {
        /// The key file.
        path: Option<PathBuf>,
    },
    /// Keys derived from a secret shared by a fleet of servers, so each
    /// accepts the others' cookies with no coordination.
    Fleet {
        /// The shared secret (≥ 32 bytes).
        secret: Zeroizing<Vec<u8>>,
    },
}

/// Why the keys could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyStoreError {
    /// The key file could not be read or written.
    #[error(transparent)]
    File(#[from] KeyFileError),
    /// The key set could not be built (bad config or fleet secret).
    #[error(transparent)]
    KeySet(#[from] KeySetError),
}

/// The live key set.
#[derive(Debug)]
pub struct KeyStore {
    set: RwLock<KeySet>,
    path: Option<PathBuf>,
}

/// Seconds since the Unix epoch (reading the clock only).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl KeyStore {
    /// Loads or creates the keys.
    ///
    /// # Errors
    /// [`KeyStoreError`] if the key file is unreadable, insecure or corrupt,
    /// or the fleet secret is unusable.
    pub fn open(source: KeySource, config: KeySetConfig) -> Result<Self, KeyStoreError> {
        let now = unix_now();
        let mut rng = rand::rng();
        let (set, path) = match source {
            KeySource::Random { path: Some(path) } => (
                KeySet::load_or_create(&path, config, now, &mut rng)?,
                Some(path),
            ),
            KeySource::Random { path: None } => (KeySet::random(config, now, &mut rng)?, None),
            KeySource::Fleet { secret } => (KeySet::fleet(config, &secret, now)?, None),
        };
        Ok(Self {
            set: RwLock::new(set),
            path,
        })
    }

    /// The current key set, for one cookie operation.
    pub fn read(&self) -> RwLockReadGuard<'_, KeySet> {
        match self.set.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Rotates if a period has passed, saving the new keys; returns the
    /// number of new keys.
    ///
    /// # Errors
    /// If saving fails (the rotation itself stands; the old file remains).
    pub fn rotate(&self, now_unix_s: u64) -> Result<usize, KeyStoreError> {
        let mut set = match self.set.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let rotated = set.rotate_if_due(now_unix_s, &mut rand::rng());
        if rotated > 0 {
            tracing::info!(
                new_keys = rotated,
                current = set.current_key_id(),
                "rotated NTS cookie keys"
            );
            if let Some(path) = &self.path {
                set.save(path)?;
            }
        }
        Ok(rotated)
    }
}
