//! Hostile clients against the real server: a flood of garbage datagrams,
//! forged and replayed NTS requests, and NTS-KE clients that break the rules
//! or hold connections open. Everything on loopback, bounded in time.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::HashMap;
use std::io::Read as _;
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::{
    Extra, Server, block_on, ke_raw_exchange, kiss_code, nts_request, raw_exchange, reply_uid,
};
use ntp_proto::{Header, KissCode, Mode, PacketView};
use nts_cookie::packet::{ResponseError, open_response};
use nts_cookie::{AeadAlgorithm, CookieJar, CookieKeys};
use nts_ke::record::{Record, RecordType, encode_records};
use nts_ke::{AeadId, ErrorCode, ProtocolId};
use rand::{Rng as _, RngCore as _};

const SHORT: Duration = Duration::from_millis(300);

// ---------------------------------------------------------------------------
// 1. Garbage flood

/// One datagram the server must not answer: truncated, a bad version, a mode
/// other than client, or a client header whose extension fields are broken.
fn garbage(rng: &mut impl rand::Rng, i: usize) -> Vec<u8> {
    let mut header = Header::client_request(6, rng.next_u64())
        .to_bytes()
        .to_vec();
    match i % 5 {
        // Random bytes, 0..48 long: a truncated header.
        0 => {
            let mut b = vec![0u8; rng.random_range(0..48)];
            rng.fill_bytes(&mut b);
            b
        }
        // A wrong version (0, 5, 6 or 7), any mode, random length.
        1 => {
            let version = [0u8, 5, 6, 7][rng.random_range(0..4)];
            let mut b = vec![0u8; rng.random_range(48..=1500)];
            rng.fill_bytes(&mut b);
            b[0] = (b[0] & 0b1100_0111) | (version << 3);
            b
        }
        // Version 4, every mode but 3, random length.
        2 => {
            let mode = [0u8, 1, 2, 4, 5, 6, 7][rng.random_range(0..7)];
            let mut b = vec![0u8; rng.random_range(48..=1500)];
            rng.fill_bytes(&mut b);
            b[0] = (b[0] & 0b1100_0000) | (4 << 3) | mode;
            b
        }
        // A client request whose extension field has a bad length.
        3 => {
            let (ty, len): (u16, u16) = match rng.random_range(0..4) {
                0 => (0x0104, 0),       // shorter than its own header
                1 => (0x0104, 0xfff0),  // past the end of the packet
                2 => (0x0204, 33),      // not a multiple of 4
                _ => (rng.random(), 8), // too short to be a field (min 16)
            };
            header.extend_from_slice(&ty.to_be_bytes());
            header.extend_from_slice(&len.to_be_bytes());
            let mut body = vec![0u8; 4 * rng.random_range(10..300)];
            rng.fill_bytes(&mut body);
            header.extend_from_slice(&body);
            header
        }
        // A client header plus random garbage of an odd length.
        _ => {
            let mut body = vec![0u8; 4 * rng.random_range(7..300) + rng.random_range(1..4)];
            rng.fill_bytes(&mut body);
            header.extend_from_slice(&body);
            header
        }
    }
}

/// Whether a client-side parse says the server must stay silent.
fn must_be_ignored(datagram: &[u8]) -> bool {
    match PacketView::new(datagram) {
        Err(_) => true,
        Ok(view) => view.header().mode != Mode::Client,
    }
}

fn dropped(server: &Server) -> (u64, u64, u64) {
    let m = server.metrics();
    let get = |reason: &str| {
        let prefix = format!("ntp_server_requests_dropped_total{{reason=\"{reason}\"}} ");
        m.lines()
            .find_map(|l| l.strip_prefix(&prefix).and_then(|v| v.parse().ok()))
            .unwrap_or(0u64)
    };
    (
        get("malformed"),
        get("unsupported_version"),
        get("wrong_mode"),
    )
}

