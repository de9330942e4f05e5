//! Walks the spanned TOML tree section by section, so that every error and warning can
//! name its key and line.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{ConfigError, ConfigErrorKind as E, Position, Warning, WarningKind as W};
use super::keys::{self, Key, Support};
use super::types::{
    Config, ConfigPath, FilterAction, FilterList, IpSubnet, KeysetConfig, NtsKeServerConfig,
    ObservabilityConfig, ProcessConfig, RateLimitAction, ServerClockConfig, ServerConfig,
    SourceConfig, SourceMode, SynchronizationConfig,
};

type Span = Range<usize>;
type Value<'a, 'i> = &'a Spanned<DeValue<'i>>;
type Result<T> = std::result::Result<T, ConfigError>;

/// Parses and checks `text`; warnings come back sorted by position.
pub(crate) fn parse_text(text: &str) -> Result<(Config, Vec<Warning>)> {
    let root = DeTable::parse(text).map_err(|e| {
        let position = e.span().map(|s| Position::of_span(text, &s));
        ConfigError::at_position(position, E::Syntax(e.message().trim().to_owned()))
    })?;
    let mut p = Parser {
        text,
        warnings: Vec::new(),
        server_listens: Vec::new(),
        nts_ke_listens: Vec::new(),
        keyset_span: None,
    };
    let config = p.document(root.get_ref())?;
    let mut warnings = p.warnings;
    warnings.sort_by_key(|w| w.position);
    Ok((config, warnings))
}

struct Parser<'t> {
    text: &'t str,
    warnings: Vec<Warning>,
    /// Every `[[server]]` listen address with the span of its value.
    server_listens: Vec<(SocketAddr, Span)>,
    /// Every `[[nts-ke-server]]` listen address with the span of its value.
    nts_ke_listens: Vec<(SocketAddr, Span)>,
    /// The span of the `[keyset]` header, when there is one.
    keyset_span: Option<Span>,
}

/// A table being read: its entries in file order, and its name for messages.
struct Table<'a, 'i> {
    section: String,
    span: Span,
    entries: Vec<(&'a Spanned<Cow<'i, str>>, Value<'a, 'i>)>,
}

impl<'a, 'i> Table<'a, 'i> {
    fn new(section: impl Into<String>, span: Span, table: &'a DeTable<'i>) -> Self {
        let mut entries: Vec<_> = table.iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        Self {
            section: section.into(),
            span,
            entries,
        }
    }

    fn get(&self, key: &str) -> Option<Value<'a, 'i>> {
        self.entries
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|&(_, v)| v)
    }
}

