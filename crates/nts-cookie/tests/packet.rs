//! NTS packet protection end to end, in memory: client and server round trips, sizes,
//! tampering, NAKs, key rotation and no-panic properties.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns may unwrap too

use ntp_proto::{
    ExtensionField, ExtensionFieldType, Header, KissCode, LeapIndicator, Mode, NtpShort,
    NtpTimestamp, Packet, PacketView, ReferenceId, SystemInfo,
};
use nts_cookie::packet::{
    DropReason, NakReason, OpenedRequest, RequestError, ResponseError, SealError, SealedRequest,
    nts_nak, open_request, open_response, seal_request, seal_response,
};
use nts_cookie::{AeadAlgorithm, CookieError, CookieJar, CookieKeys, KeySet, KeySetConfig};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

const ALGORITHMS: [AeadAlgorithm; 2] = [AeadAlgorithm::AesSivCmac256, AeadAlgorithm::AesSivCmac512];

fn rng() -> StdRng {
    StdRng::seed_from_u64(0x7e57)
}

fn key_set(r: &mut StdRng) -> KeySet {
    let config = KeySetConfig {
        rotation_period_s: 3600,
        old_keys_kept: 1,
    };
    KeySet::random(config, 0, r).unwrap()
}

/// A client jar with `n` cookies from `server` for fresh keys.
fn jar(server: &KeySet, alg: AeadAlgorithm, n: usize, r: &mut StdRng) -> CookieJar {
    let keys = CookieKeys::generate(alg, r);
    let cookies: Vec<_> = (0..n).map(|_| server.seal_cookie(&keys, r)).collect();
    CookieJar::with_cookies(keys, cookies).unwrap()
}

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

fn now() -> NtpTimestamp {
    NtpTimestamp::from_seconds_and_fraction(3_913_056_001, 0x8000_0000)
}

/// One client request from a jar of `n` cookies.
fn request(
    server: &KeySet,
    alg: AeadAlgorithm,
    n: usize,
    r: &mut StdRng,
) -> (CookieJar, Header, SealedRequest) {
    let mut jar = jar(server, alg, n, r);
    let header = Header::client_request_random(6, r);
    let sealed = seal_request(&header, &mut jar, 1500, r).unwrap();
    (jar, header, sealed)
}

fn respond(server: &KeySet, opened: &OpenedRequest<'_>, r: &mut StdRng) -> Vec<u8> {
    let header = Header::server_response(&opened.header, &system(), now(), now());
    let mut out = Vec::new();
    seal_response(&header, opened, server, r, &mut out).unwrap();
    out
}

fn field_types(bytes: &[u8]) -> Vec<(u16, usize)> {
    PacketView::new(bytes)
        .unwrap()
        .extension_fields()
        .map(|f| (f.field_type.0, f.length()))
        .collect()
}

#[test]
fn round_trip_refills_the_jar() {
    let mut r = rng();
    let server = key_set(&mut r);
    for alg in ALGORITHMS {
        for held in 1..=8 {
            let (mut jar, header, sealed) = request(&server, alg, held, &mut r);
            assert_eq!(sealed.placeholders, 8 - held, "{alg} {held}");
            let opened = open_request(&sealed.bytes, &server).unwrap();
            assert_eq!(&opened.keys, jar.keys());
            assert_eq!(opened.uid, sealed.uid);
            assert_eq!(opened.cookies_wanted, 9 - held);
            assert_eq!(opened.header, header);
            assert_eq!(opened.request_len, sealed.bytes.len());
            assert_eq!(opened.cookie_len, nts_cookie::cookie_len(alg));

            let reply = respond(&server, &opened, &mut r);
            assert!(reply.len() <= sealed.bytes.len());
            let mut response =
                open_response(&reply, &sealed.uid, header.transmit_timestamp, jar.keys()).unwrap();
            assert_eq!(response.kiss_code, None);
            assert_eq!(response.header.origin_timestamp, header.transmit_timestamp);
            assert_eq!(response.cookies.len(), 9 - held);
            // Every new cookie opens to the association's keys.
            for cookie in &response.cookies {
                assert_eq!(&server.open_cookie(cookie).unwrap(), jar.keys());
            }
            assert_eq!(response.store_cookies(&mut jar), 9 - held);
            assert!(response.cookies.is_empty());
            assert_eq!(jar.len(), 8, "{alg} {held}");
        }
    }
}

