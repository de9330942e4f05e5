//! Signed CSV exports of the check log, and their verification.
//!
//! # Format
//!
//! ```text
//! # ntp-monitor export v1
//! # from 2026-11-22T00:00:00.000Z to 2026-11-23T00:00:00.000Z
//! # public-key <64 hex digits: the Ed25519 key that signed>
//! row,id,time,time_ms,source,operator,address,...,diagnostic,chain
//! 1,17,2026-11-22T00:00:03.120Z,...,"ok",<64 hex>
//! ...
//! # signature rows=<N> chain=<64 hex> ed25519=<128 hex>
//! ```
//!
//! Each data line ends in `chain` = SHA-256(previous chain ‖ the line up to
//! and excluding its last comma), hex; the previous chain of row 1 is
//! SHA-256 of the header lines (the `#` lines and the column line). The
//! `row` column counts 1, 2, 3, …. The last line signs, with Ed25519,
//! `ntp-monitor export v1\nrows=<N>\nchain=<last chain>\n`.
//!
//! [`verify`] recomputes everything and names the first row that was
//! changed, removed or moved: a row whose `row` number is not the next one
//! was reordered or rows before it were removed; a row whose chain does not
//! match its content was changed; a missing tail shows in the row count of
//! the signature.

use std::io::Write;
use std::path::Path;

use anyhow::{Context as _, bail};
use ntp_policy::UnixMs;
use ring::digest::{Context, SHA256};
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

use crate::store::{self, CheckRecord};
use crate::timefmt;

const MAGIC: &str = "# ntp-monitor export v1";
/// Column line of a verdicts export.
const VERDICT_COLUMNS: &str =
    "row,id,time,time_ms,round,state,outcome,valid_until,valid_until_ms,reasons,chain";
/// Column line of an alerts export.
const ALERT_COLUMNS: &str = "row,id,time,time_ms,kind,source,message,figures,chain";

/// What an export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum What {
    /// Every check attempt (the default).
    #[default]
    Checks,
    /// Every round's verdict.
    Verdicts,
    /// Every alert.
    Alerts,
}

impl What {
    fn columns(self) -> &'static str {
        match self {
            Self::Checks => COLUMNS,
            Self::Verdicts => VERDICT_COLUMNS,
            Self::Alerts => ALERT_COLUMNS,
        }
    }
}

const COLUMNS: &str = "row,id,time,time_ms,round,attempt,source,operator,address,server,nts,version,stratum,refid,precision,leap,offset_s,delay_s,dispersion_s,jitter_s,root_delay_s,root_dispersion_s,result,passed,diagnostic,chain";

/// Loads the Ed25519 signing key (PKCS#8) from `path`, which must exist.
///
/// # Errors
/// The file cannot be read or is not an Ed25519 PKCS#8 key.
pub fn load_key(path: &Path) -> anyhow::Result<Ed25519KeyPair> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the signing key {}", path.display()))?;
    Ed25519KeyPair::from_pkcs8(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: not an Ed25519 PKCS#8 key: {e}", path.display()))
}