impl Parser<'_> {
    fn error(&self, span: &Span, kind: E) -> ConfigError {
        ConfigError::at(self.text, span, kind)
    }

    fn warn(&mut self, span: &Span, kind: W) {
        self.warnings.push(Warning::at(self.text, span, kind));
    }

    fn line(&self, span: &Span) -> usize {
        Position::of_span(self.text, span).line
    }

    fn document(&mut self, root: &DeTable<'_>) -> Result<Config> {
        let root = Table::new("the top level", 0..0, root);
        let mut config = Config {
            path: None,
            servers: Vec::new(),
            nts_ke_servers: Vec::new(),
            sources: Vec::new(),
            synchronization: SynchronizationConfig::default(),
            keyset: KeysetConfig::default(),
            observability: ObservabilityConfig::default(),
            server_clock: ServerClockConfig::default(),
            process: ProcessConfig::default(),
        };
        for &(key, value) in &root.entries {
            let name = key.get_ref().as_ref();
            match name {
                "server" => {
                    for (span, table) in self.array_of_tables("server", value)? {
                        let t = Table::new("[[server]]", span, table);
                        let server = self.server(&t)?;
                        config.servers.push(server);
                    }
                }
                "nts-ke-server" => {
                    for (span, table) in self.array_of_tables("nts-ke-server", value)? {
                        let t = Table::new("[[nts-ke-server]]", span, table);
                        let server = self.nts_ke_server(&t)?;
                        config.nts_ke_servers.push(server);
                    }
                }
                "source" => {
                    for (span, table) in self.array_of_tables("source", value)? {
                        let t = Table::new("[[source]]", span, table);
                        let source = self.source(&t)?;
                        config.sources.push(source);
                    }
                }
                "synchronization" => {
                    let t = self.table("synchronization", value)?;
                    config.synchronization = self.synchronization(&t)?;
                }
                "keyset" => {
                    let t = self.table("keyset", value)?;
                    self.keyset_span = Some(t.span.clone());
                    config.keyset = self.keyset(&t)?;
                }
                "observability" => {
                    let t = self.table("observability", value)?;
                    config.observability = self.observability(&t)?;
                }
                "server-clock" => {
                    let t = self.table("server-clock", value)?;
                    config.server_clock = self.server_clock(&t)?;
                }
                "process" => {
                    let t = self.table("process", value)?;
                    config.process = self.process(&t)?;
                }
                "source-defaults" => {
                    let t = self.table("source-defaults", value)?;
                    self.check_keys(&t, keys::SOURCE_DEFAULTS)?;
                }
                "clock" => {
                    let t = self.table("clock", value)?;
                    self.check_keys(&t, keys::CLOCK)?;
                }
                _ => {
                    return Err(self.error(
                        &key.span(),
                        E::UnknownKey {
                            key: name.to_owned(),
                            section: root.section.clone(),
                            suggestion: keys::suggest(keys::TOP, name),
                        },
                    ));
                }
            }
        }
        self.check_whole(&config)?;
        Ok(config)
    }

    /// Checks that span the sections.
    fn check_whole(&mut self, config: &Config) -> Result<()> {
        if config.servers.is_empty() && config.nts_ke_servers.is_empty() {
            return Err(ConfigError::new(E::NothingToServe));
        }
        for (section, listens) in [
            ("[[server]]", &self.server_listens),
            ("[[nts-ke-server]]", &self.nts_ke_listens),
        ] {
            for (i, (addr, span)) in listens.iter().enumerate() {
                if addr.port() == 0 {
                    continue;
                }
                if let Some((_, first)) = listens.iter().take(i).find(|(a, _)| a == addr) {
                    return Err(self.error(
                        span,
                        E::DuplicateListen {
                            section,
                            listen: *addr,
                            first_line: self.line(first),
                        },
                    ));
                }
            }
        }
        if !config.nts_ke_servers.is_empty()
            && config.keyset.key_storage_path.is_none()
            && config.keyset.fleet_secret_path.is_none()
        {
            let span = self
                .keyset_span
                .clone()
                .or_else(|| self.nts_ke_listens.first().map(|(_, s)| s.clone()))
                .unwrap_or(0..0);
            self.warn(&span, W::KeysNotPersisted);
        }
        Ok(())
    }

    /// Errors on keys outside `known`, warns on the ntpd-rs keys this server ignores.
    fn check_keys(&mut self, t: &Table<'_, '_>, known: &[Key]) -> Result<()> {
        for (key, _) in &t.entries {
            let name = key.get_ref().as_ref();
            match keys::find(known, name) {
                None => {
                    return Err(self.error(
                        &key.span(),
                        E::UnknownKey {
                            key: name.to_owned(),
                            section: t.section.clone(),
                            suggestion: keys::suggest(known, name),
                        },
                    ));
                }
                Some(Key {
                    support: Support::Warned(reason),
                    ..
                }) => self.warn(
                    &key.span(),
                    W::NotImplemented {
                        key: name.to_owned(),
                        section: t.section.clone(),
                        reason,
                    },
                ),
                Some(_) => {}
            }
        }
        Ok(())
    }

    // --- sections ---

    fn server(&mut self, t: &Table<'_, '_>) -> Result<ServerConfig> {
        self.check_keys(t, keys::SERVER)?;
        let (listen, listen_span) = self.required(t, "listen", Self::socket_addr)?;
        self.server_listens.push((listen, listen_span));
        let rate_limiting_cache_size =
            self.optional(t, "rate-limiting-cache-size", |p, k, v| {
                p.unsigned(k, v, 0, u64::MAX)
            })?;
        let cutoff = t.get("rate-limiting-cutoff-ms");
        let cutoff_ms = match cutoff {
            Some(v) => self.unsigned("rate-limiting-cutoff-ms", v, 0, u64::MAX)?,
            None => 0,
        };
        if let Some(v) = cutoff {
            if cutoff_ms > 0 && rate_limiting_cache_size.unwrap_or(0) == 0 {
                self.warn(&v.span(), W::RateLimitWithoutCache);
            }
        }
        let rate_limit_action = self
            .optional(t, "rate-limit-action", |p, k, v| {
                p.choice(
                    k,
                    v,
                    &[
                        ("kod", RateLimitAction::Kod),
                        ("drop", RateLimitAction::Drop),
                    ],
                )
            })?
            .unwrap_or_default();
        let allowlist = self.optional(t, "allowlist", |p, k, v| p.filter_list(&t.section, k, v))?;
        let denylist = self.optional(t, "denylist", |p, k, v| p.filter_list(&t.section, k, v))?;
        let require_nts = self
            .optional(t, "require-nts", Self::require_nts)?
            .unwrap_or(None);
        let accept_ntp_versions = self
            .optional(t, "accept-ntp-versions", |p, k, v| {
                p.ntp_versions("[[server]]", k, v, &[3, 4])
            })?
            .unwrap_or_else(|| vec![3, 4]);
        let workers = self
            .optional(t, "workers", |p, k, v| p.unsigned(k, v, 1, 4096))?
            .and_then(NonZeroUsize::new);
        Ok(ServerConfig {
            line: self.line(&t.span),
            listen,
            rate_limiting_cache_size: rate_limiting_cache_size.unwrap_or(0),
            rate_limiting_cutoff: Duration::from_millis(cutoff_ms),
            rate_limit_action,
            allowlist,
            denylist,
            require_nts,
            accept_ntp_versions,
            workers,
        })
    }

    fn nts_ke_server(&mut self, t: &Table<'_, '_>) -> Result<NtsKeServerConfig> {
        self.check_keys(t, keys::NTS_KE_SERVER)?;
        let (listen, listen_span) = self.required(t, "listen", Self::socket_addr)?;
        self.nts_ke_listens.push((listen, listen_span));
        let (certificate_chain_path, _) = self.required(t, "certificate-chain-path", Self::path)?;
        let (private_key_path, _) = self.required(t, "private-key-path", Self::path)?;
        let timeout_ms = self
            .optional(t, "key-exchange-timeout-ms", |p, k, v| {
                p.unsigned(k, v, 1, u64::MAX)
            })?
            .unwrap_or(1000);
        let concurrent_connections = self
            .optional(t, "concurrent-connections", |p, k, v| {
                p.unsigned(k, v, 1, u64::MAX)
            })?
            .unwrap_or(512);
        let ntp_port = self.optional(t, "ntp-port", |p, k, v| p.unsigned(k, v, 1, 65_535))?;
        let ntp_server = self.optional(t, "ntp-server", |p, k, v| {
            let s = p.string(k, v)?;
            if s.is_empty()
                || s.len() > 255
                || s.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(p.invalid(k, v, "must be a host name or IP address".to_owned()));
            }
            Ok(s.to_owned())
        })?;
        let accept_ntp_versions = self
            .optional(t, "accept-ntp-versions", |p, k, v| {
                p.ntp_versions("[[nts-ke-server]]", k, v, &[4])
            })?
            .unwrap_or_else(|| vec![4]);
        let max_request_bytes = self
            .optional(t, "max-request-bytes", |p, k, v| {
                p.unsigned(k, v, 64, 65_536)
            })?
            .unwrap_or(1024);
        Ok(NtsKeServerConfig {
            line: self.line(&t.span),
            listen,
            certificate_chain_path,
            private_key_path,
            key_exchange_timeout: Duration::from_millis(timeout_ms),
            concurrent_connections,
            ntp_port,
            ntp_server,
            accept_ntp_versions,
            max_request_bytes,
        })
    }

    fn synchronization(&mut self, t: &Table<'_, '_>) -> Result<SynchronizationConfig> {
        self.check_keys(t, keys::SYNCHRONIZATION)?;
        let mut config = SynchronizationConfig::default();
        if let Some(stratum) =
            self.optional(t, "local-stratum", |p, k, v| p.unsigned(k, v, 1, 16))?
        {
            config.local_stratum = stratum;
        }
        if let Some(v) = t.get("reference-id") {
            config.reference_id = self.reference_id("reference-id", v)?;
            if config.local_stratum != 1 {
                self.warn(&v.span(), W::ReferenceIdUnused);
            }
        }
        if let Some(v) = t.get("algorithm") {
            let algorithm = self.table("synchronization.algorithm", v)?;
            self.check_keys(&algorithm, keys::ALGORITHM)?;
        }
        if let Some(n) = self.optional(t, "min-poll", |p, k, v| p.unsigned(k, v, 0, 17))? {
            config.min_poll = n;
        }
        if let Some(n) = self.optional(t, "max-poll", |p, k, v| p.unsigned(k, v, 0, 17))? {
            config.max_poll = n;
        }
        if let (Some(v), true) = (t.get("max-poll"), config.max_poll < config.min_poll) {
            return Err(self.invalid(
                "max-poll",
                v,
                format!(
                    "must be at least min-poll ({}), found {}",
                    config.min_poll, config.max_poll
                ),
            ));
        }
        if let Some(s) = self.optional(t, "acquire-wait", |p, k, v| p.unsigned(k, v, 0, 3600))? {
            config.acquire_wait = Duration::from_secs(s);
        }
        if let Some(ms) =
            self.optional(t, "max-offset-ms", |p, k, v| p.unsigned(k, v, 1, 3_600_000))?
        {
            config.max_offset = Duration::from_millis(ms);
        }
        Ok(config)
    }

    fn source(&mut self, t: &Table<'_, '_>) -> Result<SourceConfig> {
        self.check_keys(t, keys::SOURCE)?;
        let line = self.line(&t.span);
        let (mode, _) = self.required(t, "mode", |p, k, v| {
            p.choice(
                k,
                v,
                &[
                    ("server", SourceMode::Server),
                    ("nts", SourceMode::Nts),
                    ("pool", SourceMode::Pool),
                ],
            )
        })?;
        let (address, _) = self.required(t, "address", |p, k, v| {
            let s = p.string(k, v)?;
            let default_port = if mode == SourceMode::Nts { 4460 } else { 123 };
            ntp_io::sync::split_host_port(s, default_port).map_err(|e| p.invalid(k, v, e))?;
            Ok(s.to_owned())
        })?;
        let certificate_authority = self.optional(t, "certificate-authority", Self::path)?;
        if let (Some(v), true) = (t.get("certificate-authority"), mode != SourceMode::Nts) {
            return Err(self.invalid(
                "certificate-authority",
                v,
                "is only used with mode = \"nts\"".to_owned(),
            ));
        }
        let count = self
            .optional(t, "count", |p, k, v| p.unsigned(k, v, 1, 64))?
            .unwrap_or(4);
        if let (Some(v), true) = (t.get("count"), mode != SourceMode::Pool) {
            return Err(self.invalid("count", v, "is only used with mode = \"pool\"".to_owned()));
        }
        Ok(SourceConfig {
            line,
            mode,
            address,
            certificate_authority,
            count,
        })
    }

    fn keyset(&mut self, t: &Table<'_, '_>) -> Result<KeysetConfig> {
        self.check_keys(t, keys::KEYSET)?;
        let mut config = KeysetConfig::default();
        let max_old = u64::try_from(nts_cookie::keyset::MAX_OLD_KEYS).unwrap_or(u64::MAX);
        if let Some(n) =
            self.optional(t, "stale-key-count", |p, k, v| p.unsigned(k, v, 0, max_old))?
        {
            config.stale_key_count = n;
        }
        if let Some(s) = self.optional(t, "key-rotation-interval", |p, k, v| {
            p.unsigned(k, v, 1, u64::MAX)
        })? {
            config.key_rotation_interval = Duration::from_secs(s);
        }
        config.key_storage_path = self.optional(t, "key-storage-path", Self::path)?;
        config.fleet_secret_path = self.optional(t, "fleet-secret-path", Self::path)?;
        if let (Some(store), Some(secret)) = (t.get("key-storage-path"), t.get("fleet-secret-path"))
        {
            let (later, key, other, earlier) = if store.span().start > secret.span().start {
                (store, "key-storage-path", "fleet-secret-path", secret)
            } else {
                (secret, "fleet-secret-path", "key-storage-path", store)
            };
            return Err(self.error(
                &later.span(),
                E::Conflict {
                    key,
                    other,
                    other_line: self.line(&earlier.span()),
                },
            ));
        }
        Ok(config)
    }

    fn observability(&mut self, t: &Table<'_, '_>) -> Result<ObservabilityConfig> {
        self.check_keys(t, keys::OBSERVABILITY)?;
        let log_level = self.optional(t, "log-level", |p, k, v| {
            p.choice(
                k,
                v,
                &[
                    ("trace", tracing::Level::TRACE),
                    ("debug", tracing::Level::DEBUG),
                    ("info", tracing::Level::INFO),
                    ("warn", tracing::Level::WARN),
                    ("error", tracing::Level::ERROR),
                ],
            )
        })?;
        let metrics_exporter_listen =
            self.optional(t, "metrics-exporter-listen", Self::socket_addr)?;
        Ok(ObservabilityConfig {
            log_level,
            metrics_exporter_listen,
        })
    }

    fn server_clock(&mut self, t: &Table<'_, '_>) -> Result<ServerClockConfig> {
        self.check_keys(t, keys::SERVER_CLOCK)?;
        let precision = self.optional(t, "precision", |p, k, v| {
            let n = p.integer(k, v)?;
            i8::try_from(n)
                .ok()
                .filter(|n| (-32..=0).contains(n))
                .ok_or_else(|| p.invalid(k, v, format!("must be between -32 and 0, found {n}")))
        })?;
        Ok(ServerClockConfig { precision })
    }

    fn process(&mut self, t: &Table<'_, '_>) -> Result<ProcessConfig> {
        self.check_keys(t, keys::PROCESS)?;
        let name = |p: &mut Self, k: &str, v: Value<'_, '_>| -> Result<String> {
            let s = p.string(k, v)?;
            if s.is_empty()
                || s.len() > 32
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
            {
                return Err(p.invalid(k, v, format!("{s:?} is not a valid user or group name")));
            }
            Ok(s.to_owned())
        };
        let user = self.optional(t, "user", name)?;
        let group = self.optional(t, "group", name)?;
        Ok(ProcessConfig { user, group })
    }

    // --- structure ---

    /// The tables of `[[name]]` (or `name = [{...}, ...]`) with their spans.
    fn array_of_tables<'a, 'i>(
        &self,
        name: &str,
        value: Value<'a, 'i>,
    ) -> Result<Vec<(Span, &'a DeTable<'i>)>> {
        let wrong = |found: &'static str, span: &Span| {
            self.error(
                span,
                E::WrongType {
                    key: name.to_owned(),
                    expected: "an array of tables ([[...]])",
                    found,
                },
            )
        };
        let DeValue::Array(items) = value.get_ref() else {
            return Err(wrong(value.get_ref().type_str(), &value.span()));
        };
        items
            .iter()
            .map(|item| match item.get_ref() {
                DeValue::Table(t) => Ok((item.span(), t)),
                other => Err(wrong(other.type_str(), &item.span())),
            })
            .collect()
    }

    fn table<'a, 'i>(&self, name: &str, value: Value<'a, 'i>) -> Result<Table<'a, 'i>> {
        match value.get_ref() {
            DeValue::Table(t) => Ok(Table::new(format!("[{name}]"), value.span(), t)),
            other => Err(self.error(
                &value.span(),
                E::WrongType {
                    key: name.to_owned(),
                    expected: "a table",
                    found: other.type_str(),
                },
            )),
        }
    }

    fn required<T>(
        &mut self,
        t: &Table<'_, '_>,
        key: &'static str,
        read: impl FnOnce(&mut Self, &str, Value<'_, '_>) -> Result<T>,
    ) -> Result<(T, Span)> {
        let Some(v) = t.get(key) else {
            return Err(self.error(
                &t.span,
                E::MissingKey {
                    key,
                    section: t.section.clone(),
                },
            ));
        };
        Ok((read(self, key, v)?, v.span()))
    }

    fn optional<T>(
        &mut self,
        t: &Table<'_, '_>,
        key: &'static str,
        read: impl FnOnce(&mut Self, &str, Value<'_, '_>) -> Result<T>,
    ) -> Result<Option<T>> {
        t.get(key).map(|v| read(self, key, v)).transpose()
    }

    // --- values ---

    fn wrong_type(&self, key: &str, v: Value<'_, '_>, expected: &'static str) -> ConfigError {
        self.error(
            &v.span(),
            E::WrongType {
                key: key.to_owned(),
                expected,
                found: v.get_ref().type_str(),
            },
        )
    }

    fn invalid(&self, key: &str, v: Value<'_, '_>, reason: String) -> ConfigError {
        self.error(
            &v.span(),
            E::InvalidValue {
                key: key.to_owned(),
                reason,
            },
        )
    }

    fn integer(&self, key: &str, v: Value<'_, '_>) -> Result<i128> {
        let DeValue::Integer(i) = v.get_ref() else {
            return Err(self.wrong_type(key, v, "an integer"));
        };
        i128::from_str_radix(i.as_str(), i.radix())
            .map_err(|_| self.invalid(key, v, "integer out of range".to_owned()))
    }

    /// An integer in `min..=max`, converted to `T`.
    fn unsigned<T: TryFrom<u64>>(
        &self,
        key: &str,
        v: Value<'_, '_>,
        min: u64,
        max: u64,
    ) -> Result<T> {
        let n = self.integer(key, v)?;
        u64::try_from(n)
            .ok()
            .filter(|n| (min..=max).contains(n))
            .and_then(|n| T::try_from(n).ok())
            .ok_or_else(|| {
                let range = if max == u64::MAX {
                    format!("at least {min}")
                } else {
                    format!("between {min} and {max}")
                };
                self.invalid(key, v, format!("must be {range}, found {n}"))
            })
    }

    fn string<'a>(&self, key: &str, v: &'a Spanned<DeValue<'_>>) -> Result<&'a str> {
        match v.get_ref() {
            DeValue::String(s) => Ok(s.as_ref()),
            _ => Err(self.wrong_type(key, v, "a string")),
        }
    }

    fn choice<T: Copy>(&mut self, key: &str, v: Value<'_, '_>, choices: &[(&str, T)]) -> Result<T> {
        let s = self.string(key, v)?;
        choices
            .iter()
            .find(|(name, _)| *name == s)
            .map(|&(_, value)| value)
            .ok_or_else(|| {
                let names: Vec<String> = choices.iter().map(|(n, _)| format!("\"{n}\"")).collect();
                self.invalid(
                    key,
                    v,
                    format!("\"{s}\" is not one of {}", names.join(", ")),
                )
            })
    }

    fn socket_addr(&mut self, key: &str, v: Value<'_, '_>) -> Result<SocketAddr> {
        let s = self.string(key, v)?;
        s.parse().map_err(|_| {
            self.invalid(
                key,
                v,
                format!("\"{s}\" is not a socket address (as 0.0.0.0:123 or [::]:123)"),
            )
        })
    }

    fn path(&mut self, key: &str, v: Value<'_, '_>) -> Result<ConfigPath> {
        let s = self.string(key, v)?;
        if s.is_empty() {
            return Err(self.invalid(key, v, "must not be empty".to_owned()));
        }
        Ok(ConfigPath {
            path: PathBuf::from(s),
            position: Position::of_span(self.text, &v.span()),
        })
    }

    fn require_nts(&mut self, key: &str, v: Value<'_, '_>) -> Result<Option<FilterAction>> {
        match v.get_ref() {
            DeValue::Boolean(true) => Ok(Some(FilterAction::Ignore)),
            DeValue::Boolean(false) => Ok(None),
            DeValue::String(_) => Ok(Some(self.filter_action(key, v)?)),
            _ => Err(self.wrong_type(key, v, "true, false, \"deny\" or \"ignore\"")),
        }
    }

    fn filter_action(&mut self, key: &str, v: Value<'_, '_>) -> Result<FilterAction> {
        self.choice(
            key,
            v,
            &[
                ("deny", FilterAction::Deny),
                ("ignore", FilterAction::Ignore),
            ],
        )
    }

    fn filter_list(&mut self, section: &str, key: &str, v: Value<'_, '_>) -> Result<FilterList> {
        let DeValue::Table(table) = v.get_ref() else {
            return Err(self.wrong_type(
                key,
                v,
                "a table { filter = [...], action = \"deny\" | \"ignore\" }",
            ));
        };
        let t = Table::new(format!("{section} {key}"), v.span(), table);
        self.check_keys(&t, keys::FILTER)?;
        let filter_key = format!("{key}.filter");
        let (filter, _) = self.required(&t, "filter", |p, _, f| {
            let DeValue::Array(items) = f.get_ref() else {
                return Err(p.wrong_type(&filter_key, f, "an array of subnets"));
            };
            items
                .iter()
                .map(|item| {
                    let s = p.string(&filter_key, item)?;
                    s.parse::<IpSubnet>()
                        .map_err(|reason| p.invalid(&filter_key, item, reason))
                })
                .collect::<Result<Vec<_>>>()
        })?;
        let action_key = format!("{key}.action");
        let (action, _) = self.required(&t, "action", |p, _, a| p.filter_action(&action_key, a))?;
        Ok(FilterList { filter, action })
    }

    /// `accept-ntp-versions`: `allowed` are kept, 5 is dropped with a warning.
    fn ntp_versions(
        &mut self,
        section: &'static str,
        key: &str,
        v: Value<'_, '_>,
        allowed: &[u8],
    ) -> Result<Vec<u8>> {
        let DeValue::Array(items) = v.get_ref() else {
            return Err(self.wrong_type(key, v, "an array of NTP versions"));
        };
        let mut versions = Vec::new();
        for item in items.iter() {
            let n: u8 = self.unsigned(key, item, 0, 255)?;
            if allowed.contains(&n) {
                if !versions.contains(&n) {
                    versions.push(n);
                }
            } else if n == 5 {
                self.warn(&item.span(), W::NtpV5Ignored { section });
            } else {
                let list: Vec<String> = allowed.iter().map(u8::to_string).collect();
                let why = if n == 3 { " (NTPv3 has no NTS)" } else { "" };
                return Err(self.invalid(
                    key,
                    item,
                    format!(
                        "NTP version {n} is not supported here{why}; use {}",
                        list.join(", ")
                    ),
                ));
            }
        }
        Ok(versions)
    }

    fn reference_id(&mut self, key: &str, v: Value<'_, '_>) -> Result<[u8; 4]> {
        let s = self.string(key, v)?;
        if !s.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
            return Err(self.invalid(key, v, format!("\"{s}\" must be printable ASCII")));
        }
        if s.len() > 4 {
            return Err(self.invalid(
                key,
                v,
                format!(
                    "\"{s}\" is {} characters long, at most 4 are allowed",
                    s.len()
                ),
            ));
        }
        let mut id = [0u8; 4];
        for (slot, byte) in id.iter_mut().zip(s.bytes()) {
            *slot = byte;
        }
        Ok(id)
    }
}
