//! The request handler end to end, in memory: plain and NTS answers, hostile
//! input, access lists, rate limiting, counters and no-amplification
//! properties.

#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::LazyLock;

use ntp_proto::{
    ExtensionField, ExtensionFieldType, Header, KissCode, LeapIndicator, Mode, NtpShort,
    NtpTimestamp, PacketView, ParseError, ReferenceId, SystemInfo, Version,
};
use ntp_server::core::{
    CoreConfig, DenyAction, DropKind, DropReason, IpNet, Outcome, RateLimitAction, RateLimitConfig,
    ReplyKind, Request, ServerCore,
};
use nts_cookie::packet::{ResponseError, SealedRequest, open_response, seal_request};
use nts_cookie::{AeadAlgorithm, CookieJar, CookieKeys, KeySet, KeySetConfig};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

// ---------------------------------------------------------------- fixtures

fn rng() -> StdRng {
    StdRng::seed_from_u64(0x5e4e)
}

fn key_set() -> KeySet {
    let config = KeySetConfig {
        rotation_period_s: 3600,
        old_keys_kept: 1,
    };
    KeySet::random(config, 0, &mut rng()).unwrap()
}

static KEYS: LazyLock<KeySet> = LazyLock::new(key_set);

fn system() -> SystemInfo {
    SystemInfo {
        leap: LeapIndicator::NoWarning,
        stratum: 2,
        precision: -24,
        root_delay: NtpShort::from_bits(0x10),
        root_dispersion: NtpShort::from_bits(0x20),
        reference_id: ReferenceId::from_ascii("GPS").unwrap(),
        reference_timestamp: NtpTimestamp::from_seconds_and_fraction(3_913_056_000, 0),
    }
}

const T2: NtpTimestamp = NtpTimestamp::from_seconds_and_fraction(3_913_056_001, 0x1000);
const T3: NtpTimestamp = NtpTimestamp::from_seconds_and_fraction(3_913_056_001, 0x2000);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

const CLIENT: &str = "192.0.2.10";

/// Handles `bytes` from `from` at `now_ms`; returns the outcome and the reply.
fn handle_at(core: &ServerCore, from: IpAddr, bytes: &[u8], now_ms: u64) -> (Outcome, Vec<u8>) {
    let mut out = Vec::with_capacity(2048);
    let request = Request {
        from,
        bytes,
        receive: T2,
        now_ms,
    };
    let outcome = core.handle(&request, &system(), &KEYS, || T3, &mut rng(), &mut out);
    (outcome, out)
}

fn handle(core: &ServerCore, bytes: &[u8]) -> (Outcome, Vec<u8>) {
    handle_at(core, ip(CLIENT), bytes, 0)
}

fn plain_request(version: u8, transmit: u64) -> [u8; 48] {
    let mut header = Header::client_request(6, transmit);
    header.version = Version::new(version).unwrap();
    header.to_bytes()
}

/// An NTS request with `held` cookies in the jar (so `8 - held` placeholders).
fn nts_request(held: usize, r: &mut StdRng) -> (CookieJar, Header, SealedRequest) {
    let keys = CookieKeys::generate(AeadAlgorithm::AesSivCmac256, r);
    let cookies: Vec<_> = (0..held).map(|_| KEYS.seal_cookie(&keys, r)).collect();
    let mut jar = CookieJar::with_cookies(keys, cookies).unwrap();
    let header = Header::client_request_random(6, r);
    let sealed = seal_request(&header, &mut jar, 1500, r).unwrap();
    (jar, header, sealed)
}

fn rate_limited(action: RateLimitAction) -> CoreConfig {
    CoreConfig {
        rate_limit: Some(RateLimitConfig {
            capacity: 1024,
            cutoff_ms: 1000,
            action,
        }),
        ..CoreConfig::default()
    }
}

fn header_of(reply: &[u8]) -> Header {
    *PacketView::new(reply).unwrap().header()
}

/// The Unique Identifier field body of a packet.
fn uid_of(reply: &[u8]) -> Option<Vec<u8>> {
    PacketView::new(reply)
        .unwrap()
        .extension_fields()
        .find(|f| f.field_type == ExtensionFieldType::UNIQUE_IDENTIFIER)
        .map(|f| f.body.to_vec())
}

// ---------------------------------------------------------------- plain