#[test]
fn garbage_flood_is_ignored_and_good_clients_are_served() {
    const FLOOD: usize = 20_000;
    let mut server = Server::start(Extra::default());
    let rss_before = server.rss_kib();
    let mut rng = rand::rng();
    let datagrams: Vec<Vec<u8>> = (0..FLOOD)
        .map(|i| garbage(&mut rng, i))
        .filter(|d| must_be_ignored(d))
        .collect();
    assert!(datagrams.len() > FLOOD * 99 / 100, "{}", datagrams.len());

    // A good client queries while the flood runs, and after.
    let options = server.options(false);
    let good = std::thread::spawn(move || {
        let mut results = Vec::new();
        for _ in 0..20 {
            results.push(block_on(ntp_io::query("127.0.0.1", &options)).map(|m| m.stratum));
            std::thread::sleep(Duration::from_millis(30));
        }
        results
    });

    let flooder = UdpSocket::bind("127.0.0.1:0").unwrap();
    flooder.connect(server.ntp_addr()).unwrap();
    let started = Instant::now();
    let mut sent = 0u64;
    for d in &datagrams {
        // ENOBUFS and the like are part of a flood; keep going.
        if flooder.send(d).is_ok() {
            sent += 1;
        }
    }
    let flood_time = started.elapsed();

    let results = good.join().unwrap();
    for (i, r) in results.iter().enumerate() {
        assert!(
            matches!(r, Ok(1)),
            "good query {i} failed during the flood: {r:?}"
        );
    }

    // Not one reply to the flood.
    flooder
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 2048];
    let mut replies = 0;
    while flooder.recv(&mut buf).is_ok() {
        replies += 1;
    }
    assert_eq!(replies, 0, "the server answered garbage");

    // Counted by reason. The kernel may drop part of a flood before the
    // server sees it, so the counts are bounded by what was sent and each
    // reason must have moved.
    let (malformed, version, mode) = dropped(&server);
    let counted = malformed + version + mode;
    eprintln!(
        "sent {sent} in {flood_time:?}; counted malformed {malformed}, version {version}, mode {mode}"
    );
    assert!(counted <= sent, "{counted} > {sent}");
    assert!(counted >= sent / 2, "only {counted} of {sent} counted");
    assert!(malformed > 0 && version > 0 && mode > 0);
    // 20 good queries (a retry after a lost datagram may add a few).
    let plain = server.metric("ntp_server_responses_total{kind=\"plain\"}");
    assert!((20..=40).contains(&plain), "{plain} plain replies");

    assert!(server.alive(), "server died:\n{}", server.log());
    let growth = server.rss_kib().saturating_sub(rss_before);
    assert!(growth < 64 * 1024, "RSS grew by {growth} KiB");
}

#[test]
fn client_requests_with_trailing_garbage_never_get_a_larger_reply() {
    let mut server = Server::start(Extra::default());
    let mut rng = rand::rng();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(server.ntp_addr()).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    // Transmit timestamp → request length.
    let mut sent: HashMap<u64, usize> = HashMap::new();
    let mut answered = 0;
    let mut buf = [0u8; 2048];
    for batch in 0..20 {
        for i in 0..20 {
            let transmit = rng.next_u64();
            let mut d = Header::client_request(6, transmit).to_bytes().to_vec();
            // 4 and 20–24 bytes are read as a MAC (answered); the rest as
            // extension fields, mostly broken (dropped).
            let extra = match (batch + i) % 4 {
                0 => [4usize, 20, 24][i % 3],
                1 => rng.random_range(1..64),
                _ => rng.random_range(1..1400),
            };
            let mut tail = vec![0u8; extra];
            rng.fill_bytes(&mut tail);
            d.extend_from_slice(&tail);
            sent.insert(transmit, d.len());
            socket.send(&d).unwrap();
        }
        while let Ok(n) = socket.recv(&mut buf) {
            let view = PacketView::new(&buf[..n]).unwrap();
            let origin = view.header().origin_timestamp.to_bits();
            let request_len = *sent
                .get(&origin)
                .unwrap_or_else(|| panic!("reply to nothing we sent: {view:?}"));
            assert!(n <= request_len, "{n}-byte reply to {request_len} bytes");
            answered += 1;
        }
    }
    assert!(answered >= 20, "only {answered} answered");
    assert!(server.alive());
    assert_eq!(
        server.metric("ntp_server_requests_dropped_total{reason=\"amplification_guard\"}"),
        0
    );
}

