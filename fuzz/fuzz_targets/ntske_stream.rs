//! NTS-KE stream fuzzing: the record reader with input-chosen chunking, the server
//! negotiation and the client response handling.
//!
//! Input layout: byte 0 gives the number `k` (0..=15) of chunk-size bytes that follow;
//! the rest is the TLS plaintext, cut into chunks whose sizes cycle through those bytes.
//!
//! Oracle: nothing panics; every record that parsed re-emits to `encoded_len` bytes that
//! parse back to the same record; chunking does not change a successful read; the server
//! always produces an encodable, readable response.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use nts_ke::client::{ClientConfig, ClientHandshake, ClientProgress};
use nts_ke::reader::{RecordReader, StreamLimits};
use nts_ke::record::{Parsed, Record};
use nts_ke::server::{ServerConfig, ServerDecision, ServerHandshake, ServerProgress};

fn chunks<'a>(sizes: &'a [u8], mut payload: &'a [u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut i = 0usize;
    while !payload.is_empty() {
        let size = match sizes.get(i % sizes.len().max(1)) {
            Some(&s) => usize::from(s).max(1),
            None => payload.len(),
        };
        let (head, tail) = payload.split_at(size.min(payload.len()));
        out.push(head);
        payload = tail;
        i += 1;
    }
    out
}

fn check_round_trip(record: &Record) {
    let bytes = record.to_vec().expect("a parsed record re-encodes");
    assert_eq!(bytes.len(), record.encoded_len());
    match Record::parse(&bytes) {
        Ok(Parsed::Complete {
            record: again,
            consumed,
        }) => {
            assert_eq!(&again, record);
            assert_eq!(consumed, bytes.len());
        }
        other => panic!("re-emitted record does not parse back: {other:?}"),
    }
}

/// Reads with the given chunking; returns the records and whether it finished cleanly.
fn read(limits: StreamLimits, chunks: &[&[u8]]) -> (Vec<Record>, bool) {
    let mut reader = RecordReader::new(limits);
    let mut records = Vec::new();
    let mut ok = true;
    for chunk in chunks {
        if reader.read_into(chunk, &mut records).is_err() {
            ok = false;
            break;
        }
    }
    for record in &records {
        check_round_trip(record);
    }
    let done = ok && reader.is_finished();
    (records, done)
}

fuzz_target!(|data: &[u8]| {
    let Some((&k, rest)) = data.split_first() else {
        return;
    };
    let k = usize::from(k % 16).min(rest.len());
    let (sizes, payload) = rest.split_at(k);
    let chunked = chunks(sizes, payload);

    // Small caps so the limits are exercised too.
    let limits = StreamLimits::new(512, 8);
    let (records, done) = read(limits, &chunked);
    let (whole_records, whole_done) = read(limits, &[payload]);
    if done && whole_done {
        assert_eq!(records, whole_records);
    }
    if whole_done {
        assert!(done, "chunking broke a valid message");
    }

    let mut server = ServerHandshake::new(Arc::new(ServerConfig::default())).expect("default");
    for chunk in &chunked {
        match server.receive(chunk) {
            Ok(ServerProgress::NeedMore) => {}
            Ok(ServerProgress::Done(decision)) => {
                let response = match decision {
                    ServerDecision::Reject(r) => r.response_bytes(),
                    ServerDecision::Accept(a) => {
                        a.response_bytes(&[[0u8; 104]]).expect("valid cookie")
                    }
                };
                let (_, ok) = read(StreamLimits::default(), &[&response]);
                assert!(ok, "server response is not a valid message");
                break;
            }
            Err(e) => panic!("server receive failed before done: {e}"),
        }
    }

    let mut client = ClientHandshake::new(Arc::new(ClientConfig::default())).expect("default");
    for chunk in &chunked {
        match client.receive(chunk) {
            Ok(ClientProgress::NeedMore) => {}
            Ok(ClientProgress::Done(outcome)) => {
                assert!(!outcome.cookies.is_empty());
                break;
            }
            Err(_) => break,
        }
    }
});