#[test]
fn plain_reply_fields() {
    let core = ServerCore::new(CoreConfig::default(), 1);
    for version in [1, 2, 3, 4] {
        let request = plain_request(version, 0x0123_4567_89ab_cdef);
        let (outcome, reply) = handle(&core, &request);
        assert_eq!(outcome, Outcome::Reply(ReplyKind::Plain), "v{version}");
        assert_eq!(reply.len(), 48);
        let h = header_of(&reply);
        assert_eq!(h.mode, Mode::Server);
        assert_eq!(h.version.get(), version, "version echoed");
        assert_eq!(h.origin_timestamp.to_bits(), 0x0123_4567_89ab_cdef);
        assert_eq!(h.receive_timestamp, T2);
        assert_eq!(h.transmit_timestamp, T3);
        assert_eq!(h.stratum, 2);
        assert_eq!(h.poll, 6);
        assert_eq!(h.precision, -24);
        assert_eq!(h.leap, LeapIndicator::NoWarning);
        assert_eq!(h.reference_id, system().reference_id);
        assert_eq!(h.root_delay, system().root_delay);
        assert_eq!(h.root_dispersion, system().root_dispersion);
        assert_eq!(h.reference_timestamp, system().reference_timestamp);
        assert_eq!(h.kiss_code(), None);
    }
}

#[test]
fn unsynchronized_stratum_is_sent_as_zero() {
    let core = ServerCore::new(CoreConfig::default(), 1);
    let mut out = Vec::new();
    let sys = SystemInfo {
        stratum: 16,
        leap: LeapIndicator::Unsynchronized,
        ..system()
    };
    let request = plain_request(4, 7);
    let req = Request {
        from: ip(CLIENT),
        bytes: &request,
        receive: T2,
        now_ms: 0,
    };
    let outcome = core.handle(&req, &sys, &KEYS, || T3, &mut rng(), &mut out);
    assert_eq!(outcome, Outcome::Reply(ReplyKind::Plain));
    assert_eq!(header_of(&out).stratum, 0);
    assert_eq!(header_of(&out).leap, LeapIndicator::Unsynchronized);
}

#[test]
fn plain_path_reuses_the_buffer() {
    let core = ServerCore::new(rate_limited(RateLimitAction::Kod), 1);
    let mut out = Vec::with_capacity(48);
    out.extend_from_slice(&[0xAA; 48]);
    let ptr = out.as_ptr();
    for i in 0..100u64 {
        let request = plain_request(4, i);
        let req = Request {
            from: IpAddr::V4(Ipv4Addr::from(i as u32)),
            bytes: &request,
            receive: T2,
            now_ms: i,
        };
        let outcome = core.handle(&req, &system(), &KEYS, || T3, &mut rng(), &mut out);
        assert_eq!(outcome, Outcome::Reply(ReplyKind::Plain));
        assert_eq!(out.len(), 48);
        assert_eq!(out.capacity(), 48, "no growth");
        assert_eq!(out.as_ptr(), ptr, "no reallocation");
    }
}

#[test]
fn transmit_is_read_only_for_replies() {
    let core = ServerCore::new(CoreConfig::default(), 1);
    let mut out = Vec::new();
    let mut calls = 0;
    let req = Request {
        from: ip(CLIENT),
        bytes: &[0u8; 10],
        receive: T2,
        now_ms: 0,
    };
    let _ = core.handle(
        &req,
        &system(),
        &KEYS,
        || {
            calls += 1;
            T3
        },
        &mut rng(),
        &mut out,
    );
    assert_eq!(calls, 0);
}

#[test]
fn unknown_extension_fields_are_answered_plainly() {
    let core = ServerCore::new(CoreConfig::default(), 1);
    let mut request = plain_request(4, 99).to_vec();
    ExtensionField::new(ExtensionFieldType(0xF00D), vec![7; 20])
        .unwrap()
        .emit(&mut request, 28);
    ExtensionField::new(ExtensionFieldType(0x2005), vec![1; 40])
        .unwrap()
        .emit(&mut request, 28);
    let (outcome, reply) = handle(&core, &request);
    assert_eq!(outcome, Outcome::Reply(ReplyKind::Plain));
    assert_eq!(reply.len(), 48);
    assert_eq!(header_of(&reply).origin_timestamp.to_bits(), 99);

    // A legacy MAC trailer (key id + 16-byte digest) is ignored too.
    let mut with_mac = plain_request(4, 100).to_vec();
    with_mac.extend_from_slice(&[0, 0, 0, 1]);
    with_mac.extend_from_slice(&[0x55; 16]);
    let (outcome, reply) = handle(&core, &with_mac);
    assert_eq!(outcome, Outcome::Reply(ReplyKind::Plain));
    assert_eq!(reply.len(), 48);
}

