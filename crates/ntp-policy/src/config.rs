//! The policy configuration: plain data, checked once into a [`ValidPolicy`].

use core::fmt;
use core::ops::Deref;
use core::str::FromStr;
use core::time::Duration;
use std::collections::BTreeSet;

/// One configured source.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourceSpec {
    /// The name results refer to ([`CheckResult::source`](crate::CheckResult::source)).
    pub name: String,
    /// The operator label configured for the source. Validation uses it to
    /// check that `min-operators` can be met; rounds use the label each
    /// [`CheckResult`](crate::CheckResult) carries.
    pub operator: String,
    /// Whether the source is configured for NTS. Validation uses it to check
    /// the NTS requirement; rounds use [`CheckResult::nts`](crate::CheckResult::nts).
    pub nts: bool,
}

impl SourceSpec {
    /// A source called `name`, run by `operator`, NTS or not.
    pub fn new(name: impl Into<String>, operator: impl Into<String>, nts: bool) -> Self {
        Self {
            name: name.into(),
            operator: operator.into(),
            nts,
        }
    }
}

/// How the per-source results of a round combine (TOML `mode`, `quorum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `check-all`: every configured source must pass.
    CheckAll,
    /// `first-pass`: sources are taken in configured order and the first one
    /// with a usable result (a well-formed, synchronized sample) decides.
    FirstPass,
    /// `quorum`: at least this many sources must pass (TOML `quorum`), and an
    /// equal split of passing and failing sources is settled by the
    /// [`Tiebreak`].
    Quorum(usize),
}

impl Mode {
    /// The mode from its TOML spelling and the `quorum` key.
    ///
    /// # Errors
    ///
    /// [`PolicyError::UnknownValue`] for an unknown name and
    /// [`PolicyError::QuorumMissing`] for `"quorum"` without a count.
    pub fn from_config(mode: &str, quorum: Option<usize>) -> Result<Self, PolicyError> {
        match mode {
            "check-all" => Ok(Self::CheckAll),
            "first-pass" => Ok(Self::FirstPass),
            "quorum" => quorum.map(Self::Quorum).ok_or(PolicyError::QuorumMissing),
            other => Err(PolicyError::UnknownValue {
                key: "mode",
                value: other.to_owned(),
            }),
        }
    }

    /// The TOML spelling: `check-all`, `first-pass` or `quorum`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CheckAll => "check-all",
            Self::FirstPass => "first-pass",
            Self::Quorum(_) => "quorum",
        }
    }
}

/// How a quorum round with as many failing as passing sources ends (TOML
/// `tiebreak`). Only [`Mode::Quorum`] uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tiebreak {
    /// `pass`: an even split passes, provided the quorum is met.
    Pass,
    /// `fail`: an even split fails, even when the quorum is met.
    Fail,
}

/// What a pending leap second (LI 1 or 2) does to a source (TOML `leap`).
/// A `LEAP_PENDING` alert is raised in every setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeapHandling {
    /// `ignore`: the source is judged as if no leap were announced.
    Ignore,
    /// `degrade`: the source passes, but the round is at best DEGRADED.
    Degrade,
    /// `fail`: the source fails.
    Fail,
}

/// Which sources must be NTS-authenticated (TOML `nts-required`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NtsRequirement {
    /// `"none"`: plain NTP is accepted.
    None,
    /// `"all"`: a sample without NTS fails its source.
    All,
    /// An integer N: at least N passing sources must be NTS-authenticated,
    /// or the round fails.
    AtLeast(usize),
}

/// What sources that disagree do to a round (TOML `on-disagreement`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisagreementAction {
    /// `degrade`: the round is at best DEGRADED.
    Degrade,
    /// `fail`: the round fails.
    Fail,
}

macro_rules! config_str {
    ($ty:ident, $key:literal, $($name:literal => $variant:ident),+) => {
        impl $ty {
            /// The TOML spelling.
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name),+ }
            }
        }

        impl FromStr for $ty {
            type Err = PolicyError;

            fn from_str(s: &str) -> Result<Self, PolicyError> {
                match s {
                    $($name => Ok(Self::$variant),)+
                    other => Err(PolicyError::UnknownValue { key: $key, value: other.to_owned() }),
                }
            }
        }
    };
}

