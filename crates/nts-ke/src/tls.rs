//! rustls helpers for NTS-KE (feature `tls`; RFC 8915 §3, PROTOCOL.md §3.1).
//!
//! Every config built here uses the aws-lc-rs provider explicitly (never a
//! process-default provider), allows TLS 1.3 only and offers ALPN `ntske/1`. rustls still
//! completes a handshake with a client that offered no ALPN, so call [`check_alpn`] after
//! the handshake on both sides.
//!
//! **Why aws-lc-rs, and the server's choices.** An NTS-KE server's cost is almost all one
//! TLS handshake per client: an ephemeral X25519 key pair and agreement, one signature,
//! and the key schedule. aws-lc's X25519 and P-256 code is about twice as fast as ring's
//! (measured per handshake with `ntp-perf ke`, docs/PERFORMANCE.md), so both sides use it.
//! [`server_config`] also prefers `TLS_AES_128_GCM_SHA256` over the AES-256/SHA-384
//! suite that clients usually list first (its key schedule runs on SHA-256, which CPUs
//! with the SHA extensions compute in hardware; AES-128 is ample for a connection that
//! lives for one request), and issues no session tickets: NTS-KE clients connect rarely
//! and do not resume, so tickets were pure cost.
//!
//! The root-store loaders ([`root_store_from_ca_file`], [`root_store_from_ca_pem`],
//! [`native_root_store`]) fix neither version nor ALPN, so other rustls clients in the
//! suite (such as `ntp-monitor`'s HTTPS webhooks) load their trust anchors through them.
//!
//! Certificate verification cannot be turned off except through
//! [`dangerous_client_config_no_verification`], which exists for tests.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{ClientConfig, ConnectionCommon, DigitallySignedStruct, RootCertStore, ServerConfig};
use rustls::{SignatureScheme, version::TLS13};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::export::{ExportError, SessionKeys};
use crate::record::{AeadId, ProtocolId};

/// The NTS-KE ALPN protocol ID (RFC 8915 §4).
pub const ALPN_NTSKE: &[u8] = b"ntske/1";

/// Errors of the TLS helpers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// rustls refused the configuration or certificate.
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
    /// A PEM input could not be read or decoded.
    #[error("pem: {0}")]
    Pem(#[from] rustls_pki_types::pem::Error),
    /// A PEM input held no certificate.
    #[error("no certificate found in pem input")]
    NoCertificates,
    /// A CA file could not be read, or held no usable trust anchor. The message
    /// includes the reason (which is not repeated as `source()`).
    #[error("CA file {}: {reason}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why: [`TlsError::Pem`], [`TlsError::NoCertificates`] or
        /// [`TlsError::Rustls`].
        reason: Box<TlsError>,
    },
    /// The system trust store gave no usable root certificate.
    #[error("no usable system root certificates: {detail}")]
    NoRootCertificates {
        /// What the loader reported.
        detail: String,
    },
    /// The peer did not negotiate ALPN `ntske/1`.
    #[error("alpn is not ntske/1 (negotiated {negotiated:?})")]
    Alpn {
        /// What was negotiated, if anything.
        negotiated: Option<Vec<u8>>,
    },
}

/// The aws-lc-rs provider used by every client config here.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The provider of [`server_config`]: aws-lc-rs with `TLS_AES_128_GCM_SHA256` moved to
/// the front of its cipher suites (the server's order decides, see the module docs).
pub fn server_provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.cipher_suites.sort_by_key(|suite| {
        u8::from(suite.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256)
    });
    Arc::new(provider)
}

/// A client config (TLS 1.3, ALPN `ntske/1`) trusting `roots`.
///
/// # Errors
///
/// [`TlsError::Rustls`] if the provider cannot do TLS 1.3.
pub fn client_config(roots: RootCertStore) -> Result<ClientConfig, TlsError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_NTSKE.to_vec()];
    Ok(config)
}

/// A client config trusting the system's root certificates (see [`native_root_store`]).
///
/// # Errors
///
/// As [`native_root_store`], or [`TlsError::Rustls`] if the provider cannot do TLS 1.3.
pub fn client_config_native_roots() -> Result<ClientConfig, TlsError> {
    client_config(native_root_store()?)
}

/// A client config trusting only the CA certificates in `pem` (see
/// [`root_store_from_ca_pem`]).
///
/// # Errors
///
/// As [`root_store_from_ca_pem`], or [`TlsError::Rustls`] if the provider cannot do
/// TLS 1.3.
pub fn client_config_from_ca_pem(pem: &[u8]) -> Result<ClientConfig, TlsError> {
    client_config(root_store_from_ca_pem(pem)?)
}

