//! An NTS query, end to end, with the libraries alone (`ntp-proto`, `nts-ke`,
//! `nts-cookie`), rustls and std sockets: no async runtime.
//!
//! To run anywhere without a network it also starts a minimal NTS server on
//! loopback (an NTS-KE listener and an NTP responder, each one thread), with
//! a throwaway certificate. The client part — key exchange, cookie jar,
//! sealed request, verified response — is what you would copy to query a
//! real server: give `key_exchange` its name, NTS-KE port and a TLS config
//! with its CA (or the system roots), and send to the port it returns.
//!
//! `cargo run -p ntp-examples --example nts_loopback`

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ntp_proto::{
    Header, LeapIndicator, NtpShort, NtpTimestamp, PacketView, ReferenceId, SystemInfo, UnixTime,
};
use nts_cookie::packet::{nts_nak, open_request, open_response, seal_request, seal_response};
use nts_cookie::{AeadAlgorithm, CookieJar, CookieKeys, KeySet, KeySetConfig};
use nts_ke::server::{ServerDecision, ServerProgress};
use nts_ke::{ClientHandshake, ClientProgress, ServerHandshake};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn now() -> NtpTimestamp {
    NtpTimestamp::from_unix(UnixTime::from_system_time(SystemTime::now()))
}

fn main() -> Result<(), Error> {
    // --- a throwaway server on loopback ---------------------------------
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.signing_key.serialize_pem());
    let unix_now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)?
        .as_secs();
    let keys = Arc::new(KeySet::random(
        KeySetConfig::default(),
        unix_now,
        &mut rand::rng(),
    )?);
    let ntp = UdpSocket::bind("127.0.0.1:0")?;
    let ke = TcpListener::bind("127.0.0.1:0")?;
    let (ntp_port, ke_port) = (ntp.local_addr()?.port(), ke.local_addr()?.port());
    let tls_server = Arc::new(nts_ke::tls::server_config_from_pem(
        cert_pem.as_bytes(),
        key_pem.as_bytes(),
    )?);
    let ke_keys = keys.clone();
    std::thread::spawn(move || serve_ke(ke, tls_server, ke_keys, ntp_port));
    std::thread::spawn(move || serve_ntp(ntp, keys));

    // --- the client: what you would copy ---------------------------------
    let tls_client = Arc::new(nts_ke::tls::client_config_from_ca_pem(cert_pem.as_bytes())?);
    let (aead, mut jar, port) = key_exchange("localhost", ke_port, tls_client)?;
    println!(
        "NTS-KE: AEAD {aead}, {} cookies, NTP port {port}",
        jar.len()
    );

    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(Duration::from_secs(2)))?;
    socket.connect(("127.0.0.1", port))?;
    let request = Header::client_request(6, rand::random());
    let sealed = seal_request(&request, &mut jar, 1280, &mut rand::rng())?;
    let t1 = now();
    socket.send(&sealed.bytes)?;
    let mut buf = [0u8; 2048];
    let n = socket.recv(&mut buf)?;
    let t4 = now();
    let mut reply = open_response(
        buf.get(..n).unwrap_or_default(),
        &sealed.uid,
        request.transmit_timestamp,
        jar.keys(),
    )?;
    let stored = reply.store_cookies(&mut jar);
    let h = reply.header;
    let offset = ((h.receive_timestamp - t1) + (h.transmit_timestamp - t4)).half();
    println!(
        "authenticated reply: stratum {} offset {:+.6} s, {stored} new cookie(s), {} held",
        h.stratum,
        offset.to_seconds_f64(),
        jar.len()
    );
    Ok(())
}

