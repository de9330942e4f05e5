#![allow(missing_docs)] // criterion_group! generates undocumented items

//! `ntp-server` request handler: `ServerCore::handle` end to end, with rate limiting
//! on (4096 entries). Throughput is in requests.
//!
//! - `plain`: a 48-byte client request from 1024 rotating clients, cutoff 0 so every
//!   request passes the rate-limit lookup and is answered;
//! - `plain-kod-rate`: the same client again inside the cutoff, answered with a RATE
//!   kiss;
//! - `plain-new-clients`: a new source every time, so each request evicts an entry;
//! - `nts`: an NTS request with 1 cookie and no placeholders (AEAD 15, 192 bytes),
//!   answered with 1 fresh cookie.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ntp_proto::{Header, LeapIndicator, NtpShort, NtpTimestamp, ReferenceId, SystemInfo};
use ntp_server::core::{
    CoreConfig, RateLimitAction, RateLimitConfig, ReplyKind, Request, ServerCore,
};
use nts_cookie::packet::seal_request;
use nts_cookie::{AeadAlgorithm, CookieJar, CookieKeys, KeySet, KeySetConfig};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn system() -> SystemInfo {
    SystemInfo {
        leap: LeapIndicator::NoWarning,
        stratum: 1,
        precision: -20,
        root_delay: NtpShort::ZERO,
        root_dispersion: NtpShort::ZERO,
        reference_id: ReferenceId::from_ascii("GPS").expect("valid name"),
        reference_timestamp: NtpTimestamp::from_seconds_and_fraction(3_913_056_000, 0),
    }
}

fn core(cutoff_ms: u64) -> ServerCore {
    let config = CoreConfig {
        rate_limit: Some(RateLimitConfig {
            capacity: 4096,
            cutoff_ms,
            action: RateLimitAction::Kod,
        }),
        ..CoreConfig::default()
    };
    ServerCore::new(config, 0x5eed)
}

fn handle(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(0xbe4c);
    let keys = KeySet::random(KeySetConfig::default(), 1_700_000_000, &mut rng)
        .expect("default config is valid");
    let system = system();
    let t = NtpTimestamp::from_seconds_and_fraction(3_913_056_001, 0);
    let plain = Header::client_request(6, 0x0123_4567_89ab_cdef).to_bytes();

    let cookie_keys = CookieKeys::generate(AeadAlgorithm::AesSivCmac256, &mut rng);
    let mut jar = CookieJar::with_cookies(
        cookie_keys.clone(),
        [keys.seal_cookie(&cookie_keys, &mut rng)],
    )
    .expect("one cookie");
    let nts = seal_request(&Header::client_request(6, 1), &mut jar, 0, &mut rng)
        .expect("the jar has a cookie");
    assert_eq!(nts.placeholders, 0);

    let mut g = c.benchmark_group("server-handle");
    g.throughput(Throughput::Elements(1));

    let mut run = |name: &str, core: &ServerCore, bytes: &[u8], from: &dyn Fn(u64) -> IpAddr| {
        let mut out = Vec::with_capacity(1280);
        let mut i = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                let request = Request {
                    from: from(i),
                    bytes: black_box(bytes),
                    receive: t,
                    now_ms: i,
                };
                core.handle(&request, &system, &keys, || t, &mut rng, &mut out)
            })
        });
    };

    let plain_core = core(0);
    run("plain", &plain_core, &plain, &|i| {
        IpAddr::V4(Ipv4Addr::from((i % 1024) as u32))
    });
    assert_eq!(
        plain_core.metrics().replies(ReplyKind::Plain),
        plain_core.metrics().received()
    );

    let kod_core = core(u64::MAX);
    run("plain-kod-rate", &kod_core, &plain, &|_| {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    });
    assert_eq!(
        kod_core.metrics().replies(ReplyKind::KissRate) + 1,
        kod_core.metrics().received()
    );

    let evict_core = core(1000);
    run("plain-new-clients", &evict_core, &plain, &|i| {
        IpAddr::V4(Ipv4Addr::from(i as u32))
    });

    let nts_core = core(0);
    run("nts", &nts_core, &nts.bytes, &|i| {
        IpAddr::V4(Ipv4Addr::from((i % 1024) as u32))
    });
    assert_eq!(
        nts_core.metrics().replies(ReplyKind::Nts),
        nts_core.metrics().received()
    );
    g.finish();
}

criterion_group!(benches, handle);
criterion_main!(benches);