/// Loads the Ed25519 signing key (PKCS#8) from `path`, creating it with
/// mode 0600 when the file does not exist.
///
/// # Errors
/// The file cannot be read or written, or is not an Ed25519 PKCS#8 key.
pub fn load_or_create_key(path: &Path) -> anyhow::Result<Ed25519KeyPair> {
    match std::fs::read(path) {
        Ok(bytes) => Ed25519KeyPair::from_pkcs8(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: not an Ed25519 PKCS#8 key: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| anyhow::anyhow!("cannot generate a key"))?;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("cannot create the signing key {}", path.display()))?;
            f.write_all(pkcs8.as_ref())?;
            f.sync_all()?;
            tracing::info!("created the export signing key {}", path.display());
            Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
                .map_err(|e| anyhow::anyhow!("generated key unusable: {e}"))
        }
        Err(e) => Err(e).with_context(|| format!("cannot read the signing key {}", path.display())),
    }
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = Context::new(&SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

fn csv_field(s: &str) -> String {
    let s = s.replace(['\r', '\n'], " ");
    if s.contains([',', '"']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn ms(t: UnixMs) -> i64 {
    i64::try_from(t.as_millis()).unwrap_or(i64::MAX)
}

fn row_fields(c: &CheckRecord) -> String {
    let fields = [
        c.id.to_string(),
        timefmt::rfc3339(UnixMs(u64::try_from(c.at_ms).unwrap_or(0))),
        c.at_ms.to_string(),
        c.round.to_string(),
        c.attempt.to_string(),
        csv_field(&c.source),
        csv_field(&c.operator),
        csv_field(&c.address),
        csv_field(&opt(c.server.as_ref())),
        u8::from(c.nts).to_string(),
        opt(c.version),
        opt(c.stratum),
        csv_field(&opt(c.refid.as_ref())),
        opt(c.precision),
        opt(c.leap),
        opt(c.offset_s),
        opt(c.delay_s),
        opt(c.dispersion_s),
        opt(c.jitter_s),
        opt(c.root_delay_s),
        opt(c.root_dispersion_s),
        csv_field(&c.result),
        u8::from(c.passed).to_string(),
        csv_field(&c.diagnostic),
    ];
    fields.join(",")
}

fn signed_message(rows: u64, chain: &str) -> String {
    format!("ntp-monitor export v1\nrows={rows}\nchain={chain}\n")
}

/// Writes the checks with `from <= time < to` from the log at `database`
/// to `out`, chained and signed with `key`; returns the number of rows.
///
/// # Errors
/// Database, key or write errors.
pub fn export(
    database: &Path,
    key: &Ed25519KeyPair,
    from: UnixMs,
    to: UnixMs,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    export_what(database, key, What::Checks, from, to, out)
}

/// Like [`export`], for checks, verdicts or alerts.
///
/// # Errors
/// Database, key or write errors.
pub fn export_what(
    database: &Path,
    key: &Ed25519KeyPair,
    what: What,
    from: UnixMs,
    to: UnixMs,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let conn = store::open_reader(database)?;
    let header = format!(
        "{MAGIC}\n# from {} to {}\n# public-key {}\n{}\n",
        timefmt::rfc3339(from),
        timefmt::rfc3339(to),
        hex::encode(key.public_key().as_ref()),
        what.columns()
    );
    out.write_all(header.as_bytes())?;
    let mut chain = sha256(&[header.as_bytes()]);
    let mut n = 0u64;
    let mut emit = |fields: &str| -> anyhow::Result<()> {
        n += 1;
        let line = format!("{n},{fields}");
        chain = sha256(&[&chain, line.as_bytes()]);
        writeln!(out, "{line},{}", hex::encode(chain))?;
        Ok(())
    };
    let when = |ms: i64| timefmt::rfc3339(UnixMs(u64::try_from(ms).unwrap_or(0)));
    match what {
        What::Checks => store::for_each_check(&conn, from, to, |c| emit(&row_fields(&c)))?,
        What::Verdicts => {
            let mut stmt = conn.prepare(
                "SELECT id, at_ms, round, state, outcome, valid_until_ms, reasons FROM verdicts
                 WHERE at_ms >= ?1 AND at_ms < ?2 ORDER BY id",
            )?;
            let mut rows = stmt.query(rusqlite::params![ms(from), ms(to)])?;
            while let Some(r) = rows.next()? {
                let (id, at, round): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
                let (state, outcome): (String, String) = (r.get(3)?, r.get(4)?);
                let (until, reasons): (i64, String) = (r.get(5)?, r.get(6)?);
                emit(
                    &[
                        id.to_string(),
                        when(at),
                        at.to_string(),
                        round.to_string(),
                        csv_field(&state),
                        csv_field(&outcome),
                        when(until),
                        until.to_string(),
                        csv_field(&reasons),
                    ]
                    .join(","),
                )?;
            }
        }
        What::Alerts => {
            let mut stmt = conn.prepare(
                "SELECT id, at_ms, kind, source, message, figures FROM alerts
                 WHERE at_ms >= ?1 AND at_ms < ?2 ORDER BY id",
            )?;
            let mut rows = stmt.query(rusqlite::params![ms(from), ms(to)])?;
            while let Some(r) = rows.next()? {
                let (id, at): (i64, i64) = (r.get(0)?, r.get(1)?);
                let (kind, source): (String, Option<String>) = (r.get(2)?, r.get(3)?);
                let (message, figures): (String, String) = (r.get(4)?, r.get(5)?);
                emit(
                    &[
                        id.to_string(),
                        when(at),
                        at.to_string(),
                        csv_field(&kind),
                        csv_field(&source.unwrap_or_default()),
                        csv_field(&message),
                        csv_field(&figures),
                    ]
                    .join(","),
                )?;
            }
        }
    }
    let chain_hex = hex::encode(chain);
    let sig = key.sign(signed_message(n, &chain_hex).as_bytes());
    writeln!(
        out,
        "# signature rows={n} chain={chain_hex} ed25519={}",
        hex::encode(sig.as_ref())
    )?;
    out.flush()?;
    Ok(n)
}

/// What [`verify`] found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tamper {
    /// The header (format line, range, key or columns) was changed.
    Header(String),
    /// Data row `row` (1-based, as the `row` column counts) was changed.
    Changed {
        /// The row.
        row: u64,
        /// Its line in the file (1-based).
        line: usize,
    },
    /// Rows before the one at `line` are missing: it says `found`, the
    /// next expected row was `expected`.
    Removed {
        /// The first missing row.
        expected: u64,
        /// The row number found instead.
        found: u64,
        /// The line in the file.
        line: usize,
    },
    /// The row at `line` is out of order (`found` where `expected` was due).
    Reordered {
        /// The row due.
        expected: u64,
        /// The row found.
        found: u64,
        /// The line in the file.
        line: usize,
    },
    /// Rows at the end are missing (the signature covers `signed` rows,
    /// the file holds `present`).
    Truncated {
        /// Rows the signature covers.
        signed: u64,
        /// Rows present.
        present: u64,
    },
    /// The signature line is missing, malformed or does not verify.
    Signature(String),
    /// Lines follow the signature (from `line`), which it does not cover.
    Appended {
        /// The first line after the signature.
        line: usize,
    },
}

impl std::fmt::Display for Tamper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Header(why) => write!(f, "header changed: {why}"),
            Self::Changed { row, line } => write!(f, "row {row} (line {line}) was changed"),
            Self::Removed {
                expected,
                found,
                line,
            } => write!(
                f,
                "row {expected} was removed (line {line} holds row {found})"
            ),
            Self::Reordered {
                expected,
                found,
                line,
            } => write!(
                f,
                "row {found} (line {line}) is out of order: row {expected} was due"
            ),
            Self::Truncated { signed, present } => write!(
                f,
                "row {} was removed: the signature covers {signed} rows, the file holds {present}",
                present + 1
            ),
            Self::Signature(why) => write!(f, "signature: {why}"),
            Self::Appended { line } => {
                write!(f, "line {line} and after were added after the signature")
            }
        }
    }
}

