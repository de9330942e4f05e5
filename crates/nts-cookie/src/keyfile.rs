//! Key set files (feature `std`): atomic, private writes and permission-checked reads.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use zeroize::Zeroizing;

use crate::keyset::{KeySet, KeySetConfig, KeySetError, MAX_KEY_FILE_LEN};

/// Why a key file could not be saved or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// An I/O operation on `path` failed.
    #[error("key file {}: {source}", path.display())]
    Io {
        /// The file (or temporary file, or directory) involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file is readable or writable by group or others.
    #[error("key file {} has mode {mode:04o}; it must not be accessible by group or others (use 0600)", path.display())]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The path is not a regular file.
    #[error("key file {} is not a regular file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The file is larger than any valid key file.
    #[error("key file {} is {len} bytes, larger than any key file", path.display())]
    TooLarge {
        /// The key file.
        path: PathBuf,
        /// Its length.
        len: u64,
    },
    /// The contents are not a valid key set.
    #[error("key file {}: {source}", path.display())]
    Format {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        source: KeySetError,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl KeySet {
    /// Writes the key set to `path` atomically: a temporary file in the same directory,
    /// created with mode 0600, is written, fsynced and renamed over `path`, then the
    /// directory is fsynced. Readers see the old or the new file, never a mix.
    ///
    /// # Errors
    /// [`KeyFileError::Format`] with [`KeySetError::FleetNotPersistable`] for a fleet
    /// set; [`KeyFileError::Io`] if any step fails (the temporary file is removed).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), KeyFileError> {
        let path = path.as_ref();
        let bytes = self.to_bytes().map_err(|source| KeyFileError::Format {
            path: path.to_path_buf(),
            source,
        })?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path.file_name().ok_or_else(|| KeyFileError::NotAFile {
            path: path.to_path_buf(),
        })?;
        let (tmp, mut file) = create_temp(dir, name)?;
        let written = file
            .write_all(&bytes)
            .and_then(|()| file.sync_all())
            .map_err(io_err(&tmp))
            .and_then(|()| fs::rename(&tmp, path).map_err(io_err(path)));
        drop(file);
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        // Make the rename durable. Some filesystems refuse to fsync a directory; the
        // data itself is already synced, so that is not an error.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Reads a key set written by [`KeySet::save`], refusing a file that group or
    /// others can read or write (on Unix). Rotation continues from the stored state:
    /// call [`KeySet::rotate_if_due`] with the current time next.
    ///
    /// # Errors
    /// [`KeyFileError::InsecurePermissions`] naming the path and mode;
    /// [`KeyFileError::Io`], [`KeyFileError::NotAFile`], [`KeyFileError::TooLarge`] or
    /// [`KeyFileError::Format`] otherwise.
    pub fn load(path: impl AsRef<Path>, config: KeySetConfig) -> Result<Self, KeyFileError> {
        let path = path.as_ref();
        let mut file = File::open(path).map_err(io_err(path))?;
        // Check the opened file, not the path, so a swap after the check does not matter.
        let meta = file.metadata().map_err(io_err(path))?;
        if !meta.is_file() {
            return Err(KeyFileError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        check_permissions(path, &meta)?;
        let max = u64::try_from(MAX_KEY_FILE_LEN).unwrap_or(u64::MAX);
        if meta.len() > max {
            return Err(KeyFileError::TooLarge {
                path: path.to_path_buf(),
                len: meta.len(),
            });
        }
        // Sized up front so the buffer holding key bytes never reallocates.
        let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE_LEN + 1));
        Read::by_ref(&mut file)
            .take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err(path))?;
        if bytes.len() > MAX_KEY_FILE_LEN {
            return Err(KeyFileError::TooLarge {
                path: path.to_path_buf(),
                len: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
            });
        }
        KeySet::from_bytes(&bytes, config).map_err(|source| KeyFileError::Format {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Loads `path` if it exists; otherwise creates a random key set current from
    /// `now_unix_s` and saves it. Either way the result has been rotated to `now_unix_s`
    /// and, if that rotated anything, saved again.
    ///
    /// # Errors
    /// As [`KeySet::load`] and [`KeySet::save`]; a missing file is not an error.
    pub fn load_or_create<R: rand_core::CryptoRng + ?Sized>(
        path: impl AsRef<Path>,
        config: KeySetConfig,
        now_unix_s: u64,
        rng: &mut R,
    ) -> Result<Self, KeyFileError> {
        let path = path.as_ref();
        match Self::load(path, config) {
            Ok(mut set) => {
                if set.rotate_if_due(now_unix_s, rng) > 0 {
                    set.save(path)?;
                }
                Ok(set)
            }
            Err(KeyFileError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                let set = Self::random(config, now_unix_s, rng).map_err(|source| {
                    KeyFileError::Format {
                        path: path.to_path_buf(),
                        source,
                    }
                })?;
                set.save(path)?;
                Ok(set)
            }
            Err(e) => Err(e),
        }
    }
}

/// Creates a new temporary file next to the target, mode 0600 from creation.
fn create_temp(dir: &Path, name: &std::ffi::OsStr) -> Result<(PathBuf, File), KeyFileError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut last = None;
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp.{}.{n}", std::process::id()));
        let tmp = dir.join(tmp_name);
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some((tmp, e)),
            Err(e) => return Err(io_err(&tmp)(e)),
        }
    }
    let (tmp, e) = last.unwrap_or_else(|| (dir.to_path_buf(), io::ErrorKind::AlreadyExists.into()));
    Err(io_err(&tmp)(e))
}

#[cfg(unix)]
fn check_permissions(path: &Path, meta: &fs::Metadata) -> Result<(), KeyFileError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path, _meta: &fs::Metadata) -> Result<(), KeyFileError> {
    Ok(())
}
