//! Pool members that stop answering are replaced by another address of the
//! pool's name. The pool "resolves" (through [`Resolver::with`]) to loopback
//! addresses: 127.0.0.2, where nothing listens, and 127.0.0.3, where a small
//! NTP responder started by the test answers.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ntp_clock::SourceConfig;
use ntp_io::sync::{self, EngineConfig, ObserveClock, Resolver, SourceMode, SourceSpec, Status};
use ntp_proto::{Header, LeapIndicator, NtpShort, ReferenceId, SystemInfo};
use tokio::sync::watch;

/// Answers NTP requests on `ip` until dropped.
struct Responder {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Responder {
    fn start(ip: &str) -> Self {
        let socket = UdpSocket::bind((ip, 0)).expect("bind responder");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let addr = socket.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let system = SystemInfo {
                leap: LeapIndicator::NoWarning,
                stratum: 1,
                precision: -20,
                root_delay: NtpShort::ZERO,
                root_dispersion: NtpShort::ZERO,
                reference_id: ReferenceId::from_ascii("TEST").unwrap_or(ReferenceId::NONE),
                reference_timestamp: ntp_io::udp::now(),
            };
            let mut buf = [0u8; 512];
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let receive = ntp_io::udp::now();
                let Ok(request) = Header::parse(&buf[..n]) else {
                    continue;
                };
                let reply = Header::server_response(&request, &system, receive, ntp_io::udp::now());
                let _ = socket.send_to(&reply.to_bytes(), from);
            }
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A pool of one member, polled every second, unreachable after 2 misses.
fn config(resolver: Resolver) -> EngineConfig {
    EngineConfig {
        sources: vec![SourceSpec {
            mode: SourceMode::Pool,
            address: "pool.test".into(),
            ca_file: None,
            count: 1,
        }],
        source: SourceConfig {
            min_poll: 0,
            max_poll: 0,
            burst: false,
            unreach_polls: 2,
            ..SourceConfig::default()
        },
        timeout: Duration::from_millis(300),
        resolver,
        ..EngineConfig::default()
    }
}

/// Runs the engine on its own thread until `until` holds for a status or
/// `limit` passes; returns the last status.
fn run_until(config: EngineConfig, limit: Duration, until: impl Fn(&Status) -> bool) -> Status {
    let (status_tx, mut status_rx) = watch::channel(Status::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let thread =
        sync::spawn_thread(config, ObserveClock::new(), status_tx, stop_rx).expect("engine thread");
    let start = Instant::now();
    let mut last = Status::default();
    while start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(100));
        last = status_rx.borrow_and_update().clone();
        if until(&last) {
            break;
        }
    }
    let _ = stop_tx.send(true);
    let joined = thread.join().expect("engine thread panicked");
    assert!(joined.is_ok(), "engine failed: {joined:?}");
    last
}

#[test]
fn an_unreachable_pool_member_is_replaced() {
    let alive = Responder::start("127.0.0.3");
    let port = alive.addr.port();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    // The dead address comes first, so the pool starts with it.
    let resolver = Resolver::with(move |host, p| {
        assert_eq!((host, p), ("pool.test", 123));
        counter.fetch_add(1, Ordering::Relaxed);
        ["127.0.0.2", "127.0.0.3"]
            .iter()
            .filter_map(|ip| ip.parse::<IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, port))
            .collect()
    });
    let status = run_until(config(resolver), Duration::from_secs(15), |s| {
        s.sources.first().is_some_and(|src| src.reach != 0)
    });
    let source = status.sources.first().expect("one source");
    assert_eq!(source.address, alive.addr.to_string(), "{status:?}");
    assert_eq!(source.name, "pool.test");
    assert_ne!(source.reach, 0, "{status:?}");
    assert!(source.offset.abs() < 0.1, "{status:?}");
    // Once at start, once for the replacement.
    assert_eq!(calls.load(Ordering::Relaxed), 2);
}

#[test]
fn without_an_unused_address_the_member_stays_and_waits() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    // Only the dead address: nothing to replace it with.
    let resolver = Resolver::with(move |_, _| {
        counter.fetch_add(1, Ordering::Relaxed);
        vec![SocketAddr::from(([127, 0, 0, 2], 9))]
    });
    let status = run_until(config(resolver), Duration::from_secs(6), |_| false);
    let source = status.sources.first().expect("one source");
    assert_eq!(source.address, "127.0.0.2:9", "{status:?}");
    assert_eq!(source.reach, 0);
    assert_eq!(source.state, "unreachable", "{status:?}");
    // Start, one attempt when it became unreachable, then quiet for
    // POOL_RETRY (five minutes) although it polls every second.
    assert_eq!(calls.load(Ordering::Relaxed), 2);
}
