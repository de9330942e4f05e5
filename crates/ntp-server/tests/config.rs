#![allow(clippy::unwrap_used)]
//! The configuration: ntpd-rs compatibility, line-numbered errors and warnings, file checks.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ntp_server::config::{
    self, ConfigError, ConfigErrorKind, FilterAction, KeySource, RateLimitAction, WarningKind,
};

const NTPD_RS_NTS_SERVER: &str = include_str!("data/ntpd-rs/unsafe.nts.server.toml");
const NTPD_RS_NTS_CLIENT: &str = include_str!("data/ntpd-rs/unsafe.nts.client.toml");
const NTPD_RS_DEFAULT: &str = include_str!("data/ntpd-rs/ntp.toml.default");
const NTPD_RS_INVALID: &str = include_str!("data/ntpd-rs/invalid.toml");

fn err(text: &str) -> ConfigError {
    match config::parse(text) {
        Ok(loaded) => panic!("expected an error, got {loaded:?}"),
        Err(e) => e,
    }
}

fn not_implemented(w: &config::Warning) -> Option<&str> {
    match &w.kind {
        WarningKind::NotImplemented { key, .. } => Some(key),
        _ => None,
    }
}

// --- ntpd-rs compatibility ---

#[test]
fn ntpd_rs_nts_server_example_loads() {
    let loaded = config::parse(NTPD_RS_NTS_SERVER).unwrap();
    let c = &loaded.config;
    assert_eq!(c.servers.len(), 1);
    assert_eq!(
        c.servers[0].listen,
        "0.0.0.0:123".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(c.nts_ke_servers.len(), 1);
    let ke = &c.nts_ke_servers[0];
    assert_eq!(ke.listen, "0.0.0.0:4460".parse::<SocketAddr>().unwrap());
    assert_eq!(
        ke.certificate_chain_path.path.to_str(),
        Some("ntp-proto/test-keys/end.fullchain.pem")
    );
    assert_eq!(ke.certificate_chain_path.position.line, 25);
    assert_eq!(ke.key_exchange_timeout, Duration::from_millis(1000));
    assert_eq!(c.observability.log_level, Some(tracing::Level::INFO));

    // Everything it sets that we do not implement is named, with its line.
    let named: Vec<(Option<&str>, usize)> = loaded
        .warnings
        .iter()
        .map(|w| (not_implemented(w), w.line().unwrap()))
        .collect();
    assert!(named.contains(&(Some("observation-path"), 4)), "{named:?}");
    assert!(
        named.contains(&(Some("minimum-agreeing-sources"), 17)),
        "{named:?}"
    );
    assert!(
        named.contains(&(Some("single-step-panic-threshold"), 18)),
        "{named:?}"
    );
    assert!(
        named.contains(&(Some("startup-step-panic-threshold"), 19)),
        "{named:?}"
    );
    // The [[source]] at line 7 is used: the server follows it.
    assert_eq!(loaded.config.sources.len(), 1);
    assert_eq!(loaded.config.sources[0].line, 7);
    assert_eq!(loaded.config.sources[0].mode, config::SourceMode::Pool);
    assert_eq!(loaded.config.sources[0].count, 4);
    // No [keyset]: keys are not persisted.
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.kind == WarningKind::KeysNotPersisted)
    );
}

#[test]
fn ntpd_rs_client_configs_load_once_they_serve() {
    // Client-only ntpd-rs configurations have nothing to serve...
    for text in [NTPD_RS_NTS_CLIENT, NTPD_RS_DEFAULT] {
        assert!(matches!(err(text).kind, ConfigErrorKind::NothingToServe));
        // ...and load as soon as they do: the sources become the server's upstreams.
        let combined = format!("{text}\n[[server]]\nlisten = \"[::]:123\"\n");
        let loaded = config::parse(&combined).unwrap();
        assert!(!loaded.config.sources.is_empty());
    }
}

