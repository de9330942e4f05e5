//! The HTTP endpoint: `/health` for signing gates, `/metrics` for
//! Prometheus, a JSON API and the dashboard.
//!
//! A hand-rolled HTTP/1.1 server in the manner of `ntp-server`'s metrics
//! endpoint: GET only, the request head read with a size and time limit,
//! one response per connection.
//!
//! | path | what |
//! |---|---|
//! | `/health` | 200 with the verdict and `valid_until` while TRUSTED (and DEGRADED with `degraded-healthy = true`), else 503 with the reasons |
//! | `/metrics` | Prometheus text: verdict, per-source offset, delay, jitter, reachability, NTS |
//! | `/api/status` | verdict, policy and the per-source table |
//! | `/api/series?from=MS&to=MS&points=N` | chart data per source, bucketed |
//! | `/api/alerts?from=MS&to=MS` | alerts |
//! | `/api/verdicts?from=MS&to=MS` | verdict changes |
//! | `/api/checks?limit=N` | the latest checks |
//! | `/` | the dashboard |

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ntp_policy::{Reason, UnixMs, Verdict, VerdictState};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::monitor::{SharedLive, lock};
use crate::{store, timefmt};

const MAX_REQUEST: usize = 8192;
/// Connections served at once; more are closed at once (a scraper or a
/// signing gate retries, a flood does not pile up tasks).
const MAX_CONNECTIONS: usize = 128;
const TIMEOUT: Duration = Duration::from_secs(10);

const DASHBOARD_HTML: &str = include_str!("../assets/dashboard.html");
const DASHBOARD_JS: &str = include_str!("../assets/dashboard.js");
const ERRORS_JS: &str = include_str!("../assets/errors.js");
const UPLOT_JS: &str = include_str!("../assets/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../assets/uPlot.min.css");

/// What the server serves from.
pub struct Server {
    /// The monitor's live state.
    pub live: SharedLive,
    /// The log, opened read-only per API request.
    pub database: PathBuf,
}

/// A response: status, content type, body.
pub struct Response {
    /// e.g. `200 OK`.
    pub status: &'static str,
    /// The Content-Type.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

impl Response {
    fn json(status: &'static str, v: &serde_json::Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            body: format!("{v}\n"),
        }
    }

    fn text(status: &'static str, body: &str) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.to_string(),
        }
    }
}

/// Serves until `shutdown` changes.
pub async fn serve(
    listener: TcpListener,
    server: Arc<Server>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("http accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!("http: {MAX_CONNECTIONS} connections busy, closing one");
            drop(stream);
            continue;
        };
        let server = server.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(TIMEOUT, respond(stream, &server)).await;
            drop(slot);
        });
    }
}

async fn respond(mut stream: TcpStream, server: &Arc<Server>) -> std::io::Result<()> {
    let (method, target) = ntp_io::http::read_request_line(&mut stream, MAX_REQUEST).await?;
    let response = if method == "GET" || method == "HEAD" {
        let server = server.clone();
        tokio::task::spawn_blocking(move || route(&server, &target))
            .await
            .unwrap_or_else(|_| Response::text("500 Internal Server Error", "internal error\n"))
    } else {
        Response::text("405 Method Not Allowed", "method not allowed\n")
    };
    let head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\
         X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n\
         Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'\r\n\
         Connection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    if method != "HEAD" {
        stream.write_all(response.body.as_bytes()).await?;
    }
    stream.shutdown().await
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

fn range(query: &str, now: UnixMs) -> (UnixMs, UnixMs) {
    let get = |k| query_param(query, k).and_then(|v| v.parse::<u64>().ok());
    let to = get("to").map_or(UnixMs(now.as_millis() + 1), UnixMs);
    let from = get("from").map_or(UnixMs(to.as_millis().saturating_sub(86_400_000)), UnixMs);
    (from, to)
}

/// Answers one GET request for `target` (path and query).
pub fn route(server: &Server, target: &str) -> Response {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let now = timefmt::now();
    match path {
        "/health" => health(server, now),
        "/metrics" => Response {
            status: "200 OK",
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: metrics(server, now),
        },
        "/" | "/index.html" => Response {
            status: "200 OK",
            content_type: "text/html; charset=utf-8",
            body: DASHBOARD_HTML.to_string(),
        },
        "/assets/dashboard.js" => Response {
            status: "200 OK",
            content_type: "text/javascript; charset=utf-8",
            body: DASHBOARD_JS.to_string(),
        },
        "/assets/errors.js" => Response {
            status: "200 OK",
            content_type: "text/javascript; charset=utf-8",
            body: ERRORS_JS.to_string(),
        },
        "/assets/uPlot.iife.min.js" => Response {
            status: "200 OK",
            content_type: "text/javascript; charset=utf-8",
            body: UPLOT_JS.to_string(),
        },
        "/assets/uPlot.min.css" => Response {
            status: "200 OK",
            content_type: "text/css; charset=utf-8",
            body: UPLOT_CSS.to_string(),
        },
        "/api/status" => Response::json("200 OK", &status(server, now)),
        p if p.starts_with("/api/") => match api(server, p, query, now) {
            Ok(v) => Response::json("200 OK", &v),
            Err(e) => Response::json(
                "500 Internal Server Error",
                &json!({"error": format!("{e:#}")}),
            ),
        },
        _ => Response::text("404 Not Found", "not found\n"),
    }
}

