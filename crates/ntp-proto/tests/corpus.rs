//! Every NTP packet chrony sent in `tests/corpus/` (copied from the shared
//! capture corpus) parses, matches the facts its README table states, and
//! re-emits to the identical bytes.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::path::PathBuf;

use ntp_proto::{LeapIndicator, Mode, Packet, PacketView, Version};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// One row of the README's "NTP packets" table.
#[derive(Debug)]
struct Row {
    file: String,
    bytes: usize,
    fields: Vec<(u16, usize)>,
    mode: u8,
    leap: u8,
    stratum: u8,
    refid: String,
}

fn readme_rows() -> Vec<Row> {
    let readme = std::fs::read_to_string(corpus_dir().join("README.md")).unwrap();
    let table = readme
        .split("## NTP packets")
        .nth(1)
        .unwrap()
        .split("##")
        .next()
        .unwrap();
    table
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            // | file | producer | NTS | bytes | EFs | fields | header | capture |
            let file = cells[1].trim_matches('`').to_string();
            let bytes = cells[4].parse().unwrap();
            let ef_count: usize = cells[5].parse().unwrap();
            let fields: Vec<(u16, usize)> = if cells[6] == "none" {
                vec![]
            } else {
                cells[6]
                    .split(", ")
                    .map(|f| {
                        // e.g. "UniqueIdentifier(0x0104) len 36"
                        let ty = f.split("(0x").nth(1).unwrap().split(')').next().unwrap();
                        let len = f.rsplit("len ").next().unwrap();
                        (u16::from_str_radix(ty, 16).unwrap(), len.parse().unwrap())
                    })
                    .collect()
            };
            assert_eq!(fields.len(), ef_count, "{file}: EF count column");
            let header: Vec<&str> = cells[7].split_whitespace().collect();
            // "v4 mode 3 LI 0 stratum 0 refid 00000000" or "... refid NTSN"
            assert_eq!(header[0], "v4");
            Row {
                file,
                bytes,
                fields,
                mode: header[2].parse().unwrap(),
                leap: header[4].parse().unwrap(),
                stratum: header[6].parse().unwrap(),
                refid: header[8].to_string(),
            }
        })
        .collect()
}

fn read_hex(name: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(corpus_dir().join(name)).unwrap();
    hex::decode(text.trim()).unwrap()
}

#[test]
fn every_corpus_packet_matches_its_readme_row_and_round_trips() {
    let rows = readme_rows();
    // The README lists 13 NTP packets; all are present here.
    assert_eq!(rows.len(), 13);
    let mut seen = BTreeMap::new();
    for row in &rows {
        let bytes = read_hex(&row.file);
        assert_eq!(bytes.len(), row.bytes, "{}", row.file);
        let view = PacketView::new(&bytes).unwrap_or_else(|e| panic!("{}: {e}", row.file));
        let h = view.header();
        assert_eq!(h.version, Version::V4, "{}", row.file);
        assert_eq!(h.mode.to_bits(), row.mode, "{}", row.file);
        assert_eq!(h.leap.to_bits(), row.leap, "{}", row.file);
        assert_eq!(h.stratum, row.stratum, "{}", row.file);
        let refid = match h.kiss_code() {
            Some(code) => code.as_str().to_string(),
            None => h.reference_id.to_string(),
        };
        assert_eq!(refid, row.refid, "{}", row.file);
        let fields: Vec<(u16, usize)> = view
            .extension_fields()
            .map(|f| (f.field_type.0, f.length()))
            .collect();
        assert_eq!(fields, row.fields, "{}", row.file);
        assert!(view.mac().is_none(), "{}", row.file);
        // Every NTS field is well formed.
        for f in view.extension_fields() {
            f.nts().unwrap_or_else(|e| panic!("{}: {e}", row.file));
        }
        let packet = Packet::parse(&bytes).unwrap();
        assert_eq!(packet.encoded_len(), bytes.len(), "{}", row.file);
        assert_eq!(packet.to_vec(), bytes, "{}: re-emit differs", row.file);
        seen.insert(row.file.clone(), ());
    }
    let on_disk: Vec<String> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".hex"))
        .collect();
    for name in on_disk {
        assert!(
            seen.contains_key(&name),
            "{name} is not described by the README"
        );
    }
}

#[test]
fn chrony_nts_request_and_response_split_for_authentication() {
    let request = read_hex("chrony-client-nts-request.hex");
    let view = PacketView::new(&request).unwrap();
    let parts = view.nts_protected_parts().unwrap().unwrap();
    // UID (36) + cookie (104) are covered; the 40-byte authenticator is last.
    assert_eq!(parts.authenticator_offset, 48 + 36 + 104);
    assert_eq!(parts.associated_data.len(), 188);
    assert_eq!(parts.authenticator.nonce.len(), 16);
    assert_eq!(parts.authenticator.ciphertext.len(), 16);
    assert_eq!(parts.covered_fields().count(), 2);

    let response = read_hex("chrony-server-nts-response.hex");
    let view = PacketView::new(&response).unwrap();
    let h = view.header();
    assert_eq!(h.mode, Mode::Server);
    assert_eq!(h.leap, LeapIndicator::NoWarning);
    let parts = view.nts_protected_parts().unwrap().unwrap();
    assert_eq!(parts.authenticator_offset, 84);
    // The new cookie travels encrypted: 16-byte tag + one 104-byte cookie field.
    assert_eq!(parts.authenticator.ciphertext.len(), 16 + 104);
    // chrony pads the response so it is as long as the request (228 bytes).
    assert_eq!(response.len(), request.len());
}

#[test]
fn chrony_nak_is_a_kiss_with_the_uid_echoed() {
    let nak = read_hex("chrony-server-nts-nak.hex");
    let view = PacketView::new(&nak).unwrap();
    assert_eq!(view.header().kiss_code(), Some(ntp_proto::KissCode::NTSN));
    assert_eq!(view.header().leap, LeapIndicator::Unsynchronized);
    let fields: Vec<_> = view.extension_fields().collect();
    assert_eq!(fields.len(), 1);
    assert!(matches!(
        fields[0].nts().unwrap(),
        Some(ntp_proto::NtsField::UniqueIdentifier(uid)) if uid.len() == 32
    ));
    assert!(view.nts_protected_parts().unwrap().is_none());
}
