//! The keys each section may hold, and what this server does with each one.
//!
//! The ntpd-rs keys are those of ntpd-rs 1.9.0 (`ntp.toml(5)` and its serde structs, which
//! deny unknown fields). A key missing from these lists is an error; a key marked
//! [`Support::Warned`] is accepted and named in a [`Warning`](super::Warning).

/// What this server does with a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Support {
    /// An ntpd-rs key this server implements.
    Implemented,
    /// An ntpd-rs key this server accepts but ignores; the text says why.
    Warned(&'static str),
    /// A key of our own (not in ntpd-rs).
    Ours,
}

/// One key of one section.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Key {
    pub(crate) name: &'static str,
    pub(crate) support: Support,
}

const fn implemented(name: &'static str) -> Key {
    Key {
        name,
        support: Support::Implemented,
    }
}

const fn warned(name: &'static str, why: &'static str) -> Key {
    Key {
        name,
        support: Support::Warned(why),
    }
}

const fn ours(name: &'static str) -> Key {
    Key {
        name,
        support: Support::Ours,
    }
}

const NO_SYNC: &str = "ntp-server follows its sources but never steers the clock";
const NO_SOURCE_DEFAULTS: &str = "ntp-server takes min-poll and max-poll from [synchronization]";
const NO_POOL: &str = "NTS pool support is not implemented by ntp-server";
const NO_OBSERVE: &str = "ntp-server has no observation socket (use metrics-exporter-listen)";
const NO_LOG_FILE: &str = "ntp-server logs to stderr (use the service manager's journal)";
const NO_CLOCK: &str = "ntp-server serves the system realtime clock";

/// The top-level sections.
pub(crate) const TOP: &[Key] = &[
    implemented("server"),
    implemented("nts-ke-server"),
    implemented("synchronization"),
    implemented("keyset"),
    implemented("observability"),
    implemented("source"),
    warned("source-defaults", NO_SOURCE_DEFAULTS),
    warned("clock", NO_CLOCK),
    ours("server-clock"),
    ours("process"),
];

/// `[[source]]`.
pub(crate) const SOURCE: &[Key] = &[
    implemented("mode"),
    implemented("address"),
    implemented("certificate-authority"),
    implemented("count"),
    warned(
        "ntp-version",
        "ntp-server always queries its sources with NTPv4",
    ),
    warned("ignore", "ntp-server does not filter pool addresses"),
];

/// `[process]` (ours).
pub(crate) const PROCESS: &[Key] = &[ours("user"), ours("group")];

/// `[[server]]`.
pub(crate) const SERVER: &[Key] = &[
    implemented("listen"),
    implemented("rate-limiting-cache-size"),
    implemented("rate-limiting-cutoff-ms"),
    implemented("allowlist"),
    implemented("denylist"),
    implemented("require-nts"),
    implemented("accept-ntp-versions"),
    ours("rate-limit-action"),
    ours("workers"),
];

/// `allowlist` and `denylist` inside `[[server]]`.
pub(crate) const FILTER: &[Key] = &[implemented("filter"), implemented("action")];

/// `[[nts-ke-server]]`.
pub(crate) const NTS_KE_SERVER: &[Key] = &[
    implemented("listen"),
    implemented("certificate-chain-path"),
    implemented("private-key-path"),
    implemented("key-exchange-timeout-ms"),
    implemented("concurrent-connections"),
    implemented("ntp-port"),
    implemented("ntp-server"),
    implemented("accept-ntp-versions"),
    warned("longlived-connections", NO_POOL),
    warned("accepted-pool-authentication-tokens", NO_POOL),
    ours("max-request-bytes"),
];

/// `[synchronization]`.
pub(crate) const SYNCHRONIZATION: &[Key] = &[
    implemented("local-stratum"),
    implemented("reference-id"),
    warned("minimum-agreeing-sources", NO_SYNC),
    warned("single-step-panic-threshold", NO_SYNC),
    warned("startup-step-panic-threshold", NO_SYNC),
    warned("accumulated-step-panic-threshold", NO_SYNC),
    warned("warn-on-jump", NO_SYNC),
    ours("min-poll"),
    ours("max-poll"),
    ours("acquire-wait"),
    ours("max-offset-ms"),
    // A table of its own: its keys are checked against ALGORITHM.
    implemented("algorithm"),
];

/// `[synchronization.algorithm]`: every key is warned.
pub(crate) const ALGORITHM: &[Key] = &[
    warned("precision-low-probability", NO_SYNC),
    warned("precision-high-probability", NO_SYNC),
    warned("precision-hysteresis", NO_SYNC),
    warned("precision-minimum-weight", NO_SYNC),
    warned("poll-interval-low-weight", NO_SYNC),
    warned("poll-interval-high-weight", NO_SYNC),
    warned("poll-interval-hysteresis", NO_SYNC),
    warned("poll-interval-step-threshold", NO_SYNC),
    warned("delay-outlier-threshold", NO_SYNC),
    warned("initial-wander", NO_SYNC),
    warned("initial-frequency-uncertainty", NO_SYNC),
    warned("maximum-source-uncertainty", NO_SYNC),
    warned("range-statistical-weight", NO_SYNC),
    warned("range-delay-weight", NO_SYNC),
    warned("steer-offset-threshold", NO_SYNC),
    warned("steer-offset-leftover", NO_SYNC),
    warned("steer-frequency-threshold", NO_SYNC),
    warned("steer-frequency-leftover", NO_SYNC),
    warned("step-threshold", NO_SYNC),
    warned("slew-maximum-frequency-offset", NO_SYNC),
    warned("slew-minimum-duration", NO_SYNC),
    warned("maximum-frequency-steer", NO_SYNC),
    warned("ignore-server-dispersion", NO_SYNC),
    warned("meddling-threshold", NO_SYNC),
];

