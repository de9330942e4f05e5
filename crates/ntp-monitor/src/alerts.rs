//! Alert delivery beyond the log: an HTTP POST of the alert as JSON to a
//! webhook, and/or a command run with the alert as JSON on its standard
//! input. Each delivery runs in its own task, bounded by `[alerts]
//! timeout-ms`; a failure is logged and never delays the rounds.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use ntp_policy::Alert;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::AlertSettings;
use crate::timefmt;

/// Webhook deliveries tried per alert (within `[alerts] timeout-ms`).
pub const WEBHOOK_ATTEMPTS: u32 = 3;
/// Pause between webhook attempts.
const WEBHOOK_RETRY: Duration = Duration::from_secs(1);

/// The JSON document delivered for an alert.
pub fn alert_json(a: &Alert) -> serde_json::Value {
    serde_json::json!({
        "kind": a.kind.as_str(),
        "source": a.source,
        "message": a.message,
        "figures": crate::store::figures_json(a),
        "at": timefmt::rfc3339(a.at),
        "at_ms": a.at.as_millis(),
    })
}

/// An `http://host:port/path` URL, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// `host:port` to connect to (port 80 when absent).
    pub authority: String,
    /// The host, for the `Host` header.
    pub host: String,
    /// The path, `/` when absent.
    pub path: String,
}

/// Parses a plain `http://` URL (webhooks go to a local relay or an
/// internal endpoint; TLS is not spoken).
///
/// # Errors
/// Another scheme, or no host.
pub fn parse_http_url(url: &str) -> anyhow::Result<HttpUrl> {
    let Some(rest) = url.strip_prefix("http://") else {
        bail!("{url:?}: only http:// URLs are supported");
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i..).unwrap_or("/")),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        bail!("{url:?}: no host");
    }
    let (host, port) = crate::config::split_address(authority)?;
    let host_port = if host.contains(':') {
        format!("[{host}]:{}", port.unwrap_or(80))
    } else {
        format!("{host}:{}", port.unwrap_or(80))
    };
    Ok(HttpUrl {
        authority: host_port,
        host: authority.to_string(),
        path: path.to_string(),
    })
}

/// Sends alerts to the configured webhook and command.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    webhook: Option<HttpUrl>,
    command: Option<PathBuf>,
    timeout: Duration,
}

impl Dispatcher {
    /// A dispatcher for these settings (an unparsable webhook URL, which
    /// configuration loading rejects, is dropped with an error logged).
    pub fn new(settings: AlertSettings) -> Self {
        let webhook = settings
            .webhook
            .as_deref()
            .and_then(|u| match parse_http_url(u) {
                Ok(u) => Some(u),
                Err(e) => {
                    tracing::error!("[alerts] webhook: {e:#}");
                    None
                }
            });
        Self {
            webhook,
            command: settings.command,
            timeout: settings.timeout,
        }
    }

    /// Starts delivering `alert` in the background.
    pub fn dispatch(&self, alert: Alert) {
        if self.webhook.is_none() && self.command.is_none() {
            return;
        }
        let body = alert_json(&alert).to_string();
        if let Some(url) = self.webhook.clone() {
            let (body, timeout) = (body.clone(), self.timeout);
            tokio::spawn(async move {
                // Up to WEBHOOK_ATTEMPTS tries, 1 s apart, within the
                // timeout; a pager relay that blinks should not lose alerts.
                let deadline = tokio::time::Instant::now() + timeout;
                for attempt in 1..=WEBHOOK_ATTEMPTS {
                    let why = match tokio::time::timeout_at(deadline, post(&url, &body)).await {
                        Ok(Ok(status)) if (200..300).contains(&status) => {
                            tracing::debug!("webhook accepted the alert ({status})");
                            return;
                        }
                        Ok(Ok(status)) => format!("answered {status}"),
                        Ok(Err(e)) => format!("{e:#}"),
                        Err(_) => {
                            tracing::error!("webhook: no success within {timeout:?}");
                            return;
                        }
                    };
                    tracing::error!(
                        "webhook attempt {attempt} of {WEBHOOK_ATTEMPTS} failed: {why}"
                    );
                    if attempt < WEBHOOK_ATTEMPTS
                        && tokio::time::timeout_at(deadline, tokio::time::sleep(WEBHOOK_RETRY))
                            .await
                            .is_err()
                    {
                        return;
                    }
                }
            });
        }
        if let Some(cmd) = self.command.clone() {
            let timeout = self.timeout;
            tokio::spawn(async move {
                if let Err(e) = run_command(&cmd, &body, timeout).await {
                    tracing::error!("alert command {}: {e:#}", cmd.display());
                }
            });
        }
    }
}