config_str!(Tiebreak, "tiebreak", "pass" => Pass, "fail" => Fail);
config_str!(LeapHandling, "leap", "ignore" => Ignore, "degrade" => Degrade, "fail" => Fail);
config_str!(DisagreementAction, "on-disagreement", "degrade" => Degrade, "fail" => Fail);

/// The policy: what a round must show for the time to be trusted, and how
/// many rounds it takes to lose and regain trust.
///
/// Plain data with public fields; [`Policy::new`] fills in the defaults
/// listed per field, and [`Policy::validate`] checks it into a
/// [`ValidPolicy`], which is what the evaluation functions take. The
/// comment on each field names the TOML key of the monitor's `[policy]`
/// section it maps from.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The sources, in the order `first-pass` tries them.
    pub sources: Vec<SourceSpec>,
    /// `mode` and `quorum`. Default: `check-all`.
    pub mode: Mode,
    /// `tiebreak`. Default: `fail`.
    pub tiebreak: Tiebreak,
    /// `max-offset-ms`: the largest acceptable |offset|. Default: 100 ms.
    pub max_offset: Duration,
    /// `max-root-distance-ms`: the largest acceptable
    /// `root_delay / 2 + root_dispersion`. Default: 1.5 s (RFC 5905 MAXDIST).
    pub max_root_distance: Duration,
    /// `leap`: what an announced leap second does. Default: `degrade`.
    pub leap: LeapHandling,
    /// `nts-required`: `"none"`, `"all"` or a count. Default: none.
    pub nts_required: NtsRequirement,
    /// `min-operators`: passing sources must come from at least this many
    /// distinct operator labels; 0 and 1 mean no constraint. Default: 1.
    pub min_operators: usize,
    /// `max-disagreement-ms`: the largest spread (highest minus lowest
    /// offset) allowed between passing sources; `None` means `max_offset`.
    /// Default: `None`.
    pub max_disagreement: Option<Duration>,
    /// `on-disagreement`: what a larger spread does. Default: `degrade`.
    pub on_disagreement: DisagreementAction,
    /// `retries`: attempts after the first before a source counts as failed
    /// in a round; the policy considers the first `1 + retries` attempts of
    /// each source. Default: 3.
    pub retries: u32,
    /// `retry-interval-ms`: the pause between attempts. The monitor
    /// schedules with it; the policy only uses it in validation warnings.
    /// Default: 500 ms.
    pub retry_interval: Duration,
    /// `interval-s`: the time between rounds. The monitor schedules with it;
    /// the policy only uses it in validation warnings. Default: 16 s.
    pub interval: Duration,
    /// `hold-after`: consecutive failed rounds that put the state in hold
    /// (UNTRUSTED). Default: 2.
    pub hold_after: u32,
    /// `release-after`: consecutive passed rounds that release a hold (and
    /// end the start-up period). Default: 3.
    pub release_after: u32,
    /// `lease-s`: how long a verdict stays valid after it is issued.
    /// Default: 60 s.
    pub lease: Duration,
}

impl Policy {
    /// A policy over `sources` with the defaults listed on each field.
    pub fn new(sources: Vec<SourceSpec>) -> Self {
        Self {
            sources,
            mode: Mode::CheckAll,
            tiebreak: Tiebreak::Fail,
            max_offset: Duration::from_millis(100),
            max_root_distance: Duration::from_millis(1500),
            leap: LeapHandling::Degrade,
            nts_required: NtsRequirement::None,
            min_operators: 1,
            max_disagreement: None,
            on_disagreement: DisagreementAction::Degrade,
            retries: 3,
            retry_interval: Duration::from_millis(500),
            interval: Duration::from_secs(16),
            hold_after: 2,
            release_after: 3,
            lease: Duration::from_secs(60),
        }
    }

    /// The spread between passing sources' offsets above which they
    /// disagree: `max_disagreement`, or `max_offset` when unset.
    pub fn disagreement_bound(&self) -> Duration {
        self.max_disagreement.unwrap_or(self.max_offset)
    }

