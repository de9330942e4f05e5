//! Access lists, rate limiting and require-nts, seen from a client on
//! 127.0.0.1: what comes back (a kiss, a time reply, or nothing) and which
//! counters move.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use common::{Extra, Server, block_on, kiss_code, nts_request, raw_exchange, reply_uid};
use ntp_proto::{Header, KissCode, Mode, PacketView};

const SHORT: Duration = Duration::from_millis(300);

fn server_with(lines: &str) -> Server {
    Server::start(Extra {
        server: lines.to_string(),
        ..Extra::default()
    })
}

/// A plain client request with a recognisable transmit timestamp.
fn plain_request(tag: u64) -> Vec<u8> {
    Header::client_request(6, 0x5eed_0000_0000_0000 | tag)
        .to_bytes()
        .to_vec()
}

/// Asserts `reply` is a normal (non-kiss) server reply to `request`.
fn assert_time_reply(reply: &[u8], request: &[u8]) {
    let view = PacketView::new(reply).unwrap();
    let req = PacketView::new(request).unwrap();
    let h = view.header();
    assert_eq!(h.mode, Mode::Server);
    assert_eq!(h.kiss_code(), None, "{h:?}");
    assert_eq!(h.stratum, 1);
    assert_eq!(h.origin_timestamp, req.header().transmit_timestamp);
}

/// Asserts that the plain path of `server` answers with kiss `code`, both to a
/// raw request and to ntp-io, and that the NTS path's reply is that kiss with
/// our Unique Identifier echoed (unauthenticated, so ntp-io's strict NTS
/// client ignores it and times out).
fn assert_refused_with_kiss(server: &Server, code: KissCode) {
    let request = plain_request(1);
    let reply = raw_exchange(server.ntp_addr(), &request, SHORT).expect("no reply to plain");
    assert_eq!(
        kiss_code(&reply),
        Some(code),
        "{:?}",
        PacketView::new(&reply)
    );
    assert_eq!(reply.len(), 48);
    let h = *PacketView::new(&reply).unwrap().header();
    assert_eq!(h.stratum, 0);
    assert_eq!(h.origin_timestamp.to_bits(), 0x5eed_0000_0000_0001);

    match block_on(ntp_io::query("127.0.0.1", &server.options(false))) {
        Err(ntp_io::QueryError::Kiss { code: got, .. }) => assert_eq!(got, code),
        other => panic!("expected Kiss-o'-Death {code}, got {other:?}"),
    }

    // NTS: key exchange is not subject to the NTP access lists; the NTP
    // request then gets the kiss, echoing the UID.
    let mut ke = server.key_exchange();
    let (request, uid, transmit) = nts_request(&mut ke.jar);
    let reply = raw_exchange(server.ntp_addr(), &request, SHORT).expect("no reply to NTS");
    assert_eq!(kiss_code(&reply), Some(code));
    assert!(reply.len() <= request.len());
    assert_eq!(reply_uid(&reply).as_deref(), Some(&uid[..]));
    assert_eq!(
        PacketView::new(&reply).unwrap().header().origin_timestamp,
        transmit
    );
    let mut options = server.options(true);
    options.retries = 0;
    match block_on(ntp_io::query("localhost", &options)) {
        Err(ntp_io::QueryError::Kiss { code: got, .. }) => assert_eq!(got, code),
        Err(ntp_io::QueryError::Unreachable { rejected, .. }) => assert!(rejected >= 1),
        other => panic!("NTS query to a refused client: {other:?}"),
    }
}

#[test]
fn denylist_deny_sends_kiss_deny_on_plain_and_nts() {
    let server = server_with("denylist = { filter = [\"127.0.0.0/8\"], action = \"deny\" }");
    assert_refused_with_kiss(&server, KissCode::DENY);
    assert!(server.metric("ntp_server_responses_total{kind=\"kod_deny\"}") >= 3);
    assert_eq!(
        server.metric("ntp_server_responses_total{kind=\"plain\"}"),
        0
    );
    assert_eq!(server.metric("ntp_server_responses_total{kind=\"nts\"}"), 0);
}

