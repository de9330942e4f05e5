//! The transaction log: every check, verdict and alert in SQLite.
//!
//! The database runs in WAL mode with `synchronous = FULL`: each insert is
//! its own transaction, and a transaction that returned is on disk, so a
//! `kill -9` (or a power cut) loses no committed check. Readers (the HTTP
//! API, `export`) use their own connections and never block the writer.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use ntp_policy::{Alert, UnixMs, Verdict};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::Serialize;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS checks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    round INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    source TEXT NOT NULL,
    operator TEXT NOT NULL,
    address TEXT NOT NULL,
    server TEXT,
    nts INTEGER NOT NULL,
    version INTEGER,
    stratum INTEGER,
    refid TEXT,
    precision INTEGER,
    leap INTEGER,
    offset_s REAL,
    delay_s REAL,
    dispersion_s REAL,
    jitter_s REAL,
    root_delay_s REAL,
    root_dispersion_s REAL,
    result TEXT NOT NULL,
    passed INTEGER NOT NULL,
    diagnostic TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS checks_at ON checks (at_ms);
CREATE TABLE IF NOT EXISTS verdicts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    round INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    outcome TEXT NOT NULL,
    valid_until_ms INTEGER NOT NULL,
    reasons TEXT NOT NULL,
    changed INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS verdicts_at ON verdicts (at_ms);
CREATE INDEX IF NOT EXISTS verdicts_changed ON verdicts (at_ms) WHERE changed = 1;
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    source TEXT,
    message TEXT NOT NULL,
    figures TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_at ON alerts (at_ms);
CREATE TABLE IF NOT EXISTS check_hours (
    hour_ms INTEGER NOT NULL,
    source TEXT NOT NULL,
    n INTEGER NOT NULL,
    passed INTEGER NOT NULL,
    offset_sum REAL NOT NULL,
    offset_n INTEGER NOT NULL,
    delay_sum REAL NOT NULL,
    delay_n INTEGER NOT NULL,
    jitter_sum REAL NOT NULL,
    jitter_n INTEGER NOT NULL,
    PRIMARY KEY (hour_ms, source)
) WITHOUT ROWID;
";

/// One hour in milliseconds: the granularity of the `check_hours` rollup.
pub const HOUR_MS: i64 = 3_600_000;

/// One logged check attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct CheckRecord {
    /// Row id (assigned on insert; 0 before).
    pub id: i64,
    /// When the attempt was made, ms since the Unix epoch.
    pub at_ms: i64,
    /// The round it belongs to.
    pub round: i64,
    /// Attempt number within the round for this source, from 1.
    pub attempt: i64,
    /// The source's configured name.
    pub source: String,
    /// Its operator label.
    pub operator: String,
    /// The configured address.
    pub address: String,
    /// The NTP server address that answered (after NTS-KE), if known.
    pub server: Option<String>,
    /// Whether the attempt used NTS.
    pub nts: bool,
    /// NTP version of the exchange.
    pub version: Option<i64>,
    /// Stratum of the reply.
    pub stratum: Option<i64>,
    /// Reference id of the reply, as text.
    pub refid: Option<String>,
    /// Server precision, log₂ s.
    pub precision: Option<i64>,
    /// Leap indicator, 0–3.
    pub leap: Option<i64>,
    /// Offset θ, seconds.
    pub offset_s: Option<f64>,
    /// Delay δ, seconds.
    pub delay_s: Option<f64>,
    /// Sample dispersion ε (server precision + 15 ppm × delay), seconds.
    pub dispersion_s: Option<f64>,
    /// Jitter over the source's recent samples, seconds.
    pub jitter_s: Option<f64>,
    /// Root delay, seconds.
    pub root_delay_s: Option<f64>,
    /// Root dispersion, seconds.
    pub root_dispersion_s: Option<f64>,
    /// `pass`, or why not: a policy reason code (`offset-exceeded`, …) or a
    /// failure code (`timeout`, `nts-ke-failed`, …).
    pub result: String,
    /// Whether the attempt passed the policy.
    pub passed: bool,
    /// A sentence for humans.
    pub diagnostic: String,
}

