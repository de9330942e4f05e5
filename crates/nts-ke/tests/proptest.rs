//! Property tests: the codec round-trips both ways, chunking never changes what the reader
//! yields, and no input makes the reader or the state machines panic.
#![allow(clippy::indexing_slicing)]

use std::sync::Arc;

use nts_ke::client::{ClientConfig, ClientHandshake};
use nts_ke::reader::{RecordReader, StreamLimits};
use nts_ke::record::{
    AeadId, ErrorCode, Parsed, ProtocolId, Record, RecordType, WarningCode, encode_records,
};
use nts_ke::server::{ServerConfig, ServerDecision, ServerHandshake, ServerProgress};
use proptest::prelude::*;

fn arb_record() -> impl Strategy<Value = Record> {
    let bytes = || proptest::collection::vec(any::<u8>(), 0..300);
    let u16s = || proptest::collection::vec(any::<u16>(), 0..20);
    prop_oneof![
        any::<bool>().prop_map(|critical| Record::EndOfMessage { critical }),
        (any::<bool>(), u16s()).prop_map(|(critical, p)| Record::NextProtocol {
            critical,
            protocols: p.into_iter().map(ProtocolId).collect()
        }),
        (any::<bool>(), any::<u16>()).prop_map(|(critical, c)| Record::Error {
            critical,
            code: ErrorCode(c)
        }),
        (any::<bool>(), any::<u16>()).prop_map(|(critical, c)| Record::Warning {
            critical,
            code: WarningCode(c)
        }),
        (any::<bool>(), u16s()).prop_map(|(critical, a)| Record::AeadAlgorithm {
            critical,
            algorithms: a.into_iter().map(AeadId).collect()
        }),
        (any::<bool>(), bytes())
            .prop_map(|(critical, cookie)| Record::NewCookie { critical, cookie }),
        (any::<bool>(), "[ -~]{0,64}")
            .prop_map(|(critical, name)| Record::Server { critical, name }),
        (any::<bool>(), any::<u16>()).prop_map(|(critical, port)| Record::Port { critical, port }),
        (8u16..0x8000, any::<bool>(), bytes()).prop_map(|(t, critical, body)| {
            Record::Unknown {
                record_type: RecordType(t),
                critical,
                body,
            }
        }),
    ]
}

/// Feeds `bytes` cut at `cuts` (sorted, deduplicated offsets) and collects the outcome.
fn read_cut(bytes: &[u8], cuts: &[usize], limits: StreamLimits) -> (Vec<Record>, bool) {
    let mut reader = RecordReader::new(limits);
    let mut records = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
        let cut = cut.clamp(start, bytes.len());
        if reader.read_into(&bytes[start..cut], &mut records).is_err() {
            return (records, false);
        }
        start = cut;
    }
    let done = reader.is_finished();
    (records, done)
}

proptest! {
    #[test]
    fn parse_emit_round_trip(record in arb_record()) {
        let bytes = record.to_vec().expect("generated records are encodable");
        prop_assert_eq!(bytes.len(), record.encoded_len());
        prop_assert_eq!(
            Record::parse(&bytes),
            Ok(Parsed::Complete { record, consumed: bytes.len() })
        );
    }

    #[test]
    fn emit_parse_is_identity_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(Parsed::Complete { record, consumed }) = Record::parse(&bytes) {
            prop_assert_eq!(record.to_vec().expect("parsed records re-encode"), &bytes[..consumed]);
        }
    }

    #[test]
    fn chunking_does_not_matter(
        records in proptest::collection::vec(arb_record(), 0..10),
        mut cuts in proptest::collection::vec(0usize..4000, 0..12),
    ) {
        let mut records: Vec<Record> = records
            .into_iter()
            .filter(|r| !matches!(r, Record::EndOfMessage { .. }))
            .collect();
        records.push(Record::end_of_message());
        let bytes = encode_records(&records).expect("encodable");
        cuts.sort_unstable();
        let whole = read_cut(&bytes, &[], StreamLimits::default());
        prop_assert_eq!(&whole, &(records, true));
        prop_assert_eq!(read_cut(&bytes, &cuts, StreamLimits::default()), whole);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        mut cuts in proptest::collection::vec(0usize..600, 0..8),
        max_len in 0usize..700,
        max_records in 0usize..10,
    ) {
        cuts.sort_unstable();
        let limits = StreamLimits::new(max_len, max_records);
        let (records, _) = read_cut(&bytes, &cuts, limits);
        prop_assert!(records.len() <= max_records);
        for record in records {
            let again = record.to_vec().expect("parsed records re-encode");
            prop_assert_eq!(
                Record::parse(&again),
                Ok(Parsed::Complete { record, consumed: again.len() })
            );
        }

        let mut server = ServerHandshake::new(Arc::new(ServerConfig::default()))
            .expect("default config");
        if let Ok(ServerProgress::Done(decision)) = server.receive(&bytes) {
            let response = match decision {
                ServerDecision::Reject(r) => r.response_bytes(),
                ServerDecision::Accept(a) => a.response_bytes(&[[1u8; 8]]).expect("cookie"),
            };
            prop_assert!(read_cut(&response, &[], StreamLimits::default()).1);
        }
        let mut client = ClientHandshake::new(Arc::new(ClientConfig::default()))
            .expect("default config");
        let _ = client.receive(&bytes);
    }

    #[test]
    fn server_answers_every_record_sequence(
        records in proptest::collection::vec(arb_record(), 0..8),
    ) {
        let mut records = records;
        records.push(Record::end_of_message());
        let bytes = encode_records(&records).expect("encodable");
        let mut server = ServerHandshake::new(Arc::new(ServerConfig::default()))
            .expect("default config");
        let progress = server.receive(&bytes).expect("first call");
        // Ends with End of Message, so the server always decides.
        prop_assert!(matches!(progress, ServerProgress::Done(_)));
    }
}