    /// Checks the policy, returning it as a [`ValidPolicy`] together with
    /// the warnings ([`ValidPolicy::warnings`]) for settings that are legal
    /// but probably not meant.
    ///
    /// # Errors
    ///
    /// The first problem found, as a [`PolicyError`]: no sources, an empty
    /// or duplicate source name, a quorum of 0 or above the number of
    /// sources, an NTS requirement or operator count the configured sources
    /// cannot meet, `hold-after` or `release-after` of 0, or a zero
    /// `max-offset-ms`, `max-root-distance-ms`, `interval-s` or `lease-s`.
    pub fn validate(self) -> Result<ValidPolicy, PolicyError> {
        let n = self.sources.len();
        if n == 0 {
            return Err(PolicyError::NoSources);
        }
        let mut names = BTreeSet::new();
        for s in &self.sources {
            if s.name.is_empty() {
                return Err(PolicyError::EmptySourceName);
            }
            if !names.insert(s.name.as_str()) {
                return Err(PolicyError::DuplicateSource(s.name.clone()));
            }
        }
        if let Mode::Quorum(k) = self.mode {
            if k == 0 {
                return Err(PolicyError::QuorumZero);
            }
            if k > n {
                return Err(PolicyError::QuorumTooLarge {
                    quorum: k,
                    sources: n,
                });
            }
        }
        match self.nts_required {
            NtsRequirement::None => {}
            NtsRequirement::All => {
                if let Some(plain) = self.sources.iter().find(|s| !s.nts) {
                    return Err(PolicyError::NtsRequiredButPlain(plain.name.clone()));
                }
            }
            NtsRequirement::AtLeast(required) => {
                let nts_sources = self.sources.iter().filter(|s| s.nts).count();
                if required == 0 || required > nts_sources {
                    return Err(PolicyError::NtsRequirementUnsatisfiable {
                        required,
                        nts_sources,
                    });
                }
            }
        }
        let operators = self
            .sources
            .iter()
            .map(|s| s.operator.as_str())
            .collect::<BTreeSet<_>>()
            .len();
        if self.min_operators > operators {
            return Err(PolicyError::TooFewOperators {
                required: self.min_operators,
                operators,
            });
        }
        if self.hold_after == 0 {
            return Err(PolicyError::ZeroCount("hold-after"));
        }
        if self.release_after == 0 {
            return Err(PolicyError::ZeroCount("release-after"));
        }
        for (key, d) in [
            ("max-offset-ms", self.max_offset),
            ("max-root-distance-ms", self.max_root_distance),
            ("interval-s", self.interval),
            ("lease-s", self.lease),
        ] {
            if d.is_zero() {
                return Err(PolicyError::ZeroDuration(key));
            }
        }

        let mut warnings = Vec::new();
        if self.lease < self.interval {
            warnings.push(PolicyWarning::LeaseShorterThanInterval {
                lease: self.lease,
                interval: self.interval,
            });
        }
        let retry_time = self.retry_interval.saturating_mul(self.retries);
        if retry_time >= self.interval {
            warnings.push(PolicyWarning::RetriesOutlastInterval {
                retry_time,
                interval: self.interval,
            });
        }
        let bound = self.disagreement_bound();
        if bound >= self.max_offset.saturating_mul(2) {
            warnings.push(PolicyWarning::DisagreementNeverFires {
                bound,
                max_offset: self.max_offset,
            });
        }
        Ok(ValidPolicy {
            policy: self,
            warnings,
        })
    }
}

/// A [`Policy`] that passed [`Policy::validate`]; it dereferences to the
/// policy.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidPolicy {
    policy: Policy,
    warnings: Vec<PolicyWarning>,
}

impl ValidPolicy {
    /// The policy.
    pub const fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Legal settings that are probably not meant; log them at start-up.
    pub fn warnings(&self) -> &[PolicyWarning] {
        &self.warnings
    }

    /// The policy back, for editing and validating again.
    pub fn into_inner(self) -> Policy {
        self.policy
    }
}

impl Deref for ValidPolicy {
    type Target = Policy;

    fn deref(&self) -> &Policy {
        &self.policy
    }
}

impl TryFrom<Policy> for ValidPolicy {
    type Error = PolicyError;

    fn try_from(policy: Policy) -> Result<Self, PolicyError> {
        policy.validate()
    }
}