/// AEAD 30: 12-byte nonces both ways (which meet its padding rule), 72-byte cookies.
#[cfg(feature = "gcm-siv")]
#[test]
fn round_trip_gcm_siv() {
    let mut r = rng();
    let server = key_set(&mut r);
    let (mut jar, header, sealed) = request(&server, AeadAlgorithm::Aes128GcmSiv, 1, &mut r);
    assert_eq!(sealed.bytes.len(), 48 + 36 + 8 * 76 + 36);
    let opened = open_request(&sealed.bytes, &server).unwrap();
    assert_eq!(opened.cookies_wanted, 8);
    let reply = respond(&server, &opened, &mut r);
    assert_eq!(reply.len(), sealed.bytes.len());
    let parts = PacketView::new(&reply).unwrap();
    let parts = parts.nts_protected_parts().unwrap().unwrap();
    assert_eq!(parts.authenticator.nonce.len(), 12);
    let mut response =
        open_response(&reply, &sealed.uid, header.transmit_timestamp, jar.keys()).unwrap();
    assert_eq!(response.store_cookies(&mut jar), 8);
}

#[test]
fn sizes_match_the_protocol_digest() {
    let mut r = rng();
    let server = key_set(&mut r);
    // PROTOCOL.md §3.7 with our cookies: 104 bytes (AEAD 15) or 168 (AEAD 17), so
    // 108- or 172-byte fields; the response carries 8 cookies for 7 placeholders.
    for (alg, field) in [
        (AeadAlgorithm::AesSivCmac256, 108),
        (AeadAlgorithm::AesSivCmac512, 172),
    ] {
        let (_, _, sealed) = request(&server, alg, 1, &mut r);
        assert_eq!(sealed.placeholders, 7);
        let expected_request = 48 + 36 + field + 7 * field + 40;
        assert_eq!(sealed.bytes.len(), expected_request);
        let mut layout = vec![(0x0104, 36), (0x0204, field)];
        layout.extend([(0x0304, field); 7]);
        layout.push((0x0404, 40));
        assert_eq!(field_types(&sealed.bytes), layout);

        let opened = open_request(&sealed.bytes, &server).unwrap();
        let reply = respond(&server, &opened, &mut r);
        let expected_response = 48 + 36 + (4 + 4 + 16 + 16 + 8 * field);
        assert_eq!(reply.len(), expected_response);
        assert_eq!(
            field_types(&reply),
            [(0x0104, 36), (0x0404, expected_response - 84)]
        );
        assert!(reply.len() <= sealed.bytes.len());
    }
    assert_eq!(48 + 36 + 8 * 108 + 40, 988);
}

#[test]
fn authenticator_is_last_40_bytes_without_padding() {
    let mut r = rng();
    let server = key_set(&mut r);
    let (_, _, sealed) = request(&server, AeadAlgorithm::AesSivCmac256, 3, &mut r);
    let view = PacketView::new(&sealed.bytes).unwrap();
    let parts = view.nts_protected_parts().unwrap().unwrap();
    assert_eq!(parts.authenticator_offset, sealed.bytes.len() - 40);
    assert_eq!(parts.authenticator.nonce.len(), 16);
    assert_eq!(parts.authenticator.ciphertext.len(), 16);
    assert_eq!(parts.authenticator.additional_padding, 0);
    assert_eq!(parts.trailing_fields().count(), 0);
    // Placeholders are zeros of the cookie's length.
    let placeholders: Vec<_> = view
        .extension_fields()
        .filter(|f| f.field_type == ExtensionFieldType::NTS_COOKIE_PLACEHOLDER)
        .collect();
    assert_eq!(placeholders.len(), 5);
    assert!(
        placeholders
            .iter()
            .all(|f| f.body.len() == 104 && f.body.iter().all(|&b| b == 0))
    );
}

#[test]
fn placeholders_respect_the_packet_budget() {
    let mut r = rng();
    let server = key_set(&mut r);
    let mut jar = jar(&server, AeadAlgorithm::AesSivCmac512, 1, &mut r);
    let header = Header::client_request(6, 1);
    let sealed = seal_request(&header, &mut jar, 1280, &mut r).unwrap();
    // (1280 - 124 - 172) / 172 = 5
    assert_eq!(sealed.placeholders, 5);
    assert!(sealed.bytes.len() <= 1280);
    assert_eq!(
        seal_request(&header, &mut jar, 1280, &mut r),
        Err(SealError::NoCookies)
    );
}

