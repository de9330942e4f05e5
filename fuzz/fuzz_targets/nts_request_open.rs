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

mod common;

use common::{FuzzRng, key_set, system};
use libfuzzer_sys::fuzz_target;
use ntp_proto::{Header, NtpTimestamp};
use nts_cookie::packet::{
    RequestError, ResponseError, nts_nak, open_request, open_response, seal_response,
};

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
