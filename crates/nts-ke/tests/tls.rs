//! A rustls client and server in memory (no sockets): certificates from rcgen, handshake
//! driven by moving bytes with `read_tls`/`write_tls`, the NTS-KE exchange run through our
//! state machines, and keys exported at both ends.
#![cfg(feature = "tls")]
#![allow(clippy::indexing_slicing)]

use std::io::{Read, Write};
use std::sync::Arc;

use nts_ke::client::{ClientConfig, ClientHandshake, ClientOutcome, ClientProgress};
use nts_ke::export::SessionKeys;
use nts_ke::record::{AeadId, ProtocolId};
use nts_ke::server::{ServerConfig, ServerDecision, ServerHandshake, ServerProgress};
use nts_ke::tls::{self, TlsError};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::{ClientConnection, ConnectionCommon, ServerConnection};
use rustls_pki_types::ServerName;

type BoxError = Box<dyn std::error::Error>;

const HOST: &str = "nts.test";

/// A CA and a leaf for `HOST` signed by it, as PEM.
struct Pki {
    ca_pem: String,
    chain_pem: String,
    key_pem: String,
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "nts-ke test ca");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key"))
        .expect("ca cert");
    let leaf_key = KeyPair::generate().expect("key");
    let leaf = CertificateParams::new(vec![HOST.to_owned()])
        .expect("params")
        .signed_by(&leaf_key, &ca)
        .expect("leaf cert");
    Pki {
        ca_pem: ca.pem(),
        chain_pem: leaf.pem(),
        key_pem: leaf_key.serialize_pem(),
    }
}

fn connections(
    trusted: &Pki,
    served: &Pki,
    alpn: bool,
) -> Result<(ClientConnection, ServerConnection), BoxError> {
    let mut client_config = tls::client_config_from_ca_pem(trusted.ca_pem.as_bytes())?;
    if !alpn {
        client_config.alpn_protocols.clear();
    }
    let server_config =
        tls::server_config_from_pem(served.chain_pem.as_bytes(), served.key_pem.as_bytes())?;
    let client = ClientConnection::new(
        Arc::new(client_config),
        ServerName::try_from(HOST)?.to_owned(),
    )?;
    let server = ServerConnection::new(Arc::new(server_config))?;
    Ok((client, server))
}

/// Moves pending TLS records from `from` to `to`; true if anything moved.
fn transfer<A, B>(
    from: &mut ConnectionCommon<A>,
    to: &mut ConnectionCommon<B>,
) -> Result<bool, BoxError> {
    let mut moved = false;
    while from.wants_write() {
        let mut wire = Vec::new();
        from.write_tls(&mut wire)?;
        let mut rest = &wire[..];
        while !rest.is_empty() {
            to.read_tls(&mut rest)?;
            to.process_new_packets()?;
        }
        moved = true;
    }
    Ok(moved)
}

/// Runs both ends until neither has anything to send.
fn pump(client: &mut ClientConnection, server: &mut ServerConnection) -> Result<(), BoxError> {
    loop {
        let a = transfer(client, server)?;
        let b = transfer(server, client)?;
        if !a && !b {
            return Ok(());
        }
    }
}