// ---------------------------------------------------------------------------
// 2. NTS forgery and replay

#[test]
fn forged_cookie_gets_an_nts_nak_with_the_uid() {
    let server = Server::start(Extra::default());
    let real = server.key_exchange();
    let cookie_len = real.jar.cookie_len().unwrap();
    let mut rng = rand::rng();
    for algorithm in [AeadAlgorithm::AesSivCmac256, AeadAlgorithm::AesSivCmac512] {
        let cookies: Vec<Vec<u8>> = (0..4)
            .map(|_| {
                let mut c = vec![0u8; cookie_len];
                rng.fill_bytes(&mut c);
                c
            })
            .collect();
        let mut jar =
            CookieJar::with_cookies(CookieKeys::generate(algorithm, &mut rng), cookies).unwrap();
        let (request, uid, transmit) = nts_request(&mut jar);
        let reply = raw_exchange(server.ntp_addr(), &request, SHORT).expect("no NAK");
        assert_eq!(kiss_code(&reply), Some(KissCode::NTSN));
        assert_eq!(reply_uid(&reply).as_deref(), Some(&uid[..]));
        assert!(reply.len() <= request.len());
        assert_eq!(
            open_response(&reply, &uid, transmit, jar.keys()),
            Err(ResponseError::NtsNak)
        );
    }
    assert_eq!(
        server.metric("ntp_server_responses_total{kind=\"nts_nak\"}"),
        2
    );
    assert_eq!(server.metric("ntp_server_responses_total{kind=\"nts\"}"), 0);
}

#[test]
fn real_cookie_with_wrong_keys_gets_an_nts_nak() {
    // A stolen cookie is useless without the keys it seals.
    let server = Server::start(Extra::default());
    let mut real = server.key_exchange();
    let cookie = real.jar.take().unwrap();
    let mut rng = rand::rng();
    let mut jar =
        CookieJar::with_cookies(CookieKeys::generate(real.aead, &mut rng), vec![cookie]).unwrap();
    let (request, uid, _) = nts_request(&mut jar);
    let reply = raw_exchange(server.ntp_addr(), &request, SHORT).expect("no NAK");
    assert_eq!(kiss_code(&reply), Some(KissCode::NTSN));
    assert_eq!(reply_uid(&reply).as_deref(), Some(&uid[..]));
}

#[test]
fn replayed_nts_request_is_answered_afresh_and_never_larger() {
    let server = Server::start(Extra::default());
    let mut ke = server.key_exchange();
    let (request, uid, transmit) = nts_request(&mut ke.jar);
    let mut replies = Vec::new();
    for _ in 0..2 {
        let reply = raw_exchange(server.ntp_addr(), &request, SHORT).expect("no reply");
        assert!(
            reply.len() <= request.len(),
            "{} > {}",
            reply.len(),
            request.len()
        );
        let opened = open_response(&reply, &uid, transmit, ke.jar.keys()).unwrap();
        assert_eq!(opened.kiss_code, None);
        assert_eq!(opened.cookies.len(), 1);
        replies.push((reply, opened));
        std::thread::sleep(Duration::from_millis(5));
    }
    let (a, b) = (&replies[0].1, &replies[1].1);
    assert!(
        (b.header.transmit_timestamp - a.header.transmit_timestamp).to_seconds_f64() > 0.0,
        "{:?} then {:?}",
        a.header.transmit_timestamp,
        b.header.transmit_timestamp
    );
    assert_ne!(a.cookies, b.cookies, "fresh cookies each time");
    assert_ne!(replies[0].0, replies[1].0);
    assert_eq!(server.metric("ntp_server_responses_total{kind=\"nts\"}"), 2);
}

// ---------------------------------------------------------------------------
// 3. NTS-KE hostile clients

fn ke_request(extra: Vec<Record>) -> Vec<u8> {
    let mut records = vec![
        Record::next_protocol(vec![ProtocolId::NTPV4]),
        Record::aead_algorithm(vec![AeadId::AES_SIV_CMAC_256]),
    ];
    records.extend(extra);
    records.push(Record::end_of_message());
    encode_records(&records).unwrap()
}

