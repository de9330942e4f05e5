//! Checks of the files a configuration names.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use super::error::{ConfigError, ConfigErrorKind as E};
use super::types::{Config, ConfigPath};

/// Files larger than this are not read as a fleet secret.
const MAX_SECRET_FILE_LEN: u64 = 64 * 1024;

impl Config {
    /// Checks the files the configuration names, as far as can be done before serving:
    /// every certificate chain and private key opens for reading; the directory of the
    /// key storage file exists; the fleet secret is readable, at least
    /// [`MIN_FLEET_SECRET_LEN`](nts_cookie::keyset::MIN_FLEET_SECRET_LEN) bytes long and
    /// not accessible by group or others.
    ///
    /// Returns every problem found (empty when all is well), each naming the line of its
    /// key and, after [`load`](super::load), the configuration file.
    pub fn validate_files(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        for server in &self.nts_ke_servers {
            for (what, file) in [
                ("certificate chain", &server.certificate_chain_path),
                ("private key", &server.private_key_path),
            ] {
                match File::open(&file.path) {
                    Err(e) => errors.push(io_error(what, file, e)),
                    Ok(f) if what == "private key" => {
                        if let Some(e) = world_readable(&f, what, file) {
                            errors.push(e);
                        }
                    }
                    Ok(_) => {}
                }
            }
        }
        if let Some(store) = &self.keyset.key_storage_path {
            if let Err(e) = check_key_storage(&store.path) {
                errors.push(io_error("key storage", store, e));
            }
        }
        if let Some(secret) = &self.keyset.fleet_secret_path {
            if let Err(e) = read_fleet_secret(secret) {
                errors.push(e);
            }
        }
        for e in &mut errors {
            if e.path.is_none() {
                e.path.clone_from(&self.path);
            }
        }
        errors
    }
}

/// Reads the fleet secret named by `file` with the checks of
/// [`Config::validate_files`]: readable, at least
/// [`MIN_FLEET_SECRET_LEN`](nts_cookie::keyset::MIN_FLEET_SECRET_LEN) bytes, no access for
/// group or others. The whole file is the secret. The caller should keep it in a
/// zeroizing buffer.
///
/// # Errors
/// [`ConfigErrorKind::Io`](super::ConfigErrorKind::Io),
/// [`FleetSecretTooShort`](super::ConfigErrorKind::FleetSecretTooShort) or
/// [`TooOpen`](super::ConfigErrorKind::TooOpen), at the line of `fleet-secret-path`.
pub fn read_fleet_secret(file: &ConfigPath) -> Result<Vec<u8>, ConfigError> {
    const WHAT: &str = "fleet secret";
    let at = |kind| ConfigError::at_position(Some(file.position), kind);
    let f = File::open(&file.path).map_err(|e| io_error(WHAT, file, e))?;
    let meta = f.metadata().map_err(|e| io_error(WHAT, file, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(at(E::TooOpen {
                what: WHAT,
                file: file.path.clone(),
                mode,
            }));
        }
    }
    if !meta.is_file() {
        let e = io::Error::new(io::ErrorKind::InvalidInput, "not a regular file");
        return Err(io_error(WHAT, file, e));
    }
    let mut secret = Vec::new();
    f.take(MAX_SECRET_FILE_LEN)
        .read_to_end(&mut secret)
        .map_err(|e| io_error(WHAT, file, e))?;
    let min = nts_cookie::keyset::MIN_FLEET_SECRET_LEN;
    if secret.len() < min {
        return Err(at(E::FleetSecretTooShort {
            file: file.path.clone(),
            len: secret.len(),
            min,
        }));
    }
    Ok(secret)
}

/// A private key that every local user can read is refused. Group read is
/// allowed: Debian gives TLS keys to the `ssl-cert` group with mode 0640.
fn world_readable(f: &File, what: &'static str, file: &ConfigPath) -> Option<ConfigError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = f.metadata().ok()?.permissions().mode() & 0o7777;
        if mode & 0o007 != 0 {
            return Some(ConfigError::at_position(
                Some(file.position),
                E::TooOpen {
                    what,
                    file: file.path.clone(),
                    mode,
                },
            ));
        }
    }
    None
}

/// The key file may be absent (it is created), but then its directory must exist.
fn check_key_storage(path: &Path) -> io::Result<()> {
    match File::open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            if std::fs::metadata(dir)?.is_dir() {
                Ok(())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{} is not a directory", dir.display()),
                ))
            }
        }
        Err(e) => Err(e),
    }
}

fn io_error(what: &'static str, file: &ConfigPath, source: io::Error) -> ConfigError {
    ConfigError::at_position(
        Some(file.position),
        E::Io {
            what,
            file: file.path.clone(),
            source,
        },
    )
}