/// A client config trusting only the CA certificates in the PEM file at `path` (see
/// [`root_store_from_ca_file`]).
///
/// # Errors
///
/// As [`root_store_from_ca_file`], or [`TlsError::Rustls`] if the provider cannot do
/// TLS 1.3.
pub fn client_config_from_ca_file(path: impl AsRef<Path>) -> Result<ClientConfig, TlsError> {
    client_config(root_store_from_ca_file(path)?)
}

/// The system's root certificates (rustls-native-certs), as a root store for any
/// rustls client config, not only an NTS-KE one.
///
/// Certificates the loader cannot parse are skipped.
///
/// # Errors
///
/// [`TlsError::NoRootCertificates`] if none could be loaded.
pub fn native_root_store() -> Result<RootCertStore, TlsError> {
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(loaded.certs);
    if roots.is_empty() {
        let detail = if loaded.errors.is_empty() {
            "none found".to_string()
        } else {
            loaded
                .errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        };
        return Err(TlsError::NoRootCertificates { detail });
    }
    Ok(roots)
}

/// The CA certificates in `pem` (one or more `CERTIFICATE` blocks; other blocks are
/// ignored), as a root store for any rustls client config.
///
/// # Errors
///
/// [`TlsError::Pem`] for bad PEM, [`TlsError::NoCertificates`] if there is no
/// certificate, or [`TlsError::Rustls`] if one is not a usable trust anchor.
pub fn root_store_from_ca_pem(pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>()?;
    roots_from(certs)
}

/// As [`root_store_from_ca_pem`], reading the PEM from the file at `path`.
///
/// # Errors
///
/// [`TlsError::CaFile`], naming `path`, with the reason: [`TlsError::Pem`] for an
/// unreadable file or bad PEM, or as [`root_store_from_ca_pem`].
pub fn root_store_from_ca_file(path: impl AsRef<Path>) -> Result<RootCertStore, TlsError> {
    let path = path.as_ref();
    CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(TlsError::Pem)
        .and_then(roots_from)
        .map_err(|reason| TlsError::CaFile {
            path: path.to_path_buf(),
            reason: Box::new(reason),
        })
}

fn roots_from(certs: Vec<CertificateDer<'static>>) -> Result<RootCertStore, TlsError> {
    if certs.is_empty() {
        return Err(TlsError::NoCertificates);
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert)?;
    }
    Ok(roots)
}

/// **For tests only.** A client config that accepts any server certificate for any name
/// (handshake signatures are still checked). It gives no protection against an active
/// attacker: never use it to set a clock.
///
/// # Errors
///
/// [`TlsError::Rustls`] if the provider cannot do TLS 1.3.
pub fn dangerous_client_config_no_verification() -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_NTSKE.to_vec()];
    Ok(config)
}

#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A server config (TLS 1.3, ALPN `ntske/1`, no client authentication) with the given
/// certificate chain (leaf first) and private key.
///
/// # Errors
///
/// [`TlsError::NoCertificates`] for an empty chain, [`TlsError::Rustls`] if the key does
/// not suit the provider or does not match the leaf.
pub fn server_config(
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, TlsError> {
    if cert_chain.is_empty() {
        return Err(TlsError::NoCertificates);
    }
    let mut config = ServerConfig::builder_with_provider(server_provider())
        .with_protocol_versions(&[&TLS13])?
        .with_no_client_auth()
        .with_single_cert(cert_chain, key)?;
    config.alpn_protocols = vec![ALPN_NTSKE.to_vec()];
    // Clients do not resume NTS-KE sessions: tickets would only cost time.
    config.send_tls13_tickets = 0;
    // Our suite order (AES-128/SHA-256 first), not the client's.
    config.ignore_client_order = true;
    Ok(config)
}

/// As [`server_config`], from PEM: `CERTIFICATE` blocks (leaf first) and one private key
/// (PKCS#8, PKCS#1 or SEC1).
///
/// # Errors
///
/// As [`server_config`], plus [`TlsError::Pem`] for bad PEM or a missing key.
pub fn server_config_from_pem(
    cert_chain_pem: &[u8],
    key_pem: &[u8],
) -> Result<ServerConfig, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_chain_pem).collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(key_pem)?;
    server_config(chain, key)
}

