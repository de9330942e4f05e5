//! Opens arbitrary bytes as the response to a fixed request, client side, with fixed
//! AEAD 15 and AEAD 17 keys.
//!
//! Oracle: never panics; a response that opens is in server mode, answers the fixed
//! origin, carries exactly one Unique Identifier before its authenticator and that
//! identifier is the expected one; its cookies are non-overlapping pieces of the
//! decrypted part (so none comes from the clear). An NTS NAK is reported only for a
//! KoD NTSN with the expected UID and no authenticator.
//!
//! Seeds (`corpus/nts_response_open/seed-*`) are made by the ignored test
//! `write_fuzz_seeds` in `crates/nts-cookie/tests/packet.rs`, with the same constants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ntp_proto::{ExtensionFieldType, KissCode, Mode, NtpTimestamp, PacketView};
use nts_cookie::packet::{ResponseError, open_response};
use nts_cookie::{AeadAlgorithm, CookieKeys};

const UID: [u8; 32] = *b"fuzzing unique identifier, 32 b!";
const ORIGIN: u64 = 0x0123_4567_89ab_cdef;

fn keys() -> [CookieKeys; 2] {
    [
        CookieKeys::new(AeadAlgorithm::AesSivCmac256, &[0xC2; 32], &[0x5C; 32]),
        CookieKeys::new(AeadAlgorithm::AesSivCmac512, &[0xC2; 64], &[0x5C; 64]),
    ]
    .map(|k| k.expect("fixed key lengths match"))
}

fuzz_target!(|data: &[u8]| {
    let origin = NtpTimestamp::from_bits(ORIGIN);
    for keys in keys() {
        match open_response(data, &UID, origin, &keys) {
            Ok(response) => {
                let view = PacketView::new(data).expect("an accepted response parses");
                assert_eq!(view.header(), &response.header);
                assert_eq!(response.header.mode, Mode::Server);
                assert_eq!(response.header.origin_timestamp, origin);
                assert_eq!(response.kiss_code, response.header.kiss_code());
                let parts = view
                    .nts_protected_parts()
                    .expect("authenticator parses")
                    .expect("an accepted response is authenticated");
                let uids: Vec<_> = parts
                    .covered_fields()
                    .filter(|f| f.field_type == ExtensionFieldType::UNIQUE_IDENTIFIER)
                    .collect();
                assert_eq!(uids.len(), 1);
                assert_eq!(uids[0].body, UID, "accepted with another UID");
                // Cookies come from the plaintext: together with their 4-byte headers
                // they fit in the ciphertext after the tag.
                let in_cookies: usize = response.cookies.iter().map(|c| c.len() + 4).sum();
                assert!(in_cookies + 16 <= parts.authenticator.ciphertext.len());
            }
            Err(ResponseError::NtsNak) => {
                let view = PacketView::new(data).expect("a NAK parses");
                assert_eq!(view.header().kiss_code(), Some(KissCode::NTSN));
                assert!(view.nts_protected_parts().expect("parses").is_none());
                let uid = view
                    .extension_fields()
                    .find(|f| f.field_type == ExtensionFieldType::UNIQUE_IDENTIFIER)
                    .expect("a NAK carries a UID");
                assert_eq!(uid.body, UID);
            }
            Err(_) => {}
        }
    }
});