#[test]
fn denylist_ignore_sends_nothing() {
    let server = server_with("denylist = { filter = [\"127.0.0.0/8\"], action = \"ignore\" }");
    assert_eq!(
        raw_exchange(server.ntp_addr(), &plain_request(1), SHORT),
        None
    );
    let mut options = server.options(false);
    options.timeout = SHORT;
    options.retries = 0;
    match block_on(ntp_io::query("127.0.0.1", &options)) {
        Err(ntp_io::QueryError::Unreachable { rejected: 0, .. }) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    let mut ke = server.key_exchange();
    let (request, _, _) = nts_request(&mut ke.jar);
    assert_eq!(raw_exchange(server.ntp_addr(), &request, SHORT), None);
    assert_eq!(
        server.metric("ntp_server_requests_dropped_total{reason=\"access_ignore\"}"),
        3
    );
    assert_eq!(
        server.metric("ntp_server_responses_total{kind=\"kod_deny\"}"),
        0
    );
}

#[test]
fn allowlist_without_loopback_refuses_loopback() {
    let server = server_with("allowlist = { filter = [\"10.0.0.0/8\"], action = \"deny\" }");
    assert_refused_with_kiss(&server, KissCode::DENY);
}

#[test]
fn allowlist_containing_loopback_serves_it() {
    // The counterpart of the test above: the allowlist really is what refuses.
    let server = server_with(
        "allowlist = { filter = [\"10.0.0.0/8\", \"127.0.0.1/32\"], action = \"deny\" }",
    );
    let request = plain_request(2);
    let reply = raw_exchange(server.ntp_addr(), &request, SHORT).unwrap();
    assert_time_reply(&reply, &request);
    block_on(ntp_io::query("localhost", &server.options(true))).unwrap();
}

#[test]
fn deny_wins_when_both_lists_match() {
    let server = server_with(
        "allowlist = { filter = [\"127.0.0.0/8\"], action = \"deny\" }\n\
         denylist = { filter = [\"127.0.0.1/32\"], action = \"deny\" }",
    );
    let reply = raw_exchange(server.ntp_addr(), &plain_request(3), SHORT).unwrap();
    assert_eq!(kiss_code(&reply), Some(KissCode::DENY));
    assert_eq!(
        server.metric("ntp_server_responses_total{kind=\"kod_deny\"}"),
        1
    );
}

#[test]
fn rate_limit_kod() {
    let server = server_with("rate-limiting-cache-size = 1000\nrate-limiting-cutoff-ms = 1000");
    let first = plain_request(1);
    let reply = raw_exchange(server.ntp_addr(), &first, SHORT).expect("first request");
    assert_time_reply(&reply, &first);

    let second = plain_request(2);
    let reply = raw_exchange(server.ntp_addr(), &second, SHORT).expect("second request");
    assert_eq!(kiss_code(&reply), Some(KissCode::RATE));
    let h = *PacketView::new(&reply).unwrap().header();
    assert_eq!(h.origin_timestamp.to_bits(), 0x5eed_0000_0000_0002);
    assert_eq!(reply.len(), 48);
    assert_eq!(
        server.metric("ntp_server_responses_total{kind=\"kod_rate\"}"),
        1
    );

    // Every request, limited or not, restarts the clock: wait past the
    // cutoff after the limited one.
    std::thread::sleep(Duration::from_millis(1200));
    let third = plain_request(3);
    let reply = raw_exchange(server.ntp_addr(), &third, SHORT).expect("after the cutoff");
    assert_time_reply(&reply, &third);

    // ntp-io reports the kiss as such.
    match block_on(ntp_io::query("127.0.0.1", &server.options(false))) {
        Err(ntp_io::QueryError::Kiss { code, .. }) => assert_eq!(code, KissCode::RATE),
        other => panic!("expected RATE, got {other:?}"),
    }
    assert_eq!(
        server.metric("ntp_server_responses_total{kind=\"kod_rate\"}"),
        2
    );
    assert_eq!(
        server.metric("ntp_server_responses_total{kind=\"plain\"}"),
        2
    );
}

#[test]
fn rate_limit_drop() {
    let server = server_with(
        "rate-limiting-cache-size = 1000\nrate-limiting-cutoff-ms = 1000\nrate-limit-action = \"drop\"",
    );
    let first = plain_request(1);
    let reply = raw_exchange(server.ntp_addr(), &first, SHORT).expect("first request");
    assert_time_reply(&reply, &first);
    assert_eq!(
        raw_exchange(server.ntp_addr(), &plain_request(2), SHORT),
        None
    );
    assert_eq!(
        server.metric("ntp_server_requests_dropped_total{reason=\"rate_limit\"}"),
        1
    );
    assert_eq!(
        server.metric("ntp_server_responses_total{kind=\"kod_rate\"}"),
        0
    );
    std::thread::sleep(Duration::from_millis(1100));
    let third = plain_request(3);
    let reply = raw_exchange(server.ntp_addr(), &third, SHORT).expect("after the cutoff");
    assert_time_reply(&reply, &third);
}

#[test]
fn rate_limit_applies_to_nts_with_uid_echoed() {
    let server = server_with("rate-limiting-cache-size = 1000\nrate-limiting-cutoff-ms = 1000");
    let mut ke = server.key_exchange();
    let (first, _, _) = nts_request(&mut ke.jar);
    let reply = raw_exchange(server.ntp_addr(), &first, SHORT).unwrap();
    assert_eq!(kiss_code(&reply), None);
    let (second, uid, _) = nts_request(&mut ke.jar);
    let reply = raw_exchange(server.ntp_addr(), &second, SHORT).unwrap();
    assert_eq!(kiss_code(&reply), Some(KissCode::RATE));
    assert_eq!(reply_uid(&reply).as_deref(), Some(&uid[..]));
    assert!(reply.len() <= second.len());
}

#[test]
fn require_nts_drops_plain_and_serves_nts() {
    let server = server_with("require-nts = true");
    assert_eq!(
        raw_exchange(server.ntp_addr(), &plain_request(1), SHORT),
        None
    );
    let mut options = server.options(false);
    options.timeout = SHORT;
    options.retries = 0;
    assert!(matches!(
        block_on(ntp_io::query("127.0.0.1", &options)),
        Err(ntp_io::QueryError::Unreachable { rejected: 0, .. })
    ));
    let m = block_on(ntp_io::query("localhost", &server.options(true))).unwrap();
    assert!(m.nts.is_some());
    assert_eq!(
        server.metric("ntp_server_requests_dropped_total{reason=\"require_nts\"}"),
        2
    );
    assert_eq!(server.metric("ntp_server_responses_total{kind=\"nts\"}"), 1);
    assert_eq!(
        server.metric("ntp_server_responses_total{kind=\"plain\"}"),
        0
    );
}

#[test]
fn require_nts_ignore_is_the_same() {
    let server = server_with("require-nts = \"ignore\"");
    assert_eq!(
        raw_exchange(server.ntp_addr(), &plain_request(1), SHORT),
        None
    );
    block_on(ntp_io::query("localhost", &server.options(true))).unwrap();
}

#[test]
fn require_nts_deny_sends_kiss_deny_to_plain() {
    // docs/ntp-server.toml: `"deny"`: plain requests "get a kiss-o'-death DENY".
    let server = server_with("require-nts = \"deny\"");
    let reply = raw_exchange(server.ntp_addr(), &plain_request(1), SHORT);
    assert_eq!(
        reply.as_deref().and_then(kiss_code),
        Some(KissCode::DENY),
        "plain request with require-nts = \"deny\" got {reply:?}"
    );
    block_on(ntp_io::query("localhost", &server.options(true))).unwrap();
}