// ---------------------------------------------------------------- hostile

#[test]
fn hostile_inputs_are_dropped_with_the_right_reason() {
    let core = ServerCore::new(rate_limited(RateLimitAction::Kod), 1);
    let drop_reason = |bytes: &[u8]| match handle(&core, bytes) {
        (Outcome::Drop(reason), out) => {
            assert!(out.is_empty());
            reason
        }
        (other, _) => panic!("{other:?} for {bytes:02x?}"),
    };

    assert_eq!(
        drop_reason(&[]),
        DropReason::Malformed(ParseError::TooShort { len: 0 })
    );
    assert_eq!(
        drop_reason(&plain_request(4, 1)[..47]),
        DropReason::Malformed(ParseError::TooShort { len: 47 })
    );
    let mut noise = vec![0u8; 1000];
    rng().fill_bytes(&mut noise);
    noise[0] = 0x23; // a v4 client header, so the trailer is what fails
    assert!(matches!(drop_reason(&noise), DropReason::Malformed(_)));
    let mut noise = vec![0u8; 1000];
    StdRng::seed_from_u64(2).fill_bytes(&mut noise);
    let _ = drop_reason(&noise);

    for version in [0u8, 5, 6, 7] {
        let mut request = plain_request(4, 1);
        request[0] = (version << 3) | 3;
        assert_eq!(
            drop_reason(&request),
            DropReason::UnsupportedVersion(version)
        );
    }

    for mode in [0u8, 1, 2, 4, 5, 6, 7] {
        let mut request = plain_request(4, 1);
        request[0] = (4 << 3) | mode;
        assert_eq!(
            drop_reason(&request),
            DropReason::WrongMode(Mode::from_bits(mode)),
            "mode {mode}"
        );
    }

    // Extension fields with bad lengths: 0, 8 (< 16), beyond the packet,
    // not a multiple of 4.
    for (len, body) in [(0u16, 28usize), (8, 28), (2000, 28), (30, 28), (17, 28)] {
        let mut request = plain_request(4, 1).to_vec();
        request.extend_from_slice(&0xF000u16.to_be_bytes());
        request.extend_from_slice(&len.to_be_bytes());
        request.extend_from_slice(&vec![0; body]);
        assert!(
            matches!(drop_reason(&request), DropReason::Malformed(_)),
            "length {len}"
        );
    }

    // A valid request with trailing garbage.
    for extra in [1usize, 3, 8, 12, 16, 28, 44] {
        let mut request = plain_request(4, 1).to_vec();
        request.extend(std::iter::repeat_n(0xEE, extra));
        assert!(
            matches!(drop_reason(&request), DropReason::Malformed(_)),
            "{extra} bytes of garbage"
        );
    }

    // Nothing above reached the rate limiter or got a reply.
    assert_eq!(core.rate_limiter().unwrap().len(), 0);
    assert_eq!(core.metrics().replies_total(), 0);
}

// ---------------------------------------------------------------- access

#[test]
fn deny_wins_and_ignore_sends_nothing() {
    let config = CoreConfig {
        allow: vec![net("192.0.2.0/24"), net("2001:db8::/32")],
        deny: vec![net("192.0.2.128/25")],
        deny_action: DenyAction::Ignore,
        ..CoreConfig::default()
    };
    let core = ServerCore::new(config, 1);
    let request = plain_request(4, 5);
    for (from, allowed) in [
        ("192.0.2.1", true),
        ("::ffff:192.0.2.1", true),
        ("192.0.2.200", false),
        ("::ffff:192.0.2.200", false),
        ("198.51.100.1", false),
        ("2001:db8::1", true),
        ("2001:db9::1", false),
    ] {
        let (outcome, reply) = handle_at(&core, ip(from), &request, 0);
        if allowed {
            assert_eq!(outcome, Outcome::Reply(ReplyKind::Plain), "{from}");
        } else {
            assert_eq!(outcome, Outcome::Drop(DropReason::AccessIgnored), "{from}");
            assert!(reply.is_empty());
        }
    }
    assert_eq!(core.metrics().drops(DropKind::AccessIgnored), 4);
}