#[test]
fn response_is_never_longer_than_the_request() {
    let mut r = rng();
    let server = key_set(&mut r);
    for alg in ALGORITHMS {
        let keys = CookieKeys::generate(alg, &mut r);
        let cookie = server.seal_cookie(&keys, &mut r);
        let cookie_field = ExtensionField::nts_cookie(&cookie).unwrap();
        for placeholders in 0..=10 {
            for placeholder_len in [cookie.len() - 4, cookie.len(), cookie.len() + 4] {
                for nonce_len in [1, 4, 12, 16, 20, 32] {
                    for padding in [0, 4, 12] {
                        let mut fields = vec![
                            ExtensionField::unique_identifier(&[7; 32]).unwrap(),
                            cookie_field.clone(),
                        ];
                        for _ in 0..placeholders {
                            fields.push(
                                ExtensionField::nts_cookie_placeholder(placeholder_len).unwrap(),
                            );
                        }
                        let bytes = hand_sealed(
                            Header::client_request(6, 9),
                            fields,
                            &keys,
                            nonce_len,
                            padding,
                        );
                        let needs_padding = nonce_len.div_ceil(4) * 4 + padding < 16;
                        let opened = match open_request(&bytes, &server) {
                            Ok(opened) => opened,
                            Err(RequestError::Drop(DropReason::InsufficientPadding { .. }))
                                if needs_padding =>
                            {
                                continue;
                            }
                            Err(e) => panic!("{e:?} {nonce_len} {padding}"),
                        };
                        assert!(!needs_padding);
                        let counted = if placeholder_len == cookie.len() {
                            placeholders
                        } else {
                            0
                        };
                        assert_eq!(opened.cookies_wanted, (1 + counted).min(8));
                        let reply = respond(&server, &opened, &mut r);
                        assert!(
                            reply.len() <= bytes.len(),
                            "{alg} {placeholders} {nonce_len}: {} > {}",
                            reply.len(),
                            bytes.len()
                        );
                        let response =
                            open_response(&reply, &[7; 32], NtpTimestamp::from_bits(9), &keys)
                                .unwrap();
                        // Fewer cookies only when they would not fit.
                        let field = cookie.len() + 4;
                        let fit = (bytes.len() - (48 + 36 + 40)) / field;
                        assert_eq!(response.cookies.len(), opened.cookies_wanted.min(fit));
                    }
                }
            }
        }
    }
}

/// Builds a request by hand: `fields`, then an authenticator with the given nonce
/// length and additional padding, under C2S.
fn hand_sealed(
    header: Header,
    fields: Vec<ExtensionField>,
    keys: &CookieKeys,
    nonce_len: usize,
    padding: usize,
) -> Vec<u8> {
    hand_sealed_with_plaintext(header, fields, keys, nonce_len, padding, &[], vec![])
}

fn hand_sealed_with_plaintext(
    header: Header,
    fields: Vec<ExtensionField>,
    keys: &CookieKeys,
    nonce_len: usize,
    padding: usize,
    plaintext: &[u8],
    after: Vec<ExtensionField>,
) -> Vec<u8> {
    let mut packet = Packet {
        header,
        extension_fields: fields,
        mac: None,
    };
    let ad = packet.to_vec();
    let nonce = vec![0x4e; nonce_len];
    let ct = keys.c2s().seal(&nonce, &ad, plaintext).unwrap();
    packet
        .extension_fields
        .push(ExtensionField::nts_authenticator(&nonce, &ct, padding).unwrap());
    packet.extension_fields.extend(after);
    packet.to_vec()
}

fn inner(field: &ExtensionField) -> Vec<u8> {
    let mut out = Vec::new();
    field.emit(&mut out, 4);
    out
}

#[test]
fn response_without_room_carries_fewer_cookies() {
    let mut r = rng();
    let server = key_set(&mut r);
    let keys = CookieKeys::generate(AeadAlgorithm::AesSivCmac256, &mut r);
    let cookie = server.seal_cookie(&keys, &mut r);
    let fields = || {
        vec![
            ExtensionField::unique_identifier(&[7; 32]).unwrap(),
            ExtensionField::nts_cookie(&cookie).unwrap(),
            ExtensionField::nts_cookie_placeholder(104).unwrap(),
        ]
    };
    // The smallest valid authenticator (a 4-byte nonce padded to 16, 40 bytes) leaves
    // exactly the room of the two cookies asked for: 48 + 36 + 2·108 + 40.
    let client = Header::client_request(6, 9);
    let bytes = hand_sealed(client, fields(), &keys, 4, 12);
    assert_eq!(bytes.len(), 340);
    let mut opened = open_request(&bytes, &server).unwrap();
    assert_eq!(opened.cookies_wanted, 2);
    let reply = respond(&server, &opened, &mut r);
    assert_eq!(reply.len(), 340);
    let open = |reply: &[u8]| {
        open_response(reply, &[7; 32], NtpTimestamp::from_bits(9), &keys)
            .unwrap()
            .cookies
            .len()
    };
    assert_eq!(open(&reply), 2);

    // A limit 4 bytes lower (as if the request had been shorter) leaves room for one
    // cookie, then for none.
    for (limit, cookies) in [(336, 1), (232, 1), (231, 0), (124, 0)] {
        opened.request_len = limit;
        let reply = respond(&server, &opened, &mut r);
        assert!(reply.len() <= limit);
        assert_eq!(reply.len(), 124 + cookies * 108);
        assert_eq!(open(&reply), cookies, "{limit}");
    }

    // Not even the UID and an empty authenticator fit.
    opened.request_len = 123;
    let header = Header::server_response(&opened.header, &system(), now(), now());
    let mut out = vec![1, 2, 3];
    assert_eq!(
        seal_response(&header, &opened, &server, &mut r, &mut out),
        Err(SealError::ResponseTooLong {
            len: 124,
            limit: 123
        })
    );
    assert!(out.is_empty());
}

