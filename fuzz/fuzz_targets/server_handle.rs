//! The whole server request path: `ServerCore::handle` on arbitrary datagrams.
//!
//! Input layout: byte 0 picks the source address (its low two bits: IPv4, IPv6,
//! IPv4-mapped IPv6, or a denied IPv4 network), byte 1 holds flags (bit 0: handle the
//! datagram a second time, bit 1: answer denied clients with a DENY kiss instead of
//! ignoring them, bit 2: require NTS, bit 3: rate-limited clients are dropped instead
//! of kissed, bit 4: plain requests under require-NTS get a DENY kiss), byte 2 is the milliseconds between the two deliveries (a cutoff of
//! 100 ms, so both outcomes happen), and the rest is the datagram. Each input gets a
//! fresh core (rate limiting on, 8 entries), so runs are deterministic.
//!
//! Oracle: never panics; every reply is no longer than the datagram, parses as an NTP
//! packet and is in server mode; a drop leaves the buffer empty; the amplification
//! guard never fires (the paths below it size their replies right); every request is
//! counted exactly once.
//!
//! Seeds (`corpus/server_handle/seed-*`) are made by the ignored test
//! `write_fuzz_seeds` in `crates/ntp-server/tests/core.rs`, with the same constants.
#![no_main]

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::{FuzzRng, key_set, system};
use libfuzzer_sys::fuzz_target;
use ntp_proto::{Mode, NtpTimestamp, PacketView};
use ntp_server::core::{
    CoreConfig, DenyAction, DropKind, Outcome, RateLimitAction, RateLimitConfig, Request,
    ServerCore,
};

fn source(selector: u8) -> IpAddr {
    let host = selector >> 2;
    match selector & 3 {
        0 => IpAddr::V4(Ipv4Addr::new(198, 51, 100, host)),
        1 => IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0,
            u16::from(host & 3),
            0,
            0,
            0,
            1,
        )),
        2 => IpAddr::V6(Ipv4Addr::new(198, 51, 100, host).to_ipv6_mapped()),
        _ => IpAddr::V4(Ipv4Addr::new(203, 0, 113, host)),
    }
}

fuzz_target!(|data: &[u8]| {
    let [selector, flags, delay, packet @ ..] = data else {
        return;
    };
    let config = CoreConfig {
        allow: vec![],
        deny: vec!["203.0.113.0/24".parse().expect("valid network")],
        deny_action: if flags & 2 != 0 {
            DenyAction::Deny
        } else {
            DenyAction::Ignore
        },
        rate_limit: Some(RateLimitConfig {
            capacity: 8,
            cutoff_ms: 100,
            action: if flags & 8 != 0 {
                RateLimitAction::Drop
            } else {
                RateLimitAction::Kod
            },
        }),
        require_nts: flags & 4 != 0,
        require_nts_action: if flags & 16 != 0 {
            DenyAction::Deny
        } else {
            DenyAction::Ignore
        },
    };
    let core = ServerCore::new(config, 0x5eed);
    let mut rng = FuzzRng(data.len() as u64);
    let mut out = Vec::with_capacity(packet.len());
    let deliveries: &[u64] = if flags & 1 != 0 {
        &[1_000, 1_000 + u64::from(*delay)]
    } else {
        &[1_000]
    };
    for &now_ms in deliveries {
        let request = Request {
            from: source(*selector),
            bytes: packet,
            receive: NtpTimestamp::from_bits(0xe93c_7f01_8000_0000),
            now_ms,
        };
        let outcome = core.handle(
            &request,
            &system(),
            key_set(),
            || NtpTimestamp::from_bits(0xe93c_7f01_8000_1000),
            &mut rng,
            &mut out,
        );
        match outcome {
            Outcome::Reply(kind) => {
                assert!(
                    out.len() <= packet.len(),
                    "{kind:?}: {} > {}",
                    out.len(),
                    packet.len()
                );
                let view = PacketView::new(&out).expect("replies parse");
                assert_eq!(view.header().mode, Mode::Server);
            }
            Outcome::Drop(_) => assert!(out.is_empty()),
        }
    }
    let metrics = core.metrics();
    assert_eq!(metrics.drops(DropKind::AmplificationGuard), 0);
    assert_eq!(metrics.received(), deliveries.len() as u64);
    assert_eq!(
        metrics.received(),
        metrics.replies_total() + metrics.drops_total()
    );
});
