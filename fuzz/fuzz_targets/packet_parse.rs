//! Packet parsing: no input may panic, and whatever parses must round-trip.
//!
//! Oracle: a packet that parses re-emits to bytes that parse to the same
//! header and the same extension fields (types and bodies, bar the padding
//! `emit` adds to reach RFC 7822's minimum lengths) and the same MAC; and if
//! the input was already canonical, `emit(parse(b)) == b`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ntp_proto::{Packet, PacketView};

fuzz_target!(|data: &[u8]| {
    let Ok(view) = PacketView::new(data) else {
        return;
    };
    // Exercise the NTS accessors too.
    for field in view.extension_fields() {
        let _ = field.nts();
    }
    let _ = view.nts_protected_parts();

    let packet = Packet::from_view(&view);
    let bytes = packet.to_vec();
    assert_eq!(bytes.len(), packet.encoded_len());
    let again = Packet::parse(&bytes).expect("emitted packet must parse");
    assert_eq!(again.header, packet.header);
    assert_eq!(again.mac, packet.mac);
    assert_eq!(again.extension_fields.len(), packet.extension_fields.len());
    for (a, b) in again.extension_fields.iter().zip(&packet.extension_fields) {
        assert_eq!(a.field_type(), b.field_type());
        assert!(a.body().starts_with(b.body()));
        assert!(a.body()[b.body().len()..].iter().all(|&x| x == 0));
    }
    // Emitting is idempotent after one normalisation.
    assert_eq!(again.to_vec(), bytes);
    if bytes.len() == data.len() {
        assert_eq!(bytes, data, "canonical input must re-emit identically");
    }
});
