//! Per-client state stays bounded: one request from each of 1,000,000
//! distinct source addresses (loopback owns all of 127.0.0.0/8) through the
//! real server with rate limiting on, and its resident memory barely moves.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use common::{Extra, Server};
use ntp_proto::Header;

const SOURCES: u32 = 1_000_000;

#[test]
fn a_million_distinct_sources_keep_memory_bounded() {
    let server = Server::start(Extra {
        server: "rate-limiting-cache-size = 4096\nrate-limiting-cutoff-ms = 1000\n".into(),
        ..Extra::default()
    });
    let target = server.ntp_addr();
    let request = Header::client_request(6, 0x1234_5678_9abc_def0).to_bytes();
    // Warm up (from distinct addresses too, so nothing is rate limited),
    // then take the baseline.
    for i in 0..100u8 {
        let s = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::new(127, 0, 1, i), 0)).unwrap();
        s.send_to(&request, target).unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    let before = server.rss_kib();

    let started = Instant::now();
    for i in 0..SOURCES {
        // 127.1.0.0 upwards: a new source address every time.
        let n = (1 << 16) + i;
        let ip = Ipv4Addr::new(127, (n >> 16) as u8, (n >> 8) as u8, n as u8);
        let s = UdpSocket::bind(SocketAddrV4::new(ip, 0)).unwrap();
        s.send_to(&request, target).unwrap();
    }
    // Let the server drain its queue.
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.metric("ntp_server_requests_received_total") < u64::from(SOURCES) / 2 {
        assert!(
            Instant::now() < deadline,
            "server received too little:\n{}",
            server.metrics()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = server.rss_kib();
    let received = server.metric("ntp_server_requests_received_total");
    let answered = server.metric("ntp_server_responses_total{kind=\"plain\"}");
    eprintln!(
        "{SOURCES} sources in {:?}: received {received}, answered {answered}, RSS {before} KiB -> {after} KiB",
        started.elapsed()
    );
    // Each distinct source is new to the rate limiter, so each is answered
    // (none is limited); the table evicts and memory stays flat.
    assert!(received >= u64::from(SOURCES) / 2, "{received}");
    assert_eq!(
        server.metric("ntp_server_responses_total{kind=\"kod_rate\"}"),
        0
    );
    assert!(
        after.saturating_sub(before) < 8 * 1024,
        "RSS grew from {before} to {after} KiB"
    );
}