fn error_code(records: &[Record]) -> Option<ErrorCode> {
    records.iter().find_map(|r| match r {
        Record::Error { code, .. } => Some(*code),
        _ => None,
    })
}

fn has_cookies(records: &[Record]) -> bool {
    records
        .iter()
        .any(|r| matches!(r, Record::NewCookie { .. }))
}

#[test]
fn ke_well_formed_request_gets_cookies() {
    // The baseline for the raw exchanges below.
    let server = Server::start(Extra::default());
    let records = ke_raw_exchange(server.ke_port, &server.pki.ca, &ke_request(vec![])).unwrap();
    assert_eq!(error_code(&records), None, "{records:?}");
    assert_eq!(
        records
            .iter()
            .filter(|r| matches!(r, Record::NewCookie { .. }))
            .count(),
        8
    );
}

#[test]
fn ke_unknown_critical_record_gets_error_0() {
    let server = Server::start(Extra::default());
    let unknown = Record::Unknown {
        record_type: RecordType(0x1234),
        critical: true,
        body: vec![1, 2, 3, 4],
    };
    let records =
        ke_raw_exchange(server.ke_port, &server.pki.ca, &ke_request(vec![unknown])).unwrap();
    assert_eq!(
        error_code(&records),
        Some(ErrorCode::UNRECOGNIZED_CRITICAL_RECORD),
        "{records:?}"
    );
    assert!(!has_cookies(&records));
    assert_eq!(
        server.metric("ntp_server_nts_ke_failures_total{reason=\"rejected\"}"),
        1
    );
    // The same record without the critical bit is ignored.
    let harmless = Record::Unknown {
        record_type: RecordType(0x1234),
        critical: false,
        body: vec![1, 2, 3, 4],
    };
    let records =
        ke_raw_exchange(server.ke_port, &server.pki.ca, &ke_request(vec![harmless])).unwrap();
    assert!(has_cookies(&records), "{records:?}");
}

#[test]
fn ke_client_error_record_gets_error_1() {
    let server = Server::start(Extra::default());
    let request = ke_request(vec![Record::error(ErrorCode::INTERNAL_SERVER_ERROR)]);
    let records = ke_raw_exchange(server.ke_port, &server.pki.ca, &request).unwrap();
    assert_eq!(
        error_code(&records),
        Some(ErrorCode::BAD_REQUEST),
        "{records:?}"
    );
    assert!(!has_cookies(&records));
}

#[test]
fn ke_oversized_request_is_refused_without_cookies() {
    let server = Server::start(Extra {
        ke: "max-request-bytes = 1024".into(),
        ..Extra::default()
    });
    let padding = Record::Unknown {
        record_type: RecordType(0x1234),
        critical: false,
        body: vec![0x55; 2000],
    };
    let request = ke_request(vec![padding]);
    assert!(request.len() > 1024);
    match ke_raw_exchange(server.ke_port, &server.pki.ca, &request) {
        Ok(records) => {
            assert!(!has_cookies(&records), "{records:?}");
            assert!(
                records.is_empty() || error_code(&records) == Some(ErrorCode::BAD_REQUEST),
                "{records:?}"
            );
        }
        Err(e) => eprintln!("connection closed: {e}"),
    }
    assert_eq!(server.metric("ntp_server_nts_ke_handshakes_total"), 0);
    // A request just under the limit is served.
    let small = Record::Unknown {
        record_type: RecordType(0x1234),
        critical: false,
        body: vec![0x55; 900],
    };
    let request = ke_request(vec![small]);
    assert!(request.len() <= 1024);
    let records = ke_raw_exchange(server.ke_port, &server.pki.ca, &request).unwrap();
    assert!(has_cookies(&records), "{records:?}");
}

/// Starts `n` TCP connections to the NTS-KE port that send `send` and then
/// nothing more.
fn stall(port: u16, n: usize, send: &[u8]) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            use std::io::Write as _;
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            if !send.is_empty() {
                s.write_all(send).unwrap();
            }
            s
        })
        .collect()
}