/// The alert code a reason corresponds to, if any.
fn reason_alert(r: &Reason) -> Option<&'static str> {
    Some(match r {
        Reason::CheckFailed { failure, .. } if failure.is_nts() => "NTS_AUTH_FAILED",
        Reason::CheckFailed { .. } | Reason::NotChecked { .. } | Reason::Unsynchronized { .. } => {
            "NTP_COMM_FAILED"
        }
        Reason::OffsetExceeded { .. } | Reason::RootDistanceExceeded { .. } => {
            "NTP_THRESHOLD_REACHED"
        }
        Reason::SourcesDisagree { .. } => "SOURCES_DISAGREE",
        Reason::LeapPending { .. } => "LEAP_PENDING",
        Reason::Held { .. } => "HOLD_ENTERED",
        _ => return None,
    })
}

fn verdict_json(v: &Verdict) -> serde_json::Value {
    let reasons: Vec<_> = v
        .reasons
        .iter()
        .map(|r| json!({"code": r.code(), "alert": reason_alert(r), "source": r.source(), "message": r.to_string()}))
        .collect();
    json!({
        "verdict": v.state.as_str(),
        "issued_at": timefmt::rfc3339(v.issued_at),
        "valid_until": timefmt::rfc3339(v.valid_until),
        "valid_until_ms": v.valid_until.as_millis(),
        "reasons": reasons,
    })
}

fn health(server: &Server, now: UnixMs) -> Response {
    let live = lock(&server.live);
    let (verdict, healthy) = live.health(now);
    let mut body = match &verdict {
        Some(v) => verdict_json(v),
        None => json!({
            "verdict": VerdictState::Untrusted.as_str(),
            "reasons": [{"code": "no-round-yet", "alert": null, "source": null,
                         "message": "the monitor has not finished a round yet"}],
        }),
    };
    if let Some(why) = &live.log_failure
        && let Some(reasons) = body["reasons"].as_array_mut()
    {
        reasons.insert(
            0,
            json!({"code": "log-write-failed", "alert": null, "source": null, "message": why}),
        );
    }
    body["healthy"] = json!(healthy);
    body["now"] = json!(timefmt::rfc3339(now));
    if !healthy {
        let alerts: Vec<_> = live
            .open_alerts
            .iter()
            .map(crate::alerts::alert_json)
            .collect();
        body["alerts"] = json!(alerts);
    }
    Response::json(
        if healthy {
            "200 OK"
        } else {
            "503 Service Unavailable"
        },
        &body,
    )
}

fn status(server: &Server, now: UnixMs) -> serde_json::Value {
    let live = lock(&server.live);
    let (verdict, healthy) = live.health(now);
    let p = &live.policy;
    json!({
        "now_ms": now.as_millis(),
        "started_ms": live.started.as_millis(),
        "healthy": healthy,
        "verdict": verdict.as_ref().map(verdict_json),
        "outcome": live.outcome,
        "round": live.round,
        "rounds": live.rounds,
        "policy": {
            "mode": p.mode.as_str(),
            "max_offset_s": p.max_offset.as_secs_f64(),
            "interval_s": p.interval.as_secs_f64(),
            "lease_s": p.lease.as_secs_f64(),
            "hold_after": p.hold_after,
            "release_after": p.release_after,
            "retries": p.retries,
        },
        "sources": live.sources,
        "open_alerts": live.open_alerts.iter().map(crate::alerts::alert_json).collect::<Vec<_>>(),
    })
}