impl std::error::Error for Tamper {}

/// Verifies an export against the public key `public_key` (32 bytes);
/// returns the number of rows.
///
/// # Errors
/// The first problem found, naming the row.
pub fn verify(text: &str, public_key: &[u8]) -> Result<u64, Tamper> {
    let mut lines = text.split_inclusive('\n').enumerate();
    let mut header = String::new();
    for (i, want) in [MAGIC, "# from ", "# public-key ", COLUMNS]
        .into_iter()
        .enumerate()
    {
        let Some((_, line)) = lines.next() else {
            return Err(Tamper::Header("file ends in the header".into()));
        };
        let body = line.trim_end_matches('\n');
        let ok = match i {
            0 => body == want,
            3 => [What::Checks, What::Verdicts, What::Alerts]
                .iter()
                .any(|w| body == w.columns()),
            _ => body.starts_with(want),
        };
        if !ok {
            return Err(Tamper::Header(format!("line {} is {body:?}", i + 1)));
        }
        if i == 2 {
            let key = body.trim_start_matches(want);
            if key != hex::encode(public_key) {
                return Err(Tamper::Header(format!(
                    "signed with key {key}, not the configured {}",
                    hex::encode(public_key)
                )));
            }
        }
        header.push_str(line);
    }
    let mut chain = sha256(&[header.as_bytes()]);
    let rest: Vec<(usize, &str)> = lines
        .map(|(i, l)| (i + 1, l.trim_end_matches('\n')))
        .collect();
    let row_number = |body: &str| -> Option<u64> {
        if body.starts_with('#') {
            return None;
        }
        body.split(',').next().and_then(|n| n.parse::<u64>().ok())
    };
    for (expected, (k, &(line_no, body))) in (1u64..).zip(rest.iter().enumerate()) {
        if let Some(sig) = body.strip_prefix("# signature ") {
            check_signature(sig, expected - 1, &chain, public_key)?;
            if let Some(&(line, _)) = rest
                .get(k + 1..)
                .and_then(|r| r.iter().find(|(_, b)| !b.is_empty()))
            {
                return Err(Tamper::Appended { line });
            }
            return Ok(expected - 1);
        }
        let Some((content, stated)) = body.rsplit_once(',') else {
            return Err(Tamper::Changed {
                row: expected,
                line: line_no,
            });
        };
        match row_number(body) {
            Some(found) if found != expected => {
                let later = rest
                    .iter()
                    .skip(k + 1)
                    .any(|&(_, b)| row_number(b) == Some(expected));
                return Err(if found > expected && !later {
                    Tamper::Removed {
                        expected,
                        found,
                        line: line_no,
                    }
                } else {
                    Tamper::Reordered {
                        expected,
                        found,
                        line: line_no,
                    }
                });
            }
            Some(_) => {}
            None => {
                return Err(Tamper::Changed {
                    row: expected,
                    line: line_no,
                });
            }
        }
        let next = sha256(&[&chain, content.as_bytes()]);
        if hex::encode(next) != stated {
            return Err(Tamper::Changed {
                row: expected,
                line: line_no,
            });
        }
        chain = next;
    }
    Err(Tamper::Signature("no signature line".into()))
}

