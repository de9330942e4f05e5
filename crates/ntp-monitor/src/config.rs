//! The configuration file: `[[source]]` tables as `ntp-client` reads them
//! (plus an `operator` label), `[policy]`, `[monitor]`, `[alerts]` and
//! `[export]`.
//!
//! Unknown keys and wrong types are errors that name the key and its line
//! (the TOML parser's message); values that parse but make no sense (an
//! unknown `mode`, a quorum larger than the sources) name the key too, and
//! the line of the source table when one is concerned. Relative paths are
//! resolved against the directory of the configuration file.
//!
//! ```toml
//! [[source]]
//! name = "ptb"                 # optional; defaults to the address
//! mode = "nts"                 # "server" (plain NTP) or "nts"
//! address = "ptbtime1.ptb.de"  # host[:port]; for NTS the port is the NTS-KE port
//! operator = "PTB"
//! certificate-authority = "ca.pem"   # optional, NTS only: trust this CA
//!
//! [policy]
//! mode = "check-all"           # "check-all" | "first-pass" | "quorum"
//! quorum = 2
//! tiebreak = "fail"
//! max-offset-ms = 100
//! retries = 3
//! retry-interval-ms = 500
//! interval-s = 16
//! hold-after = 2
//! release-after = 3
//! lease-s = 60
//!
//! [monitor]
//! database = "ntp-monitor.sqlite"
//! http-listen = "127.0.0.1:8123"
//! retention-days = 365
//!
//! [alerts]
//! webhook = "http://127.0.0.1:9000/hook"
//! command = "/usr/local/bin/page-oncall"
//!
//! [export]
//! signing-key-path = "export.key"
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use ntp_policy::{
    DisagreementAction, LeapHandling, Mode, NtsRequirement, Policy, SourceSpec, Tiebreak,
    ValidPolicy,
};
use serde::Deserialize;
use toml::Spanned;

use crate::alerts::HttpUrl;

/// One configured source, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The name checks and verdicts refer to.
    pub name: String,
    /// The operator label (distinct-operators rule, dashboard).
    pub operator: String,
    /// The host name or address.
    pub host: String,
    /// The port given in `address`: the NTP port for plain sources, the
    /// NTS-KE port for NTS sources.
    pub port: Option<u16>,
    /// Whether the source is queried with NTS.
    pub nts: bool,
    /// A CA file to trust for NTS instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// The `address` as configured, for the log.
    pub address: String,
}

/// `[monitor]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorSettings {
    /// `database`: the SQLite transaction log.
    pub database: PathBuf,
    /// `http-listen`: where `/health`, `/metrics`, the API and the dashboard
    /// are served.
    pub http_listen: SocketAddr,
    /// `retention-days`: checks, verdicts and alerts older than this are
    /// pruned.
    pub retention_days: u32,
    /// `query-timeout-ms`: how long one attempt waits for its reply (and
    /// for the NTS key exchange). Default 1000.
    pub query_timeout: Duration,
    /// `degraded-healthy`: whether `/health` answers 200 while DEGRADED.
    /// Default false (only TRUSTED is healthy).
    pub degraded_healthy: bool,
}

/// `[alerts]`.
#[derive(Debug, Clone, Default)]
pub struct AlertSettings {
    /// `webhook`: an `http://` or `https://` URL that receives each alert
    /// as a JSON POST. For `https://`, its TLS settings are built here, at
    /// loading, trusting `webhook-ca` (a PEM file of CA certificates: a
    /// private relay with its own CA) when set, the system's trust store
    /// otherwise.
    pub webhook: Option<HttpUrl>,
    /// `command`: a program run for each alert, the alert as JSON on stdin.
    pub command: Option<PathBuf>,
    /// `timeout-ms`: the limit for one webhook call or command. Default 5000.
    pub timeout: Duration,
}

