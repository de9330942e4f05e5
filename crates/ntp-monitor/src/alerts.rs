//! Alert delivery beyond the log: an HTTP POST of the alert as JSON to a
//! webhook (`http://`, or `https://` with the system's trust store or the CA
//! file `[alerts] webhook-ca`), and/or a command run with the alert as JSON
//! on its standard input. Each delivery runs in its own task, bounded by
//! `[alerts] timeout-ms`; a failure is logged and never delays the rounds.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use ntp_policy::Alert;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

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

/// How a webhook is reached: its URL's scheme, with what TLS needs, so an
/// `https://` URL without TLS settings cannot be represented.
#[derive(Clone)]
pub enum Transport {
    /// `http://`: plain TCP.
    Plain,
    /// `https://`: TLS with these client settings (see [`webhook_tls`]),
    /// built once when the configuration is loaded.
    Tls(Arc<rustls::ClientConfig>),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The TLS settings hold the whole root store: too much for a log.
        f.write_str(match self {
            Self::Plain => "Plain",
            Self::Tls(_) => "Tls",
        })
    }
}

/// An `http://` or `https://` webhook URL, split, with its transport.
#[derive(Debug, Clone)]
pub struct HttpUrl {
    /// Plain for `http://`, TLS for `https://`.
    pub transport: Transport,
    /// `host:port` to connect to (port 80, or 443 for https, when absent).
    pub authority: String,
    /// The authority as written, for the `Host` header.
    pub host: String,
    /// The host name or address alone, which the server's certificate must
    /// name (https).
    pub server_name: String,
    /// The path, `/` when absent.
    pub path: String,
}

/// Parses an `http://` or `https://` URL (no user info) and settles its
/// transport: for `https://`, TLS trusting only the CA certificates in the
/// PEM file `ca` when given, the system's trust store otherwise (see
/// [`webhook_tls`]).
///
/// # Errors
/// Another scheme, no host, user information, `ca` with an `http://` URL,
/// an unusable CA file (the error names it), or no usable system
/// certificate.
pub fn parse_http_url(url: &str, ca: Option<&Path>) -> anyhow::Result<HttpUrl> {
    let (https, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else {
        bail!("{url:?}: only http:// and https:// URLs are supported");
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i..).unwrap_or("/")),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        bail!("{url:?}: no host");
    }
    if authority.contains('@') {
        bail!("{url:?}: user information in the URL is not supported");
    }
    let (host, port) = crate::config::split_address(authority)?;
    let port = port.unwrap_or(if https { 443 } else { 80 });
    let host_port = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let transport = match (https, ca) {
        (true, Some(_)) => Transport::Tls(webhook_tls(ca).context("webhook-ca")?),
        (true, None) => Transport::Tls(webhook_tls(None)?),
        (false, None) => Transport::Plain,
        (false, Some(_)) => bail!("webhook-ca is only used with an https:// webhook"),
    };
    Ok(HttpUrl {
        transport,
        authority: host_port,
        host: authority.to_string(),
        server_name: host,
        path: path.to_string(),
    })
}

/// The TLS client settings for an `https://` webhook: TLS 1.2 or 1.3,
/// trusting the CA certificates in `ca` (PEM) when given, the system's
/// trust store otherwise. The roots are loaded by `nts-ke`'s
/// [`root_store_from_ca_file`](nts_ke::tls::root_store_from_ca_file) and
/// [`native_root_store`](nts_ke::tls::native_root_store).
///
/// # Errors
/// An unreadable CA file or one without a usable CA certificate (the error
/// names the file and the reason), or no usable system certificate.
pub fn webhook_tls(ca: Option<&Path>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let roots = match ca {
        Some(path) => nts_ke::tls::root_store_from_ca_file(path)?,
        None => nts_ke::tls::native_root_store()
            .context("the system trust store (or set [alerts] webhook-ca)")?,
    };
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS provider")?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Sends alerts to the configured webhook and command.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    webhook: Option<HttpUrl>,
    command: Option<PathBuf>,
    timeout: Duration,
}