#[test]
fn deny_action_sends_a_deny_kiss() {
    let config = CoreConfig {
        deny: vec![net("203.0.113.0/24")],
        deny_action: DenyAction::Deny,
        ..CoreConfig::default()
    };
    let core = ServerCore::new(config, 1);
    let request = plain_request(3, 0xabc);
    let (outcome, reply) = handle_at(&core, ip("203.0.113.9"), &request, 0);
    assert_eq!(outcome, Outcome::Reply(ReplyKind::KissDeny));
    assert_eq!(reply.len(), 48);
    let h = header_of(&reply);
    assert_eq!(h.kiss_code(), Some(KissCode::DENY));
    assert_eq!(h.stratum, 0);
    assert_eq!(h.mode, Mode::Server);
    assert_eq!(h.version, Version::V3);
    assert_eq!(h.origin_timestamp.to_bits(), 0xabc);
    // Others are answered.
    let (outcome, _) = handle_at(&core, ip("203.0.114.9"), &request, 0);
    assert_eq!(outcome, Outcome::Reply(ReplyKind::Plain));
}

// ---------------------------------------------------------------- rate limit

#[test]
fn second_request_inside_cutoff_gets_rate_kiss() {
    let core = ServerCore::new(rate_limited(RateLimitAction::Kod), 1);
    let a = ip("192.0.2.1");
    let b = ip("192.0.2.2");
    let request = plain_request(4, 0x77);
    assert_eq!(
        handle_at(&core, a, &request, 10_000).0,
        Outcome::Reply(ReplyKind::Plain)
    );
    let (outcome, reply) = handle_at(&core, a, &request, 10_500);
    assert_eq!(outcome, Outcome::Reply(ReplyKind::KissRate));
    assert_eq!(reply.len(), 48);
    let h = header_of(&reply);
    assert_eq!(h.kiss_code(), Some(KissCode::RATE));
    assert_eq!(h.origin_timestamp.to_bits(), 0x77);
    // Another client is independent.
    assert_eq!(
        handle_at(&core, b, &request, 10_501).0,
        Outcome::Reply(ReplyKind::Plain)
    );
    // After the cutoff (counted from the last request), answered again.
    assert_eq!(
        handle_at(&core, a, &request, 11_500).0,
        Outcome::Reply(ReplyKind::Plain)
    );
    // Same /64 is the same client; another /64 is not.
    assert_eq!(
        handle_at(&core, ip("2001:db8:0:1::1"), &request, 0).0,
        Outcome::Reply(ReplyKind::Plain)
    );
    assert_eq!(
        handle_at(&core, ip("2001:db8:0:1::2"), &request, 1).0,
        Outcome::Reply(ReplyKind::KissRate)
    );
    assert_eq!(
        handle_at(&core, ip("2001:db8:0:2::1"), &request, 2).0,
        Outcome::Reply(ReplyKind::Plain)
    );
    assert_eq!(core.metrics().replies(ReplyKind::KissRate), 2);
}

#[test]
fn rate_limit_can_drop() {
    let core = ServerCore::new(rate_limited(RateLimitAction::Drop), 1);
    let request = plain_request(4, 1);
    assert!(handle_at(&core, ip(CLIENT), &request, 0).0.is_reply());
    let (outcome, reply) = handle_at(&core, ip(CLIENT), &request, 999);
    assert_eq!(outcome, Outcome::Drop(DropReason::RateLimited));
    assert!(reply.is_empty());
    assert!(handle_at(&core, ip(CLIENT), &request, 1999).0.is_reply());
}

#[test]
fn zero_capacity_or_none_is_off() {
    for rate_limit in [
        None,
        Some(RateLimitConfig {
            capacity: 0,
            cutoff_ms: 1000,
            action: RateLimitAction::Kod,
        }),
    ] {
        let core = ServerCore::new(
            CoreConfig {
                rate_limit,
                ..CoreConfig::default()
            },
            1,
        );
        assert!(core.rate_limiter().is_none());
        let request = plain_request(4, 1);
        for _ in 0..3 {
            assert_eq!(handle(&core, &request).0, Outcome::Reply(ReplyKind::Plain));
        }
    }
}

