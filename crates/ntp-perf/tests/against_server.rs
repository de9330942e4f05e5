//! The generator against a tiny in-test NTP responder: all answered, or half.
#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use ntp_perf::{Config, Mode, PerfError, Rate};
use ntp_proto::{
    Header, LeapIndicator, Mode as NtpMode, NtpShort, NtpTimestamp, ReferenceId, SystemInfo,
    UnixTime,
};

/// The system clock, as an honest server stamps T2 and T3.
fn now() -> NtpTimestamp {
    NtpTimestamp::from_unix(UnixTime::from_system_time(std::time::SystemTime::now()))
}

struct Responder {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl Responder {
    /// Answers client requests; with `drop_every` = n, ignores every n-th.
    fn spawn(drop_every: Option<u64>) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let system = SystemInfo {
                leap: LeapIndicator::NoWarning,
                stratum: 1,
                precision: -20,
                root_delay: NtpShort::ZERO,
                root_dispersion: NtpShort::ZERO,
                reference_id: ReferenceId::from_ascii("TEST").unwrap(),
                reference_timestamp: NtpTimestamp::ZERO,
            };
            let mut buf = [0u8; 2048];
            let mut seen = 0u64;
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let received = now();
                let Ok(request) = Header::parse(&buf[..n]) else {
                    continue;
                };
                if request.mode != NtpMode::Client {
                    continue;
                }
                seen += 1;
                if drop_every.is_some_and(|d| seen % d == 0) {
                    continue;
                }
                let reply = Header::server_response(&request, &system, received, now());
                let _ = socket.send_to(&reply.to_bytes(), from);
            }
            seen
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

fn config(port: u16) -> Config {
    let mut config = Config::new(Mode::Plain, "127.0.0.1");
    config.port = Some(port);
    config.rate = Rate::PerSecond(2000.0);
    config.duration = Duration::from_secs(2);
    config.clients = 4;
    config.reply_timeout = Duration::from_millis(300);
    config.server_pid = Some(std::process::id());
    config
}

#[test]
fn every_request_answered() {
    let responder = Responder::spawn(None);
    let report = ntp_perf::run(&config(responder.addr.port())).unwrap();
    let seen = responder.stop();
    eprintln!("{report}");
    assert!((3800..=4100).contains(&report.sent), "{report}");
    assert!((report.offered_rate - 2000.0).abs() < 60.0, "{report}");
    assert!(
        report.answered as f64 >= 0.99 * report.sent as f64,
        "{report}"
    );
    assert!(report.loss_pct < 1.0, "{report}");
    assert_eq!(seen, report.sent);
    assert_eq!(report.invalid + report.unmatched + report.nts_naks, 0);
    assert!(report.kods.is_empty());
    assert!(report.latency_us.p50.is_some() && report.latency_us.p99.is_some());
    // The responder reads the same clock: no reply goes back in time, the
    // offset a client would compute is small (the exact figures depend on
    // scheduling, so the bounds are loose: a wrong sign, epoch or unit in
    // the four-timestamp arithmetic is off by far more), and the delay a
    // client computes is never more than the round trip.
    assert_eq!(report.negative_residence, 0, "{report}");
    let lag = report.reply_lag_us.p50.unwrap();
    assert!((0.0..20_000.0).contains(&lag), "{report}");
    assert!(report.offset_abs_us.p50.unwrap() < 20_000.0, "{report}");
    assert!(report.offset_mean_us.unwrap().abs() < 20_000.0, "{report}");
    assert!(report.delay_us.max.unwrap() <= report.latency_us.max.unwrap() + 1.0);
    assert!(report.residence_us.p50.is_some() && report.request_lag_us.p50.is_some());
    // The "server" is this very process here.
    assert!(report.server_cpu_s.is_some() && report.server_cpu_s_per_million.is_some());
    // The kernel's share is part of the whole, never more.
    let (Some(all), Some(kernel)) = (report.server_cpu_s, report.server_system_s) else {
        panic!("no kernel share: {report}");
    };
    assert!((0.0..=all).contains(&kernel), "{report}");
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["mode"], "plain");
    assert!(json["server_system_s_per_million"].is_number());
}

#[test]
fn half_the_requests_dropped() {
    let responder = Responder::spawn(Some(2));
    let report = ntp_perf::run(&config(responder.addr.port())).unwrap();
    responder.stop();
    eprintln!("{report}");
    assert!((report.loss_pct - 50.0).abs() < 2.0, "{report}");
    assert!((report.answered_rate - 1000.0).abs() < 50.0, "{report}");
}

#[test]
fn remote_targets_are_refused() {
    let mut config = config(123);
    config.host = "192.0.2.1".into();
    config.server_pid = None;
    assert!(matches!(
        ntp_perf::run(&config),
        Err(PerfError::NotLoopback(_))
    ));
}
