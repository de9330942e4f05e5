//! NTS-KE over TLS (RFC 8915 §4): connect, handshake, one request, one
//! response, keys exported. The record logic is `nts_ke`'s sans-IO
//! [`ClientHandshake`]; this module only moves bytes and enforces time limits.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use nts_cookie::{AeadAlgorithm, CookieJar, CookieKeys};
use nts_ke::{ClientConfig, ClientError, ClientHandshake, ClientProgress};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The NTS-KE port (RFC 8915 §4).
pub const DEFAULT_KE_PORT: u16 = 4460;
/// The NTP port.
pub const DEFAULT_NTP_PORT: u16 = 123;

/// What a successful key exchange gives the client.
#[derive(Debug)]
pub struct KeyExchange {
    /// Where to send NTP requests: the server and port the KE server named,
    /// else its own address and port 123 (RFC 8915 §4.1.7–4.1.8).
    pub ntp_server: NtpTarget,
    /// The negotiated AEAD algorithm.
    pub aead: AeadAlgorithm,
    /// The keys and the cookies received.
    pub jar: CookieJar,
    /// The KE server's address.
    pub ke_peer: SocketAddr,
}

/// The NTP server named by the KE exchange, not yet resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NtpTarget {
    /// Host name or address text.
    pub host: String,
    /// Port.
    pub port: u16,
}

/// Why a key exchange failed. Each variant says which step.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeError {
    /// The host name did not resolve.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// The name.
        host: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// No TCP connection could be made.
    #[error("cannot connect to NTS-KE server {host}:{port}: {source}")]
    Connect {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// The last connect error.
        source: io::Error,
    },
    /// The server's certificate was not accepted.
    #[error("bad certificate from NTS-KE server {host}: {detail}")]
    BadCertificate {
        /// The host.
        host: String,
        /// What rustls said.
        detail: String,
    },
    /// The TLS handshake failed for another reason.
    #[error("TLS handshake with {host} failed: {detail}")]
    Tls {
        /// The host.
        host: String,
        /// What went wrong.
        detail: String,
    },
    /// The host name is not valid for TLS.
    #[error("{host} is not a valid TLS server name")]
    ServerName {
        /// The host.
        host: String,
    },
    /// The exchange ran out of time.
    #[error("NTS-KE with {host} timed out after {after:?}")]
    Timeout {
        /// The host.
        host: String,
        /// The limit.
        after: Duration,
    },
    /// The connection failed during the exchange.
    #[error("NTS-KE connection to {host} failed: {source}")]
    Io {
        /// The host.
        host: String,
        /// The I/O error.
        source: io::Error,
    },
    /// The server closed the connection before finishing its response.
    #[error("NTS-KE server {host} closed the connection before End of Message")]
    Truncated {
        /// The host.
        host: String,
    },
    /// The server's response was refused by the NTS-KE rules (includes
    /// server Error and Warning records).
    #[error("NTS-KE with {host}: {source}")]
    Protocol {
        /// The host.
        host: String,
        /// The rule broken.
        source: ClientError,
    },
    /// ALPN `ntske/1` was not negotiated, or keys could not be exported.
    #[error("NTS-KE with {host}: {detail}")]
    Session {
        /// The host.
        host: String,
        /// What failed.
        detail: String,
    },
}

/// Limits and trust for a key exchange.
#[derive(Clone, Debug)]
pub struct KeOptions {
    /// TLS client config: TLS 1.3, ALPN `ntske/1`, the trusted roots (see
    /// `nts_ke::tls`).
    pub tls: Arc<rustls::ClientConfig>,
    /// NTS-KE negotiation settings (AEAD preference, limits).
    pub negotiation: Arc<ClientConfig>,
    /// Limit for connect + handshake + exchange.
    pub timeout: Duration,
}

/// Runs one NTS-KE exchange with `host:port`.
///
/// # Errors
/// [`KeError`] naming the step that failed.
pub async fn key_exchange(
    host: &str,
    port: u16,
    options: &KeOptions,
) -> Result<KeyExchange, KeError> {
    match tokio::time::timeout(options.timeout, exchange(host, port, options)).await {
        Ok(result) => result,
        Err(_) => Err(KeError::Timeout {
            host: host.to_string(),
            after: options.timeout,
        }),
    }
}