/// NTS-KE client: TLS 1.3 + ALPN, request, response, exported keys.
fn key_exchange(
    host: &str,
    port: u16,
    tls: Arc<rustls::ClientConfig>,
) -> Result<(AeadAlgorithm, CookieJar, u16), Error> {
    let name = rustls_pki_types::ServerName::try_from(host.to_string())?;
    let conn = rustls::ClientConnection::new(tls, name)?;
    let mut stream = rustls::StreamOwned::new(conn, TcpStream::connect((host, port))?);
    stream.sock.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut handshake = ClientHandshake::new(Arc::new(nts_ke::ClientConfig::default()))?;
    stream.write_all(handshake.request_bytes())?;
    let mut buf = [0u8; 4096];
    let outcome = loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err("server closed before End of Message".into());
        }
        if let ClientProgress::Done(outcome) =
            handshake.receive(buf.get(..n).unwrap_or_default())?
        {
            break outcome;
        }
    };
    nts_ke::tls::check_alpn(&stream.conn)?;
    let session = nts_ke::tls::export_keys(&stream.conn, outcome.protocol, outcome.aead)?;
    let aead = AeadAlgorithm::from_id(outcome.aead.0).ok_or("unsupported AEAD")?;
    let keys = CookieKeys::new(aead, &session.c2s, &session.s2c)?;
    let jar = CookieJar::with_cookies(keys, outcome.cookies)?;
    Ok((aead, jar, outcome.port.unwrap_or(123)))
}

/// NTS-KE server for one connection at a time (enough for an example).
fn serve_ke(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    keys: Arc<KeySet>,
    ntp_port: u16,
) {
    let mut config = nts_ke::server::ServerConfig::default();
    config.ntp_port = Some(ntp_port);
    let config = Arc::new(config);
    for stream in listener.incoming().flatten() {
        let result = (|| -> Result<(), Error> {
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            let conn = rustls::ServerConnection::new(tls.clone())?;
            let mut tls_stream = rustls::StreamOwned::new(conn, stream);
            let mut handshake = ServerHandshake::new(config.clone())?;
            let mut buf = [0u8; 1024];
            let decision = loop {
                let n = tls_stream.read(&mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                if let ServerProgress::Done(d) =
                    handshake.receive(buf.get(..n).unwrap_or_default())?
                {
                    break d;
                }
            };
            nts_ke::tls::check_alpn(&tls_stream.conn)?;
            let response = match decision {
                ServerDecision::Reject(rejection) => rejection.response_bytes(),
                ServerDecision::Accept(accept) => {
                    let session = nts_ke::tls::export_keys(
                        &tls_stream.conn,
                        accept.protocol(),
                        accept.aead(),
                    )?;
                    let aead = AeadAlgorithm::from_id(accept.aead().0).ok_or("unsupported AEAD")?;
                    let client_keys = CookieKeys::new(aead, &session.c2s, &session.s2c)?;
                    let cookies: Vec<Vec<u8>> = (0..8)
                        .map(|_| keys.seal_cookie(&client_keys, &mut rand::rng()))
                        .collect();
                    accept.response_bytes(&cookies)?
                }
            };
            tls_stream.write_all(&response)?;
            tls_stream.conn.send_close_notify();
            tls_stream.flush()?;
            Ok(())
        })();
        if let Err(e) = result {
            eprintln!("NTS-KE connection failed: {e}");
        }
    }
}

/// NTS NTP responder: open the request, answer with fresh cookies or a NAK.
fn serve_ntp(socket: UdpSocket, keys: Arc<KeySet>) {
    let system = SystemInfo {
        leap: LeapIndicator::NoWarning,
        stratum: 1,
        precision: -20,
        root_delay: NtpShort::ZERO,
        root_dispersion: NtpShort::from_seconds_f64(0.001),
        reference_id: ReferenceId::from_ascii("LOCL").unwrap_or_default(),
        reference_timestamp: now(),
    };
    let mut buf = [0u8; 2048];
    let mut out = Vec::with_capacity(2048);
    while let Ok((n, peer)) = socket.recv_from(&mut buf) {
        let received = now();
        let request = buf.get(..n).unwrap_or_default();
        out.clear();
        match open_request(request, &keys) {
            Ok(opened) => {
                let header = Header::server_response(&opened.header, &system, received, now());
                if seal_response(&header, &opened, &keys, &mut rand::rng(), &mut out).is_err() {
                    continue;
                }
            }
            Err(e) => match e.uid() {
                // A cookie we cannot open: tell the client (RFC 8915 §5.7).
                Some(uid) => match PacketView::new(request) {
                    Ok(view) => nts_nak(view.header(), uid, &system, received, now(), &mut out),
                    Err(_) => continue,
                },
                // Malformed: drop silently.
                None => continue,
            },
        }
        let _ = socket.send_to(&out, peer);
    }
}