/// One logged verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerdictRecord {
    /// The round.
    pub round: i64,
    /// Issued at, ms.
    pub at_ms: i64,
    /// TRUSTED, DEGRADED or UNTRUSTED.
    pub state: String,
    /// The round outcome: passed, degraded or failed.
    pub outcome: String,
    /// End of the lease, ms.
    pub valid_until_ms: i64,
    /// The reasons, as JSON `[{"code", "message"}]`.
    pub reasons: serde_json::Value,
}

/// One logged alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRecord {
    /// Row id.
    pub id: i64,
    /// When, ms.
    pub at_ms: i64,
    /// The code, e.g. `NTP_THRESHOLD_REACHED`.
    pub kind: String,
    /// The source, for source alerts.
    pub source: Option<String>,
    /// The sentence.
    pub message: String,
    /// The figures, as a JSON object.
    pub figures: serde_json::Value,
}

/// One bucket of a chart series for one source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesPoint {
    /// Bucket start, ms.
    pub t: i64,
    /// The source.
    pub source: String,
    /// Mean offset of the samples, seconds.
    pub offset_s: Option<f64>,
    /// Mean delay, seconds.
    pub delay_s: Option<f64>,
    /// Mean jitter, seconds.
    pub jitter_s: Option<f64>,
    /// Attempts that passed.
    pub passed: i64,
    /// Attempts that failed.
    pub failed: i64,
}

/// The log, open for writing.
pub struct Store {
    conn: Connection,
    /// The state of the last logged verdict, to mark changes.
    last_state: Option<String>,
}

fn to_i64(t: UnixMs) -> i64 {
    i64::try_from(t.as_millis()).unwrap_or(i64::MAX)
}