#[test]
fn ntpd_rs_invalid_example_is_refused_here_too() {
    let e = err(NTPD_RS_INVALID);
    assert!(
        matches!(&e.kind, ConfigErrorKind::UnknownKey { key, section, .. }
            if key == "does-not-exist" && section == "[synchronization]"),
        "{e}"
    );
    assert_eq!(e.line(), Some(6));
    assert_eq!(
        e.to_string(),
        "line 6: unknown key \"does-not-exist\" in [synchronization]"
    );
}

#[test]
fn every_ntpd_rs_key_loads() {
    let text = r#"
[[server]]
listen = "127.0.0.1:123"
rate-limiting-cache-size = 32
rate-limiting-cutoff-ms = 1000
require-nts = "deny"
accept-ntp-versions = [3, 4, 5]
[server.allowlist]
filter = ["10.0.0.0/8", "fd00::/8"]
action = "ignore"
[server.denylist]
filter = ["10.1.0.0/16"]
action = "deny"

[[nts-ke-server]]
listen = "127.0.0.1:4460"
certificate-chain-path = "cert.pem"
private-key-path = "key.pem"
key-exchange-timeout-ms = 500
concurrent-connections = 10
longlived-connections = 2
ntp-port = 1123
ntp-server = "ntp.example.com"
accept-ntp-versions = [4, 5]
accepted-pool-authentication-tokens = ["abc"]

[keyset]
stale-key-count = 3
key-rotation-interval = 3600
key-storage-path = "/var/lib/keys"

[synchronization]
minimum-agreeing-sources = 1
single-step-panic-threshold = { forward = 10, backward = "inf" }
startup-step-panic-threshold = "inf"
accumulated-step-panic-threshold = 0
warn-on-jump = false
local-stratum = 1
reference-id = "GPS"

[synchronization.algorithm]
precision-low-probability = 0.3
meddling-threshold = 5.0

[source-defaults]
poll-interval-limits = { min = 4, max = 10 }
initial-poll-interval = 4

[[source]]
mode = "pool"
address = "pool.ntp.org"
count = 4

[observability]
log-level = "debug"
log-path = "/var/log/ntp.log"
log-path-metrics-exporter = "/var/log/m.log"
ansi-colors = false
observation-path = "/run/ntpd-rs/observe"
observation-permissions = 0o660
metrics-exporter-listen = "127.0.0.1:9975"

[clock]
timestamp-mode = "kernel-all"
"#;
    let loaded = config::parse(text).unwrap();
    let c = &loaded.config;
    let s = &c.servers[0];
    assert_eq!(s.rate_limiting_cache_size, 32);
    assert_eq!(s.rate_limiting_cutoff, Duration::from_millis(1000));
    assert_eq!(s.require_nts, Some(FilterAction::Deny));
    assert_eq!(s.accept_ntp_versions, vec![3, 4]);
    assert_eq!(s.allowlist.as_ref().unwrap().action, FilterAction::Ignore);
    assert_eq!(s.allowlist.as_ref().unwrap().filter.len(), 2);
    assert_eq!(s.denylist.as_ref().unwrap().action, FilterAction::Deny);
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(s.filter(ip("10.2.3.4")), Ok(()));
    assert_eq!(s.filter(ip("10.1.3.4")), Err(FilterAction::Deny));
    assert_eq!(s.filter(ip("::ffff:10.1.3.4")), Err(FilterAction::Deny));
    assert_eq!(s.filter(ip("192.168.1.1")), Err(FilterAction::Ignore));
    assert_eq!(s.filter(ip("fd12::1")), Ok(()));

    let ke = &c.nts_ke_servers[0];
    assert_eq!(ke.key_exchange_timeout, Duration::from_millis(500));
    assert_eq!(ke.concurrent_connections, 10);
    assert_eq!(ke.ntp_port, Some(1123));
    assert_eq!(ke.ntp_server.as_deref(), Some("ntp.example.com"));
    assert_eq!(ke.accept_ntp_versions, vec![4]);

    assert_eq!(c.keyset.stale_key_count, 3);
    assert_eq!(c.keyset.key_set_config().rotation_period_s, 3600);
    assert_eq!(c.keyset.key_set_config().old_keys_kept, 3);
    assert_eq!(
        c.keyset.source(),
        KeySource::Stored("/var/lib/keys".as_ref())
    );
    assert_eq!(c.synchronization.local_stratum, 1);
    assert_eq!(c.synchronization.reference_id, *b"GPS\0");
    assert_eq!(c.observability.log_level, Some(tracing::Level::DEBUG));
    assert_eq!(
        c.observability.metrics_exporter_listen,
        Some("127.0.0.1:9975".parse().unwrap())
    );

    let warned: Vec<&str> = loaded.warnings.iter().filter_map(not_implemented).collect();
    for key in [
        "longlived-connections",
        "accepted-pool-authentication-tokens",
        "minimum-agreeing-sources",
        "single-step-panic-threshold",
        "startup-step-panic-threshold",
        "accumulated-step-panic-threshold",
        "warn-on-jump",
        "precision-low-probability",
        "meddling-threshold",
        "poll-interval-limits",
        "initial-poll-interval",
        "log-path",
        "log-path-metrics-exporter",
        "ansi-colors",
        "observation-path",
        "observation-permissions",
        "timestamp-mode",
    ] {
        assert!(warned.contains(&key), "{key} not warned: {warned:?}");
    }
    let v5: Vec<usize> = loaded
        .warnings
        .iter()
        .filter(|w| matches!(w.kind, WarningKind::NtpV5Ignored { .. }))
        .map(|w| w.line().unwrap())
        .collect();
    assert_eq!(v5, vec![7, 24]);
    // Sorted by position.
    let lines: Vec<usize> = loaded.warnings.iter().map(|w| w.line().unwrap()).collect();
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
    // The line and the key are in the message.
    let w = loaded
        .warnings
        .iter()
        .find(|w| not_implemented(w) == Some("warn-on-jump"))
        .unwrap();
    assert_eq!(w.line(), Some(37));
    assert!(
        w.to_string()
            .starts_with("line 37: \"warn-on-jump\" in [synchronization]"),
        "{w}"
    );
}