async fn exchange(host: &str, port: u16, options: &KeOptions) -> Result<KeyExchange, KeError> {
    let owned_host = || host.to_string();
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| KeError::Resolve {
            host: owned_host(),
            source,
        })?
        .collect();
    let mut last_error = io::Error::new(io::ErrorKind::NotFound, "no addresses");
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_error = e,
        }
    }
    let Some(stream) = stream else {
        return Err(KeError::Connect {
            host: owned_host(),
            port,
            source: last_error,
        });
    };
    let ke_peer = stream.peer_addr().map_err(|source| KeError::Io {
        host: owned_host(),
        source,
    })?;
    let _ = stream.set_nodelay(true);

    let name = ServerName::try_from(host.to_string())
        .map_err(|_| KeError::ServerName { host: owned_host() })?;
    let mut tls = TlsConnector::from(options.tls.clone())
        .connect(name, stream)
        .await
        .map_err(|e| tls_error(host, e))?;
    nts_ke::tls::check_alpn(tls.get_ref().1).map_err(|e| KeError::Session {
        host: owned_host(),
        detail: e.to_string(),
    })?;

    let mut handshake =
        ClientHandshake::new(options.negotiation.clone()).map_err(|e| KeError::Session {
            host: owned_host(),
            detail: e.to_string(),
        })?;
    tls.write_all(handshake.request_bytes())
        .await
        .map_err(|source| KeError::Io {
            host: owned_host(),
            source,
        })?;
    tls.flush().await.map_err(|source| KeError::Io {
        host: owned_host(),
        source,
    })?;

    let mut buf = vec![0u8; 4096];
    let outcome = loop {
        let n = tls.read(&mut buf).await.map_err(|source| KeError::Io {
            host: owned_host(),
            source,
        })?;
        if n == 0 {
            return Err(KeError::Truncated { host: owned_host() });
        }
        match handshake.receive(buf.get(..n).unwrap_or_default()) {
            Ok(ClientProgress::NeedMore) => {}
            Ok(ClientProgress::Done(outcome)) => break outcome,
            Err(source) => {
                return Err(KeError::Protocol {
                    host: owned_host(),
                    source,
                });
            }
        }
    };

    let session = |detail: String| KeError::Session {
        host: owned_host(),
        detail,
    };
    let keys = nts_ke::tls::export_keys(tls.get_ref().1, outcome.protocol, outcome.aead)
        .map_err(|e| session(e.to_string()))?;
    let aead = AeadAlgorithm::from_id(outcome.aead.0).ok_or_else(|| {
        session(format!(
            "server chose AEAD {} which we cannot use",
            outcome.aead.0
        ))
    })?;
    let keys = CookieKeys::new(aead, &keys.c2s, &keys.s2c).map_err(|e| session(e.to_string()))?;
    let jar = CookieJar::with_cookies(keys, outcome.cookies).map_err(|e| session(e.to_string()))?;
    // The exchange is complete; say goodbye properly (RFC 8915 §4: both sides
    // send close_notify). A failure here does not matter any more.
    let _ = tls.shutdown().await;

    let ntp_server = NtpTarget {
        host: outcome.server.unwrap_or_else(|| ke_peer.ip().to_string()),
        port: outcome.port.unwrap_or(DEFAULT_NTP_PORT),
    };
    Ok(KeyExchange {
        ntp_server,
        aead,
        jar,
        ke_peer,
    })
}

/// Sorts a TLS failure into "bad certificate" and everything else.
fn tls_error(host: &str, error: io::Error) -> KeError {
    let rustls_error = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>());
    match rustls_error {
        Some(rustls::Error::InvalidCertificate(detail)) => KeError::BadCertificate {
            host: host.to_string(),
            detail: format!("{detail:?}"),
        },
        Some(other) => KeError::Tls {
            host: host.to_string(),
            detail: other.to_string(),
        },
        None => KeError::Tls {
            host: host.to_string(),
            detail: error.to_string(),
        },
    }
}
