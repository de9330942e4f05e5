//! One-shot and repeated queries: [`query`] for a single sample,
//! [`QueryClient`] to take several over one NTS session.
//!
//! A sample is one request and the first reply that passes every check:
//!
//! - plain NTP: the reply comes from the server's address (the socket is
//!   connected), parses, is in server mode, and its origin timestamp equals
//!   the 64 random bits we sent as transmit timestamp (RFC 5905 §8 checks 2–3;
//!   the real T1 never leaves the host);
//! - NTS: in addition, `nts_cookie::packet::open_response` checks the unique
//!   identifier and the authenticator under the S2C key, and only cookies
//!   from the encrypted part are stored.
//!
//! Anything that fails these checks is logged and ignored, and the client
//! keeps waiting until the timeout, so a forged or tampered datagram cannot
//! cut a good exchange short. Replies that pass but say "do not use me" (a
//! Kiss-o'-Death, an NTS NAK, an unsynchronized server) end the sample with
//! an error that names them.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ntp_proto::{
    Header, KissCode, LeapIndicator, MAX_STRATUM, Mode, NtpTimestamp, PacketView, ReferenceId,
};
use nts_cookie::packet::{ResponseError, open_response, seal_request};
use nts_cookie::{AeadAlgorithm, CookieJar};
use rand::RngCore;

use crate::ke::{DEFAULT_KE_PORT, DEFAULT_NTP_PORT, KeError, KeOptions, key_exchange};
use crate::udp::{TimestampSource, TimestampedSocket, now};

/// Largest NTS request we send (PROTOCOL.md §3.7: stay near 1280 bytes so
/// nothing fragments on an IPv6 path).
pub const MAX_NTS_REQUEST: usize = 1280;
/// Poll value sent in requests (log₂ s). Servers echo it; chrony sends its
/// real poll, ntpd-rs too.
const REQUEST_POLL: i8 = 6;

/// How to query.
#[derive(Clone, Debug)]
pub struct QueryOptions {
    /// Use NTS: NTS-KE first, then authenticated NTP.
    pub nts: bool,
    /// NTP port. With NTS, `None` means "what the KE server says, else 123".
    pub port: Option<u16>,
    /// NTS-KE port (default 4460).
    pub ke_port: u16,
    /// A PEM file of CA certificates to trust instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// How long to wait for each reply, and for the whole NTS-KE exchange.
    pub timeout: Duration,
    /// Extra attempts after a timeout.
    pub retries: u32,
    /// AEAD algorithms to offer in NTS-KE, most preferred first; empty means
    /// the default (AES-SIV-CMAC-256, then -512).
    pub aead: Vec<AeadAlgorithm>,
}

impl Default for QueryOptions {
    fn default() -> Self {
        Self {
            nts: false,
            port: None,
            ke_port: DEFAULT_KE_PORT,
            ca_file: None,
            timeout: Duration::from_secs(2),
            retries: 2,
            aead: Vec::new(),
        }
    }
}

/// One sample.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// The NTP server that answered.
    pub server: SocketAddr,
    /// θ: the server's clock minus ours, seconds (RFC 5905 §8).
    pub offset: f64,
    /// δ: round-trip delay, seconds.
    pub delay: f64,
    /// NTP version of the reply (the server echoes the request's, 4).
    pub version: u8,
    /// Leap indicator.
    pub leap: LeapIndicator,
    /// Stratum.
    pub stratum: u8,
    /// Poll the server echoed.
    pub poll: i8,
    /// Server precision, log₂ s.
    pub precision: i8,
    /// Root delay, seconds.
    pub root_delay: f64,
    /// Root dispersion, seconds.
    pub root_dispersion: f64,
    /// Reference id.
    pub reference_id: ReferenceId,
    /// T1, T2, T3, T4 (T1 is our local send time, not the random wire value).
    pub timestamps: [NtpTimestamp; 4],
    /// Whether T4 came from the kernel.
    pub kernel_timestamp: bool,
    /// NTS details, for an NTS sample.
    pub nts: Option<NtsDetails>,
}