#[test]
fn rate_table_memory_is_bounded() {
    let core = ServerCore::new(
        CoreConfig {
            rate_limit: Some(RateLimitConfig {
                capacity: 4096,
                cutoff_ms: 1000,
                action: RateLimitAction::Kod,
            }),
            ..CoreConfig::default()
        },
        0xdead_beef,
    );
    let table = core.rate_limiter().unwrap();
    let capacity = table.capacity();
    assert!((4096..4096 + 64).contains(&capacity));
    let request = plain_request(4, 1);
    let mut out = Vec::with_capacity(48);
    for i in 0..1_000_000u32 {
        let req = Request {
            from: IpAddr::V4(Ipv4Addr::from(i.wrapping_mul(2_654_435_761))),
            bytes: &request,
            receive: T2,
            now_ms: u64::from(i / 16),
        };
        let outcome = core.handle(&req, &system(), &KEYS, || T3, &mut rng(), &mut out);
        assert_eq!(outcome, Outcome::Reply(ReplyKind::Plain));
    }
    assert_eq!(table.len(), capacity);
    assert_eq!(table.capacity(), capacity);
    let fresh = ip("2001:db8::77");
    assert_eq!(
        handle_at(&core, fresh, &request, 10_000_000).0,
        Outcome::Reply(ReplyKind::Plain)
    );
    assert_eq!(
        handle_at(&core, fresh, &request, 10_000_001).0,
        Outcome::Reply(ReplyKind::KissRate)
    );
    assert_eq!(table.len(), capacity);
}

#[test]
fn workers_share_one_core() {
    let core = ServerCore::new(rate_limited(RateLimitAction::Kod), 9);
    let request = plain_request(4, 1);
    std::thread::scope(|s| {
        for worker in 0..4u32 {
            let core = &core;
            s.spawn(move || {
                let mut out = Vec::with_capacity(48);
                for i in 0..1000u32 {
                    let req = Request {
                        from: IpAddr::V4(Ipv4Addr::from(i % 100)),
                        bytes: &request,
                        receive: T2,
                        now_ms: u64::from(worker),
                    };
                    let outcome = core.handle(&req, &system(), &KEYS, || T3, &mut rng(), &mut out);
                    assert!(outcome.is_reply());
                }
            });
        }
    });
    let m = core.metrics();
    assert_eq!(m.received(), 4000);
    // Each of the 100 clients was answered exactly once; the rest were kissed.
    assert_eq!(m.replies(ReplyKind::Plain), 100);
    assert_eq!(m.replies(ReplyKind::KissRate), 3900);
}

// ---------------------------------------------------------------- NTS

#[test]
fn nts_round_trip_refills_the_jar() {
    let core = ServerCore::new(rate_limited(RateLimitAction::Kod), 1);
    let mut r = rng();
    for held in [1, 4, 8] {
        let (mut jar, header, sealed) = nts_request(held, &mut r);
        let from = IpAddr::V4(Ipv4Addr::from(held as u32));
        let (outcome, reply) = handle_at(&core, from, &sealed.bytes, 0);
        assert_eq!(outcome, Outcome::Reply(ReplyKind::Nts));
        assert!(reply.len() <= sealed.bytes.len());
        let mut response =
            open_response(&reply, &sealed.uid, header.transmit_timestamp, jar.keys()).unwrap();
        assert_eq!(response.cookies.len(), 1 + sealed.placeholders);
        assert_eq!(response.header.receive_timestamp, T2);
        assert_eq!(response.header.transmit_timestamp, T3);
        assert_eq!(response.header.stratum, 2);
        assert_eq!(response.kiss_code, None);
        response.store_cookies(&mut jar);
        assert_eq!(jar.len(), 8);
    }
    assert_eq!(core.metrics().replies(ReplyKind::Nts), 3);
}

#[test]
fn forged_cookie_gets_an_nts_nak() {
    let core = ServerCore::new(CoreConfig::default(), 1);
    let mut r = rng();
    let keys = CookieKeys::generate(AeadAlgorithm::AesSivCmac256, &mut r);
    let mut cookie = KEYS.seal_cookie(&keys, &mut r);
    let last = cookie.len() - 1;
    cookie[last] ^= 1;
    let mut jar = CookieJar::with_cookies(keys, [cookie]).unwrap();
    let header = Header::client_request_random(6, &mut r);
    let sealed = seal_request(&header, &mut jar, 1500, &mut r).unwrap();

    let (outcome, reply) = handle(&core, &sealed.bytes);
    assert_eq!(outcome, Outcome::Reply(ReplyKind::NtsNak));
    assert_eq!(reply.len(), 48 + 4 + 32);
    let h = header_of(&reply);
    assert_eq!(h.kiss_code(), Some(KissCode::NTSN));
    assert_eq!(h.origin_timestamp, header.transmit_timestamp);
    assert_eq!(uid_of(&reply).unwrap(), sealed.uid);
    assert_eq!(
        open_response(&reply, &sealed.uid, header.transmit_timestamp, jar.keys()),
        Err(ResponseError::NtsNak)
    );

    // A cookie from another server's key set is refused the same way.
    let other = KeySet::random(KeySetConfig::default(), 0, &mut r).unwrap();
    let keys = CookieKeys::generate(AeadAlgorithm::AesSivCmac512, &mut r);
    let mut jar =
        CookieJar::with_cookies(keys.clone(), [other.seal_cookie(&keys, &mut r)]).unwrap();
    let sealed = seal_request(&header, &mut jar, 1500, &mut r).unwrap();
    assert_eq!(
        handle(&core, &sealed.bytes).0,
        Outcome::Reply(ReplyKind::NtsNak)
    );
    assert_eq!(core.metrics().replies(ReplyKind::NtsNak), 2);
}