/// The whole configuration, checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// The sources, in configured order.
    pub sources: Vec<Source>,
    /// The validated policy over them.
    pub policy: ValidPolicy,
    /// `[monitor]`.
    pub monitor: MonitorSettings,
    /// `[alerts]`.
    pub alerts: AlertSettings,
    /// `[export] signing-key-path`: the Ed25519 key that signs exports
    /// (created, mode 0600, when missing).
    pub signing_key: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    #[serde(default, rename = "source")]
    sources: Vec<Spanned<RawSource>>,
    policy: Option<Spanned<RawPolicy>>,
    #[serde(default)]
    monitor: RawMonitor,
    #[serde(default)]
    alerts: RawAlerts,
    #[serde(default)]
    export: RawExport,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSource {
    name: Option<String>,
    mode: SourceMode,
    address: String,
    operator: String,
    certificate_authority: Option<PathBuf>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum SourceMode {
    Server,
    Nts,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPolicy {
    mode: Option<PolicyMode>,
    quorum: Option<usize>,
    tiebreak: Option<RawTiebreak>,
    max_offset_ms: Option<u64>,
    max_root_distance_ms: Option<u64>,
    leap: Option<RawLeap>,
    nts_required: Option<RawNtsRequired>,
    min_operators: Option<usize>,
    max_disagreement_ms: Option<u64>,
    on_disagreement: Option<RawDisagreement>,
    retries: Option<u32>,
    retry_interval_ms: Option<u64>,
    interval_s: Option<u64>,
    hold_after: Option<u32>,
    release_after: Option<u32>,
    lease_s: Option<u64>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum PolicyMode {
    CheckAll,
    FirstPass,
    Quorum,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum RawTiebreak {
    Pass,
    Fail,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum RawLeap {
    Ignore,
    Degrade,
    Fail,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum RawDisagreement {
    Degrade,
    Fail,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(untagged)]
enum RawNtsRequired {
    Count(usize),
    Word(NtsWord),
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum NtsWord {
    None,
    All,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawMonitor {
    database: Option<PathBuf>,
    http_listen: Option<SocketAddr>,
    retention_days: Option<u32>,
    query_timeout_ms: Option<u64>,
    degraded_healthy: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawAlerts {
    webhook: Option<String>,
    webhook_ca: Option<PathBuf>,
    command: Option<PathBuf>,
    timeout_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawExport {
    signing_key_path: Option<PathBuf>,
}

/// Reads and checks the configuration file at `path`.
///
/// # Errors
/// An unreadable file, or any error [`parse`] reports, prefixed with the path.
pub fn load(path: &Path) -> anyhow::Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read configuration {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, base).with_context(|| format!("configuration {}", path.display()))
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(0, |t| t.bytes().filter(|&b| b == b'\n').count())
        + 1
}

/// Splits `host[:port]`, `[v6]:port` or a bare IPv6 address.
///
/// # Errors
/// A port that is not a number from 1 to 65535, or an empty host.
pub fn split_address(address: &str) -> anyhow::Result<(String, Option<u16>)> {
    let port = |p: &str| -> anyhow::Result<u16> {
        match p.parse::<u16>() {
            Ok(0) | Err(_) => bail!("bad port {p:?} in address {address:?}"),
            Ok(p) => Ok(p),
        }
    };
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .with_context(|| format!("unclosed '[' in address {address:?}"))?;
        match after.strip_prefix(':') {
            Some(p) => (host.to_string(), Some(port(p)?)),
            None if after.is_empty() => (host.to_string(), None),
            None => bail!("unexpected {after:?} after ']' in address {address:?}"),
        }
    } else if address.matches(':').count() > 1 {
        (address.to_string(), None) // a bare IPv6 address
    } else if let Some((host, p)) = address.rsplit_once(':') {
        (host.to_string(), Some(port(p)?))
    } else {
        (address.to_string(), None)
    };
    if host.is_empty() {
        bail!("empty host in address {address:?}");
    }
    Ok((host, port))
}

/// Parses and checks a configuration; relative paths are taken from `base`.
///
/// # Errors
/// Unknown keys, wrong types, impossible values and an invalid policy, each
/// naming the key (and the line where the parser or the source table gives
/// one).
pub fn parse(text: &str, base: &Path) -> anyhow::Result<Config> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
    let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };

    let mut sources = Vec::new();
    for spanned in raw.sources {
        let line = line_of(text, spanned.span().start);
        let s = spanned.into_inner();
        let (host, port) = split_address(&s.address)
            .with_context(|| format!("[[source]] at line {line}: address"))?;
        if s.operator.trim().is_empty() {
            bail!("[[source]] at line {line}: operator must not be empty");
        }
        let nts = s.mode == SourceMode::Nts;
        if !nts && s.certificate_authority.is_some() {
            bail!(
                "[[source]] at line {line}: certificate-authority is only used with mode = \"nts\""
            );
        }
        let name = s.name.unwrap_or_else(|| s.address.clone());
        if name.is_empty() {
            bail!("[[source]] at line {line}: name must not be empty");
        }
        if sources.iter().any(|o: &Source| o.name == name) {
            bail!(
                "[[source]] at line {line}: name {name:?} is used twice (set `name` to tell them apart)"
            );
        }
        sources.push(Source {
            name,
            operator: s.operator,
            host,
            port,
            nts,
            ca_file: s.certificate_authority.map(resolve),
            address: s.address,
        });
    }
    if sources.is_empty() {
        bail!("no [[source]] configured");
    }

    let (p, policy_at) = match raw.policy {
        Some(spanned) => (
            spanned.get_ref().clone(),
            format!("[policy] at line {}", line_of(text, spanned.span().start)),
        ),
        None => (RawPolicy::default(), "[policy]".to_string()),
    };
    let mut policy = Policy::new(
        sources
            .iter()
            .map(|s| SourceSpec::new(&s.name, &s.operator, s.nts))
            .collect(),
    );
    if p.quorum.is_some() && !matches!(p.mode, Some(PolicyMode::Quorum)) {
        bail!("[policy] quorum is only used with mode = \"quorum\"");
    }
    policy.mode = match p.mode {
        None | Some(PolicyMode::CheckAll) => Mode::CheckAll,
        Some(PolicyMode::FirstPass) => Mode::FirstPass,
        Some(PolicyMode::Quorum) => Mode::Quorum(
            p.quorum
                .context("[policy] mode = \"quorum\" needs quorum = N")?,
        ),
    };
    if let Some(t) = p.tiebreak {
        policy.tiebreak = match t {
            RawTiebreak::Pass => Tiebreak::Pass,
            RawTiebreak::Fail => Tiebreak::Fail,
        };
    }
    if let Some(v) = p.max_offset_ms {
        policy.max_offset = Duration::from_millis(v);
    }
    if let Some(v) = p.max_root_distance_ms {
        policy.max_root_distance = Duration::from_millis(v);
    }
    if let Some(l) = p.leap {
        policy.leap = match l {
            RawLeap::Ignore => LeapHandling::Ignore,
            RawLeap::Degrade => LeapHandling::Degrade,
            RawLeap::Fail => LeapHandling::Fail,
        };
    }
    if let Some(n) = p.nts_required {
        policy.nts_required = match n {
            RawNtsRequired::Count(n) => NtsRequirement::AtLeast(n),
            RawNtsRequired::Word(NtsWord::None) => NtsRequirement::None,
            RawNtsRequired::Word(NtsWord::All) => NtsRequirement::All,
        };
    }
    if let Some(v) = p.min_operators {
        policy.min_operators = v;
    }
    if let Some(v) = p.max_disagreement_ms {
        policy.max_disagreement = Some(Duration::from_millis(v));
    }
    if let Some(d) = p.on_disagreement {
        policy.on_disagreement = match d {
            RawDisagreement::Degrade => DisagreementAction::Degrade,
            RawDisagreement::Fail => DisagreementAction::Fail,
        };
    }
    if let Some(v) = p.retries {
        policy.retries = v;
    }
    if let Some(v) = p.retry_interval_ms {
        policy.retry_interval = Duration::from_millis(v);
    }
    if let Some(v) = p.interval_s {
        if v == 0 {
            bail!("[policy] interval-s must be at least 1");
        }
        policy.interval = Duration::from_secs(v);
    }
    if let Some(v) = p.hold_after {
        policy.hold_after = v;
    }
    if let Some(v) = p.release_after {
        policy.release_after = v;
    }
    if let Some(v) = p.lease_s {
        policy.lease = Duration::from_secs(v);
    }
    let policy = policy.validate().context(policy_at)?;
    for w in policy.warnings() {
        tracing::warn!("[policy]: {w}");
    }

    let m = raw.monitor;
    let monitor = MonitorSettings {
        database: resolve(
            m.database
                .unwrap_or_else(|| PathBuf::from("ntp-monitor.sqlite")),
        ),
        http_listen: m
            .http_listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8123))),
        retention_days: m.retention_days.unwrap_or(365),
        query_timeout: Duration::from_millis(m.query_timeout_ms.unwrap_or(1000)),
        degraded_healthy: m.degraded_healthy.unwrap_or(false),
    };
    if monitor.retention_days == 0 {
        bail!("[monitor] retention-days must be at least 1");
    }
    if monitor.query_timeout.is_zero() {
        bail!("[monitor] query-timeout-ms must be at least 1");
    }

    let a = raw.alerts;
    let webhook_ca = a.webhook_ca.map(&resolve);
    let webhook = match (a.webhook, webhook_ca) {
        (Some(url), ca) => {
            Some(crate::alerts::parse_http_url(&url, ca.as_deref()).context("[alerts] webhook")?)
        }
        (None, Some(_)) => bail!("[alerts] webhook-ca is set but webhook is not"),
        (None, None) => None,
    };
    let alerts = AlertSettings {
        webhook,
        command: a.command,
        timeout: Duration::from_millis(a.timeout_ms.unwrap_or(5000)),
    };

    Ok(Config {
        sources,
        policy,
        monitor,
        alerts,
        signing_key: resolve(
            raw.export
                .signing_key_path
                .unwrap_or_else(|| PathBuf::from("export.key")),
        ),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const GOOD: &str = r#"
[[source]]
name = "a"
mode = "nts"
address = "time.example:4460"
operator = "A"
certificate-authority = "ca.pem"

[[source]]
mode = "server"
address = "[::1]:1123"
operator = "B"

[policy]
mode = "quorum"
quorum = 2
tiebreak = "pass"
max-offset-ms = 50
retries = 1
retry-interval-ms = 100
interval-s = 4
hold-after = 2
release-after = 2
lease-s = 30
nts-required = 1

[monitor]
database = "log.sqlite"
http-listen = "127.0.0.1:0"
retention-days = 30

[alerts]
webhook = "http://127.0.0.1:9000/hook"
command = "/bin/true"

[export]
signing-key-path = "/etc/k"
"#;

    #[test]
    fn parses_everything() {
        let c = parse(GOOD, Path::new("/cfg")).unwrap();
        assert_eq!(c.sources.len(), 2);
        assert_eq!(c.sources[0].host, "time.example");
        assert_eq!(c.sources[0].port, Some(4460));
        assert_eq!(c.sources[0].ca_file, Some(PathBuf::from("/cfg/ca.pem")));
        assert_eq!(c.sources[1].name, "[::1]:1123");
        assert_eq!(c.sources[1].host, "::1");
        assert!(!c.sources[1].nts);
        assert_eq!(c.policy.mode, Mode::Quorum(2));
        assert_eq!(c.policy.tiebreak, Tiebreak::Pass);
        assert_eq!(c.policy.max_offset, Duration::from_millis(50));
        assert_eq!(c.policy.nts_required, NtsRequirement::AtLeast(1));
        assert_eq!(c.monitor.database, PathBuf::from("/cfg/log.sqlite"));
        assert_eq!(c.monitor.retention_days, 30);
        assert_eq!(c.signing_key, PathBuf::from("/etc/k"));
        assert_eq!(c.alerts.command, Some(PathBuf::from("/bin/true")));
    }

    #[test]
    fn defaults() {
        let c = parse(
            "[[source]]\nmode = \"server\"\naddress = \"127.0.0.1\"\noperator = \"x\"\n",
            Path::new("d"),
        )
        .unwrap();
        assert_eq!(c.policy.mode, Mode::CheckAll);
        assert_eq!(c.policy.interval, Duration::from_secs(16));
        assert_eq!(c.monitor.http_listen.port(), 8123);
        assert_eq!(c.monitor.retention_days, 365);
        assert_eq!(c.monitor.database, PathBuf::from("d/ntp-monitor.sqlite"));
        assert_eq!(c.signing_key, PathBuf::from("d/export.key"));
        assert!(c.alerts.webhook.is_none());
    }

    fn err(text: &str) -> String {
        format!("{:#}", parse(text, Path::new(".")).unwrap_err())
    }

    #[test]
    fn errors_name_key_and_line() {
        let src = "[[source]]\nmode = \"server\"\naddress = \"h\"\noperator = \"x\"\n";
        let e = err(&format!(
            "{src}[policy]\nmode = \"check-all\"\nmax-ofset-ms = 3\n"
        ));
        assert!(e.contains("max-ofset-ms") && e.contains("line 7"), "{e}");
        let e = err(&format!("{src}[policy]\nmode = \"majority\"\n"));
        assert!(e.contains("majority") && e.contains("line 6"), "{e}");
        let e = err("[[source]]\nmode = \"server\"\naddress = \"h:0\"\noperator = \"x\"\n");
        assert!(e.contains("line 1") && e.contains("port"), "{e}");
        let e = err("[[source]]\nmode = \"ntp\"\naddress = \"h\"\noperator = \"x\"\n");
        assert!(e.contains("ntp") && e.contains("line 2"), "{e}");
        let e = err("[[source]]\nmode = \"server\"\naddress = \"h\"\n");
        assert!(e.contains("operator"), "{e}");
        let e = err(&format!("{src}[policy]\nmode = \"quorum\"\nquorum = 3\n"));
        assert!(e.contains("quorum 3 exceeds") && e.contains("line"), "{e}");
        let e = err(&format!("{src}[monitor]\nhttp-listen = \"nowhere\"\n"));
        assert!(e.contains("http-listen") || e.contains("line 6"), "{e}");
        let e = err(&format!("{src}[alerts]\nwebhook = \"ftp://x/\"\n"));
        assert!(e.contains("webhook") && e.contains("https://"), "{e}");
        let e = err(&format!(
            "{src}[alerts]\nwebhook = \"http://x/\"\nwebhook-ca = \"/etc/hostname\"\n"
        ));
        assert!(
            e.contains("webhook-ca is only used with an https://"),
            "{e}"
        );
        let e = err(&format!(
            "{src}[alerts]\nwebhook = \"https://x/\"\nwebhook-ca = \"/nonexistent/ca.pem\"\n"
        ));
        assert!(
            e.contains("webhook-ca") && e.contains("/nonexistent/ca.pem"),
            "{e}"
        );
        let e = err(&format!("{src}[alerts]\nwebhook-ca = \"ca.pem\"\n"));
        assert!(e.contains("webhook is not"), "{e}");
        let e = err(&format!("{src}{src}"));
        assert!(e.contains("used twice") && e.contains("line 5"), "{e}");
        let e = err("[sources]\n");
        assert!(e.contains("sources"), "{e}");
        assert!(err("").contains("no [[source]]"));
    }

    #[test]
    fn https_webhook_gets_its_tls_settings_at_loading() {
        let dir = tempfile::tempdir().unwrap();
        ntp_test_support::Pki::create(dir.path(), "relay");
        let src = "[[source]]\nmode = \"server\"\naddress = \"h\"\noperator = \"x\"\n";
        // A relative webhook-ca is resolved against the configuration's directory.
        let c = parse(
            &format!(
                "{src}[alerts]\nwebhook = \"https://relay.example/hook\"\nwebhook-ca = \"relay-ca.pem\"\n"
            ),
            dir.path(),
        )
        .unwrap();
        let hook = c.alerts.webhook.unwrap();
        assert!(matches!(hook.transport, crate::alerts::Transport::Tls(_)));
        assert_eq!(hook.authority, "relay.example:443");
        let c = parse(
            &format!("{src}[alerts]\nwebhook = \"http://relay.example/hook\"\n"),
            dir.path(),
        )
        .unwrap();
        let hook = c.alerts.webhook.unwrap();
        assert!(matches!(hook.transport, crate::alerts::Transport::Plain));
    }

    #[test]
    fn example_config_is_valid() {
        let text = include_str!("../ntp-monitor.example.toml");
        let c = parse(text, Path::new("/etc/ntp-monitor")).unwrap();
        assert_eq!(c.sources.len(), 3);
        assert_eq!(c.policy.mode, Mode::Quorum(2));
        assert_eq!(c.policy.min_operators, 2);
        assert_eq!(
            c.monitor.database,
            PathBuf::from("/etc/ntp-monitor/ntp-monitor.sqlite")
        );
        assert!(!c.monitor.degraded_healthy);
    }

    #[test]
    fn addresses() {
        assert_eq!(split_address("h").unwrap(), ("h".into(), None));
        assert_eq!(split_address("h:123").unwrap(), ("h".into(), Some(123)));
        assert_eq!(split_address("::1").unwrap(), ("::1".into(), None));
        assert_eq!(split_address("[::1]").unwrap(), ("::1".into(), None));
        assert_eq!(split_address("[::1]:9").unwrap(), ("::1".into(), Some(9)));
        assert!(split_address("h:x").is_err());
        assert!(split_address(":1").is_err());
        assert!(split_address("[::1").is_err());
    }
}
