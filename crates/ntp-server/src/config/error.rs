//! Errors and warnings, each with the line (and file) it is about.

use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Where in a configuration file something is: 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

impl Position {
    /// The position of byte offset `offset` of `text` (clamped to the text and to a char
    /// boundary).
    pub fn of_offset(text: &str, offset: usize) -> Self {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = text.get(..offset).unwrap_or_default();
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).unwrap_or_default().chars().count() + 1;
        Self { line, column }
    }

    pub(crate) fn of_span(text: &str, span: &Range<usize>) -> Self {
        Self::of_offset(text, span.start)
    }
}

/// Writes `FILE:LINE: `, `line LINE: `, `FILE: ` or nothing.
fn write_prefix(
    f: &mut fmt::Formatter<'_>,
    path: Option<&Path>,
    position: Option<Position>,
) -> fmt::Result {
    match (path, position) {
        (Some(p), Some(pos)) => write!(f, "{}:{}: ", p.display(), pos.line),
        (None, Some(pos)) => write!(f, "line {}: ", pos.line),
        (Some(p), None) => write!(f, "{}: ", p.display()),
        (None, None) => Ok(()),
    }
}

/// A configuration that cannot be used.
///
/// Displays as `FILE:LINE: message` when the file is known (from [`load`](super::load)),
/// `line LINE: message` otherwise.
#[derive(Debug)]
#[non_exhaustive]
pub struct ConfigError {
    /// The file, when the configuration came from one.
    pub path: Option<PathBuf>,
    /// Where in the text the problem is, when it is about one place.
    pub position: Option<Position>,
    /// What is wrong.
    pub kind: ConfigErrorKind,
}

impl ConfigError {
    pub(crate) fn new(kind: ConfigErrorKind) -> Self {
        Self {
            path: None,
            position: None,
            kind,
        }
    }

    pub(crate) fn at(text: &str, span: &Range<usize>, kind: ConfigErrorKind) -> Self {
        Self {
            path: None,
            position: Some(Position::of_span(text, span)),
            kind,
        }
    }

    pub(crate) fn at_position(position: Option<Position>, kind: ConfigErrorKind) -> Self {
        Self {
            path: None,
            position,
            kind,
        }
    }

    pub(crate) fn in_file(mut self, path: Option<&Path>) -> Self {
        if self.path.is_none() {
            self.path = path.map(Path::to_path_buf);
        }
        self
    }