/// Why a policy is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The policy has no sources.
    #[error("no sources configured")]
    NoSources,
    /// A source has an empty name.
    #[error("a source has an empty name")]
    EmptySourceName,
    /// Two sources share a name.
    #[error("source {0:?} is configured twice")]
    DuplicateSource(String),
    /// `mode = "quorum"` without `quorum = K`.
    #[error("mode \"quorum\" needs a quorum count")]
    QuorumMissing,
    /// `quorum = 0`.
    #[error("quorum must be at least 1")]
    QuorumZero,
    /// The quorum exceeds the number of sources.
    #[error("quorum {quorum} exceeds the {sources} configured sources")]
    QuorumTooLarge {
        /// The configured quorum.
        quorum: usize,
        /// The number of configured sources.
        sources: usize,
    },
    /// `nts-required = "all"` but this source is not configured for NTS.
    #[error("nts is required for all sources but {0:?} is not an nts source")]
    NtsRequiredButPlain(String),
    /// `nts-required = N` with N of 0 or above the number of NTS sources.
    #[error("nts-required {required} cannot be met by the {nts_sources} nts sources configured")]
    NtsRequirementUnsatisfiable {
        /// The configured count.
        required: usize,
        /// The number of sources configured for NTS.
        nts_sources: usize,
    },
    /// `min-operators` exceeds the distinct operator labels configured.
    #[error("min-operators {required} exceeds the {operators} distinct operators configured")]
    TooFewOperators {
        /// The configured minimum.
        required: usize,
        /// Distinct operator labels among the sources.
        operators: usize,
    },
    /// A count that must be at least 1 (the TOML key) is 0.
    #[error("{0} must be at least 1")]
    ZeroCount(&'static str),
    /// A duration that must be positive (the TOML key) is 0.
    #[error("{0} must be greater than zero")]
    ZeroDuration(&'static str),
    /// A TOML key has a value this crate does not know.
    #[error("unknown value {value:?} for {key}")]
    UnknownValue {
        /// The TOML key.
        key: &'static str,
        /// The value found.
        value: String,
    },
}

/// A legal setting that is probably not meant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyWarning {
    /// `lease-s` < `interval-s`: every verdict goes stale before the next
    /// round, so the time is UNTRUSTED between rounds.
    LeaseShorterThanInterval {
        /// `lease-s`.
        lease: Duration,
        /// `interval-s`.
        interval: Duration,
    },
    /// `retries` × `retry-interval-ms` ≥ `interval-s`: a round's retries
    /// may run into the next round.
    RetriesOutlastInterval {
        /// `retries` × `retry-interval-ms`.
        retry_time: Duration,
        /// `interval-s`.
        interval: Duration,
    },
    /// The disagreement bound is at least twice `max-offset-ms`; sources that
    /// each pass the offset threshold can never differ by more, so
    /// `SOURCES_DISAGREE` never fires.
    DisagreementNeverFires {
        /// The disagreement bound.
        bound: Duration,
        /// `max-offset-ms`.
        max_offset: Duration,
    },
}

