//! `ntp-client query` against misbehaving servers built in the test with
//! `ntp-proto`: every failure exits 1 with a line that says which.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use ntp_proto::{
    Header, KissCode, LeapIndicator, NtpShort, NtpTimestamp, PacketView, ReferenceId, SystemInfo,
};
use support::{failure, json_lines, ntp_client};

fn system() -> SystemInfo {
    SystemInfo {
        leap: LeapIndicator::NoWarning,
        stratum: 2,
        precision: -20,
        root_delay: NtpShort::from_seconds_f64(0.01),
        root_dispersion: NtpShort::from_seconds_f64(0.02),
        reference_id: ReferenceId::from_bytes([192, 0, 2, 1]),
        reference_timestamp: NtpTimestamp::from_seconds_and_fraction(3_900_000_000, 0),
    }
}

/// Answers every request with `reply(request)` for a few seconds.
fn serve(reply: impl Fn(&Header) -> Vec<u8> + Send + 'static) -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let port = socket.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let started = Instant::now();
        let mut buf = [0u8; 2048];
        while started.elapsed() < Duration::from_secs(8) {
            if let Ok((n, from)) = socket.recv_from(&mut buf) {
                if let Ok(view) = PacketView::new(&buf[..n]) {
                    let _ = socket.send_to(&reply(view.header()), from);
                }
            }
        }
    });
    port
}

fn now() -> NtpTimestamp {
    ntp_io::udp::now()
}

fn query(port: u16) -> std::process::Output {
    ntp_client(&[
        "query",
        "--port",
        &port.to_string(),
        "--timeout",
        "0.5",
        "--retries",
        "1",
        "127.0.0.1",
    ])
}

#[test]
fn honest_server_gives_offset_and_its_fields() {
    // The server's clock runs 2.5 s ahead.
    let ahead = ntp_proto::NtpDuration::from_seconds_f64(2.5);
    let port = serve(move |req| {
        let t = now() + ahead;
        Header::server_response(req, &system(), t, t)
            .to_bytes()
            .to_vec()
    });
    let out = ntp_client(&["query", "--json", "--port", &port.to_string(), "127.0.0.1"]);
    let s = &json_lines(&out)[0];
    let offset = s["offset"].as_f64().unwrap();
    assert!((offset - 2.5).abs() < 0.01, "{s}");
    assert_eq!(s["stratum"], 2);
    assert_eq!(s["reference_id"], "c0000201");
}

#[test]
fn rate_kiss_of_death_is_reported() {
    let port = serve(|req| {
        Header::kiss_of_death(req, KissCode::RATE, &system(), now(), now())
            .to_bytes()
            .to_vec()
    });
    let err = failure(&query(port));
    assert!(err.contains("Kiss-o'-Death RATE"), "{err}");
}

#[test]
fn deny_kiss_of_death_is_reported() {
    let port = serve(|req| {
        Header::kiss_of_death(req, KissCode::DENY, &system(), now(), now())
            .to_bytes()
            .to_vec()
    });
    let err = failure(&query(port));
    assert!(err.contains("Kiss-o'-Death DENY"), "{err}");
    assert!(err.contains("stop sending"), "{err}");
}

#[test]
fn reply_to_someone_else_is_ignored() {
    // Origin = our transmit + 1: not an answer to our request (an off-path
    // forgery or a replay). The client keeps waiting and finally says so.
    let port = serve(|req| {
        let mut forged = req.to_owned();
        forged.transmit_timestamp += ntp_proto::NtpDuration::from_bits(1);
        Header::server_response(&forged, &system(), now(), now())
            .to_bytes()
            .to_vec()
    });
    let err = failure(&query(port));
    assert!(err.contains("no valid reply"), "{err}");
    assert!(err.contains("origin timestamp does not match"), "{err}");
}

#[test]
fn unsynchronized_server_is_reported() {
    let port = serve(|req| {
        let unsynced = SystemInfo {
            leap: LeapIndicator::Unsynchronized,
            stratum: 16,
            ..system()
        };
        Header::server_response(req, &unsynced, now(), now())
            .to_bytes()
            .to_vec()
    });
    let err = failure(&query(port));
    assert!(err.contains("not synchronized"), "{err}");
}

#[test]
fn garbage_replies_are_ignored_until_timeout() {
    let port = serve(|_| vec![0xde, 0xad, 0xbe, 0xef]);
    let err = failure(&query(port));
    assert!(err.contains("2 reply(ies) rejected"), "{err}");
    assert!(err.contains("malformed"), "{err}");
}

#[test]
fn bad_arguments_exit_2() {
    let out = ntp_client(&["query", "--count", "0", "127.0.0.1"]);
    assert_eq!(out.status.code(), Some(2));
    let out = ntp_client(&["query", "--nts", "--ca", "/nonexistent/ca.pem", "127.0.0.1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/ca.pem"));
}