    /// The 1-based line, when the error is about one place.
    pub fn line(&self) -> Option<usize> {
        self.position.map(|p| p.line)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_prefix(f, self.path.as_deref(), self.position)?;
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ConfigErrorKind::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// What is wrong with a configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The text is not valid TOML.
    #[error("invalid TOML: {0}")]
    Syntax(String),
    /// A key that neither ntpd-rs nor this server knows.
    #[error("unknown key \"{key}\" in {section}{}", suggestion_text(.suggestion))]
    UnknownKey {
        /// The key as written.
        key: String,
        /// The section, as `[[server]]` or `[keyset]`; `the top level` for the top.
        section: String,
        /// A known key of the same section that is spelled alike.
        suggestion: Option<&'static str>,
    },
    /// A required key is absent.
    #[error("missing key \"{key}\" in {section}")]
    MissingKey {
        /// The key.
        key: &'static str,
        /// The section, as `[[nts-ke-server]]`.
        section: String,
    },
    /// A value of the wrong TOML type.
    #[error("\"{key}\" must be {expected}, found {found}")]
    WrongType {
        /// The key (a dotted path inside inline tables, as `allowlist.filter`).
        key: String,
        /// What it must be, as `an integer`.
        expected: &'static str,
        /// The TOML type found.
        found: &'static str,
    },
    /// A value of the right type that is not allowed.
    #[error("invalid \"{key}\": {reason}")]
    InvalidValue {
        /// The key.
        key: String,
        /// Why, as `stratum must be between 1 and 16, found 0`.
        reason: String,
    },
    /// Two keys that cannot both be set.
    #[error("\"{key}\" cannot be combined with \"{other}\" (line {other_line})")]
    Conflict {
        /// The key at the error's position.
        key: &'static str,
        /// The key it conflicts with.
        other: &'static str,
        /// The line of `other`.
        other_line: usize,
    },
    /// Two listeners of the same kind on one address.
    #[error("{section} listen address {listen} is already used on line {first_line}")]
    DuplicateListen {
        /// `[[server]]` or `[[nts-ke-server]]`.
        section: &'static str,
        /// The address.
        listen: std::net::SocketAddr,
        /// The line of the first use.
        first_line: usize,
    },
    /// Neither `[[server]]` nor `[[nts-ke-server]]`: nothing to serve.
    #[error("nothing to serve: add a [[server]] or [[nts-ke-server]] section")]
    NothingToServe,
    /// A file cannot be read (the configuration itself or a file it names).
    #[error("cannot read {what} {}: {source}", .file.display())]
    Io {
        /// What the file is, as `certificate chain`.
        what: &'static str,
        /// The file.
        file: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A fleet secret file with fewer bytes than required.
    #[error("fleet secret {} holds {len} bytes, need at least {min}", .file.display())]
    FleetSecretTooShort {
        /// The file.
        file: PathBuf,
        /// Its length.
        len: usize,
        /// The minimum ([`nts_cookie::keyset::MIN_FLEET_SECRET_LEN`]).
        min: usize,
    },
    /// A secret file that is too open: a fleet secret that group or others
    /// may access, or a TLS private key that others may access.
    #[error(
        "{what} {} has mode {mode:04o}, too open for a secret (fleet secrets: chmod 600; TLS keys: chmod o-rwx)",
        .file.display()
    )]
    TooOpen {
        /// What the file is.
        what: &'static str,
        /// The file.
        file: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

fn suggestion_text(suggestion: &Option<&'static str>) -> String {
    suggestion.map_or_else(String::new, |s| format!(" (did you mean \"{s}\"?)"))
}

/// Something in a configuration that loads but does not do what its author may expect.
///
/// Displays as `FILE:LINE: message` when the file is known, `line LINE: message`
/// otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Warning {
    /// The file, when the configuration came from one.
    pub path: Option<PathBuf>,
    /// Where in the text.
    pub position: Option<Position>,
    /// What the warning is about.
    pub kind: WarningKind,
}

impl Warning {
    pub(crate) fn at(text: &str, span: &Range<usize>, kind: WarningKind) -> Self {
        Self {
            path: None,
            position: Some(Position::of_span(text, span)),
            kind,
        }
    }

    /// The 1-based line.
    pub fn line(&self) -> Option<usize> {
        self.position.map(|p| p.line)
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_prefix(f, self.path.as_deref(), self.position)?;
        write!(f, "{}", self.kind)
    }
}

/// What a [`Warning`] is about.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WarningKind {
    /// An ntpd-rs key this server accepts and ignores.
    #[error("\"{key}\" in {section} is an ntpd-rs setting that ntp-server ignores: {reason}")]
    NotImplemented {
        /// The key.
        key: String,
        /// The section, as `[synchronization]`.
        section: String,
        /// Why it is ignored.
        reason: &'static str,
    },
    /// No longer emitted: `[[source]]` tables are used (kept so that code matching
    /// on it still compiles).
    #[error("[[source]] ignored")]
    SourceIgnored,
    /// NTPv5 (an ntpd-rs draft feature) in `accept-ntp-versions`.
    #[error(
        "\"accept-ntp-versions\" in {section}: NTPv5 is not implemented by ntp-server, 5 is ignored"
    )]
    NtpV5Ignored {
        /// `[[server]]` or `[[nts-ke-server]]`.
        section: &'static str,
    },
    /// NTS is served with keys that are neither stored nor derived from a fleet secret.
    #[error(
        "NTS keys are random and not persisted: cookies become invalid on restart \
         (set key-storage-path or fleet-secret-path in [keyset])"
    )]
    KeysNotPersisted,
    /// `rate-limiting-cutoff-ms` without a cache to remember clients in.
    #[error("rate-limiting-cutoff-ms has no effect while rate-limiting-cache-size is 0")]
    RateLimitWithoutCache,
    /// `reference-id` is only sent at stratum 1.
    #[error("reference-id is only sent when local-stratum is 1")]
    ReferenceIdUnused,
}