/// What NTS added to a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NtsDetails {
    /// The AEAD negotiated by NTS-KE.
    pub aead: AeadAlgorithm,
    /// Cookies received (encrypted) in this response.
    pub cookies_received: usize,
    /// Cookies held after storing them.
    pub cookies_held: usize,
}

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The host name did not resolve.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// The name.
        host: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// NTS-KE failed (TLS, certificate, protocol, server error).
    #[error(transparent)]
    KeyExchange(#[from] KeError),
    /// The trust anchors could not be loaded.
    #[error("cannot load CA certificates: {0}")]
    Trust(String),
    /// The server refused the port (ICMP port unreachable).
    #[error("no NTP server at {server}: connection refused")]
    Refused {
        /// The address.
        server: SocketAddr,
    },
    /// No acceptable reply within the time limit, after all attempts.
    #[error("no valid reply from {server} after {attempts} attempt(s) of {timeout:?}{}", rejected_note(.rejected, .last_rejection.as_deref()))]
    Unreachable {
        /// The address.
        server: SocketAddr,
        /// Attempts made.
        attempts: u32,
        /// Time limit of each.
        timeout: Duration,
        /// Replies received but rejected.
        rejected: usize,
        /// Why the last one was rejected.
        last_rejection: Option<String>,
    },
    /// A socket error.
    #[error("network error talking to {server}: {source}")]
    Io {
        /// The address.
        server: SocketAddr,
        /// The error.
        source: io::Error,
    },
    /// The server answered with a Kiss-o'-Death.
    #[error("server {server} sent Kiss-o'-Death {code}{}", code.description().map(|d| format!(" ({d})")).unwrap_or_default())]
    Kiss {
        /// The address.
        server: SocketAddr,
        /// The code.
        code: KissCode,
    },
    /// The server could not use our NTS cookie (RFC 8915 §5.7).
    #[error("server {server} sent an NTS NAK: it could not use our cookie")]
    NtsNak {
        /// The address.
        server: SocketAddr,
    },
    /// The server says it is not synchronized.
    #[error("server {server} is not synchronized (leap {leap}, stratum {stratum})")]
    Unsynchronized {
        /// The address.
        server: SocketAddr,
        /// Its leap indicator.
        leap: LeapIndicator,
        /// Its stratum.
        stratum: u8,
    },
    /// NTS could not build a request (no cookies left and re-keying failed).
    #[error("cannot build an NTS request: {0}")]
    Seal(String),
}

fn rejected_note(rejected: &usize, last: Option<&str>) -> String {
    match (rejected, last) {
        (0, _) => String::new(),
        (n, Some(why)) => format!("; {n} reply(ies) rejected, last because {why}"),
        (n, None) => format!("; {n} reply(ies) rejected"),
    }
}

/// Takes one sample from `host`.
///
/// # Errors
/// [`QueryError`], which says what failed.
pub async fn query(host: &str, options: &QueryOptions) -> Result<Measurement, QueryError> {
    QueryClient::connect(host, options.clone())
        .await?
        .sample()
        .await
}

/// A client for repeated samples from one server, keeping its NTS session
/// (keys and cookies) between them and re-keying when cookies run out.
#[derive(Debug)]
pub struct QueryClient {
    host: String,
    options: QueryOptions,
    socket: TimestampedSocket,
    server: SocketAddr,
    nts: Option<NtsSession>,
    ke: Option<KeOptions>,
}

#[derive(Debug)]
struct NtsSession {
    aead: AeadAlgorithm,
    jar: CookieJar,
}

/// Outcome of checking one datagram.
enum Verdict {
    Accept(Box<Measurement>),
    Reject(String),
    Fail(QueryError),
}

impl QueryClient {
    /// Resolves `host`, runs NTS-KE if asked, and opens the UDP socket.
    ///
    /// # Errors
    /// Resolution, trust-anchor, NTS-KE or socket errors.
    pub async fn connect(host: &str, options: QueryOptions) -> Result<Self, QueryError> {
        let (server, nts, ke) = if options.nts {
            let ke = ke_options(&options)?;
            let exchange = key_exchange(host, options.ke_port, &ke).await?;
            let port = options.port.unwrap_or(exchange.ntp_server.port);
            let server = resolve(&exchange.ntp_server.host, port).await?;
            tracing::debug!(%server, aead = %exchange.aead, cookies = exchange.jar.len(), "NTS-KE done");
            (
                server,
                Some(NtsSession {
                    aead: exchange.aead,
                    jar: exchange.jar,
                }),
                Some(ke),
            )
        } else {
            (
                resolve(host, options.port.unwrap_or(DEFAULT_NTP_PORT)).await?,
                None,
                None,
            )
        };
        let socket = TimestampedSocket::connect(server)
            .await
            .map_err(|source| QueryError::Io { server, source })?;
        Ok(Self {
            host: host.to_string(),
            options,
            socket,
            server,
            nts,
            ke,
        })
    }