#[test]
fn defaults() {
    let c = config::parse("[[server]]\nlisten = \"[::]:123\"\n")
        .unwrap()
        .config;
    let s = &c.servers[0];
    assert_eq!(s.line, 1);
    assert_eq!(s.rate_limiting_cache_size, 0);
    assert_eq!(s.rate_limiting_cutoff, Duration::ZERO);
    assert_eq!(s.rate_limit_action, RateLimitAction::Kod);
    assert_eq!(s.require_nts, None);
    assert_eq!(s.allowlist, None);
    assert_eq!(s.denylist, None);
    assert_eq!(s.accept_ntp_versions, vec![3, 4]);
    assert_eq!(s.workers, None);
    assert!(s.worker_count().get() >= 1);
    assert_eq!(c.synchronization.local_stratum, 16);
    assert_eq!(c.synchronization.reference_id, *b"XNON");
    assert_eq!(c.keyset.stale_key_count, 7);
    assert_eq!(c.keyset.key_rotation_interval, Duration::from_secs(86_400));
    assert_eq!(c.keyset.source(), KeySource::Random);
    assert_eq!(c.observability.log_level, None);
    assert_eq!(c.observability.metrics_exporter_listen, None);
    assert_eq!(c.server_clock.precision, None);

    let c = config::parse(
        "[[nts-ke-server]]\nlisten = \"[::]:4460\"\ncertificate-chain-path = \"c\"\nprivate-key-path = \"k\"\n",
    )
    .unwrap()
    .config;
    let ke = &c.nts_ke_servers[0];
    assert_eq!(ke.key_exchange_timeout, Duration::from_millis(1000));
    assert_eq!(ke.concurrent_connections, 512);
    assert_eq!(ke.max_request_bytes, 1024);
    assert_eq!(ke.accept_ntp_versions, vec![4]);
    assert_eq!(ke.ntp_port, None);
    assert_eq!(ke.ntp_server, None);
}