#[test]
fn encrypted_placeholders_count_and_cap_at_eight() {
    let mut r = rng();
    let server = key_set(&mut r);
    let keys = CookieKeys::generate(AeadAlgorithm::AesSivCmac256, &mut r);
    let cookie = server.seal_cookie(&keys, &mut r);
    let base = || {
        vec![
            ExtensionField::unique_identifier(&[1; 32]).unwrap(),
            ExtensionField::nts_cookie(&cookie).unwrap(),
            ExtensionField::nts_cookie_placeholder(104).unwrap(),
            ExtensionField::nts_cookie_placeholder(100).unwrap(),
        ]
    };
    let mut pt = Vec::new();
    for _ in 0..2 {
        pt.extend(inner(&ExtensionField::nts_cookie_placeholder(104).unwrap()));
    }
    pt.extend(inner(
        &ExtensionField::new(ExtensionFieldType(0xF00F), vec![1; 5]).unwrap(),
    ));
    let bytes = hand_sealed_with_plaintext(
        Header::client_request(6, 1),
        base(),
        &keys,
        16,
        0,
        &pt,
        vec![],
    );
    // 1 + 1 plaintext placeholder of the right length + 2 encrypted.
    assert_eq!(open_request(&bytes, &server).unwrap().cookies_wanted, 4);

    let mut many = base();
    many.extend((0..12).map(|_| ExtensionField::nts_cookie_placeholder(104).unwrap()));
    let bytes = hand_sealed(Header::client_request(6, 1), many, &keys, 16, 0);
    assert_eq!(open_request(&bytes, &server).unwrap().cookies_wanted, 8);

    // Malformed encrypted fields: dropped.
    let bytes = hand_sealed_with_plaintext(
        Header::client_request(6, 1),
        base(),
        &keys,
        16,
        0,
        &[0x03, 0x04, 0x00, 0x02],
        vec![],
    );
    assert!(matches!(
        open_request(&bytes, &server),
        Err(RequestError::Drop(DropReason::MalformedPlaintext(_)))
    ));
}

#[test]
fn tampered_request_is_never_accepted() {
    let mut r = rng();
    let server = key_set(&mut r);
    for alg in ALGORITHMS {
        let (_, _, sealed) = request(&server, alg, 6, &mut r);
        assert!(open_request(&sealed.bytes, &server).is_ok());
        let mut naks = 0;
        for i in 0..sealed.bytes.len() {
            for flip in [0x01, 0x80] {
                let mut bytes = sealed.bytes.clone();
                bytes[i] ^= flip;
                match open_request(&bytes, &server) {
                    Ok(_) => panic!("{alg}: flipping byte {i} by {flip:#x} was accepted"),
                    Err(RequestError::Nak { uid, .. }) => {
                        naks += 1;
                        assert_eq!(uid.len(), 32);
                    }
                    Err(_) => {}
                }
            }
        }
        // Most flips reach the cryptography and earn a NAK.
        assert!(naks > sealed.bytes.len(), "{naks}");
    }
}

#[test]
fn forged_or_expired_cookie_is_naked_with_the_uid() {
    let mut r = rng();
    let mut server = key_set(&mut r);
    let (mut jar, _, _) = request(&server, AeadAlgorithm::AesSivCmac256, 1, &mut r);
    let keys = jar.keys().clone();

    // A cookie of the right shape sealed by another server.
    let other = key_set(&mut StdRng::seed_from_u64(99));
    jar.store(other.seal_cookie(&keys, &mut r)).unwrap();
    let sealed = seal_request(&Header::client_request(6, 5), &mut jar, 1280, &mut r).unwrap();
    let err = open_request(&sealed.bytes, &server).unwrap_err();
    assert_eq!(err.uid(), Some(&sealed.uid[..]));
    assert!(matches!(
        err,
        RequestError::Nak {
            reason: NakReason::Cookie(CookieError::UnknownKeyId(_)),
            ..
        }
    ));

    // Random bytes as a cookie.
    let mut forged = vec![0; 104];
    r.fill_bytes(&mut forged);
    forged[..4].copy_from_slice(&server.current_key_id().to_be_bytes());
    jar.store(forged).unwrap();
    let sealed = seal_request(&Header::client_request(6, 5), &mut jar, 1280, &mut r).unwrap();
    let err = open_request(&sealed.bytes, &server).unwrap_err();
    assert_eq!(err.uid(), Some(&sealed.uid[..]));
    assert!(matches!(
        err,
        RequestError::Nak {
            reason: NakReason::Cookie(_),
            ..
        }
    ));

    // A genuine cookie with the wrong C2S key: NAK for authentication.
    let wrong = CookieKeys::generate(AeadAlgorithm::AesSivCmac256, &mut r);
    let mut liar = CookieJar::with_cookies(wrong, [server.seal_cookie(&keys, &mut r)]).unwrap();
    let sealed = seal_request(&Header::client_request(6, 5), &mut liar, 1280, &mut r).unwrap();
    let err = open_request(&sealed.bytes, &server).unwrap_err();
    assert!(matches!(
        err,
        RequestError::Nak {
            reason: NakReason::Authentication(_),
            ..
        }
    ));

    // Key rotation: a cookie outlives its master key by `old_keys_kept` rotations.
    let old = server.seal_cookie(&keys, &mut r);
    let mut jar = CookieJar::with_cookies(keys.clone(), [old.clone(), old.clone()]).unwrap();
    server.rotate_if_due(3600, &mut r);
    let sealed = seal_request(&Header::client_request(6, 5), &mut jar, 1280, &mut r).unwrap();
    assert!(open_request(&sealed.bytes, &server).is_ok());
    server.rotate_if_due(7200, &mut r);
    let sealed = seal_request(&Header::client_request(6, 5), &mut jar, 1280, &mut r).unwrap();
    let err = open_request(&sealed.bytes, &server).unwrap_err();
    assert_eq!(err.uid(), Some(&sealed.uid[..]));
    assert!(matches!(
        err,
        RequestError::Nak {
            reason: NakReason::Cookie(CookieError::UnknownKeyId(_)),
            ..
        }
    ));
}