    /// The NTP server address in use.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// Cookies held (NTS only).
    pub fn cookies(&self) -> Option<usize> {
        self.nts.as_ref().map(|s| s.jar.len())
    }

    /// Takes one sample, retrying after timeouts.
    ///
    /// # Errors
    /// As [`query`].
    pub async fn sample(&mut self) -> Result<Measurement, QueryError> {
        let attempts = self.options.retries.saturating_add(1);
        let mut rejected = 0;
        let mut last_rejection = None;
        for _ in 0..attempts {
            self.ensure_cookies().await?;
            match self.attempt(&mut rejected, &mut last_rejection).await {
                Ok(Some(m)) => return Ok(m),
                Ok(None) => continue, // timed out: try again
                Err(e) => return Err(e),
            }
        }
        Err(QueryError::Unreachable {
            server: self.server,
            attempts,
            timeout: self.options.timeout,
            rejected,
            last_rejection,
        })
    }

    /// Re-runs NTS-KE when the jar is empty (RFC 8915 §5.7).
    async fn ensure_cookies(&mut self) -> Result<(), QueryError> {
        let (Some(session), Some(ke)) = (&self.nts, &self.ke) else {
            return Ok(());
        };
        if !session.jar.is_empty() {
            return Ok(());
        }
        tracing::info!(host = %self.host, "out of NTS cookies: new key exchange");
        let exchange = key_exchange(&self.host, self.options.ke_port, ke).await?;
        self.nts = Some(NtsSession {
            aead: exchange.aead,
            jar: exchange.jar,
        });
        Ok(())
    }

    /// One request and the wait for its reply; `Ok(None)` on timeout.
    async fn attempt(
        &mut self,
        rejected: &mut usize,
        last_rejection: &mut Option<String>,
    ) -> Result<Option<Measurement>, QueryError> {
        let server = self.server;
        // The thread-local RNG is not Send: keep it out of the awaits below,
        // so a QueryClient can be used from any task.
        let (header, bytes, uid) = {
            let mut rng = rand::rng();
            let header = Header::client_request(REQUEST_POLL, rng.next_u64());
            match &mut self.nts {
                None => (header, header.to_bytes().to_vec(), None),
                Some(session) => {
                    let sealed = seal_request(&header, &mut session.jar, MAX_NTS_REQUEST, &mut rng)
                        .map_err(|e| QueryError::Seal(e.to_string()))?;
                    (header, sealed.bytes, Some(sealed.uid))
                }
            }
        };
        let t1 = now();
        self.socket
            .send(&bytes)
            .await
            .map_err(|source| self.io_error(source))?;

        let deadline = tokio::time::Instant::now() + self.options.timeout;
        let mut buf = vec![0u8; 2048];
        loop {
            let received = match tokio::time::timeout_at(deadline, self.socket.recv(&mut buf)).await
            {
                Err(_) => return Ok(None),
                Ok(Err(source)) => return Err(self.io_error(source)),
                Ok(Ok(r)) => r,
            };
            let datagram = buf.get(..received.len).unwrap_or_default();
            let verdict = self.check(datagram, &header, uid.as_ref(), t1, received.timestamp);
            match verdict {
                Verdict::Accept(mut m) => {
                    m.kernel_timestamp = received.source == TimestampSource::Kernel;
                    return Ok(Some(*m));
                }
                Verdict::Fail(e) => return Err(e),
                Verdict::Reject(why) => {
                    tracing::warn!(%server, "ignoring reply: {why}");
                    *rejected += 1;
                    *last_rejection = Some(why);
                }
            }
        }
    }

    fn io_error(&self, source: io::Error) -> QueryError {
        if source.kind() == io::ErrorKind::ConnectionRefused {
            QueryError::Refused {
                server: self.server,
            }
        } else {
            QueryError::Io {
                server: self.server,
                source,
            }
        }
    }