/// As [`server_config_from_pem`], reading both from files.
///
/// # Errors
///
/// As [`server_config_from_pem`]; an unreadable file is [`TlsError::Pem`].
pub fn server_config_from_pem_files(
    cert_chain_path: impl AsRef<Path>,
    key_path: impl AsRef<Path>,
) -> Result<ServerConfig, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert_chain_path)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(key_path)?;
    server_config(chain, key)
}

/// Post-handshake check, on both sides: the negotiated ALPN must be exactly `ntske/1`.
/// rustls lets a server complete a handshake with a client that offered no ALPN.
///
/// # Errors
///
/// [`TlsError::Alpn`] otherwise (including while still handshaking).
pub fn check_alpn<D>(conn: &ConnectionCommon<D>) -> Result<(), TlsError> {
    check_negotiated_alpn(conn.alpn_protocol())
}

/// [`check_alpn`] on the value of `alpn_protocol()`, for wrappers that expose only that.
///
/// # Errors
///
/// [`TlsError::Alpn`] unless `negotiated` is `Some(b"ntske/1")`.
pub fn check_negotiated_alpn(negotiated: Option<&[u8]>) -> Result<(), TlsError> {
    if negotiated == Some(ALPN_NTSKE) {
        Ok(())
    } else {
        Err(TlsError::Alpn {
            negotiated: negotiated.map(<[u8]>::to_vec),
        })
    }
}

/// Exports the C2S and S2C keys from a finished rustls connection (client or server; RFC
/// 8915 §5.1).
///
/// # Errors
///
/// [`ExportError`] for an unknown AEAD or if rustls refuses (handshake not complete).
pub fn export_keys<D>(
    conn: &ConnectionCommon<D>,
    protocol: ProtocolId,
    aead: AeadId,
) -> Result<SessionKeys, ExportError> {
    crate::export::export_keys(conn, protocol, aead)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpn_check() {
        assert!(check_negotiated_alpn(Some(b"ntske/1")).is_ok());
        for bad in [
            None,
            Some(&b"ntske/2"[..]),
            Some(&b"ntske/1\0"[..]),
            Some(&b""[..]),
        ] {
            assert!(
                matches!(check_negotiated_alpn(bad), Err(TlsError::Alpn { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn configs_are_tls13_with_alpn() {
        let config = dangerous_client_config_no_verification().expect("aws-lc-rs does tls 1.3");
        assert_eq!(config.alpn_protocols, vec![b"ntske/1".to_vec()]);
    }

    #[test]
    fn bad_pem_inputs() {
        assert!(matches!(
            client_config_from_ca_pem(b"not pem"),
            Err(TlsError::NoCertificates)
        ));
        assert!(matches!(
            server_config_from_pem(b"", b""),
            Err(TlsError::Pem(_))
        ));
        let e = client_config_from_ca_file("/nonexistent/ca.pem").unwrap_err();
        assert!(
            matches!(&e, TlsError::CaFile { path, reason }
                if path == Path::new("/nonexistent/ca.pem") && matches!(**reason, TlsError::Pem(_))),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with("CA file /nonexistent/ca.pem: pem: "),
            "{e}"
        );
    }

    #[test]
    fn ca_file_errors_name_the_file_and_the_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no pem here\n").expect("write");
        let e = root_store_from_ca_file(&empty).unwrap_err();
        assert!(
            matches!(&e, TlsError::CaFile { reason, .. } if matches!(**reason, TlsError::NoCertificates)),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            format!(
                "CA file {}: no certificate found in pem input",
                empty.display()
            )
        );

        let bad = dir.path().join("bad.pem");
        std::fs::write(
            &bad,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        let e = root_store_from_ca_file(&bad).unwrap_err();
        assert!(
            matches!(&e, TlsError::CaFile { reason, .. } if matches!(**reason, TlsError::Rustls(_))),
            "{e:?}"
        );
        assert!(e.to_string().contains(&bad.display().to_string()), "{e}");
        // The reason is in the message, not repeated as the source.
        assert!(std::error::Error::source(&e).is_none());
    }

    #[test]
    fn ca_file_roots_load() {
        let ca = rcgen::generate_simple_self_signed(vec!["ca.example".into()]).expect("rcgen");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, ca.cert.pem()).expect("write");
        assert_eq!(root_store_from_ca_file(&path).expect("loads").len(), 1);
        assert_eq!(
            root_store_from_ca_pem(ca.cert.pem().as_bytes())
                .expect("loads")
                .len(),
            1
        );
    }
}