#[test]
fn malformed_requests_are_dropped() {
    let mut r = rng();
    let server = key_set(&mut r);
    let keys = CookieKeys::generate(AeadAlgorithm::AesSivCmac256, &mut r);
    let cookie = server.seal_cookie(&keys, &mut r);
    let uid = || ExtensionField::unique_identifier(&[3; 32]).unwrap();
    let ck = || ExtensionField::nts_cookie(&cookie).unwrap();
    let client = Header::client_request(6, 1);
    let drop_reason = |bytes: &[u8]| match open_request(bytes, &server) {
        Err(RequestError::Drop(reason)) => reason,
        other => panic!("{other:?}"),
    };

    // The well-formed baseline opens.
    assert!(
        open_request(
            &hand_sealed(client, vec![uid(), ck()], &keys, 16, 0),
            &server
        )
        .is_ok()
    );

    assert_eq!(
        drop_reason(&hand_sealed(client, vec![uid(), ck(), ck()], &keys, 16, 0)),
        DropReason::DuplicateCookie
    );
    assert_eq!(
        drop_reason(&hand_sealed(client, vec![uid()], &keys, 16, 0)),
        DropReason::MissingCookie
    );
    assert_eq!(
        drop_reason(&hand_sealed(client, vec![ck()], &keys, 16, 0)),
        DropReason::MissingUid
    );
    assert_eq!(
        drop_reason(&hand_sealed(client, vec![uid(), ck(), uid()], &keys, 16, 0)),
        DropReason::DuplicateUid
    );
    for len in [28, 68] {
        let short = ExtensionField::unique_identifier(&vec![3; len]).unwrap();
        assert_eq!(
            drop_reason(&hand_sealed(client, vec![short, ck()], &keys, 16, 0)),
            DropReason::UidLength { len }
        );
    }
    let long_ok = ExtensionField::unique_identifier(&[3; 64]).unwrap();
    assert!(
        open_request(
            &hand_sealed(client, vec![long_ok, ck()], &keys, 16, 0),
            &server
        )
        .is_ok()
    );

    // The authenticator must be last: a field after it, even an unknown one.
    let trailing = ExtensionField::new(ExtensionFieldType(0xF00F), vec![0; 24]).unwrap();
    let bytes =
        hand_sealed_with_plaintext(client, vec![uid(), ck()], &keys, 16, 0, &[], vec![trailing]);
    assert_eq!(drop_reason(&bytes), DropReason::AuthenticatorNotLast);
    // Also a cookie after it (which would otherwise be a second one).
    let bytes =
        hand_sealed_with_plaintext(client, vec![uid(), ck()], &keys, 16, 0, &[], vec![ck()]);
    assert_eq!(drop_reason(&bytes), DropReason::AuthenticatorNotLast);

    // No authenticator at all.
    let plain = Packet {
        header: client,
        extension_fields: vec![uid(), ck()],
        mac: None,
    };
    assert_eq!(
        drop_reason(&plain.to_vec()),
        DropReason::MissingAuthenticator
    );

    // Not a client request.
    let mut server_mode = client;
    server_mode.mode = Mode::Server;
    assert_eq!(
        drop_reason(&hand_sealed(server_mode, vec![uid(), ck()], &keys, 16, 0)),
        DropReason::NotClientMode { mode: Mode::Server }
    );

    // A short nonce needs additional padding (RFC 8915 §5.6).
    assert_eq!(
        drop_reason(&hand_sealed(client, vec![uid(), ck()], &keys, 8, 4)),
        DropReason::InsufficientPadding {
            nonce_len: 8,
            padding: 4,
            required: 8
        }
    );
    assert!(
        open_request(
            &hand_sealed(client, vec![uid(), ck()], &keys, 8, 8),
            &server
        )
        .is_ok()
    );

    // Garbage.
    assert!(matches!(drop_reason(&[0; 47]), DropReason::Parse(_)));
}

