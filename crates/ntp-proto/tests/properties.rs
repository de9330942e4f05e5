//! Property tests: `parse(emit(p)) == p` for any packet, `emit(parse(b)) == b`
//! for canonical bytes, and no panic on any bytes.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use ntp_proto::{
    ExtensionField, ExtensionFieldType, Header, LeapIndicator, Mac, Mode, NtpShort, NtpTimestamp,
    Packet, PacketView, ReferenceId, Version,
};
use proptest::prelude::*;

fn header() -> impl Strategy<Value = Header> {
    (
        (0u8..4, 0u8..6, any::<u8>(), any::<i8>(), any::<i8>()),
        (any::<u32>(), any::<u32>(), any::<[u8; 4]>()),
        (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>()),
    )
        .prop_map(
            |((li, mode, stratum, poll, precision), (rd, rdisp, refid), (t0, t1, t2, t3))| Header {
                leap: LeapIndicator::from_bits(li),
                version: Version::V4,
                mode: Mode::from_bits(mode),
                stratum,
                poll,
                precision,
                root_delay: NtpShort::from_bits(rd),
                root_dispersion: NtpShort::from_bits(rdisp),
                reference_id: ReferenceId::from_bytes(refid),
                reference_timestamp: NtpTimestamp::from_bits(t0),
                origin_timestamp: NtpTimestamp::from_bits(t1),
                receive_timestamp: NtpTimestamp::from_bits(t2),
                transmit_timestamp: NtpTimestamp::from_bits(t3),
            },
        )
}

/// A field whose body is already aligned and at least `min_body` long, so it
/// re-emits unchanged.
fn field(min_body: usize) -> impl Strategy<Value = ExtensionField> {
    (any::<u16>(), (min_body / 4)..40usize).prop_flat_map(|(ty, words)| {
        proptest::collection::vec(any::<u8>(), words * 4).prop_map(move |body| {
            ExtensionField::new(ExtensionFieldType(ty), body).expect("short body")
        })
    })
}

fn mac() -> impl Strategy<Value = Option<Mac>> {
    prop_oneof![
        Just(None),
        Just(Some(Mac::crypto_nak())),
        (any::<u32>(), any::<[u8; 16]>()).prop_map(|(k, d)| Some(Mac::new(k, &d).unwrap())),
        (any::<u32>(), any::<[u8; 20]>()).prop_map(|(k, d)| Some(Mac::new(k, &d).unwrap())),
    ]
}

fn packet() -> impl Strategy<Value = Packet> {
    (
        header(),
        proptest::collection::vec(field(12), 0..5),
        field(24),
        any::<bool>(),
        mac(),
    )
        .prop_map(|(header, mut fields, last, add_last, mac)| {
            if add_last || mac.is_none_or(|m| m.is_crypto_nak()) && !fields.is_empty() {
                fields.push(last);
            }
            Packet {
                header,
                extension_fields: fields,
                mac,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_of_emit_is_identity(p in packet()) {
        let bytes = p.to_vec();
        prop_assert_eq!(bytes.len(), p.encoded_len());
        prop_assert_eq!(Packet::parse(&bytes).unwrap(), p);
    }

    #[test]
    fn emit_of_parse_is_identity_for_canonical_bytes(p in packet()) {
        let bytes = p.to_vec();
        let again = Packet::parse(&bytes).unwrap().to_vec();
        prop_assert_eq!(again, bytes);
    }

    #[test]
    fn header_round_trips(h in header()) {
        prop_assert_eq!(Header::parse(&h.to_bytes()).unwrap(), h);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(view) = PacketView::new(&bytes) {
            // A successful parse re-emits to something that parses again,
            // with the same header and the same field types in order.
            let p = Packet::from_view(&view);
            let again = Packet::parse(&p.to_vec()).unwrap();
            prop_assert_eq!(again.header, p.header);
            let types = |q: &Packet| q.extension_fields.iter().map(|f| f.field_type()).collect::<Vec<_>>();
            prop_assert_eq!(types(&again), types(&p));
            for f in view.extension_fields() {
                let _ = f.nts();
            }
            let _ = view.nts_protected_parts();
        }
    }

    #[test]
    fn mutated_valid_packets_never_panic(p in packet(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), cut in any::<usize>()) {
        let mut bytes = p.to_vec();
        for (at, value) in flips {
            let i = at % bytes.len();
            bytes[i] = value;
        }
        bytes.truncate(cut % (bytes.len() + 1));
        match PacketView::new(&bytes) {
            Ok(view) => { let _ = view.nts_protected_parts(); }
            Err(e) => prop_assert!(e.offset() <= bytes.len()),
        }
    }
}