/// POSTs `body` as JSON; returns the HTTP status.
///
/// # Errors
/// Connection, write or read errors, or an unreadable status line.
pub async fn post(url: &HttpUrl, body: &str) -> anyhow::Result<u16> {
    let mut stream = tokio::net::TcpStream::connect(&url.authority)
        .await
        .with_context(|| format!("connect to {}", url.authority))?;
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: ntp-monitor\r\n\r\n{body}",
        url.path,
        url.host,
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut buf = vec![0u8; 1024];
    let mut len = 0;
    while len < buf.len() {
        let n = stream.read(buf.get_mut(len..).unwrap_or_default()).await?;
        if n == 0 {
            break;
        }
        len += n;
        if buf.get(..len).is_some_and(|b| b.contains(&b'\n')) {
            break;
        }
    }
    let head = String::from_utf8_lossy(buf.get(..len).unwrap_or_default());
    head.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {:?}", head.lines().next().unwrap_or("")))
}

async fn run_command(cmd: &PathBuf, body: &str, timeout: Duration) -> anyhow::Result<()> {
    let mut child = tokio::process::Command::new(cmd)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start")?;
    let mut stdin = child.stdin.take().context("no stdin")?;
    let body = body.to_string();
    let work = async {
        stdin.write_all(body.as_bytes()).await?;
        stdin.write_all(b"\n").await?;
        drop(stdin);
        child.wait().await
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => bail!("exited with {status}"),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => {
            let _ = child.kill().await;
            bail!("killed after {timeout:?}")
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn webhook_retries_until_accepted() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let mut bodies = Vec::new();
            for (i, stream) in listener.incoming().take(2).enumerate() {
                let mut s = stream.unwrap();
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut buf = [0u8; 4096];
                let n = s.read(&mut buf).unwrap_or(0);
                bodies.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                let status = if i == 0 { "503 Busy" } else { "200 OK" };
                let _ = write!(s, "HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
            }
            bodies
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let d = Dispatcher::new(AlertSettings {
                webhook: Some(format!("http://{addr}/hook")),
                command: None,
                timeout: Duration::from_secs(5),
            });
            d.dispatch(Alert {
                kind: ntp_policy::AlertKind::HoldEntered,
                source: None,
                figures: vec![],
                message: "hold".into(),
                at: ntp_policy::UnixMs(1),
            });
            tokio::time::sleep(Duration::from_millis(1500)).await;
        });
        let bodies = server.join().unwrap();
        assert_eq!(bodies.len(), 2, "{bodies:?}");
        assert!(bodies[1].contains("POST /hook") && bodies[1].contains("HOLD_ENTERED"));
    }

    #[test]
    fn urls() {
        let u = parse_http_url("http://127.0.0.1:9000/hook").unwrap();
        assert_eq!(u.authority, "127.0.0.1:9000");
        assert_eq!(u.path, "/hook");
        let u = parse_http_url("http://example").unwrap();
        assert_eq!((u.authority.as_str(), u.path.as_str()), ("example:80", "/"));
        let u = parse_http_url("http://[::1]:8/x?y").unwrap();
        assert_eq!(u.authority, "[::1]:8");
        assert!(parse_http_url("https://x/").is_err());
        assert!(parse_http_url("http:///x").is_err());
    }
}