#[test]
fn tampered_response_is_never_accepted() {
    let mut r = rng();
    let server = key_set(&mut r);
    for alg in ALGORITHMS {
        let (jar, header, sealed) = request(&server, alg, 5, &mut r);
        let opened = open_request(&sealed.bytes, &server).unwrap();
        let reply = respond(&server, &opened, &mut r);
        let origin = header.transmit_timestamp;
        assert!(open_response(&reply, &sealed.uid, origin, jar.keys()).is_ok());
        for i in 0..reply.len() {
            let mut bytes = reply.clone();
            bytes[i] ^= 0x10;
            let err = open_response(&bytes, &sealed.uid, origin, jar.keys())
                .expect_err(&format!("{alg}: flipping byte {i} was accepted"));
            let expected = match i {
                // Version 4 becomes 6.
                0 => matches!(err, ResponseError::Parse(_)),
                1..24 | 32..48 => matches!(err, ResponseError::AuthenticationFailed(_)),
                24..32 => err == ResponseError::OriginMismatch,
                52..84 => err == ResponseError::UidMismatch,
                // Nonce and ciphertext.
                92.. => matches!(err, ResponseError::AuthenticationFailed(_)),
                // Field headers and authenticator lengths: anything but success.
                _ => true,
            };
            assert!(expected, "byte {i}: {err:?}");
        }
        // Someone else's request.
        assert_eq!(
            open_response(&reply, &[0; 32], origin, jar.keys()),
            Err(ResponseError::UidMismatch)
        );
    }
}

/// Splits a sealed response into its header + UID and the authenticator field.
fn strip_authenticator(reply: &[u8]) -> (Packet, ExtensionField) {
    let mut packet = Packet::parse(reply).unwrap();
    let auth = packet.extension_fields.pop().unwrap();
    assert_eq!(auth.field_type(), ExtensionFieldType::NTS_AUTHENTICATOR);
    (packet, auth)
}

#[test]
fn unauthenticated_responses_are_dropped() {
    let mut r = rng();
    let server = key_set(&mut r);
    let (jar, header, sealed) = request(&server, AeadAlgorithm::AesSivCmac256, 1, &mut r);
    let opened = open_request(&sealed.bytes, &server).unwrap();
    let origin = header.transmit_timestamp;
    let reply = respond(&server, &opened, &mut r);
    let (stripped, _) = strip_authenticator(&reply);
    assert_eq!(
        open_response(&stripped.to_vec(), &sealed.uid, origin, jar.keys()),
        Err(ResponseError::Unauthenticated { kiss_code: None })
    );

    // An unauthenticated RATE (or DENY) is not believed.
    for code in [KissCode::RATE, KissCode::DENY] {
        let kod = Packet {
            header: Header::kiss_of_death(&header, code, &system(), now(), now()),
            extension_fields: vec![ExtensionField::unique_identifier(&sealed.uid).unwrap()],
            mac: None,
        };
        assert_eq!(
            open_response(&kod.to_vec(), &sealed.uid, origin, jar.keys()),
            Err(ResponseError::Unauthenticated {
                kiss_code: Some(code)
            })
        );
    }

    // No UID at all.
    let bare = Packet::from_header(Header::server_response(&header, &system(), now(), now()));
    assert_eq!(
        open_response(&bare.to_vec(), &sealed.uid, origin, jar.keys()),
        Err(ResponseError::MissingUid)
    );
}

#[test]
fn authenticated_kiss_of_death_is_returned() {
    let mut r = rng();
    let server = key_set(&mut r);
    let (jar, header, sealed) = request(&server, AeadAlgorithm::AesSivCmac512, 8, &mut r);
    let opened = open_request(&sealed.bytes, &server).unwrap();
    let kod = Header::kiss_of_death(&opened.header, KissCode::RATE, &system(), now(), now());
    let mut out = Vec::new();
    seal_response(&kod, &opened, &server, &mut r, &mut out).unwrap();
    let response = open_response(&out, &sealed.uid, header.transmit_timestamp, jar.keys()).unwrap();
    assert_eq!(response.kiss_code, Some(KissCode::RATE));
    assert_eq!(response.header.stratum, 0);
    assert_eq!(response.cookies.len(), 1);
}