    /// Decides what one datagram means for the outstanding request.
    fn check(
        &mut self,
        datagram: &[u8],
        request: &Header,
        uid: Option<&[u8; 32]>,
        t1: NtpTimestamp,
        t4: NtpTimestamp,
    ) -> Verdict {
        let server = self.server;
        let view = match PacketView::new(datagram) {
            Ok(v) => v,
            Err(e) => return Verdict::Reject(format!("malformed: {e}")),
        };
        let h = *view.header();
        if h.mode != Mode::Server {
            return Verdict::Reject(format!("mode {} is not a server reply", h.mode));
        }
        if h.origin_timestamp != request.transmit_timestamp {
            return Verdict::Reject(
                "origin timestamp does not match our request (bogus or replayed)".into(),
            );
        }
        let mut nts = None;
        if let (Some(session), Some(uid)) = (&mut self.nts, uid) {
            let opened = match open_response(
                datagram,
                uid,
                request.transmit_timestamp,
                session.jar.keys(),
            ) {
                Ok(opened) => opened,
                Err(ResponseError::NtsNak) => return Verdict::Fail(QueryError::NtsNak { server }),
                Err(e) => return Verdict::Reject(format!("NTS check failed: {e}")),
            };
            let received = opened.cookies.len();
            for cookie in opened.cookies {
                if let Err(e) = session.jar.store(cookie) {
                    tracing::warn!(%server, "cookie not stored: {e}");
                }
            }
            nts = Some(NtsDetails {
                aead: session.aead,
                cookies_received: received,
                cookies_held: session.jar.len(),
            });
        }
        if let Some(code) = h.kiss_code() {
            return Verdict::Fail(QueryError::Kiss { server, code });
        }
        if h.transmit_timestamp.is_zero() {
            return Verdict::Reject("transmit timestamp is zero".into());
        }
        if h.leap == LeapIndicator::Unsynchronized || h.stratum == 0 || h.stratum >= MAX_STRATUM {
            return Verdict::Fail(QueryError::Unsynchronized {
                server,
                leap: h.leap,
                stratum: h.stratum,
            });
        }
        let (t2, t3) = (h.receive_timestamp, h.transmit_timestamp);
        // Each first-order difference goes to f64 before summing (PROTOCOL.md §1.2).
        let offset = ((t2 - t1).to_seconds_f64() + (t3 - t4).to_seconds_f64()) / 2.0;
        let delay = ((t4 - t1).to_seconds_f64() - (t3 - t2).to_seconds_f64()).max(0.0);
        Verdict::Accept(Box::new(Measurement {
            server,
            offset,
            delay,
            version: h.version.get(),
            leap: h.leap,
            stratum: h.stratum,
            poll: h.poll,
            precision: h.precision,
            root_delay: h.root_delay.to_seconds_f64(),
            root_dispersion: h.root_dispersion.to_seconds_f64(),
            reference_id: h.reference_id,
            timestamps: [t1, t2, t3, t4],
            kernel_timestamp: false,
            nts,
        }))
    }
}

/// Compile-time check: queries can run on any tokio worker thread.
#[allow(dead_code)]
fn sample_future_is_send(
    client: &mut QueryClient,
) -> impl Future<Output = Result<Measurement, QueryError>> + Send + '_ {
    client.sample()
}

async fn resolve(host: &str, port: u16) -> Result<SocketAddr, QueryError> {
    let resolve_error = |source| QueryError::Resolve {
        host: host.to_string(),
        source,
    };
    tokio::net::lookup_host((host, port))
        .await
        .map_err(resolve_error)?
        .next()
        .ok_or_else(|| resolve_error(io::Error::new(io::ErrorKind::NotFound, "no addresses")))
}

fn ke_options(options: &QueryOptions) -> Result<KeOptions, QueryError> {
    let tls = match &options.ca_file {
        // The error names the file.
        Some(path) => nts_ke::tls::client_config_from_ca_file(path),
        None => nts_ke::tls::client_config_native_roots(),
    }
    .map_err(|e| QueryError::Trust(e.to_string()))?;
    let mut negotiation = nts_ke::ClientConfig::default();
    if !options.aead.is_empty() {
        negotiation.aead_algorithms = options
            .aead
            .iter()
            .map(|a| nts_ke::AeadId(a.id()))
            .collect();
    }
    Ok(KeOptions {
        tls: Arc::new(tls),
        negotiation: Arc::new(negotiation),
        timeout: options.timeout,
    })
}
