#![allow(missing_docs)] // criterion_group! generates undocumented items

//! `nts-cookie` hot paths, AEAD 15 with 104-byte cookies: cookie seal and open, the
//! four NTS packet steps for a request with 1 cookie and 7 placeholders answered
//! with 8 cookies (988 bytes each way), and the server's steps for the common
//! 1-cookie request (192 bytes) answered with 1 cookie, separately and together.
//! Throughput is in packets (or cookies).

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ntp_proto::{Header, LeapIndicator, NtpShort, NtpTimestamp, ReferenceId, SystemInfo};
use nts_cookie::packet::{open_request, open_response, seal_request, seal_response};
use nts_cookie::{AeadAlgorithm, CookieJar, CookieKeys, KeySet, KeySetConfig};
use rand::SeedableRng;
use rand::rngs::StdRng;

const MAX_PACKET: usize = 1280;

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

struct Setup {
    rng: StdRng,
    server: KeySet,
    keys: CookieKeys,
    /// A jar holding one cookie: its request asks for 7 more.
    jar: CookieJar,
}

fn setup() -> Setup {
    let mut rng = StdRng::seed_from_u64(0xbe4c);
    let server = KeySet::random(KeySetConfig::default(), 1_700_000_000, &mut rng)
        .expect("default config is valid");
    let keys = CookieKeys::generate(AeadAlgorithm::AesSivCmac256, &mut rng);
    let jar = CookieJar::with_cookies(keys.clone(), [server.seal_cookie(&keys, &mut rng)])
        .expect("one cookie");
    Setup {
        rng,
        server,
        keys,
        jar,
    }
}

fn cookie(c: &mut Criterion) {
    let Setup {
        mut rng,
        server,
        keys,
        ..
    } = setup();
    let sealed = server.seal_cookie(&keys, &mut rng);
    let mut g = c.benchmark_group("nts-cookie-aead15");
    g.throughput(Throughput::Elements(1));
    g.bench_function("seal", |b| {
        b.iter(|| server.seal_cookie(black_box(&keys), &mut rng))
    });
    g.bench_function("open", |b| {
        b.iter(|| server.open_cookie(black_box(&sealed)))
    });
    g.finish();
}

fn packets(c: &mut Criterion) {
    let Setup {
        mut rng,
        server,
        keys,
        jar,
    } = setup();
    let header = Header::client_request(6, 0x0123_4567_89ab_cdef);
    let now = NtpTimestamp::from_seconds_and_fraction(3_913_056_001, 0);

    let request = seal_request(&header, &mut jar.clone(), MAX_PACKET, &mut rng)
        .expect("the jar has a cookie");
    assert_eq!(request.placeholders, 7);
    let opened = open_request(&request.bytes, &server).expect("valid request");
    assert_eq!(opened.cookies_wanted, 8);
    let reply_header = Header::server_response(&opened.header, &system(), now, now);
    let mut reply = Vec::new();
    seal_response(&reply_header, &opened, &server, &mut rng, &mut reply).expect("fits");
    assert_eq!(reply.len(), request.bytes.len());
    let check = open_response(&reply, &request.uid, header.transmit_timestamp, &keys)
        .expect("valid response");
    assert_eq!(check.cookies.len(), 8);

    let mut g = c.benchmark_group("nts-packet-aead15");
    g.throughput(Throughput::Elements(1));
    g.bench_function("client-request-seal-1+7", |b| {
        b.iter_batched(
            || jar.clone(),
            |mut jar| seal_request(black_box(&header), &mut jar, MAX_PACKET, &mut rng),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("server-request-open", |b| {
        b.iter(|| open_request(black_box(&request.bytes), &server).map(|o| o.cookies_wanted))
    });
    g.bench_function("server-response-seal-8", |b| {
        let mut out = Vec::with_capacity(1500);
        b.iter(|| {
            seal_response(
                black_box(&reply_header),
                &opened,
                &server,
                &mut rng,
                &mut out,
            )
        })
    });
    g.bench_function("client-response-open-8", |b| {
        b.iter(|| {
            open_response(
                black_box(&reply),
                &request.uid,
                header.transmit_timestamp,
                &keys,
            )
        })
    });

    // The common case, as in the `server` bench: 1 cookie in (192 bytes, no
    // placeholder), 1 cookie out.
    let small = seal_request(&header, &mut jar.clone(), 0, &mut rng).expect("the jar has a cookie");
    assert_eq!(small.placeholders, 0);
    let opened_small = open_request(&small.bytes, &server).expect("valid request");
    assert_eq!(opened_small.cookies_wanted, 1);
    g.bench_function("server-request-open-1", |b| {
        b.iter(|| open_request(black_box(&small.bytes), &server).map(|o| o.cookies_wanted))
    });
    g.bench_function("server-response-seal-1", |b| {
        let mut out = Vec::with_capacity(1500);
        b.iter(|| {
            seal_response(
                black_box(&reply_header),
                &opened_small,
                &server,
                &mut rng,
                &mut out,
            )
        })
    });
    g.bench_function("server-open-seal-1", |b| {
        let mut out = Vec::with_capacity(1500);
        b.iter(|| {
            let opened = open_request(black_box(&small.bytes), &server).expect("valid request");
            seal_response(&reply_header, &opened, &server, &mut rng, &mut out)
        })
    });
    g.finish();
}

/// The NTS authenticator's AEAD alone, per algorithm: a response's worth of
/// work (AD = 84 bytes of header and UID, plaintext = one 104-byte cookie
/// field), to decide whether AEAD 30 is worth offering.
fn aead(c: &mut Criterion) {
    let mut g = c.benchmark_group("aead-seal-open-108");
    g.throughput(Throughput::Elements(1));
    let ad = [0x24u8; 84];
    let plaintext = [0x02u8; 108];
    for alg in AeadAlgorithm::ALL.iter().copied() {
        let key = nts_cookie::AeadKey::new(alg, &vec![7u8; alg.key_len()]).expect("key length");
        let nonce = vec![9u8; alg.nonce_len()];
        let sealed = key.seal(&nonce, &ad, &plaintext).expect("seal");
        g.bench_function(format!("seal-{}", alg.id()), |b| {
            b.iter(|| key.seal(black_box(&nonce), black_box(&ad), black_box(&plaintext)))
        });
        g.bench_function(format!("open-{}", alg.id()), |b| {
            b.iter(|| key.open(black_box(&nonce), black_box(&ad), black_box(&sealed)))
        });
    }
    g.finish();
}

criterion_group!(benches, cookie, packets, aead);
criterion_main!(benches);