#[test]
fn cookies_outside_the_ciphertext_are_not_taken() {
    let mut r = rng();
    let server = key_set(&mut r);
    let (jar, header, sealed) = request(&server, AeadAlgorithm::AesSivCmac256, 8, &mut r);
    let keys = jar.keys();
    let origin = header.transmit_timestamp;
    let response_header = Header::server_response(&header, &system(), now(), now());
    let planted = ExtensionField::nts_cookie(&[0xC0; 104]).unwrap();

    // A plaintext cookie before the authenticator, covered by it: still not taken.
    let fields = vec![
        ExtensionField::unique_identifier(&sealed.uid).unwrap(),
        planted.clone(),
    ];
    let real = inner(&ExtensionField::nts_cookie(&[0x11; 104]).unwrap());
    let bytes = server_sealed(response_header, fields, keys, &real, vec![planted.clone()]);
    let response = open_response(&bytes, &sealed.uid, origin, keys).unwrap();
    // ...and one after it, not covered: ignored too.
    assert_eq!(response.cookies, vec![vec![0x11; 104]]);

    // A UID after the authenticator does not count.
    let fields = vec![planted];
    let uid_after = ExtensionField::unique_identifier(&sealed.uid).unwrap();
    let bytes = server_sealed(response_header, fields, keys, &real, vec![uid_after]);
    assert_eq!(
        open_response(&bytes, &sealed.uid, origin, keys),
        Err(ResponseError::MissingUid)
    );
}

/// A response built by hand under S2C.
fn server_sealed(
    header: Header,
    fields: Vec<ExtensionField>,
    keys: &CookieKeys,
    plaintext: &[u8],
    after: Vec<ExtensionField>,
) -> Vec<u8> {
    let mut packet = Packet {
        header,
        extension_fields: fields,
        mac: None,
    };
    let ad = packet.to_vec();
    let nonce = [0x5a; 16];
    let ct = keys.s2c().seal(&nonce, &ad, plaintext).unwrap();
    packet
        .extension_fields
        .push(ExtensionField::nts_authenticator(&nonce, &ct, 0).unwrap());
    packet.extension_fields.extend(after);
    packet.to_vec()
}

#[test]
fn nts_nak_round_trip() {
    let mut r = rng();
    let server = key_set(&mut r);
    let other = key_set(&mut StdRng::seed_from_u64(5));
    let (jar, header, sealed) = request(&other, AeadAlgorithm::AesSivCmac256, 2, &mut r);
    let err = open_request(&sealed.bytes, &server).unwrap_err();
    let RequestError::Nak {
        header: request_header,
        uid,
        ..
    } = err
    else {
        panic!("{err:?}")
    };
    let mut nak = Vec::new();
    nts_nak(&request_header, uid, &system(), now(), now(), &mut nak);
    assert_eq!(nak.len(), 84);
    assert!(nak.len() <= sealed.bytes.len());
    assert_eq!(field_types(&nak), [(0x0104, 36)]);
    let view = PacketView::new(&nak).unwrap();
    assert_eq!(view.header().kiss_code(), Some(KissCode::NTSN));
    assert_eq!(view.header().leap, LeapIndicator::Unsynchronized);

    let origin = header.transmit_timestamp;
    assert_eq!(
        open_response(&nak, &sealed.uid, origin, jar.keys()),
        Err(ResponseError::NtsNak)
    );
    let mut wrong_uid = sealed.uid;
    wrong_uid[0] ^= 1;
    assert_eq!(
        open_response(&nak, &wrong_uid, origin, jar.keys()),
        Err(ResponseError::UidMismatch)
    );
    assert_eq!(
        open_response(&nak, &sealed.uid, NtpTimestamp::from_bits(1), jar.keys()),
        Err(ResponseError::OriginMismatch)
    );
}

fn valid_pair() -> (KeySet, CookieKeys, SealedRequest, Vec<u8>, NtpTimestamp) {
    let mut r = rng();
    let server = key_set(&mut r);
    let (jar, header, sealed) = request(&server, AeadAlgorithm::AesSivCmac256, 6, &mut r);
    let opened = open_request(&sealed.bytes, &server).unwrap();
    let reply = respond(&server, &opened, &mut r);
    (
        server,
        jar.keys().clone(),
        sealed,
        reply,
        header.transmit_timestamp,
    )
}