/// Opens the log read-only, for the API and export (the monitor must have
/// created it).
///
/// # Errors
/// A missing or unreadable database.
pub fn open_reader(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open the log {}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

impl Store {
    /// Opens (creating if needed) the log at `path`, in WAL mode with
    /// `synchronous = FULL`.
    ///
    /// # Errors
    /// The database cannot be opened or its schema created.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open the log {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            anyhow::bail!("{}: cannot switch to WAL (got {mode})", path.display());
        }
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
        conn.execute_batch(SCHEMA)
            .with_context(|| format!("creating the schema in {}", path.display()))?;
        let last_state = conn
            .query_row(
                "SELECT state FROM verdicts ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        Ok(Self { conn, last_state })
    }

    /// The number the next round should get: one more than any logged.
    ///
    /// # Errors
    /// A database error.
    pub fn next_round(&self) -> anyhow::Result<i64> {
        let max: Option<i64> = self.conn.query_row(
            "SELECT MAX(r) FROM (SELECT MAX(round) AS r FROM checks UNION ALL SELECT MAX(round) FROM verdicts)",
            [],
            |r| r.get(0),
        )?;
        Ok(max.unwrap_or(0) + 1)
    }

    /// Logs a check; returns its row id.
    ///
    /// # Errors
    /// A database error.
    pub fn insert_check(&self, c: &CheckRecord) -> anyhow::Result<i64> {
        // The check and its hourly rollup (what long chart ranges read)
        // commit together.
        let tx = self.conn.unchecked_transaction()?;
        self.conn.execute(
            "INSERT INTO checks (at_ms, round, attempt, source, operator, address, server, nts, version, stratum, refid, precision, leap, offset_s, delay_s, dispersion_s, jitter_s, root_delay_s, root_dispersion_s, result, passed, diagnostic)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
            params![
                c.at_ms, c.round, c.attempt, c.source, c.operator, c.address, c.server, c.nts,
                c.version, c.stratum, c.refid, c.precision, c.leap, c.offset_s, c.delay_s,
                c.dispersion_s, c.jitter_s, c.root_delay_s, c.root_dispersion_s, c.result,
                c.passed, c.diagnostic
            ],
        )?;
        let id = self.conn.last_insert_rowid();
        self.conn.execute(
            "INSERT INTO check_hours VALUES (?1, ?2, 1, ?3, COALESCE(?4, 0), ?4 IS NOT NULL,
                 COALESCE(?5, 0), ?5 IS NOT NULL, COALESCE(?6, 0), ?6 IS NOT NULL)
             ON CONFLICT (hour_ms, source) DO UPDATE SET
                 n = n + 1, passed = passed + excluded.passed,
                 offset_sum = offset_sum + excluded.offset_sum, offset_n = offset_n + excluded.offset_n,
                 delay_sum = delay_sum + excluded.delay_sum, delay_n = delay_n + excluded.delay_n,
                 jitter_sum = jitter_sum + excluded.jitter_sum, jitter_n = jitter_n + excluded.jitter_n",
            params![
                c.at_ms.div_euclid(HOUR_MS) * HOUR_MS,
                c.source,
                c.passed,
                c.offset_s,
                c.delay_s,
                c.jitter_s
            ],
        )?;
        tx.commit()?;
        Ok(id)
    }

    /// Logs a verdict of round `round` with the round's outcome.
    ///
    /// # Errors
    /// A database error.
    pub fn insert_verdict(&mut self, round: i64, v: &Verdict, outcome: &str) -> anyhow::Result<()> {
        let changed = self.last_state.as_deref() != Some(v.state.as_str());
        let reasons: Vec<serde_json::Value> = v
            .reasons
            .iter()
            .map(|r| serde_json::json!({"code": r.code(), "message": r.to_string()}))
            .collect();
        self.conn.execute(
            "INSERT INTO verdicts (round, at_ms, state, outcome, valid_until_ms, reasons, changed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                round,
                to_i64(v.issued_at),
                v.state.as_str(),
                outcome,
                to_i64(v.valid_until),
                serde_json::Value::from(reasons).to_string(),
                changed
            ],
        )?;
        self.last_state = Some(v.state.as_str().to_string());
        Ok(())
    }

    /// Logs a round's verdict and its alerts in one transaction.
    ///
    /// # Errors
    /// A database error; nothing of the round is logged then.
    pub fn insert_round(
        &mut self,
        round: i64,
        v: &Verdict,
        outcome: &str,
        alerts: &[Alert],
    ) -> anyhow::Result<()> {
        let before = self.last_state.clone();
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let mut r = self.insert_verdict(round, v, outcome);
        for a in alerts {
            if r.is_ok() {
                r = self.insert_alert(a);
            }
        }
        if r.is_ok() {
            r = self.conn.execute_batch("COMMIT").map_err(Into::into);
        }
        if r.is_err() {
            let _ = self.conn.execute_batch("ROLLBACK");
            self.last_state = before;
        }
        r
    }

    /// Logs an alert.
    ///
    /// # Errors
    /// A database error.
    pub fn insert_alert(&self, a: &Alert) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO alerts (at_ms, kind, source, message, figures) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                to_i64(a.at),
                a.kind.as_str(),
                a.source,
                a.message,
                figures_json(a).to_string()
            ],
        )?;
        Ok(())
    }

    /// Deletes checks, verdicts and alerts older than `before`; returns the
    /// number of rows deleted.
    ///
    /// # Errors
    /// A database error.
    pub fn prune(&self, before: UnixMs) -> anyhow::Result<usize> {
        let t = to_i64(before);
        let mut n = 0;
        for table in ["checks", "verdicts", "alerts"] {
            n += self
                .conn
                .execute(&format!("DELETE FROM {table} WHERE at_ms < ?1"), [t])?;
        }
        // Hours that ended before the cutoff (the rollup is derived data).
        self.conn.execute(
            "DELETE FROM check_hours WHERE hour_ms + ?2 <= ?1",
            params![t, HOUR_MS],
        )?;
        Ok(n)
    }

    /// The connection, for reads in tests and tools.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// An alert's figures as a JSON object.
pub fn figures_json(a: &Alert) -> serde_json::Value {
    let map: serde_json::Map<String, serde_json::Value> = a
        .figures
        .iter()
        .map(|f| (f.name.to_string(), serde_json::json!(f.value)))
        .collect();
    serde_json::Value::Object(map)
}