/// Waits until every stream is closed by the peer (EOF or reset); returns
/// how many were still open at `deadline`.
fn wait_closed(streams: &mut [TcpStream], deadline: Instant) -> usize {
    let mut open = 0;
    for s in streams.iter_mut() {
        let mut buf = [0u8; 512];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                open += 1;
                break;
            }
            s.set_read_timeout(Some(left)).unwrap();
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue, // a TLS alert or the like; wait for the close
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    open += 1;
                    break;
                }
                Err(_) => break, // reset: closed
            }
        }
    }
    open
}

/// The first 100 bytes of a TLS 1.3 ClientHello record header claiming more.
fn half_client_hello() -> Vec<u8> {
    let mut b = vec![
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    b.resize(100, 0x42);
    b
}

fn slow_clients(stalled: usize, limit_secs: f64) {
    const SLOTS: usize = 4;
    const TIMEOUT_MS: u64 = 500;
    let server = Server::start(Extra {
        ke: format!("concurrent-connections = {SLOTS}\nkey-exchange-timeout-ms = {TIMEOUT_MS}"),
        ..Extra::default()
    });
    let started = Instant::now();
    let mut idle = stall(server.ke_port, stalled / 2, &[]);
    let mut half = stall(server.ke_port, stalled - stalled / 2, &half_client_hello());
    let mut options = server.options(true);
    options.timeout = Duration::from_secs(12);
    let m = block_on(ntp_io::query("localhost", &options));
    let took = started.elapsed();
    assert!(m.is_ok(), "{m:?}");
    eprintln!("NTS client behind {stalled} stalled connections took {took:?}");
    assert!(
        took.as_secs_f64() < limit_secs,
        "NTS client behind {stalled} stalled connections took {took:?}"
    );

    // Each stalled connection is closed at most one timeout after it got a
    // slot; the last got one after ceil(stalled / SLOTS) timeouts.
    let rounds = stalled.div_ceil(SLOTS) as u64;
    let deadline = started + Duration::from_millis(rounds * TIMEOUT_MS + 2000);
    assert_eq!(
        wait_closed(&mut idle, deadline),
        0,
        "idle sockets left open"
    );
    assert_eq!(
        wait_closed(&mut half, deadline),
        0,
        "half-hello sockets left open"
    );
    let timeouts = server.metric("ntp_server_nts_ke_failures_total{reason=\"timeout\"}");
    assert!(
        timeouts >= stalled as u64 - 1,
        "{timeouts} timeouts counted for {stalled} stalled connections\n{}",
        server.metrics()
    );
    assert_eq!(server.metric("ntp_server_nts_ke_handshakes_total"), 1);
}

#[test]
fn ke_slow_clients_are_timed_out_and_do_not_starve_others() {
    // 12 stalled connections on 4 slots: three rounds of 500 ms.
    slow_clients(12, 5.0);
}

#[test]
fn ke_fifty_slow_clients_do_not_starve_others() {
    slow_clients(50, 5.0);
}

/// Thousands of idle NTS-KE connections: the server keeps accepting (it
/// raised its open-file limit), idle sockets hold no exchange slot, and an
/// honest client is served at once; memory stays bounded.
#[test]
fn ke_thousands_of_idle_connections_do_not_block_service() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    // This test process needs the descriptors too.
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    let count: usize = 3000.min(usize::try_from(hard).unwrap_or(3000).saturating_sub(200));
    assert!(
        count >= 2000,
        "hard open-file limit {hard} is too low for this test"
    );

    let server = Server::start(Extra::default());
    let rss_before = server.rss_kib();
    let idle: Vec<TcpStream> = (0..count)
        .map(|_| TcpStream::connect(("127.0.0.1", server.ke_port)).unwrap())
        .collect();
    let started = Instant::now();
    let m = block_on(ntp_io::query("localhost", &server.options(true))).unwrap();
    assert!(m.nts.is_some());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    let grown = server.rss_kib().saturating_sub(rss_before);
    assert!(
        grown < 64 * 1024,
        "RSS grew by {grown} KiB for {count} connections"
    );
    drop(idle);
}