/// All plaintext the connection has buffered.
fn drain_plaintext<D>(conn: &mut ConnectionCommon<D>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        match conn.reader().read(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// A full NTS-KE session where the client offers only `aead`.
fn session(aead: AeadId) -> Result<(ClientOutcome, SessionKeys, SessionKeys), BoxError> {
    let pki = pki();
    let (mut client_tls, mut server_tls) = connections(&pki, &pki, true)?;

    let mut client_config = ClientConfig::default();
    client_config.aead_algorithms = vec![aead];
    let mut client = ClientHandshake::new(Arc::new(client_config))?;
    let mut server = ServerHandshake::new(Arc::new(ServerConfig::default()))?;

    client_tls.writer().write_all(client.request_bytes())?;
    pump(&mut client_tls, &mut server_tls)?;
    assert!(!client_tls.is_handshaking() && !server_tls.is_handshaking());
    tls::check_alpn(&client_tls)?;
    tls::check_alpn(&server_tls)?;

    let request = drain_plaintext(&mut server_tls);
    let ServerProgress::Done(ServerDecision::Accept(accept)) = server.receive(&request)? else {
        return Err("server did not accept".into());
    };
    assert_eq!(accept.aead(), aead);
    let server_keys = tls::export_keys(&server_tls, accept.protocol(), accept.aead())?;
    // Stand-in for nts-cookie: 8 cookies that depend on the keys.
    let cookies: Vec<Vec<u8>> = (0u8..8)
        .map(|i| {
            let mut c = vec![i; 4];
            c.extend_from_slice(&server_keys.c2s[..16]);
            c
        })
        .collect();
    server_tls
        .writer()
        .write_all(&accept.response_bytes(&cookies)?)?;
    server_tls.send_close_notify();
    pump(&mut client_tls, &mut server_tls)?;

    let response = drain_plaintext(&mut client_tls);
    let ClientProgress::Done(outcome) = client.receive(&response)? else {
        return Err("response incomplete".into());
    };
    assert_eq!(outcome.cookies, cookies);
    let client_keys = tls::export_keys(&client_tls, outcome.protocol, outcome.aead)?;
    Ok((outcome, client_keys, server_keys))
}

#[test]
fn both_ends_export_the_same_keys() -> Result<(), BoxError> {
    for (aead, len) in [
        (AeadId::AES_SIV_CMAC_256, 32),
        (AeadId::AES_SIV_CMAC_512, 64),
    ] {
        let (outcome, client_keys, server_keys) = session(aead)?;
        assert_eq!(outcome.protocol, ProtocolId::NTPV4);
        assert_eq!(outcome.aead, aead);
        assert_eq!(client_keys.c2s.len(), len);
        assert_eq!(client_keys.s2c.len(), len);
        assert_eq!(*client_keys.c2s, *server_keys.c2s, "{aead}");
        assert_eq!(*client_keys.s2c, *server_keys.s2c, "{aead}");
        assert_ne!(*client_keys.c2s, *client_keys.s2c, "{aead}");
        assert_ne!(*client_keys.c2s, vec![0u8; len]);
    }
    Ok(())
}

#[test]
fn keys_differ_between_sessions_and_aeads() -> Result<(), BoxError> {
    let (_, a, _) = session(AeadId::AES_SIV_CMAC_256)?;
    let (_, b, _) = session(AeadId::AES_SIV_CMAC_256)?;
    assert_ne!(*a.c2s, *b.c2s);
    Ok(())
}

#[test]
fn generic_exporter_matches_tls_helper() -> Result<(), BoxError> {
    let pki = pki();
    let (mut client_tls, mut server_tls) = connections(&pki, &pki, true)?;
    pump(&mut client_tls, &mut server_tls)?;
    let via_trait = nts_ke::export::export_keys(&client_tls, ProtocolId::NTPV4, AeadId(15))?;
    let via_tls = tls::export_keys(&server_tls, ProtocolId::NTPV4, AeadId(15))?;
    assert_eq!(via_trait, via_tls);
    Ok(())
}

#[test]
fn export_before_handshake_fails() -> Result<(), BoxError> {
    let pki = pki();
    let (client_tls, _server_tls) = connections(&pki, &pki, true)?;
    assert!(tls::export_keys(&client_tls, ProtocolId::NTPV4, AeadId(15)).is_err());
    assert!(matches!(
        tls::check_alpn(&client_tls),
        Err(TlsError::Alpn { negotiated: None })
    ));
    Ok(())
}

#[test]
fn client_without_alpn_is_rejected_by_the_check() -> Result<(), BoxError> {
    let pki = pki();
    let (mut client_tls, mut server_tls) = connections(&pki, &pki, false)?;
    pump(&mut client_tls, &mut server_tls)?;
    // rustls completes the handshake; our check is what refuses it.
    assert!(!server_tls.is_handshaking());
    assert!(matches!(
        tls::check_alpn(&server_tls),
        Err(TlsError::Alpn { negotiated: None })
    ));
    assert!(tls::check_alpn(&client_tls).is_err());
    Ok(())
}

#[test]
fn wrong_ca_fails_verification() -> Result<(), BoxError> {
    let trusted = pki();
    let served = pki();
    let (mut client_tls, mut server_tls) = connections(&trusted, &served, true)?;
    let err = pump(&mut client_tls, &mut server_tls).expect_err("unknown issuer");
    let err = err.downcast::<rustls::Error>().expect("a rustls error");
    assert!(
        matches!(*err, rustls::Error::InvalidCertificate(_)),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn dangerous_client_accepts_unknown_ca() -> Result<(), BoxError> {
    let served = pki();
    let server_config =
        tls::server_config_from_pem(served.chain_pem.as_bytes(), served.key_pem.as_bytes())?;
    let mut client_tls = ClientConnection::new(
        Arc::new(tls::dangerous_client_config_no_verification()?),
        ServerName::try_from("other.name")?.to_owned(),
    )?;
    let mut server_tls = ServerConnection::new(Arc::new(server_config))?;
    pump(&mut client_tls, &mut server_tls)?;
    tls::check_alpn(&client_tls)?;
    Ok(())
}

#[test]
fn configs_from_pem_files() -> Result<(), BoxError> {
    let pki = pki();
    let dir = tempfile::tempdir()?;
    let ca = dir.path().join("ca.pem");
    let chain = dir.path().join("chain.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&ca, &pki.ca_pem)?;
    std::fs::write(&chain, &pki.chain_pem)?;
    std::fs::write(&key, &pki.key_pem)?;
    let mut client_tls = ClientConnection::new(
        Arc::new(tls::client_config_from_ca_file(&ca)?),
        ServerName::try_from(HOST)?.to_owned(),
    )?;
    let mut server_tls =
        ServerConnection::new(Arc::new(tls::server_config_from_pem_files(&chain, &key)?))?;
    pump(&mut client_tls, &mut server_tls)?;
    tls::check_alpn(&server_tls)?;
    Ok(())
}

#[test]
fn mismatched_key_is_refused() {
    let a = pki();
    let b = pki();
    assert!(matches!(
        tls::server_config_from_pem(a.chain_pem.as_bytes(), b.key_pem.as_bytes()),
        Err(TlsError::Rustls(_))
    ));
}

#[test]
fn server_picks_aes128_sha256_and_issues_no_tickets() -> Result<(), BoxError> {
    let pki = pki();
    let (mut client, mut server) = connections(&pki, &pki, true)?;
    pump(&mut client, &mut server)?;
    assert!(!client.is_handshaking() && !server.is_handshaking());
    // rustls clients list AES-256/SHA-384 first; the server's order wins.
    assert_eq!(
        server.negotiated_cipher_suite().map(|s| s.suite()),
        Some(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256)
    );
    assert_eq!(
        client.negotiated_cipher_suite().map(|s| s.suite()),
        Some(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256)
    );
    assert_eq!(client.tls13_tickets_received(), 0);
    // The other suites are still there for clients that lack AES-128-GCM.
    let suites: Vec<_> = tls::server_provider()
        .cipher_suites
        .iter()
        .map(|s| s.suite())
        .collect();
    assert_eq!(
        suites.first(),
        Some(&rustls::CipherSuite::TLS13_AES_128_GCM_SHA256)
    );
    assert!(suites.contains(&rustls::CipherSuite::TLS13_AES_256_GCM_SHA384));
    assert!(suites.contains(&rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256));
    Ok(())
}