/// `[source-defaults]`: every key is warned.
pub(crate) const SOURCE_DEFAULTS: &[Key] = &[
    warned("poll-interval-limits", NO_SOURCE_DEFAULTS),
    warned("initial-poll-interval", NO_SOURCE_DEFAULTS),
];

/// `[keyset]`.
pub(crate) const KEYSET: &[Key] = &[
    implemented("stale-key-count"),
    implemented("key-rotation-interval"),
    implemented("key-storage-path"),
    ours("fleet-secret-path"),
];

/// `[observability]`.
pub(crate) const OBSERVABILITY: &[Key] = &[
    implemented("log-level"),
    implemented("metrics-exporter-listen"),
    warned("log-path", NO_LOG_FILE),
    warned("log-path-metrics-exporter", NO_LOG_FILE),
    warned("ansi-colors", "ntp-server does not colour its logs"),
    warned("observation-path", NO_OBSERVE),
    warned("observation-permissions", NO_OBSERVE),
];

/// `[clock]` (ntpd-rs built with `hardware-timestamping`): every key is warned.
pub(crate) const CLOCK: &[Key] = &[
    warned("clock", NO_CLOCK),
    warned("interface", NO_CLOCK),
    warned("timestamp-mode", NO_CLOCK),
];

/// `[server-clock]` (ours).
pub(crate) const SERVER_CLOCK: &[Key] = &[ours("precision")];

/// Every section with its key list and its name as written in messages, for the
/// documentation test.
#[cfg(test)]
pub(crate) const ALL: &[(&str, &[Key])] = &[
    ("", TOP),
    ("[[server]]", SERVER),
    ("allowlist/denylist", FILTER),
    ("[[nts-ke-server]]", NTS_KE_SERVER),
    ("[[source]]", SOURCE),
    ("[synchronization]", SYNCHRONIZATION),
    ("[synchronization.algorithm]", ALGORITHM),
    ("[source-defaults]", SOURCE_DEFAULTS),
    ("[keyset]", KEYSET),
    ("[observability]", OBSERVABILITY),
    ("[clock]", CLOCK),
    ("[server-clock]", SERVER_CLOCK),
    ("[process]", PROCESS),
];

/// Looks `name` up in `keys`.
pub(crate) fn find(keys: &[Key], name: &str) -> Option<Key> {
    keys.iter().copied().find(|k| k.name == name)
}

/// The key of `keys` closest to `name`, if it is close enough to be a likely typo.
pub(crate) fn suggest(keys: &[Key], name: &str) -> Option<&'static str> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    keys.iter()
        .map(|k| (edit_distance(k.name, name), k.name))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, n)| n)
}

/// Levenshtein distance over chars, with adjacent transpositions counted as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j] = distance between a[..i] and b[..j]
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        if let Some(first) = row.first_mut() {
            *first = i;
        }
    }
    if let Some(row) = rows.first_mut() {
        for (j, cell) in row.iter_mut().enumerate() {
            *cell = j;
        }
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let at = |r: &Vec<Vec<usize>>, x: usize, y: usize| {
                r.get(x)
                    .and_then(|row| row.get(y))
                    .copied()
                    .unwrap_or(usize::MAX / 2)
            };
            let same = a.get(i - 1) == b.get(j - 1);
            let mut d = (at(&rows, i - 1, j) + 1)
                .min(at(&rows, i, j - 1) + 1)
                .min(at(&rows, i - 1, j - 1) + usize::from(!same));
            if i > 1 && j > 1 && a.get(i - 1) == b.get(j - 2) && a.get(i - 2) == b.get(j - 1) {
                d = d.min(at(&rows, i - 2, j - 2) + 1);
            }
            if let Some(cell) = rows.get_mut(i).and_then(|row| row.get_mut(j)) {
                *cell = d;
            }
        }
    }
    rows.last().and_then(|row| row.last()).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance() {
        assert_eq!(edit_distance("listen", "listen"), 0);
        assert_eq!(edit_distance("listen", "listne"), 1);
        assert_eq!(edit_distance("listen", "lisen"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest(SERVER, "listne"), Some("listen"));
        assert_eq!(suggest(SERVER, "allow-list"), Some("allowlist"));
        assert_eq!(suggest(SERVER, "zzz"), None);
        assert_eq!(suggest(KEYSET, "stale-keys-count"), Some("stale-key-count"));
    }
}
