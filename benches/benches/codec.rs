#![allow(missing_docs)] // criterion_group! generates undocumented items

//! `ntp-proto` hot paths: parse and emit of a plain 48-byte packet and of an
//! NTS request (UID, cookie, 4 placeholders, authenticator).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ntp_proto::{ExtensionField, Header, Packet, PacketView};

fn nts_request() -> Packet {
    let field = |f: Result<ExtensionField, _>| f.expect("valid field");
    let mut fields = vec![
        field(ExtensionField::unique_identifier(&[0x5a; 32])),
        field(ExtensionField::nts_cookie(&[0xc0; 104])),
    ];
    for _ in 0..4 {
        fields.push(field(ExtensionField::nts_cookie_placeholder(104)));
    }
    fields.push(field(ExtensionField::nts_authenticator(
        &[1; 16], &[2; 16], 0,
    )));
    Packet {
        header: Header::client_request(6, 0x0123_4567_89ab_cdef),
        extension_fields: fields,
        mac: None,
    }
}

fn plain(c: &mut Criterion) {
    let header = Header::client_request(6, 0x0123_4567_89ab_cdef);
    let bytes = header.to_bytes();
    let mut g = c.benchmark_group("plain-48");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse-header", |b| {
        b.iter(|| Header::parse(black_box(&bytes)))
    });
    g.bench_function("parse-view", |b| {
        b.iter(|| PacketView::new(black_box(&bytes)).map(|v| *v.header()))
    });
    g.bench_function("emit-to-slice", |b| {
        let mut out = [0u8; 48];
        b.iter(|| black_box(&header).emit_to_slice(black_box(&mut out)))
    });
    g.finish();
}

fn nts(c: &mut Criterion) {
    let packet = nts_request();
    let bytes = packet.to_vec();
    let mut g = c.benchmark_group(format!("nts-request-{}", bytes.len()));
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse-view+split", |b| {
        b.iter(|| {
            let view = PacketView::new(black_box(&bytes)).expect("valid");
            view.nts_protected_parts()
                .map(|p| p.map(|p| p.authenticator_offset))
        })
    });
    g.bench_function("parse-owned", |b| {
        b.iter(|| Packet::parse(black_box(&bytes)))
    });
    g.bench_function("emit-to-slice", |b| {
        let mut out = vec![0u8; 2048];
        b.iter(|| black_box(&packet).emit_to_slice(black_box(&mut out)))
    });
    g.finish();
}

criterion_group!(benches, plain, nts);
criterion_main!(benches);