fn check_signature(
    sig: &str,
    present: u64,
    chain: &[u8; 32],
    public_key: &[u8],
) -> Result<(), Tamper> {
    let mut rows = None;
    let (mut chain_hex, mut ed) = (None, None);
    for part in sig.split(' ') {
        match part.split_once('=') {
            Some(("rows", v)) => rows = v.parse::<u64>().ok(),
            Some(("chain", v)) => chain_hex = Some(v),
            Some(("ed25519", v)) => ed = hex::decode(v).ok(),
            _ => return Err(Tamper::Signature(format!("unexpected {part:?}"))),
        }
    }
    let (Some(rows), Some(chain_hex), Some(ed)) = (rows, chain_hex, ed) else {
        return Err(Tamper::Signature("malformed signature line".into()));
    };
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(signed_message(rows, chain_hex).as_bytes(), &ed)
        .map_err(|_| Tamper::Signature("does not verify with the configured key".into()))?;
    if rows > present {
        return Err(Tamper::Truncated {
            signed: rows,
            present,
        });
    }
    if rows != present || chain_hex != hex::encode(chain) {
        return Err(Tamper::Signature(format!(
            "signed {rows} rows ending in chain {chain_hex}, the rows end in {}",
            hex::encode(chain)
        )));
    }
    Ok(())
}

