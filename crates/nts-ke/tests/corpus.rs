//! Real chrony 4.3 NTS-KE messages (copies of `shared/corpus/*-ntske-*.hex` in
//! `tests/data/`): parse to exactly the records the corpus README lists, re-emit to the
//! same bytes, and go through both state machines.
#![allow(clippy::indexing_slicing)]

use std::sync::Arc;

use nts_ke::client::{ClientConfig, ClientHandshake, ClientProgress};
use nts_ke::reader::{RecordReader, StreamLimits};
use nts_ke::record::{AeadId, ProtocolId, Record, encode_records};
use nts_ke::server::{ServerConfig, ServerDecision, ServerHandshake, ServerProgress};

const REQUESTS: [&str; 3] = [
    "chrony-client-ntske-request.hex",
    "chrony-client-ntske-request-to-ntpdrs.hex",
    "chrony-client-ntske-request-to-ntpsec.hex",
];
const RESPONSES: [&str; 3] = [
    "chrony-server-ntske-response.hex",
    "chrony-server-ntske-response-to-ntpdrs.hex",
    "chrony-server-ntske-response-to-ntpsec.hex",
];

fn load(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    hex::decode(text.trim()).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn read_all(bytes: &[u8]) -> Vec<Record> {
    let mut reader = RecordReader::new(StreamLimits::default());
    let mut records = Vec::new();
    let done = reader
        .read_into(bytes, &mut records)
        .expect("corpus message is valid");
    assert!(done, "message ends with End of Message");
    records
}

#[test]
fn requests_parse_and_re_emit() {
    for name in REQUESTS {
        let bytes = load(name);
        assert_eq!(bytes.len(), 16, "{name}");
        let records = read_all(&bytes);
        assert_eq!(
            records,
            vec![
                Record::NextProtocol {
                    critical: true,
                    protocols: vec![ProtocolId::NTPV4]
                },
                Record::AeadAlgorithm {
                    critical: true,
                    algorithms: vec![AeadId::AES_SIV_CMAC_256]
                },
                Record::EndOfMessage { critical: true },
            ],
            "{name}"
        );
        assert_eq!(
            encode_records(&records).expect("encodable"),
            bytes,
            "{name}"
        );
    }
}

#[test]
fn responses_parse_and_re_emit() {
    for name in RESPONSES {
        let bytes = load(name);
        assert_eq!(bytes.len(), 854, "{name}");
        let records = read_all(&bytes);
        assert_eq!(records.len(), 12, "{name}");
        assert_eq!(
            records[..3],
            [
                Record::NextProtocol {
                    critical: true,
                    protocols: vec![ProtocolId::NTPV4]
                },
                Record::AeadAlgorithm {
                    critical: true,
                    algorithms: vec![AeadId::AES_SIV_CMAC_256]
                },
                Record::Port {
                    critical: true,
                    port: 11123
                },
            ],
            "{name}"
        );
        for record in &records[3..11] {
            let Record::NewCookie { critical, cookie } = record else {
                panic!("{name}: expected a cookie, got {record:?}");
            };
            assert!(!critical, "{name}: cookies are not critical");
            assert_eq!(cookie.len(), 100, "{name}");
        }
        assert_eq!(records[11], Record::EndOfMessage { critical: true });
        assert_eq!(
            encode_records(&records).expect("encodable"),
            bytes,
            "{name}"
        );
    }
}

#[test]
fn chrony_response_through_client_at_every_split() {
    let mut config = ClientConfig::default();
    config.aead_algorithms = vec![AeadId::AES_SIV_CMAC_256];
    let config = Arc::new(config);
    for name in RESPONSES {
        let bytes = load(name);
        let expected_cookies: Vec<Vec<u8>> = read_all(&bytes)
            .into_iter()
            .filter_map(|r| match r {
                Record::NewCookie { cookie, .. } => Some(cookie),
                _ => None,
            })
            .collect();
        let run = |chunks: &[&[u8]]| {
            let mut client = ClientHandshake::new(config.clone()).expect("valid config");
            let mut result = None;
            for chunk in chunks {
                match client.receive(chunk).expect("valid response") {
                    ClientProgress::NeedMore => {}
                    ClientProgress::Done(outcome) => result = Some(outcome),
                }
            }
            result.expect("done after the last chunk")
        };
        let outcome = run(&[&bytes]);
        assert_eq!(outcome.protocol, ProtocolId::NTPV4);
        assert_eq!(outcome.aead, AeadId::AES_SIV_CMAC_256);
        assert_eq!(outcome.port, Some(11123));
        assert_eq!(outcome.server, None);
        assert_eq!(outcome.cookies, expected_cookies);
        assert_eq!(outcome.cookies.len(), 8);

        for split in 0..bytes.len() {
            let (a, b) = bytes.split_at(split);
            assert_eq!(run(&[a, b]), outcome, "{name} split at {split}");
        }
        let single: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(run(&single), outcome, "{name} byte at a time");
    }
}

#[test]
fn chrony_request_through_server() {
    let mut config = ServerConfig::default();
    config.ntp_port = Some(11123);
    let config = Arc::new(config);
    for name in REQUESTS {
        let bytes = load(name);
        let mut server = ServerHandshake::new(config.clone()).expect("valid config");
        let Ok(ServerProgress::Done(ServerDecision::Accept(accept))) = server.receive(&bytes)
        else {
            panic!("{name}: not accepted");
        };
        assert_eq!(accept.aead(), AeadId::AES_SIV_CMAC_256);
        // With chrony's cookie size and count, our response has chrony's layout exactly,
        // so the captured response differs from ours only in the cookie bytes.
        let response = load(RESPONSES[0]);
        let chrony_cookies: Vec<Vec<u8>> = read_all(&response)
            .into_iter()
            .filter_map(|r| match r {
                Record::NewCookie { cookie, .. } => Some(cookie),
                _ => None,
            })
            .collect();
        assert_eq!(
            accept
                .response_bytes(&chrony_cookies)
                .expect("valid cookies"),
            response,
            "{name}"
        );
    }
}

/// The copies in `tests/data` must match `shared/corpus` when that folder sits beside the
/// repository (it does here and in CI; a standalone checkout skips this).
#[test]
fn copies_match_shared_corpus() {
    let shared = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");
    if !std::path::Path::new(shared).is_dir() {
        return;
    }
    for name in REQUESTS.iter().chain(RESPONSES.iter()) {
        let original = std::fs::read_to_string(format!("{shared}/{name}")).expect("readable");
        let original = hex::decode(original.trim()).expect("hex");
        assert_eq!(load(name), original, "{name}");
    }
}