fn check_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CheckRecord> {
    Ok(CheckRecord {
        id: r.get(0)?,
        at_ms: r.get(1)?,
        round: r.get(2)?,
        attempt: r.get(3)?,
        source: r.get(4)?,
        operator: r.get(5)?,
        address: r.get(6)?,
        server: r.get(7)?,
        nts: r.get(8)?,
        version: r.get(9)?,
        stratum: r.get(10)?,
        refid: r.get(11)?,
        precision: r.get(12)?,
        leap: r.get(13)?,
        offset_s: r.get(14)?,
        delay_s: r.get(15)?,
        dispersion_s: r.get(16)?,
        jitter_s: r.get(17)?,
        root_delay_s: r.get(18)?,
        root_dispersion_s: r.get(19)?,
        result: r.get(20)?,
        passed: r.get(21)?,
        diagnostic: r.get(22)?,
    })
}

const CHECK_COLUMNS: &str = "id, at_ms, round, attempt, source, operator, address, server, nts, version, stratum, refid, precision, leap, offset_s, delay_s, dispersion_s, jitter_s, root_delay_s, root_dispersion_s, result, passed, diagnostic";

/// Checks with `from <= at_ms < to`, in log order, passed one at a time to
/// `each`.
///
/// # Errors
/// A database error, or the first error of `each`.
pub fn for_each_check(
    conn: &Connection,
    from: UnixMs,
    to: UnixMs,
    mut each: impl FnMut(CheckRecord) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {CHECK_COLUMNS} FROM checks WHERE at_ms >= ?1 AND at_ms < ?2 ORDER BY id"
    ))?;
    let rows = stmt.query_map([to_i64(from), to_i64(to)], check_from_row)?;
    for row in rows {
        each(row?)?;
    }
    Ok(())
}