/// Checks that a file is an export at all, for a clearer error.
///
/// # Errors
/// The file is not a v1 export.
pub fn looks_like_export(text: &str) -> anyhow::Result<()> {
    if !text.starts_with(MAGIC) {
        bail!("not an ntp-monitor export (first line is not {MAGIC:?})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::Store;

    fn setup() -> (tempfile::TempDir, Ed25519KeyPair, String) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("log.sqlite");
        let store = Store::open(&db).unwrap();
        for i in 0..6i64 {
            store
                .insert_check(&CheckRecord {
                    at_ms: 1_000_000 + i * 1000,
                    round: i + 1,
                    attempt: 1,
                    source: format!("s{}", i % 2),
                    operator: "op".into(),
                    address: "127.0.0.1:123".into(),
                    nts: i % 2 == 0,
                    offset_s: Some(0.001 * i as f64),
                    result: "pass".into(),
                    passed: true,
                    diagnostic: "ok, \"fine\"".into(),
                    ..Default::default()
                })
                .unwrap();
        }
        let key = load_or_create_key(&dir.path().join("k")).unwrap();
        let mut out = Vec::new();
        let n = export(&db, &key, UnixMs(0), UnixMs(u64::MAX / 2), &mut out).unwrap();
        assert_eq!(n, 6);
        (dir, key, String::from_utf8(out).unwrap())
    }

    #[test]
    fn key_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let a = load_or_create_key(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let b = load_or_create_key(&path).unwrap();
        assert_eq!(a.public_key().as_ref(), b.public_key().as_ref());
        std::fs::write(&path, b"junk").unwrap();
        assert!(load_or_create_key(&path).is_err());
    }

    #[test]
    fn intact_and_tampered() {
        let (_dir, key, text) = setup();
        let pk = key.public_key().as_ref().to_vec();
        assert_eq!(verify(&text, &pk), Ok(6));
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        // Header is 4 lines: row r is at index 3 + r.
        let join = |v: &[&str]| v.concat();

        // One byte edited in row 3's offset.
        let mut edited = lines.clone();
        let row3 = lines[6].replacen("0.002", "0.003", 1);
        edited[6] = &row3;
        assert_eq!(
            verify(&join(&edited), &pk),
            Err(Tamper::Changed { row: 3, line: 7 })
        );

        // Every single-byte change anywhere is caught.
        for pos in 0..text.len() {
            let mut bytes = text.clone().into_bytes();
            bytes[pos] ^= 0x01;
            if let Ok(t) = String::from_utf8(bytes) {
                assert!(verify(&t, &pk).is_err(), "byte {pos} changed unnoticed");
            }
        }

        // Row 2 removed.
        let mut removed = lines.clone();
        removed.remove(5);
        let e = verify(&join(&removed), &pk).unwrap_err();
        assert_eq!(
            e,
            Tamper::Removed {
                expected: 2,
                found: 3,
                line: 6
            }
        );
        assert!(e.to_string().contains("row 2 was removed"), "{e}");

        // Rows 4 and 5 swapped.
        let mut swapped = lines.clone();
        swapped.swap(7, 8);
        let e = verify(&join(&swapped), &pk).unwrap_err();
        assert_eq!(
            e,
            Tamper::Reordered {
                expected: 4,
                found: 5,
                line: 8
            }
        );
        assert!(
            e.to_string().contains("row 5 (line 8) is out of order"),
            "{e}"
        );

        // The last row removed: the signature names it.
        let mut truncated = lines.clone();
        truncated.remove(9);
        let e = verify(&join(&truncated), &pk).unwrap_err();
        assert_eq!(
            e,
            Tamper::Truncated {
                signed: 6,
                present: 5
            }
        );
        assert!(e.to_string().contains("row 6 was removed"), "{e}");

        // Rows appended after the signature.
        let appended = format!("{text}{}", lines[4]);
        assert_eq!(verify(&appended, &pk), Err(Tamper::Appended { line: 12 }));

        // Another key.
        let other = load_or_create_key(&_dir.path().join("k2")).unwrap();
        assert!(matches!(
            verify(&text, other.public_key().as_ref()),
            Err(Tamper::Header(_))
        ));
    }

    #[test]
    fn reordered_row_is_named() {
        let (_dir, key, text) = setup();
        let pk = key.public_key().as_ref().to_vec();
        // Row 1 moved to the end of the data.
        let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
        let r1 = lines.remove(4);
        lines.insert(9, r1);
        let e = verify(&lines.concat(), &pk).unwrap_err();
        assert_eq!(
            e,
            Tamper::Reordered {
                expected: 1,
                found: 2,
                line: 5
            }
        );
        // Row 2 repeated after row 3.
        let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
        let r2 = lines[5];
        lines.insert(7, r2);
        let e = verify(&lines.concat(), &pk).unwrap_err();
        assert_eq!(
            e,
            Tamper::Reordered {
                expected: 4,
                found: 2,
                line: 8
            }
        );
    }

    #[test]
    fn verdicts_and_alerts_export_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("log.sqlite");
        let mut store = Store::open(&db).unwrap();
        let v = ntp_policy::Verdict {
            state: ntp_policy::VerdictState::Degraded,
            reasons: vec![ntp_policy::Reason::NoUsableSource],
            issued_at: UnixMs(5000),
            valid_until: UnixMs(65000),
        };
        let alert = ntp_policy::Alert {
            kind: ntp_policy::AlertKind::NtpThresholdReached,
            source: Some("a".into()),
            figures: vec![ntp_policy::Figure::new("offset_s", 0.25)],
            message: "offset +0.25 s, beyond".into(),
            at: UnixMs(5000),
        };
        store.insert_round(7, &v, "failed", &[alert]).unwrap();
        let key = load_or_create_key(&dir.path().join("k")).unwrap();
        let pk = key.public_key().as_ref().to_vec();
        for (what, needle) in [
            (What::Verdicts, "DEGRADED"),
            (What::Alerts, "NTP_THRESHOLD_REACHED"),
        ] {
            let mut out = Vec::new();
            let n = export_what(&db, &key, what, UnixMs(0), UnixMs(10_000), &mut out).unwrap();
            assert_eq!(n, 1);
            let text = String::from_utf8(out).unwrap();
            assert!(
                text.contains(needle) && text.contains(what.columns()),
                "{text}"
            );
            assert_eq!(verify(&text, &pk), Ok(1));
            let tampered = text.replacen(needle, &needle.to_lowercase(), 1);
            assert_eq!(
                verify(&tampered, &pk),
                Err(Tamper::Changed { row: 1, line: 5 })
            );
        }
    }

    #[test]
    fn csv_quoting() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("x\ny"), "x y");
        assert_eq!(csv_field("plain"), "plain");
    }
}