#[test]
fn tampered_request_gets_an_nts_nak() {
    let core = ServerCore::new(CoreConfig::default(), 1);
    let (_, _, sealed) = nts_request(8, &mut rng());
    let mut bytes = sealed.bytes.clone();
    bytes[47] ^= 1; // inside the associated data: the authenticator fails
    let (outcome, reply) = handle(&core, &bytes);
    assert_eq!(outcome, Outcome::Reply(ReplyKind::NtsNak));
    assert_eq!(uid_of(&reply).unwrap(), sealed.uid);
}

#[test]
fn replayed_request_is_answered_afresh() {
    let core = ServerCore::new(CoreConfig::default(), 1);
    let (jar, header, sealed) = nts_request(7, &mut rng());
    let mut out1 = Vec::new();
    let mut out2 = Vec::new();
    let mut r = StdRng::seed_from_u64(1);
    for out in [&mut out1, &mut out2] {
        let req = Request {
            from: ip(CLIENT),
            bytes: &sealed.bytes,
            receive: T2,
            now_ms: 0,
        };
        let outcome = core.handle(&req, &system(), &KEYS, || T3, &mut r, out);
        assert_eq!(outcome, Outcome::Reply(ReplyKind::Nts));
    }
    assert_ne!(out1, out2, "fresh nonce and cookies");
    let a = open_response(&out1, &sealed.uid, header.transmit_timestamp, jar.keys()).unwrap();
    let b = open_response(&out2, &sealed.uid, header.transmit_timestamp, jar.keys()).unwrap();
    assert_eq!(a.cookies.len(), 2);
    assert_eq!(b.cookies.len(), 2);
    assert_ne!(a.cookies, b.cookies);
}

#[test]
fn nts_from_refused_clients_is_treated_like_plain() {
    let (_, header, sealed) = nts_request(8, &mut rng());
    for (action, expected) in [
        (DenyAction::Ignore, None),
        (DenyAction::Deny, Some(ReplyKind::KissDeny)),
    ] {
        let core = ServerCore::new(
            CoreConfig {
                deny: vec![net(CLIENT)],
                deny_action: action,
                ..CoreConfig::default()
            },
            1,
        );
        let (outcome, reply) = handle(&core, &sealed.bytes);
        match expected {
            None => assert_eq!(outcome, Outcome::Drop(DropReason::AccessIgnored)),
            Some(kind) => {
                assert_eq!(outcome, Outcome::Reply(kind));
                // 48-byte kiss plus the echoed UID, no authenticator.
                assert_eq!(reply.len(), 48 + 36);
                assert!(reply.len() <= sealed.bytes.len());
                let h = header_of(&reply);
                assert_eq!(h.kiss_code(), Some(KissCode::DENY));
                assert_eq!(h.origin_timestamp, header.transmit_timestamp);
                assert_eq!(uid_of(&reply).unwrap(), sealed.uid);
            }
        }
    }
}

#[test]
fn rate_limited_nts_gets_a_rate_kiss_with_its_uid() {
    let core = ServerCore::new(rate_limited(RateLimitAction::Kod), 1);
    let mut r = rng();
    let (_, _, first) = nts_request(8, &mut r);
    let (jar, header, second) = nts_request(8, &mut r);
    assert_eq!(
        handle(&core, &first.bytes).0,
        Outcome::Reply(ReplyKind::Nts)
    );
    let (outcome, reply) = handle(&core, &second.bytes);
    assert_eq!(outcome, Outcome::Reply(ReplyKind::KissRate));
    assert_eq!(header_of(&reply).kiss_code(), Some(KissCode::RATE));
    assert_eq!(uid_of(&reply).unwrap(), second.uid);
    // Unauthenticated, so a strict NTS client ignores it.
    assert_eq!(
        open_response(&reply, &second.uid, header.transmit_timestamp, jar.keys()),
        Err(ResponseError::Unauthenticated {
            kiss_code: Some(KissCode::RATE)
        })
    );
}