/// The last `limit` checks (newest first).
///
/// # Errors
/// A database error.
pub fn recent_checks(conn: &Connection, limit: u32) -> anyhow::Result<Vec<CheckRecord>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {CHECK_COLUMNS} FROM checks ORDER BY id DESC LIMIT ?1"
    ))?;
    let rows = stmt.query_map([limit], check_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Chart data: per source and bucket of `bucket_ms`, the mean offset,
/// delay and jitter of the samples and the pass/fail counts.
///
/// Buckets of whole hours are read from the hourly rollup (a year of
/// checks is millions of rows; the rollup holds one per source and hour),
/// so they cover whole hours at the range's edges; shorter buckets from
/// the checks themselves.
///
/// # Errors
/// A database error.
pub fn series(
    conn: &Connection,
    from: UnixMs,
    to: UnixMs,
    bucket_ms: i64,
) -> anyhow::Result<Vec<SeriesPoint>> {
    let bucket = bucket_ms.max(1);
    if bucket % HOUR_MS == 0 {
        let mut stmt = conn.prepare(
            "SELECT (hour_ms / ?3) * ?3 AS t, source,
                    SUM(offset_sum) / NULLIF(SUM(offset_n), 0),
                    SUM(delay_sum) / NULLIF(SUM(delay_n), 0),
                    SUM(jitter_sum) / NULLIF(SUM(jitter_n), 0),
                    SUM(passed), SUM(n - passed)
             FROM check_hours WHERE hour_ms + ?4 > ?1 AND hour_ms < ?2
             GROUP BY t, source ORDER BY t, source",
        )?;
        let rows = stmt.query_map(
            params![to_i64(from), to_i64(to), bucket, HOUR_MS],
            series_point,
        )?;
        return Ok(rows.collect::<Result<_, _>>()?);
    }
    let mut stmt = conn.prepare(
        "SELECT (at_ms / ?3) * ?3 AS t, source, AVG(offset_s), AVG(delay_s), AVG(jitter_s),
                SUM(passed), SUM(1 - passed)
         FROM checks WHERE at_ms >= ?1 AND at_ms < ?2
         GROUP BY t, source ORDER BY t, source",
    )?;
    let rows = stmt.query_map(params![to_i64(from), to_i64(to), bucket], series_point)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn series_point(r: &rusqlite::Row<'_>) -> rusqlite::Result<SeriesPoint> {
    Ok(SeriesPoint {
        t: r.get(0)?,
        source: r.get(1)?,
        offset_s: r.get(2)?,
        delay_s: r.get(3)?,
        jitter_s: r.get(4)?,
        passed: r.get(5)?,
        failed: r.get(6)?,
    })
}

/// The time of the first check with `from <= at_ms < to`, if any.
///
/// # Errors
/// A database error.
pub fn first_check_at(
    conn: &Connection,
    from: UnixMs,
    to: UnixMs,
) -> anyhow::Result<Option<UnixMs>> {
    let t: Option<i64> = conn.query_row(
        "SELECT MIN(at_ms) FROM checks WHERE at_ms >= ?1 AND at_ms < ?2",
        params![to_i64(from), to_i64(to)],
        |r| r.get(0),
    )?;
    Ok(t.and_then(|t| u64::try_from(t).ok()).map(UnixMs))
}

/// Alerts with `from <= at_ms < to`, oldest first, at most `limit`.
///
/// # Errors
/// A database error.
pub fn alerts(
    conn: &Connection,
    from: UnixMs,
    to: UnixMs,
    limit: u32,
) -> anyhow::Result<Vec<AlertRecord>> {
    let mut stmt = conn.prepare(
        "SELECT id, at_ms, kind, source, message, figures FROM alerts
         WHERE at_ms >= ?1 AND at_ms < ?2 ORDER BY at_ms DESC, id DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![to_i64(from), to_i64(to), limit], |r| {
        let figures: String = r.get(5)?;
        Ok(AlertRecord {
            id: r.get(0)?,
            at_ms: r.get(1)?,
            kind: r.get(2)?,
            source: r.get(3)?,
            message: r.get(4)?,
            figures: serde_json::from_str(&figures).unwrap_or(serde_json::Value::Null),
        })
    })?;
    let mut v: Vec<AlertRecord> = rows.collect::<Result<_, _>>()?;
    v.reverse();
    Ok(v)
}

/// Verdict changes with `from <= at_ms < to`: the verdict in force at
/// `from` (if any) and every verdict whose state differs from the one
/// before, oldest first, at most `limit`.
///
/// # Errors
/// A database error.
pub fn verdict_changes(
    conn: &Connection,
    from: UnixMs,
    to: UnixMs,
    limit: u32,
) -> anyhow::Result<Vec<VerdictRecord>> {
    let mut stmt = conn.prepare(
        "SELECT round, at_ms, state, outcome, valid_until_ms, reasons FROM (
             SELECT * FROM (SELECT * FROM verdicts WHERE at_ms < ?1 ORDER BY at_ms DESC LIMIT 1)
             UNION ALL
             SELECT * FROM verdicts WHERE changed = 1 AND at_ms >= ?1 AND at_ms < ?2
         ) ORDER BY at_ms LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![to_i64(from), to_i64(to), limit], |r| {
        let reasons: String = r.get(5)?;
        Ok(VerdictRecord {
            round: r.get(0)?,
            at_ms: r.get(1)?,
            state: r.get(2)?,
            outcome: r.get(3)?,
            valid_until_ms: r.get(4)?,
            reasons: serde_json::from_str(&reasons).unwrap_or(serde_json::Value::Null),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The latest verdict, if any.
///
/// # Errors
/// A database error.
pub fn last_verdict(conn: &Connection) -> anyhow::Result<Option<VerdictRecord>> {
    Ok(conn
        .query_row(
            "SELECT round, at_ms, state, outcome, valid_until_ms, reasons FROM verdicts ORDER BY id DESC LIMIT 1",
            [],
            |r| {
                let reasons: String = r.get(5)?;
                Ok(VerdictRecord {
                    round: r.get(0)?,
                    at_ms: r.get(1)?,
                    state: r.get(2)?,
                    outcome: r.get(3)?,
                    valid_until_ms: r.get(4)?,
                    reasons: serde_json::from_str(&reasons).unwrap_or(serde_json::Value::Null),
                })
            },
        )
        .optional()?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ntp_policy::{AlertKind, Figure, VerdictState};

    fn check(at: i64, source: &str, passed: bool) -> CheckRecord {
        CheckRecord {
            at_ms: at,
            round: 1,
            attempt: 1,
            source: source.into(),
            operator: "op".into(),
            address: "a".into(),
            offset_s: Some(0.001),
            result: if passed { "pass" } else { "timeout" }.into(),
            passed,
            diagnostic: "d, \"q\"".into(),
            ..Default::default()
        }
    }

    #[test]
    fn insert_query_prune() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sqlite");
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.next_round().unwrap(), 1);
        for i in 0..10 {
            store
                .insert_check(&check(1000 * i, "a", i % 3 != 0))
                .unwrap();
        }
        assert_eq!(store.next_round().unwrap(), 2);
        let v = Verdict {
            state: VerdictState::Trusted,
            reasons: vec![],
            issued_at: UnixMs(5000),
            valid_until: UnixMs(65000),
        };
        store.insert_verdict(1, &v, "passed").unwrap();
        for (i, state) in [
            VerdictState::Trusted,
            VerdictState::Degraded,
            VerdictState::Degraded,
            VerdictState::Trusted,
        ]
        .into_iter()
        .enumerate()
        {
            let at = UnixMs(20_000 + 1000 * i as u64);
            let v = Verdict {
                state,
                reasons: vec![],
                issued_at: at,
                valid_until: at,
            };
            store.insert_verdict(2 + i as i64, &v, "x").unwrap();
        }
        store
            .insert_alert(&Alert {
                kind: AlertKind::NtpThresholdReached,
                source: Some("a".into()),
                figures: vec![Figure::new("offset_s", 0.25)],
                message: "m".into(),
                at: UnixMs(6000),
            })
            .unwrap();

        let r = open_reader(&path).unwrap();
        let mut all = Vec::new();
        for_each_check(&r, UnixMs(2000), UnixMs(6000), |c| {
            all.push(c);
            Ok(())
        })
        .unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].diagnostic, "d, \"q\"");
        let s = series(&r, UnixMs(0), UnixMs(10_000), 5000).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].passed + s[0].failed, 5);
        let a = alerts(&r, UnixMs(0), UnixMs(10_000), 10).unwrap();
        assert_eq!(a[0].figures["offset_s"], 0.25);
        let vc = verdict_changes(&r, UnixMs(0), UnixMs(10_000), 10).unwrap();
        assert_eq!(vc.len(), 1);
        // From 20.5 s: the one in force (TRUSTED at 20 s), then the changes.
        let vc = verdict_changes(&r, UnixMs(20_500), UnixMs(30_000), 10).unwrap();
        let states: Vec<&str> = vc.iter().map(|v| v.state.as_str()).collect();
        assert_eq!(states, ["TRUSTED", "DEGRADED", "TRUSTED"]);
        assert_eq!(vc[1].at_ms, 21_000);
        assert_eq!(last_verdict(&r).unwrap().unwrap().state, "TRUSTED");
        // Hour buckets come from the rollup and agree with the checks.
        let raw = series(&r, UnixMs(0), UnixMs(10_000), 7_200_000 - 1).unwrap();
        let rolled = series(&r, UnixMs(0), UnixMs(10_000), 7_200_000).unwrap();
        assert_eq!(rolled.len(), 1);
        assert_eq!(
            (rolled[0].passed, rolled[0].failed),
            (raw[0].passed, raw[0].failed)
        );
        assert_eq!((rolled[0].passed, rolled[0].failed), (6, 4));
        assert!((rolled[0].offset_s.unwrap() - raw[0].offset_s.unwrap()).abs() < 1e-12);
        assert_eq!(rolled[0].delay_s, None);
        assert_eq!(store.prune(UnixMs(5500)).unwrap(), 6 + 1);
        // Reopened, it knows the last state: a repeat is no change.
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.last_state.as_deref(), Some("TRUSTED"));
        assert_eq!(recent_checks(&r, 100).unwrap().len(), 4);
    }
}