fn api(server: &Server, path: &str, query: &str, now: UnixMs) -> anyhow::Result<serde_json::Value> {
    let conn = store::open_reader(&server.database)?;
    let (from, to) = range(query, now);
    Ok(match path {
        "/api/series" => {
            let points = query_param(query, "points")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(600)
                .clamp(10, 5000);
            // Start at the first check in range, so a young log is charted
            // in fine buckets rather than squeezed into the last few.
            let from = store::first_check_at(&conn, from, to)?.map_or(from, |t| t.max(from));
            let span = to.as_millis().saturating_sub(from.as_millis()).max(1);
            let mut bucket = (span / points).max(1000);
            // An hour or more: whole hours, read from the hourly rollup.
            let hour = store::HOUR_MS.unsigned_abs();
            if bucket >= hour {
                bucket = bucket.div_ceil(hour) * hour;
            }
            let bucket_i = i64::try_from(bucket).unwrap_or(i64::MAX);
            json!({
                "from_ms": from.as_millis(),
                "to_ms": to.as_millis(),
                "bucket_ms": bucket,
                "points": store::series(&conn, from, to, bucket_i)?,
            })
        }
        "/api/alerts" => json!({"alerts": store::alerts(&conn, from, to, 5000)?}),
        "/api/verdicts" => json!({"verdicts": store::verdict_changes(&conn, from, to, 5000)?}),
        "/api/checks" => {
            let limit = query_param(query, "limit")
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(100)
                .min(10_000);
            json!({"checks": store::recent_checks(&conn, limit)?})
        }
        _ => anyhow::bail!("no such API: {path}"),
    })
}

fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The Prometheus text for the current state.
pub fn metrics(server: &Server, now: UnixMs) -> String {
    let live = lock(&server.live);
    let (verdict, healthy) = live.health(now);
    let mut out = String::new();
    let state = verdict
        .as_ref()
        .map_or(VerdictState::Untrusted, |v| v.state);
    let _ = writeln!(
        out,
        "# HELP ntp_monitor_verdict The current verdict (1 for the state in force).\n# TYPE ntp_monitor_verdict gauge"
    );
    for s in [
        VerdictState::Trusted,
        VerdictState::Degraded,
        VerdictState::Untrusted,
    ] {
        let _ = writeln!(
            out,
            "ntp_monitor_verdict{{state=\"{}\"}} {}",
            s.as_str(),
            u8::from(s == state)
        );
    }
    let _ = writeln!(
        out,
        "# HELP ntp_monitor_healthy Whether /health answers 200.\n# TYPE ntp_monitor_healthy gauge\nntp_monitor_healthy {}",
        u8::from(healthy)
    );
    if let Some(v) = &verdict {
        let _ = writeln!(
            out,
            "# HELP ntp_monitor_verdict_valid_until_seconds End of the verdict's lease.\n# TYPE ntp_monitor_verdict_valid_until_seconds gauge\nntp_monitor_verdict_valid_until_seconds {}",
            v.valid_until
        );
    }
    let _ = writeln!(
        out,
        "# HELP ntp_monitor_log_write_errors_total Failed writes to the transaction log.\n# TYPE ntp_monitor_log_write_errors_total counter\nntp_monitor_log_write_errors_total {}",
        live.log_errors
    );
    let _ = writeln!(
        out,
        "# HELP ntp_monitor_rounds_total Rounds since start.\n# TYPE ntp_monitor_rounds_total counter\nntp_monitor_rounds_total {}",
        live.rounds
    );
    type Getter = fn(&store::CheckRecord) -> Option<f64>;
    let gauges: [(&str, &str, Getter); 3] = [
        (
            "offset_seconds",
            "Offset of the last sample (server minus local clock).",
            |c| c.offset_s,
        ),
        (
            "delay_seconds",
            "Round-trip delay of the last sample.",
            |c| c.delay_s,
        ),
        ("jitter_seconds", "Jitter over the recent samples.", |c| {
            c.jitter_s
        }),
    ];
    for (name, help, get) in gauges {
        let _ = writeln!(
            out,
            "# HELP ntp_monitor_source_{name} {help}\n# TYPE ntp_monitor_source_{name} gauge"
        );
        for s in &live.sources {
            if let Some(v) = s.last_sample.as_ref().and_then(get) {
                let _ = writeln!(
                    out,
                    "ntp_monitor_source_{name}{{source=\"{}\",operator=\"{}\"}} {v}",
                    label(&s.name),
                    label(&s.operator)
                );
            }
        }
    }
    type Flag = fn(&crate::monitor::SourceLive) -> u64;
    let flags: [(&str, &str, Flag); 4] = [
        (
            "reach",
            "Reachability register (8 rounds, bit 0 the latest).",
            |s| u64::from(s.reach),
        ),
        ("reachable", "Whether the last round got a reply.", |s| {
            u64::from(s.reach & 1)
        }),
        ("nts", "Whether the source is checked with NTS.", |s| {
            u64::from(s.nts)
        }),
        ("passed", "Whether the source passed the last round.", |s| {
            u64::from(s.passed == Some(true))
        }),
    ];
    for (name, help, get) in flags {
        let _ = writeln!(
            out,
            "# HELP ntp_monitor_source_{name} {help}\n# TYPE ntp_monitor_source_{name} gauge"
        );
        for s in &live.sources {
            let _ = writeln!(
                out,
                "ntp_monitor_source_{name}{{source=\"{}\",operator=\"{}\"}} {}",
                label(&s.name),
                label(&s.operator),
                get(s)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP ntp_monitor_source_checks_total Check attempts since start.\n# TYPE ntp_monitor_source_checks_total counter"
    );
    for s in &live.sources {
        let _ = writeln!(
            out,
            "ntp_monitor_source_checks_total{{source=\"{}\",operator=\"{}\"}} {}",
            label(&s.name),
            label(&s.operator),
            s.checks
        );
    }
    let _ = writeln!(
        out,
        "# HELP ntp_monitor_alerts_total Alerts raised since start.\n# TYPE ntp_monitor_alerts_total counter"
    );
    for kind in ntp_policy::AlertKind::ALL {
        let _ = writeln!(
            out,
            "ntp_monitor_alerts_total{{kind=\"{}\"}} {}",
            kind.as_str(),
            live.alert_counts.get(kind.as_str()).copied().unwrap_or(0)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::monitor::Live;
    use std::sync::Mutex;

    fn server(degraded_healthy: bool) -> Server {
        let mut c = crate::config::parse(
            "[[source]]\nname = \"a\"\nmode = \"server\"\naddress = \"127.0.0.1\"\noperator = \"x\"\n",
            std::path::Path::new("/nonexistent"),
        )
        .unwrap();
        c.monitor.degraded_healthy = degraded_healthy;
        Server {
            live: Arc::new(Mutex::new(Live::new(&c))),
            database: "/nonexistent/log.sqlite".into(),
        }
    }

    fn set(server: &Server, state: VerdictState, issued: u64) {
        lock(&server.live).verdict = Some(Verdict {
            state,
            reasons: vec![],
            issued_at: UnixMs(issued),
            valid_until: UnixMs(issued + 60_000),
        });
    }

    #[test]
    fn health_follows_the_verdict_and_its_lease() {
        let s = server(false);
        let now = timefmt::now().as_millis();
        let r = health(&s, UnixMs(now));
        assert_eq!(r.status, "503 Service Unavailable");
        assert!(r.body.contains("no-round-yet"), "{}", r.body);

        set(&s, VerdictState::Trusted, now);
        let r = health(&s, UnixMs(now + 1000));
        assert_eq!(r.status, "200 OK");
        assert!(r.body.contains("\"valid_until\""), "{}", r.body);
        // Stale after the lease.
        let r = health(&s, UnixMs(now + 61_000));
        assert_eq!(r.status, "503 Service Unavailable");
        assert!(r.body.contains("stale-verdict"), "{}", r.body);

        set(&s, VerdictState::Degraded, now);
        assert_eq!(health(&s, UnixMs(now)).status, "503 Service Unavailable");
        // No evidence, no trust: a log that cannot be written is a 503.
        set(&s, VerdictState::Trusted, now);
        lock(&s.live).log_failure = Some("disk full".into());
        let r = health(&s, UnixMs(now));
        assert_eq!(r.status, "503 Service Unavailable");
        assert!(
            r.body.contains("log-write-failed") && r.body.contains("disk full"),
            "{}",
            r.body
        );
        lock(&s.live).log_failure = None;
        assert_eq!(health(&s, UnixMs(now)).status, "200 OK");
        let s = server(true);
        set(&s, VerdictState::Degraded, now);
        assert_eq!(health(&s, UnixMs(now)).status, "200 OK");
        set(&s, VerdictState::Untrusted, now);
        assert_eq!(health(&s, UnixMs(now)).status, "503 Service Unavailable");
    }

    #[test]
    fn routes_and_metrics() {
        let s = server(false);
        set(&s, VerdictState::Trusted, timefmt::now().as_millis());
        assert_eq!(route(&s, "/metrics").status, "200 OK");
        let m = metrics(&s, timefmt::now());
        assert!(
            m.contains("ntp_monitor_verdict{state=\"TRUSTED\"} 1"),
            "{m}"
        );
        assert!(
            m.contains("ntp_monitor_source_nts{source=\"a\",operator=\"x\"} 0"),
            "{m}"
        );
        assert!(route(&s, "/").body.contains("<canvas") || route(&s, "/").body.contains("uPlot"));
        assert_eq!(route(&s, "/assets/uPlot.iife.min.js").status, "200 OK");
        assert_eq!(route(&s, "/nope").status, "404 Not Found");
        // No log yet: the data API says so instead of panicking.
        assert_eq!(route(&s, "/api/series").status, "500 Internal Server Error");
        assert_eq!(route(&s, "/api/status").status, "200 OK");
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
