//! The NTS-KE listener (RFC 8915 §4): TLS 1.3 with ALPN `ntske/1`, one
//! request and one response per connection, stateless.
//!
//! Limits keep a hostile client from holding resources:
//! - at most `max_connections` exchanges run at once (the TLS handshake is
//!   the expensive part); a connection takes an exchange slot only once its
//!   whole TLS ClientHello has arrived, so sockets that connect and say
//!   nothing, or stall half-way through the hello, never hold one;
//! - up to [`OPEN_PER_SLOT`] × `max_connections` connections (at least
//!   [`MIN_OPEN`]) are accepted at once; beyond that they wait in the
//!   kernel's accept queue rather than being refused;
//! - each stage is bounded: the first bytes within `timeout`, a slot within
//!   2 × `timeout`, the exchange within `timeout`. Slots are handed out in
//!   arrival order, so a stalled client delays others by about one `timeout`
//!   however many connections it opens (an earlier design took the slot at
//!   accept, and 50 silent sockets held an honest client back for 6 s with 4
//!   slots of 0.5 s);
//! - the request may be at most `max_request_bytes` long.
//!
//! The TLS certificate can be replaced while running ([`TlsReloader`]); the
//! NTP path does not depend on it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use nts_cookie::{AeadAlgorithm, CookieKeys};
use nts_ke::server::{ServerDecision, ServerProgress};
use nts_ke::{ErrorCode, ServerHandshake, StreamLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::keys::KeyStore;

/// Open connections accepted per exchange slot.
pub const OPEN_PER_SLOT: usize = 8;
/// Open connections accepted at least, whatever `max_connections` is.
pub const MIN_OPEN: usize = 64;

/// Cookies handed out per successful exchange (RFC 8915 §4.1.6: SHOULD be 8).
pub const COOKIES_PER_EXCHANGE: usize = 8;

/// Settings of one NTS-KE listener.
#[derive(Clone, Debug)]
pub struct KeSettings {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Limit for one whole exchange, TLS handshake included.
    pub timeout: Duration,
    /// Exchanges in progress at once.
    pub max_connections: usize,
    /// Largest request accepted, in bytes.
    pub max_request_bytes: usize,
    /// NTP server to announce to clients, if not this host.
    pub ntp_server: Option<String>,
    /// NTP port to announce, if not 123.
    pub ntp_port: Option<u16>,
}

/// The TLS configuration, replaceable at run time (SIGHUP).
#[derive(Debug)]
pub struct TlsReloader {
    chain: std::path::PathBuf,
    key: std::path::PathBuf,
    current: RwLock<Arc<rustls::ServerConfig>>,
}

impl TlsReloader {
    /// Loads the certificate chain and key.
    ///
    /// # Errors
    /// If a file cannot be read or rustls refuses its contents.
    pub fn load(
        chain: &std::path::Path,
        key: &std::path::Path,
    ) -> Result<Self, nts_ke::tls::TlsError> {
        let config = nts_ke::tls::server_config_from_pem_files(chain, key)?;
        Ok(Self {
            chain: chain.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(Arc::new(config)),
        })
    }

    /// Reads the files again; on failure the old configuration stays.
    ///
    /// # Errors
    /// As [`TlsReloader::load`].
    pub fn reload(&self) -> Result<(), ReloadError> {
        // The same rule as at start-up (config::Config::validate_files).
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&self.key)
            .map_err(|source| ReloadError::Io {
                path: self.key.clone(),
                source,
            })?
            .permissions()
            .mode();
        if mode & 0o007 != 0 {
            return Err(ReloadError::WorldReadable {
                path: self.key.clone(),
                mode: mode & 0o7777,
            });
        }
        let config = nts_ke::tls::server_config_from_pem_files(&self.chain, &self.key)?;
        if let Ok(mut current) = self.current.write() {
            *current = Arc::new(config);
        }
        Ok(())
    }

    fn get(&self) -> Arc<rustls::ServerConfig> {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// Why a certificate reload was refused (the old certificate stays).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The files could not be read or rustls refused them.
    #[error(transparent)]
    Tls(#[from] nts_ke::tls::TlsError),
    /// The key file could not be inspected.
    #[error("{}: {source}", path.display())]
    Io {
        /// The key file.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The private key is readable by every local user.
    #[error("{}: private key is readable by others (mode {mode:o}); chmod o-rwx it", path.display())]
    WorldReadable {
        /// The key file.
        path: std::path::PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// NTS-KE counters.
#[derive(Debug, Default)]
pub struct KeMetrics {
    /// Exchanges that handed out cookies.
    pub handshakes: AtomicU64,
    /// TLS handshake failures (bad client hello, no common cipher, ALPN).
    pub tls_failures: AtomicU64,
    /// Exchanges that ran out of time.
    pub timeouts: AtomicU64,
    /// Requests answered with an NTS-KE error or "no common protocol/AEAD".
    pub rejected: AtomicU64,
    /// Connections that failed for another reason (I/O, export, internal).
    pub other_failures: AtomicU64,
}

impl KeMetrics {
    /// Appends the counters in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP ntp_server_nts_ke_handshakes_total NTS-KE exchanges that handed out cookies."
        );
        let _ = writeln!(out, "# TYPE ntp_server_nts_ke_handshakes_total counter");
        let _ = writeln!(
            out,
            "ntp_server_nts_ke_handshakes_total {}",
            get(&self.handshakes)
        );
        let _ = writeln!(
            out,
            "# HELP ntp_server_nts_ke_failures_total NTS-KE connections that failed, by reason."
        );
        let _ = writeln!(out, "# TYPE ntp_server_nts_ke_failures_total counter");
        for (reason, c) in [
            ("tls", &self.tls_failures),
            ("timeout", &self.timeouts),
            ("rejected", &self.rejected),
            ("other", &self.other_failures),
        ] {
            let _ = writeln!(
                out,
                "ntp_server_nts_ke_failures_total{{reason=\"{reason}\"}} {}",
                get(c)
            );
        }
    }
}

/// Why one exchange failed.
#[derive(Debug, thiserror::Error)]
enum ExchangeError {
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    #[error("ALPN: {0}")]
    Alpn(nts_ke::tls::TlsError),
    #[error("rejected: {0}")]
    Rejected(String),
    #[error("timed out: {0}")]
    Timeout(&'static str),
    #[error("{0}")]
    Other(String),
}

/// Runs one listener until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    settings: Arc<KeSettings>,
    tls: Arc<TlsReloader>,
    keys: Arc<KeyStore>,
    metrics: Arc<KeMetrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    let open = Arc::new(Semaphore::new(
        settings
            .max_connections
            .saturating_mul(OPEN_PER_SLOT)
            .max(MIN_OPEN),
    ));
    let mut negotiation = nts_ke::server::ServerConfig::default();
    negotiation.ntp_server = settings.ntp_server.clone();
    negotiation.ntp_port = settings.ntp_port;
    negotiation.limits = StreamLimits::new(
        settings.max_request_bytes.max(1024),
        StreamLimits::DEFAULT_MAX_RECORDS,
    );
    let negotiation = Arc::new(negotiation);
    loop {
        // Beyond the open-connection cap, connections queue in the kernel.
        let open_permit = tokio::select! {
            p = open.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("NTS-KE accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let (settings, tls, keys, metrics, negotiation, slots) = (
            settings.clone(),
            tls.get(),
            keys.clone(),
            metrics.clone(),
            negotiation.clone(),
            slots.clone(),
        );
        tokio::spawn(async move {
            let result = staged(&settings, stream, &slots, tls, &keys, negotiation).await;
            let counter = match &result {
                Ok(()) => &metrics.handshakes,
                Err(ExchangeError::Tls(_) | ExchangeError::Alpn(_)) => &metrics.tls_failures,
                Err(ExchangeError::Rejected(_)) => &metrics.rejected,
                Err(ExchangeError::Timeout(_)) => &metrics.timeouts,
                Err(ExchangeError::Other(_)) => &metrics.other_failures,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            match result {
                Ok(()) => tracing::debug!(%peer, "NTS-KE exchange done"),
                Err(e) => tracing::info!(%peer, "NTS-KE exchange failed: {e}"),
            }
            drop(open_permit);
        });
    }
}

/// One connection in three bounded stages: the complete TLS ClientHello
/// (≤ `timeout`, no slot held, no cryptography done), an exchange slot
/// (≤ 2 × `timeout`), then the handshake and the NTS-KE exchange
/// (≤ `timeout`). Clients that stall before finishing their ClientHello never
/// take a slot.
async fn staged(
    settings: &KeSettings,
    stream: TcpStream,
    slots: &Arc<Semaphore>,
    tls: Arc<rustls::ServerConfig>,
    keys: &KeyStore,
    negotiation: Arc<nts_ke::server::ServerConfig>,
) -> Result<(), ExchangeError> {
    use tokio::time::timeout;
    let limit = settings.timeout;
    let _ = stream.set_nodelay(true);
    let hello = tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
    let start = timeout(limit, hello)
        .await
        .map_err(|_| ExchangeError::Timeout("no complete ClientHello"))?
        .map_err(ExchangeError::Tls)?;
    let _slot = timeout(limit.saturating_mul(2), slots.clone().acquire_owned())
        .await
        .map_err(|_| ExchangeError::Timeout("all exchange slots busy"))?
        .map_err(|_| ExchangeError::Other("shutting down".into()))?;
    timeout(limit, async {
        let tls = start.into_stream(tls).await.map_err(ExchangeError::Tls)?;
        exchange(tls, keys, negotiation).await
    })
    .await
    .map_err(|_| ExchangeError::Timeout("exchange too slow"))?
}

async fn exchange(
    mut tls: tokio_rustls::server::TlsStream<TcpStream>,
    keys: &KeyStore,
    negotiation: Arc<nts_ke::server::ServerConfig>,
) -> Result<(), ExchangeError> {
    nts_ke::tls::check_alpn(tls.get_ref().1).map_err(ExchangeError::Alpn)?;
    let mut handshake =
        ServerHandshake::new(negotiation).map_err(|e| ExchangeError::Other(e.to_string()))?;
    let mut buf = [0u8; 1024];
    let decision = loop {
        let n = tls
            .read(&mut buf)
            .await
            .map_err(|e| ExchangeError::Other(format!("read: {e}")))?;
        if n == 0 {
            return Err(ExchangeError::Other(
                "client closed before End of Message".into(),
            ));
        }
        match handshake.receive(buf.get(..n).unwrap_or_default()) {
            Ok(ServerProgress::NeedMore) => {}
            Ok(ServerProgress::Done(decision)) => break decision,
            Err(e) => return Err(ExchangeError::Other(e.to_string())),
        }
    };
    let (response, outcome) = match decision {
        ServerDecision::Reject(rejection) => {
            let reason = rejection.reason().to_string();
            (
                rejection.response_bytes(),
                Err(ExchangeError::Rejected(reason)),
            )
        }
        ServerDecision::Accept(accept) => match cookies_for(&tls, keys, &accept) {
            Ok(cookies) => match accept.response_bytes(&cookies) {
                Ok(bytes) => (bytes, Ok(())),
                Err(e) => internal_error(e.to_string()),
            },
            Err(e) => internal_error(e),
        },
    };
    // The response goes into rustls's buffer first, so that it and the
    // close_notify (RFC 8915 §4) leave in one write and one TCP segment:
    // `shutdown` queues close_notify, flushes everything, then sends FIN.
    std::io::Write::write_all(&mut tls.get_mut().1.writer(), &response)
        .map_err(|e| ExchangeError::Other(format!("write: {e}")))?;
    tls.shutdown()
        .await
        .map_err(|e| ExchangeError::Other(format!("write: {e}")))?;
    outcome
}

fn internal_error(why: String) -> (Vec<u8>, Result<(), ExchangeError>) {
    (
        nts_ke::server::error_response(ErrorCode::INTERNAL_SERVER_ERROR),
        Err(ExchangeError::Other(why)),
    )
}

fn cookies_for(
    tls: &tokio_rustls::server::TlsStream<TcpStream>,
    keys: &KeyStore,
    accept: &nts_ke::server::Acceptance,
) -> Result<Vec<Vec<u8>>, String> {
    let session = nts_ke::tls::export_keys(tls.get_ref().1, accept.protocol(), accept.aead())
        .map_err(|e| e.to_string())?;
    let aead =
        AeadAlgorithm::from_id(accept.aead().0).ok_or("negotiated an AEAD we cannot seal")?;
    let client_keys =
        CookieKeys::new(aead, &session.c2s, &session.s2c).map_err(|e| e.to_string())?;
    let mut rng = rand::rng();
    let set = keys.read();
    Ok((0..COOKIES_PER_EXCHANGE)
        .map(|_| set.seal_cookie(&client_keys, &mut rng))
        .collect())
}