#[test]
fn our_keys() {
    let text = r#"
[[server]]
listen = "[::]:123"
rate-limit-action = "drop"
workers = 3
[[nts-ke-server]]
listen = "[::]:4460"
certificate-chain-path = "c"
private-key-path = "k"
max-request-bytes = 4096
[keyset]
fleet-secret-path = "/etc/ntp-server/fleet.secret"
[server-clock]
precision = -20
"#;
    let loaded = config::parse(text).unwrap();
    let c = &loaded.config;
    assert_eq!(c.servers[0].rate_limit_action, RateLimitAction::Drop);
    assert_eq!(c.servers[0].worker_count().get(), 3);
    assert_eq!(c.nts_ke_servers[0].max_request_bytes, 4096);
    assert_eq!(
        c.keyset.source(),
        KeySource::Fleet("/etc/ntp-server/fleet.secret".as_ref())
    );
    assert_eq!(c.server_clock.precision, Some(-20));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

// --- errors name the key and the line ---

#[test]
fn unknown_key_names_key_line_and_suggestion() {
    let text = "# comment\n\n[observability]\nlog-level = \"info\"\n\n[[server]]\nlistne = \"0.0.0.0:123\"\n";
    let e = err(text);
    assert_eq!(e.line(), Some(7));
    assert_eq!(e.position.unwrap().column, 1);
    assert_eq!(
        e.to_string(),
        "line 7: unknown key \"listne\" in [[server]] (did you mean \"listen\"?)"
    );
}

#[test]
fn misspelled_key_in_each_section() {
    let base = "[[server]]\nlisten = \"[::]:123\"\n";
    let cases = [
        (
            "[[server]]\nlisten = \"[::]:123\"\nrate-limiting-cache-sise = 1\n",
            3,
            "rate-limiting-cache-sise",
            "[[server]]",
            Some("rate-limiting-cache-size"),
        ),
        (
            "[[server]]\nlisten = \"[::]:123\"\nallowlist = { filter = [], actoin = \"deny\" }\n",
            3,
            "actoin",
            "[[server]] allowlist",
            Some("action"),
        ),
        (
            "[[server]]\nlisten = \"[::]:123\"\n[server.denylist]\nfilters = []\n",
            4,
            "filters",
            "[[server]] denylist",
            Some("filter"),
        ),
        (
            "[[nts-ke-server]]\nlisten = \"[::]:4460\"\ncertificate-chain-pth = \"c\"\n",
            3,
            "certificate-chain-pth",
            "[[nts-ke-server]]",
            Some("certificate-chain-path"),
        ),
        (
            &format!("{base}[synchronization]\nlocal-stratm = 2\n"),
            4,
            "local-stratm",
            "[synchronization]",
            Some("local-stratum"),
        ),
        (
            &format!("{base}[synchronization.algorithm]\nstep-treshold = 0.1\n"),
            4,
            "step-treshold",
            "[synchronization.algorithm]",
            Some("step-threshold"),
        ),
        (
            &format!("{base}[keyset]\nstale-key-cout = 2\n"),
            4,
            "stale-key-cout",
            "[keyset]",
            Some("stale-key-count"),
        ),
        (
            &format!("{base}[observability]\nlog-levl = \"info\"\n"),
            4,
            "log-levl",
            "[observability]",
            Some("log-level"),
        ),
        (
            &format!("{base}[source-defaults]\ninitial-poll = 4\n"),
            4,
            "initial-poll",
            "[source-defaults]",
            None,
        ),
        (
            &format!("{base}[server-clock]\nprecison = -20\n"),
            4,
            "precison",
            "[server-clock]",
            Some("precision"),
        ),
        (
            &format!("{base}[clock]\ninterfaces = \"eth0\"\n"),
            4,
            "interfaces",
            "[clock]",
            Some("interface"),
        ),
        (
            &format!("{base}\n[keyst]\n"),
            4,
            "keyst",
            "the top level",
            Some("keyset"),
        ),
        // ntpd-rs has these in [source-defaults], not [synchronization].
        (
            &format!("{base}[synchronization]\npoll-interval-limits = {{ min = 4, max = 10 }}\n"),
            4,
            "poll-interval-limits",
            "[synchronization]",
            None,
        ),
    ];
    for (text, line, key, section, suggestion) in cases {
        let e = err(text);
        match &e.kind {
            ConfigErrorKind::UnknownKey {
                key: k,
                section: s,
                suggestion: g,
            } => {
                assert_eq!(
                    (k.as_str(), s.as_str(), *g),
                    (key, section, suggestion),
                    "{text}"
                );
            }
            other => panic!("{text}: {other:?}"),
        }
        assert_eq!(e.line(), Some(line), "{text}: {e}");
    }
}

#[test]
fn wrong_types() {
    let cases = [
        ("[[server]]\nlisten = 123\n", 2, "listen"),
        (
            "[[server]]\nlisten = \"[::]:123\"\nrate-limiting-cache-size = \"big\"\n",
            3,
            "rate-limiting-cache-size",
        ),
        (
            "[[server]]\nlisten = \"[::]:123\"\nrequire-nts = 1\n",
            3,
            "require-nts",
        ),
        (
            "[[server]]\nlisten = \"[::]:123\"\nallowlist = [\"10.0.0.0/8\"]\n",
            3,
            "allowlist",
        ),
        (
            "[[server]]\nlisten = \"[::]:123\"\n\n[synchronization]\nlocal-stratum = 1.5\n",
            5,
            "local-stratum",
        ),
        ("[server]\nlisten = \"[::]:123\"\n", 1, "server"),
        (
            "[[server]]\nlisten = \"[::]:123\"\n[keyset]\nkey-storage-path = 7\n",
            4,
            "key-storage-path",
        ),
    ];
    for (text, line, key) in cases {
        let e = err(text);
        assert!(
            matches!(&e.kind, ConfigErrorKind::WrongType { key: k, .. } if k == key),
            "{text}: {e}"
        );
        assert_eq!(e.line(), Some(line), "{text}: {e}");
        assert!(e.to_string().contains(key), "{e}");
    }
}

fn assert_invalid(text: &str, line: usize, key: &str) -> ConfigError {
    let e = err(text);
    assert!(
        matches!(&e.kind, ConfigErrorKind::InvalidValue { key: k, .. } if k == key),
        "{text}: {e:?}"
    );
    assert_eq!(e.line(), Some(line), "{text}: {e}");
    e
}

#[test]
fn bad_cidr() {
    let head = "[[server]]\nlisten = \"[::]:123\"\n";
    for cidr in ["10.0.0.0", "10.0.0.0/33", "::/129", "10.0.0/8", "ten/8"] {
        let text = format!(
            "{head}denylist = {{ filter = [\"10.1.0.0/16\",\n  \"{cidr}\"], action = \"deny\" }}\n"
        );
        assert_invalid(&text, 4, "denylist.filter");
    }
    assert_invalid(
        &format!("{head}[server.allowlist]\nfilter = []\naction = \"drop\"\n"),
        5,
        "allowlist.action",
    );
    // Both keys are required, as in ntpd-rs.
    let e = err(&format!(
        "{head}[server.allowlist]\nfilter = [\"10.0.0.0/8\"]\n"
    ));
    assert!(
        matches!(e.kind, ConfigErrorKind::MissingKey { key: "action", .. }),
        "{e}"
    );
    assert_eq!(e.line(), Some(3));
}

#[test]
fn bad_socket_address() {
    for addr in ["0.0.0.0", "localhost:123", ":::123", "1.2.3.4:99999"] {
        let text =
            format!("[[server]]\nlisten = \"[::]:123\"\n\n[[server]]\nlisten = \"{addr}\"\n");
        let e = assert_invalid(&text, 5, "listen");
        assert!(e.to_string().contains(addr), "{e}");
    }
    assert_invalid(
        "[[server]]\nlisten = \"[::]:123\"\n[observability]\nmetrics-exporter-listen = \"9975\"\n",
        4,
        "metrics-exporter-listen",
    );
}

#[test]
fn bad_values() {
    let head = "[[server]]\nlisten = \"[::]:123\"\n";
    let e = assert_invalid(
        &format!("{head}[synchronization]\nreference-id = \"GPSXX\"\n"),
        4,
        "reference-id",
    );
    assert!(e.to_string().contains("at most 4"), "{e}");
    assert_invalid(
        &format!("{head}[synchronization]\nreference-id = \"GPS\\u00e9\"\n"),
        4,
        "reference-id",
    );
    assert_invalid(
        &format!("{head}[synchronization]\nlocal-stratum = 0\n"),
        4,
        "local-stratum",
    );
    assert_invalid(
        &format!("{head}[synchronization]\nlocal-stratum = 17\n"),
        4,
        "local-stratum",
    );
    assert_invalid(
        &format!("{head}rate-limiting-cutoff-ms = -1\n"),
        3,
        "rate-limiting-cutoff-ms",
    );
    assert_invalid(
        &format!("{head}rate-limiting-cache-size = -5\n"),
        3,
        "rate-limiting-cache-size",
    );
    assert_invalid(
        &format!("{head}accept-ntp-versions = [2]\n"),
        3,
        "accept-ntp-versions",
    );
    assert_invalid(
        &format!("{head}require-nts = \"maybe\"\n"),
        3,
        "require-nts",
    );
    assert_invalid(
        &format!("{head}rate-limit-action = \"kill\"\n"),
        3,
        "rate-limit-action",
    );
    assert_invalid(&format!("{head}workers = 0\n"), 3, "workers");
    assert_invalid(
        &format!("{head}[keyset]\nkey-rotation-interval = 0\n"),
        4,
        "key-rotation-interval",
    );
    assert_invalid(
        &format!("{head}[keyset]\nstale-key-count = 100000\n"),
        4,
        "stale-key-count",
    );
    assert_invalid(
        &format!("{head}[observability]\nlog-level = \"loud\"\n"),
        4,
        "log-level",
    );
    assert_invalid(
        &format!("{head}[server-clock]\nprecision = 3\n"),
        4,
        "precision",
    );
    let ke = "[[nts-ke-server]]\nlisten = \"[::]:4460\"\ncertificate-chain-path = \"c\"\nprivate-key-path = \"k\"\n";
    assert_invalid(
        &format!("{ke}accept-ntp-versions = [3, 4]\n"),
        5,
        "accept-ntp-versions",
    );
    assert_invalid(&format!("{ke}ntp-port = 70000\n"), 5, "ntp-port");
    assert_invalid(&format!("{ke}ntp-server = \"\"\n"), 5, "ntp-server");
    assert_invalid(
        &format!("{ke}max-request-bytes = 1\n"),
        5,
        "max-request-bytes",
    );
}

#[test]
fn syntax_error_has_its_line() {
    let e = err("[[server]]\nlisten = \"[::]:123\"\nlisten = \"[::]:124\"\n");
    assert!(matches!(e.kind, ConfigErrorKind::Syntax(_)), "{e}");
    assert_eq!(e.line(), Some(3));
    let e = err("[[server]]\nlisten = [::]:123\n");
    assert_eq!(e.line(), Some(2));
}

#[test]
fn duplicate_listen() {
    let text = "[[server]]\nlisten = \"0.0.0.0:123\"\n\n[[server]]\nlisten = \"[::]:123\"\n\n[[server]]\nlisten = \"0.0.0.0:123\"\n";
    let e = err(text);
    assert!(
        matches!(
            e.kind,
            ConfigErrorKind::DuplicateListen { first_line: 2, .. }
        ),
        "{e}"
    );
    assert_eq!(e.line(), Some(8));
    // Port 0 picks a free port each time: not a duplicate.
    config::parse("[[server]]\nlisten = \"127.0.0.1:0\"\n[[server]]\nlisten = \"127.0.0.1:0\"\n")
        .unwrap();
    // An NTP and an NTS-KE listener on one address are TCP and UDP: fine.
    config::parse("[[server]]\nlisten = \"[::]:4460\"\n[[nts-ke-server]]\nlisten = \"[::]:4460\"\ncertificate-chain-path = \"c\"\nprivate-key-path = \"k\"\n").unwrap();
}

#[test]
fn nts_ke_server_without_certificate() {
    let e = err(
        "[[server]]\nlisten = \"[::]:123\"\n\n[[nts-ke-server]]\nlisten = \"[::]:4460\"\nprivate-key-path = \"k\"\n",
    );
    assert!(
        matches!(
            e.kind,
            ConfigErrorKind::MissingKey {
                key: "certificate-chain-path",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.line(), Some(4));
    assert_eq!(
        e.to_string(),
        "line 4: missing key \"certificate-chain-path\" in [[nts-ke-server]]"
    );
    let e = err("[[nts-ke-server]]\nlisten = \"[::]:4460\"\ncertificate-chain-path = \"c\"\n");
    assert!(
        matches!(
            e.kind,
            ConfigErrorKind::MissingKey {
                key: "private-key-path",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn nothing_to_serve() {
    let e = err("[observability]\nlog-level = \"info\"\n");
    assert!(matches!(e.kind, ConfigErrorKind::NothingToServe));
    assert_eq!(e.line(), None);
}

#[test]
fn fleet_secret_excludes_key_storage() {
    let text = "[[server]]\nlisten = \"[::]:123\"\n[keyset]\nkey-storage-path = \"/k\"\nfleet-secret-path = \"/s\"\n";
    let e = err(text);
    assert!(
        matches!(e.kind, ConfigErrorKind::Conflict { other_line: 4, .. }),
        "{e}"
    );
    assert_eq!(e.line(), Some(5));
}

#[test]
fn first_error_in_file_order() {
    let text = "[[server]]\nlisten = \"[::]:123\"\nbad-one = 1\n[keyset]\nbad-two = 2\n";
    assert_eq!(err(text).line(), Some(3));
    let text = "[keyset]\nbad-two = 2\n[[server]]\nlisten = \"[::]:123\"\nbad-one = 1\n";
    assert_eq!(err(text).line(), Some(2));
}

// --- warnings ---

#[test]
fn warnings_for_likely_mistakes() {
    let text = "[[server]]\nlisten = \"[::]:123\"\nrate-limiting-cutoff-ms = 100\n[synchronization]\nreference-id = \"GPS\"\n";
    let loaded = config::parse(text).unwrap();
    let kinds: Vec<(&WarningKind, Option<usize>)> = loaded
        .warnings
        .iter()
        .map(|w| (&w.kind, w.line()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (&WarningKind::RateLimitWithoutCache, Some(3)),
            (&WarningKind::ReferenceIdUnused, Some(5)),
        ]
    );
    // [keyset] without storage or fleet secret: cookies die on restart.
    let text = "[[nts-ke-server]]\nlisten = \"[::]:4460\"\ncertificate-chain-path = \"c\"\nprivate-key-path = \"k\"\n[keyset]\nstale-key-count = 2\n";
    let loaded = config::parse(text).unwrap();
    assert_eq!(loaded.warnings.len(), 1);
    assert_eq!(loaded.warnings[0].kind, WarningKind::KeysNotPersisted);
    assert_eq!(loaded.warnings[0].line(), Some(5));
    assert!(
        loaded.warnings[0]
            .to_string()
            .contains("cookies become invalid on restart")
    );
}

// --- files ---

#[test]
fn load_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ntp.toml");
    std::fs::write(&path, "[[server]]\nlisten = \"[::]:123\"\nfoo = 1\n").unwrap();
    let e = config::load(&path).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}:3: unknown key \"foo\" in [[server]]", path.display())
    );

    std::fs::write(&path, NTPD_RS_NTS_SERVER).unwrap();
    let loaded = config::load(&path).unwrap();
    assert_eq!(loaded.config.path.as_deref(), Some(path.as_path()));
    let w = &loaded.warnings[0];
    assert!(
        w.to_string()
            .starts_with(&format!("{}:4: ", path.display())),
        "{w}"
    );

    let missing = dir.path().join("absent.toml");
    let e = config::load(&missing).unwrap_err();
    assert!(matches!(e.kind, ConfigErrorKind::Io { .. }));
    assert!(
        e.to_string().starts_with(&missing.display().to_string()),
        "{e}"
    );
}

#[cfg(unix)]
fn write_mode(path: &std::path::Path, bytes: &[u8], mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(unix)]
#[test]
fn validate_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let secret = dir.path().join("fleet.secret");
    let text = format!(
        "[[nts-ke-server]]\nlisten = \"[::]:4460\"\ncertificate-chain-path = \"{d}/cert.pem\"\nprivate-key-path = \"{d}/key.pem\"\n[keyset]\nfleet-secret-path = \"{d}/fleet.secret\"\n"
    );
    let path = dir.path().join("ntp.toml");
    std::fs::write(&path, &text).unwrap();
    let config = config::load(&path).unwrap().config;

    // Nothing exists yet: three errors, each at its key's line, naming the config file.
    let errors = config.validate_files();
    let lines: Vec<Option<usize>> = errors.iter().map(ConfigError::line).collect();
    assert_eq!(lines, vec![Some(3), Some(4), Some(6)], "{errors:?}");
    assert!(
        errors
            .iter()
            .all(|e| matches!(e.kind, ConfigErrorKind::Io { .. }))
    );
    assert!(
        errors[0]
            .to_string()
            .starts_with(&format!("{}:3: ", path.display())),
        "{}",
        errors[0]
    );

    std::fs::write(dir.path().join("cert.pem"), "x").unwrap();
    // A private key readable by others is refused too (tests/privileges.rs).
    write_mode(&dir.path().join("key.pem"), b"x", 0o600);

    // Too short.
    write_mode(&secret, &[7; 31], 0o600);
    let errors = config.validate_files();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        matches!(
            errors[0].kind,
            ConfigErrorKind::FleetSecretTooShort {
                len: 31,
                min: 32,
                ..
            }
        ),
        "{errors:?}"
    );
    assert_eq!(errors[0].line(), Some(6));

    // Readable by others, or by the group.
    for mode in [0o644, 0o640, 0o604] {
        write_mode(&secret, &[7; 32], mode);
        let errors = config.validate_files();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            matches!(errors[0].kind, ConfigErrorKind::TooOpen { .. }),
            "{mode:o}: {errors:?}"
        );
        assert!(errors[0].to_string().contains("chmod 600"), "{}", errors[0]);
    }

    write_mode(&secret, &[7; 32], 0o600);
    assert!(config.validate_files().is_empty());
    assert_eq!(
        config::read_fleet_secret(config.keyset.fleet_secret_path.as_ref().unwrap()).unwrap(),
        vec![7; 32]
    );
}

#[test]
fn key_storage_directory_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let ok = config::parse(&format!(
        "[[server]]\nlisten = \"[::]:123\"\n[keyset]\nkey-storage-path = \"{d}/keys\"\n"
    ))
    .unwrap();
    assert!(ok.config.validate_files().is_empty());
    let bad = config::parse(&format!(
        "[[server]]\nlisten = \"[::]:123\"\n[keyset]\nkey-storage-path = \"{d}/no/keys\"\n"
    ))
    .unwrap();
    let errors = bad.config.validate_files();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].line(), Some(4));
}