proptest! {
    #[test]
    fn open_request_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let (server, ..) = valid_pair();
        let _ = open_request(&bytes, &server);
    }

    #[test]
    fn open_response_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let (_, keys, sealed, _, origin) = valid_pair();
        let _ = open_response(&bytes, &sealed.uid, origin, &keys);
    }

    /// Mutations of valid packets: overwrite bytes, truncate or extend. Nothing panics;
    /// a mutated request that opens still yields the original keys, and a mutated
    /// response that opens has the bytes of the original up to the authenticator.
    #[test]
    fn mutated_packets_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in any::<prop::sample::Index>(),
        extra in proptest::collection::vec(any::<u8>(), 0..64),
        truncate in any::<bool>(),
    ) {
        let (server, keys, sealed, reply, origin) = valid_pair();
        for original in [&sealed.bytes, &reply] {
            let mut bytes = original.clone();
            for (at, value) in &edits {
                let i = at.index(bytes.len());
                bytes[i] = *value;
            }
            if truncate {
                bytes.truncate(cut.index(bytes.len() + 1));
            } else {
                bytes.extend_from_slice(&extra);
            }
            if let Ok(opened) = open_request(&bytes, &server) {
                prop_assert_eq!(&opened.keys, &keys);
            }
            if open_response(&bytes, &sealed.uid, origin, &keys).is_ok() {
                let prefix = bytes.len().min(reply.len()).min(84);
                prop_assert_eq!(&bytes[..prefix], &reply[..prefix]);
            }
        }
    }
}

/// Writes the seed corpora of the `nts_request_open` and `nts_response_open` fuzz
/// targets. Run with `cargo test -p nts-cookie --test packet -- --ignored
/// write_fuzz_seeds`; the constants match those in `fuzz/fuzz_targets/`.
#[test]
#[ignore = "writes files under fuzz/corpus"]
fn write_fuzz_seeds() {
    const SECRET: [u8; 32] = *b"fuzzing fleet secret, 32 bytes!!";
    const NOW: u64 = 1_700_000_000;
    const UID: [u8; 32] = *b"fuzzing unique identifier, 32 b!";
    const ORIGIN: u64 = 0x0123_4567_89ab_cdef;

    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    };
    let mut r = rng();
    let config = KeySetConfig {
        rotation_period_s: 3600,
        old_keys_kept: 2,
    };
    let fleet = KeySet::fleet(config, &SECRET, NOW).unwrap();

    // Requests to the fleet key set, as our client sends them.
    for (alg, held, name) in [
        (AeadAlgorithm::AesSivCmac256, 1, "aead15-7-placeholders"),
        (AeadAlgorithm::AesSivCmac256, 8, "aead15-no-placeholders"),
        (AeadAlgorithm::AesSivCmac512, 7, "aead17-1-placeholder"),
    ] {
        let mut jar = jar(&fleet, alg, held, &mut r);
        let sealed = seal_request(&Header::client_request(6, 42), &mut jar, 1280, &mut r).unwrap();
        assert!(open_request(&sealed.bytes, &fleet).is_ok());
        write("nts_request_open", name, &sealed.bytes);
    }
    let foreign = key_set(&mut r);
    let mut jar = jar(&foreign, AeadAlgorithm::AesSivCmac256, 2, &mut r);
    let sealed = seal_request(&Header::client_request(6, 42), &mut jar, 1280, &mut r).unwrap();
    assert!(
        open_request(&sealed.bytes, &fleet)
            .unwrap_err()
            .uid()
            .is_some()
    );
    write("nts_request_open", "foreign-cookie-nak", &sealed.bytes);

    // Responses to a request with the fixed UID and transmit timestamp, under the fixed
    // keys of the response target.
    let client = Header::client_request(6, ORIGIN);
    for (alg, key_len, placeholders, name) in [
        (AeadAlgorithm::AesSivCmac256, 32, 7, "aead15-8-cookies"),
        (AeadAlgorithm::AesSivCmac512, 64, 0, "aead17-1-cookie"),
    ] {
        let keys = CookieKeys::new(alg, &vec![0xC2; key_len], &vec![0x5C; key_len]).unwrap();
        let cookie = fleet.seal_cookie(&keys, &mut r);
        let mut fields = vec![
            ExtensionField::unique_identifier(&UID).unwrap(),
            ExtensionField::nts_cookie(&cookie).unwrap(),
        ];
        fields.extend(
            (0..placeholders)
                .map(|_| ExtensionField::nts_cookie_placeholder(cookie.len()).unwrap()),
        );
        let request = hand_sealed(client, fields, &keys, 16, 0);
        let opened = open_request(&request, &fleet).unwrap();
        let reply = respond(&fleet, &opened, &mut r);
        let origin = NtpTimestamp::from_bits(ORIGIN);
        assert!(open_response(&reply, &UID, origin, &keys).is_ok());
        write("nts_response_open", name, &reply);
        if placeholders == 0 {
            let rate =
                Header::kiss_of_death(&opened.header, KissCode::RATE, &system(), now(), now());
            let mut out = Vec::new();
            seal_response(&rate, &opened, &fleet, &mut r, &mut out).unwrap();
            assert_eq!(
                open_response(&out, &UID, origin, &keys).unwrap().kiss_code,
                Some(KissCode::RATE)
            );
            write("nts_response_open", "aead17-rate", &out);
        }
    }
    let mut nak = Vec::new();
    nts_nak(&client, &UID, &system(), now(), now(), &mut nak);
    write("nts_response_open", "nts-nak", &nak);
}