#[test]
fn require_nts_drops_plain_and_answers_nts() {
    let core = ServerCore::new(
        CoreConfig {
            require_nts: true,
            ..CoreConfig::default()
        },
        1,
    );
    assert_eq!(
        handle(&core, &plain_request(4, 1)).0,
        Outcome::Drop(DropReason::RequireNts)
    );
    let (_, _, sealed) = nts_request(8, &mut rng());
    assert_eq!(
        handle(&core, &sealed.bytes).0,
        Outcome::Reply(ReplyKind::Nts)
    );
}

#[test]
fn broken_nts_is_never_answered_plainly() {
    let core = ServerCore::new(CoreConfig::default(), 1);
    // A lone Unique Identifier: an NTS field, but no cookie or authenticator.
    let mut request = plain_request(4, 1).to_vec();
    ExtensionField::unique_identifier(&[9; 32])
        .unwrap()
        .emit(&mut request, 28);
    assert_eq!(
        handle(&core, &request).0,
        Outcome::Drop(DropReason::NtsInvalid(
            nts_cookie::packet::DropReason::MissingAuthenticator
        ))
    );
    // A field after the authenticator.
    let (_, _, sealed) = nts_request(8, &mut rng());
    let mut bytes = sealed.bytes.clone();
    ExtensionField::new(ExtensionFieldType(0xF000), vec![0; 24])
        .unwrap()
        .emit(&mut bytes, 28);
    assert!(matches!(
        handle(&core, &bytes).0,
        Outcome::Drop(DropReason::NtsInvalid(_))
    ));
    assert_eq!(core.metrics().drops(DropKind::NtsInvalid), 2);
}

// ---------------------------------------------------------------- counters

#[test]
fn counters_move_and_render() {
    let core = ServerCore::new(
        CoreConfig {
            deny: vec![net("203.0.113.0/24")],
            deny_action: DenyAction::Deny,
            ..rate_limited(RateLimitAction::Kod)
        },
        1,
    );
    let plain = plain_request(4, 1);
    let (_, _, nts) = nts_request(8, &mut rng());
    let _ = handle_at(&core, ip("192.0.2.1"), &plain, 0); // plain
    let _ = handle_at(&core, ip("192.0.2.1"), &plain, 1); // kod_rate
    let _ = handle_at(&core, ip("192.0.2.2"), &nts.bytes, 0); // nts
    let _ = handle_at(&core, ip("203.0.113.1"), &plain, 0); // kod_deny
    let _ = handle_at(&core, ip("192.0.2.3"), &[0; 12], 0); // malformed
    let mut wrong_mode = plain;
    wrong_mode[0] = 0x21;
    let _ = handle_at(&core, ip("192.0.2.3"), &wrong_mode, 0); // wrong_mode

    let m = core.metrics();
    assert_eq!(m.received(), 6);
    assert_eq!(m.replies(ReplyKind::Plain), 1);
    assert_eq!(m.replies(ReplyKind::KissRate), 1);
    assert_eq!(m.replies(ReplyKind::Nts), 1);
    assert_eq!(m.replies(ReplyKind::KissDeny), 1);
    assert_eq!(m.replies(ReplyKind::NtsNak), 0);
    assert_eq!(m.drops(DropKind::Malformed), 1);
    assert_eq!(m.drops(DropKind::WrongMode), 1);
    assert_eq!(m.received(), m.replies_total() + m.drops_total());

    let mut page = String::new();
    m.render_prometheus(&mut page);
    for line in [
        "# TYPE ntp_server_requests_received_total counter",
        "ntp_server_requests_received_total 6",
        "# HELP ntp_server_responses_total NTP responses sent, by kind.",
        "ntp_server_responses_total{kind=\"plain\"} 1",
        "ntp_server_responses_total{kind=\"nts\"} 1",
        "ntp_server_responses_total{kind=\"kod_rate\"} 1",
        "ntp_server_responses_total{kind=\"kod_deny\"} 1",
        "ntp_server_responses_total{kind=\"nts_nak\"} 0",
        "# TYPE ntp_server_requests_dropped_total counter",
        "ntp_server_requests_dropped_total{reason=\"malformed\"} 1",
        "ntp_server_requests_dropped_total{reason=\"wrong_mode\"} 1",
        "ntp_server_requests_dropped_total{reason=\"require_nts\"} 0",
        "ntp_server_requests_dropped_total{reason=\"amplification_guard\"} 0",
    ] {
        assert!(
            page.lines().any(|l| l == line),
            "missing {line:?} in\n{page}"
        );
    }
}