impl fmt::Display for PolicyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LeaseShorterThanInterval { lease, interval } => write!(
                f,
                "lease-s ({lease:?}) is shorter than interval-s ({interval:?}): verdicts go stale between rounds"
            ),
            Self::RetriesOutlastInterval {
                retry_time,
                interval,
            } => write!(
                f,
                "retries take {retry_time:?}, not less than interval-s ({interval:?})"
            ),
            Self::DisagreementNeverFires { bound, max_offset } => write!(
                f,
                "disagreement bound {bound:?} is at least twice max-offset-ms ({max_offset:?}): sources-disagree can never fire"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(n: usize) -> Vec<SourceSpec> {
        (0..n)
            .map(|i| SourceSpec::new(format!("s{i}"), format!("op{i}"), i % 2 == 0))
            .collect()
    }

    #[test]
    fn defaults_validate_without_warnings() {
        let p = Policy::new(sources(3)).validate().unwrap();
        assert!(p.warnings().is_empty(), "{:?}", p.warnings());
        assert_eq!(p.max_offset, Duration::from_millis(100));
    }

    #[test]
    fn errors() {
        type Edit = Box<dyn Fn(&mut Policy)>;
        let cases: Vec<(&str, Edit, PolicyError)> = vec![
            (
                "no sources",
                Box::new(|p| p.sources.clear()),
                PolicyError::NoSources,
            ),
            (
                "empty name",
                Box::new(|p| p.sources[0].name.clear()),
                PolicyError::EmptySourceName,
            ),
            (
                "duplicate",
                Box::new(|p| p.sources[1].name = "s0".into()),
                PolicyError::DuplicateSource("s0".into()),
            ),
            (
                "quorum 0",
                Box::new(|p| p.mode = Mode::Quorum(0)),
                PolicyError::QuorumZero,
            ),
            (
                "quorum > n",
                Box::new(|p| p.mode = Mode::Quorum(4)),
                PolicyError::QuorumTooLarge {
                    quorum: 4,
                    sources: 3,
                },
            ),
            (
                "nts all",
                Box::new(|p| p.nts_required = NtsRequirement::All),
                PolicyError::NtsRequiredButPlain("s1".into()),
            ),
            (
                "nts at least 3 of 2",
                Box::new(|p| p.nts_required = NtsRequirement::AtLeast(3)),
                PolicyError::NtsRequirementUnsatisfiable {
                    required: 3,
                    nts_sources: 2,
                },
            ),
            (
                "nts at least 0",
                Box::new(|p| p.nts_required = NtsRequirement::AtLeast(0)),
                PolicyError::NtsRequirementUnsatisfiable {
                    required: 0,
                    nts_sources: 2,
                },
            ),
            (
                "operators",
                Box::new(|p| p.min_operators = 4),
                PolicyError::TooFewOperators {
                    required: 4,
                    operators: 3,
                },
            ),
            (
                "hold 0",
                Box::new(|p| p.hold_after = 0),
                PolicyError::ZeroCount("hold-after"),
            ),
            (
                "release 0",
                Box::new(|p| p.release_after = 0),
                PolicyError::ZeroCount("release-after"),
            ),
            (
                "offset 0",
                Box::new(|p| p.max_offset = Duration::ZERO),
                PolicyError::ZeroDuration("max-offset-ms"),
            ),
            (
                "lease 0",
                Box::new(|p| p.lease = Duration::ZERO),
                PolicyError::ZeroDuration("lease-s"),
            ),
        ];
        for (name, edit, want) in cases {
            let mut p = Policy::new(sources(3));
            edit(&mut p);
            assert_eq!(p.validate().unwrap_err(), want, "{name}");
        }
        // The boundaries are accepted.
        let mut p = Policy::new(sources(3));
        p.mode = Mode::Quorum(3);
        p.nts_required = NtsRequirement::AtLeast(2);
        p.min_operators = 3;
        p.hold_after = 1;
        p.release_after = 1;
        p.validate().unwrap();
    }

    #[test]
    fn warnings() {
        let mut p = Policy::new(sources(2));
        p.lease = Duration::from_secs(10);
        p.retries = 40;
        p.max_disagreement = Some(Duration::from_millis(200));
        let v = p.validate().unwrap();
        assert_eq!(
            v.warnings(),
            [
                PolicyWarning::LeaseShorterThanInterval {
                    lease: Duration::from_secs(10),
                    interval: Duration::from_secs(16)
                },
                PolicyWarning::RetriesOutlastInterval {
                    retry_time: Duration::from_secs(20),
                    interval: Duration::from_secs(16)
                },
                PolicyWarning::DisagreementNeverFires {
                    bound: Duration::from_millis(200),
                    max_offset: Duration::from_millis(100)
                },
            ]
        );
        assert!(v.warnings()[0].to_string().contains("stale"));
    }

    #[test]
    fn config_strings() {
        assert_eq!(Mode::from_config("quorum", Some(2)), Ok(Mode::Quorum(2)));
        assert_eq!(
            Mode::from_config("quorum", None),
            Err(PolicyError::QuorumMissing)
        );
        assert_eq!(
            Mode::from_config("first-pass", None).unwrap().as_str(),
            "first-pass"
        );
        assert!(matches!(
            Mode::from_config("any", None),
            Err(PolicyError::UnknownValue { key: "mode", .. })
        ));
        assert_eq!("pass".parse(), Ok(Tiebreak::Pass));
        assert_eq!("fail".parse(), Ok(LeapHandling::Fail));
        assert_eq!(LeapHandling::Ignore.as_str(), "ignore");
        assert_eq!("degrade".parse(), Ok(DisagreementAction::Degrade));
        assert!("maybe".parse::<Tiebreak>().is_err());
    }
}