impl Dispatcher {
    /// A dispatcher for these settings (the webhook's TLS settings, if any,
    /// were built when the configuration was loaded).
    pub fn new(settings: AlertSettings) -> Self {
        Self {
            webhook: settings.webhook,
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

/// POSTs `body` as JSON over the URL's transport; returns the HTTP status.
///
/// # Errors
/// Connection, TLS, write or read errors, or an unreadable status line.
pub async fn post(url: &HttpUrl, body: &str) -> anyhow::Result<u16> {
    let stream = tokio::net::TcpStream::connect(&url.authority)
        .await
        .with_context(|| format!("connect to {}", url.authority))?;
    let config = match &url.transport {
        Transport::Plain => return exchange(stream, url, body).await,
        Transport::Tls(config) => config,
    };
    let name = ServerName::try_from(url.server_name.clone())
        .with_context(|| format!("{:?} is not a valid TLS server name", url.server_name))?;
    let stream = tokio_rustls::TlsConnector::from(config.clone())
        .connect(name, stream)
        .await
        .with_context(|| format!("TLS with {}", url.authority))?;
    exchange(stream, url, body).await
}

/// One HTTP/1.1 request on `stream`; the status code of the answer.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    url: &HttpUrl,
    body: &str,
) -> anyhow::Result<u16> {
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: ntp-monitor\r\n\r\n{body}",
        url.path,
        url.host,
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    stream.flush().await?;
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
                webhook: Some(parse_http_url(&format!("http://{addr}/hook"), None).unwrap()),
                command: None,
                timeout: Duration::from_secs(5),
            });
            d.dispatch(hold_alert());
            tokio::time::sleep(Duration::from_millis(1500)).await;
        });
        let bodies = server.join().unwrap();
        assert_eq!(bodies.len(), 2, "{bodies:?}");
        assert!(bodies[1].contains("POST /hook") && bodies[1].contains("HOLD_ENTERED"));
    }

    fn hold_alert() -> Alert {
        Alert {
            kind: ntp_policy::AlertKind::HoldEntered,
            source: None,
            figures: vec![],
            message: "hold".into(),
            at: ntp_policy::UnixMs(1),
        }
    }

    /// A TLS webhook receiver on loopback with the certificate from `pki`:
    /// answers one request 200 and returns what it read.
    async fn tls_receiver(
        pki: &ntp_test_support::Pki,
    ) -> (u16, tokio::task::JoinHandle<anyhow::Result<String>>) {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _};
        let certs = CertificateDer::pem_file_iter(&pki.cert)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(&pki.key).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await?;
            let mut tls = acceptor.accept(tcp).await?;
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            // Read the head and the body (Content-Length), then answer.
            loop {
                let n = tls.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let want = head
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= want {
                        break;
                    }
                }
            }
            tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await?;
            tls.shutdown().await?;
            Ok(String::from_utf8_lossy(&got).into_owned())
        });
        (port, task)
    }

    #[test]
    fn https_webhook_is_delivered_to_a_server_the_ca_vouches_for() {
        let dir = tempfile::tempdir().unwrap();
        let pki = ntp_test_support::Pki::create(dir.path(), "hook");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let got = rt.block_on(async {
            let (port, receiver) = tls_receiver(&pki).await;
            let url = format!("https://localhost:{port}/hook");
            let d = Dispatcher::new(AlertSettings {
                webhook: Some(parse_http_url(&url, Some(&pki.ca)).unwrap()),
                command: None,
                timeout: Duration::from_secs(5),
            });
            d.dispatch(hold_alert());
            tokio::time::timeout(Duration::from_secs(5), receiver)
                .await
                .unwrap()
                .unwrap()
                .unwrap()
        });
        assert!(got.starts_with("POST /hook HTTP/1.1\r\n"), "{got}");
        assert!(got.contains("\r\nHost: localhost:"), "{got}");
        let body = got.split_once("\r\n\r\n").unwrap().1;
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["kind"], "HOLD_ENTERED");
    }

    #[test]
    fn https_webhook_refuses_a_certificate_from_another_ca() {
        let dir = tempfile::tempdir().unwrap();
        let pki = ntp_test_support::Pki::create(dir.path(), "hook");
        let other = ntp_test_support::Pki::create(dir.path(), "other");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (port, receiver) = tls_receiver(&pki).await;
            let url = format!("https://localhost:{port}/hook");
            let url = parse_http_url(&url, Some(&other.ca)).unwrap();
            let e = post(&url, "{}").await.unwrap_err();
            let text = format!("{e:#}");
            assert!(
                text.contains("TLS with") && text.contains("certificate"),
                "{text}"
            );
            // The receiver saw the handshake fail and got no request.
            let seen = tokio::time::timeout(Duration::from_secs(5), receiver)
                .await
                .unwrap()
                .unwrap();
            assert!(seen.is_err(), "{seen:?}");
        });
    }

    #[test]
    fn urls() {
        let u = parse_http_url("http://127.0.0.1:9000/hook", None).unwrap();
        assert_eq!(u.authority, "127.0.0.1:9000");
        assert_eq!(u.path, "/hook");
        let u = parse_http_url("http://example", None).unwrap();
        assert_eq!((u.authority.as_str(), u.path.as_str()), ("example:80", "/"));
        let u = parse_http_url("http://[::1]:8/x?y", None).unwrap();
        assert_eq!(u.authority, "[::1]:8");
        assert!(matches!(u.transport, Transport::Plain));
        assert!(parse_http_url("ftp://x/", None).is_err());
        assert!(parse_http_url("http:///x", None).is_err());
        assert!(parse_http_url("https://user:pw@x/", None).is_err());
    }

    #[test]
    fn https_urls_carry_their_tls_settings() {
        let dir = tempfile::tempdir().unwrap();
        let pki = ntp_test_support::Pki::create(dir.path(), "hook");
        let ca = Some(pki.ca.as_path());
        let u = parse_http_url("https://hooks.example.org/T1/x", ca).unwrap();
        assert!(matches!(u.transport, Transport::Tls(_)));
        assert_eq!(u.authority, "hooks.example.org:443");
        assert_eq!(u.server_name, "hooks.example.org");
        assert_eq!(u.path, "/T1/x");
        let u = parse_http_url("https://[::1]:8443", ca).unwrap();
        assert_eq!(
            (u.authority.as_str(), u.server_name.as_str()),
            ("[::1]:8443", "::1")
        );
        // A CA file only goes with https, and a bad one is named.
        let e = parse_http_url("http://x/", ca).unwrap_err();
        assert!(
            format!("{e:#}").contains("only used with an https://"),
            "{e:#}"
        );
        let e = parse_http_url("https://x/", Some(&dir.path().join("missing.pem"))).unwrap_err();
        let text = format!("{e:#}");
        assert!(
            text.contains("webhook-ca") && text.contains("missing.pem"),
            "{text}"
        );
        // Without a CA file, the system's trust store (when this host has one).
        if nts_ke::tls::native_root_store().is_ok() {
            let u = parse_http_url("https://x/", None).unwrap();
            assert!(matches!(u.transport, Transport::Tls(_)));
        }
    }
}