// ---------------------------------------------------------------- properties

static NTS_REQUEST: LazyLock<Vec<u8>> = LazyLock::new(|| nts_request(6, &mut rng()).2.bytes);

/// Runs `bytes` through a rate-limited core and checks the reply invariants.
fn check_never_amplifies(bytes: &[u8], from: u32, now_ms: u64) {
    static CORE: LazyLock<ServerCore> = LazyLock::new(|| {
        ServerCore::new(
            CoreConfig {
                deny: vec!["10.0.0.0/8".parse().unwrap()],
                deny_action: DenyAction::Deny,
                rate_limit: Some(RateLimitConfig {
                    capacity: 64,
                    cutoff_ms: 100,
                    action: RateLimitAction::Kod,
                }),
                ..CoreConfig::default()
            },
            3,
        )
    });
    let (outcome, reply) = handle_at(&CORE, IpAddr::V4(Ipv4Addr::from(from)), bytes, now_ms);
    match outcome {
        Outcome::Reply(_) => {
            assert!(
                reply.len() <= bytes.len(),
                "{} > {}",
                reply.len(),
                bytes.len()
            );
            let view = PacketView::new(&reply).unwrap();
            assert_eq!(view.header().mode, Mode::Server);
        }
        Outcome::Drop(_) => assert!(reply.is_empty()),
    }
    assert_eq!(CORE.metrics().drops(DropKind::AmplificationGuard), 0);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1200),
                                   from in any::<u32>(), now in any::<u64>()) {
        check_never_amplifies(&bytes, from, now);
    }

    #[test]
    fn mutated_plain_requests(flips in proptest::collection::vec((0usize..48, any::<u8>()), 0..6),
                              extra in proptest::collection::vec(any::<u8>(), 0..64),
                              from in any::<u32>(), now in any::<u64>()) {
        let mut bytes = plain_request(4, 42).to_vec();
        for (i, x) in flips {
            bytes[i] ^= x;
        }
        bytes.extend(extra);
        check_never_amplifies(&bytes, from, now);
    }

    #[test]
    fn mutated_nts_requests(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
                            cut in any::<prop::sample::Index>(), truncate in any::<bool>(),
                            from in any::<u32>(), now in any::<u64>()) {
        let mut bytes = NTS_REQUEST.clone();
        for (i, x) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= x;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        check_never_amplifies(&bytes, from, now);
    }
}

// ---------------------------------------------------------------- fuzz seeds

/// Writes the seed corpus of the `server_handle` fuzz target: a plain request
/// delivered twice (answered, then kissed), an NTS request, and an NTS request
/// from a denied network with the DENY action. The key set is the target's fixed
/// fleet set. Run with `cargo test -p ntp-server --test core -- --ignored
/// write_fuzz_seeds`.
#[test]
#[ignore = "writes files into fuzz/corpus"]
fn write_fuzz_seeds() {
    const SECRET: [u8; 32] = *b"fuzzing fleet secret, 32 bytes!!";
    let config = KeySetConfig {
        rotation_period_s: 3600,
        old_keys_kept: 2,
    };
    let fleet = KeySet::fleet(config, &SECRET, 1_700_000_000).unwrap();
    let mut r = StdRng::seed_from_u64(0xf022);
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/server_handle");
    std::fs::create_dir_all(&dir).unwrap();
    let nts = |r: &mut StdRng| {
        let keys = CookieKeys::generate(AeadAlgorithm::AesSivCmac256, r);
        let cookie = fleet.seal_cookie(&keys, r);
        let mut jar = CookieJar::with_cookies(keys, [cookie]).unwrap();
        let header = Header::client_request_random(6, r);
        seal_request(&header, &mut jar, 1280, r).unwrap().bytes
    };
    let seeds: [(&str, [u8; 3], Vec<u8>); 3] = [
        (
            "seed-plain-twice",
            [0, 1, 50],
            plain_request(4, 0x5eed).to_vec(),
        ),
        ("seed-nts", [0, 0, 0], nts(&mut r)),
        ("seed-nts-denied", [3, 2, 0], nts(&mut r)),
    ];
    for (name, prefix, packet) in seeds {
        let mut bytes = prefix.to_vec();
        bytes.extend_from_slice(&packet);
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
