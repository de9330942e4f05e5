//! Opens arbitrary bytes as a request, server side, with a fixed fleet key set.
//!
//! Oracle: never panics. An accepted request gets a response (`seal_response`) that
//! is no longer than the request and that the client, holding the keys from the
//! cookie, accepts with the request's UID and transmit timestamp; every cookie in it
//! opens to those keys. A NAK carries a UID of 32 to 64 bytes from the request, and
//! the NTS NAK built from it is read by the client as exactly that.
//!
//! Seeds (`corpus/nts_request_open/seed-*`) are made by the ignored test
//! `write_fuzz_seeds` in `crates/nts-cookie/tests/packet.rs`, with the same constants.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ntp_proto::{Header, LeapIndicator, NtpShort, NtpTimestamp, ReferenceId, SystemInfo};
use nts_cookie::packet::{
    RequestError, ResponseError, nts_nak, open_request, open_response, seal_response,
};
use nts_cookie::rand_core::{CryptoRng, RngCore};
use nts_cookie::{KeySet, KeySetConfig};

const SECRET: [u8; 32] = *b"fuzzing fleet secret, 32 bytes!!";
const NOW: u64 = 1_700_000_000;

fn key_set() -> &'static KeySet {
    static SET: OnceLock<KeySet> = OnceLock::new();
    SET.get_or_init(|| {
        let config = KeySetConfig {
            rotation_period_s: 3600,
            old_keys_kept: 2,
        };
        KeySet::fleet(config, &SECRET, NOW).expect("valid fixed config and secret")
    })
}

/// SplitMix64: deterministic, so a crash reproduces. Marked `CryptoRng` only because
/// the API asks for one; nothing here needs secrecy.
struct FuzzRng(u64);

impl RngCore for FuzzRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.next_u64().to_be_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

impl CryptoRng for FuzzRng {}

fn system() -> SystemInfo {
    SystemInfo {
        leap: LeapIndicator::NoWarning,
        stratum: 1,
        precision: -20,
        root_delay: NtpShort::ZERO,
        root_dispersion: NtpShort::ZERO,
        reference_id: ReferenceId::from_ascii("FUZZ").expect("valid name"),
        reference_timestamp: NtpTimestamp::from_bits(0xe93c_7f00_0000_0000),
    }
}

fuzz_target!(|data: &[u8]| {
    let set = key_set();
    let now = NtpTimestamp::from_bits(0xe93c_7f01_8000_0000);
    let mut rng = FuzzRng(data.len() as u64);
    match open_request(data, set) {
        Ok(opened) => {
            assert!((1..=8).contains(&opened.cookies_wanted));
            assert_eq!(opened.request_len, data.len());
            let header = Header::server_response(&opened.header, &system(), now, now);
            let mut reply = Vec::new();
            seal_response(&header, &opened, set, &mut rng, &mut reply)
                .expect("an accepted request can be answered");
            assert!(
                reply.len() <= data.len(),
                "{} > {}",
                reply.len(),
                data.len()
            );
            let response = open_response(
                &reply,
                opened.uid,
                opened.header.transmit_timestamp,
                &opened.keys,
            )
            .expect("the client accepts the response");
            assert!(response.cookies.len() <= opened.cookies_wanted);
            for cookie in &response.cookies {
                assert_eq!(
                    set.open_cookie(cookie).expect("fresh cookie opens"),
                    opened.keys
                );
            }
        }
        Err(RequestError::Nak { header, uid, .. }) => {
            assert!((32..=64).contains(&uid.len()));
            let mut nak = Vec::new();
            nts_nak(&header, uid, &system(), now, now, &mut nak);
            assert!(nak.len() <= data.len());
            // Any keys: the NAK is recognised before authentication.
            let keys = nts_cookie::CookieKeys::new(
                nts_cookie::AeadAlgorithm::AesSivCmac256,
                &[1; 32],
                &[2; 32],
            )
            .expect("fixed key lengths match");
            assert_eq!(
                open_response(&nak, uid, header.transmit_timestamp, &keys),
                Err(ResponseError::NtsNak)
            );
        }
        Err(_) => {}
    }
});
