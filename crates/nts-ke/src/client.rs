//! Client side of NTS-KE negotiation (RFC 8915 §4.1, PROTOCOL.md §3.3).

use std::sync::Arc;

use crate::ConfigError;
use crate::reader::{RecordReader, StreamError, StreamLimits};
use crate::record::{
    AeadId, ErrorCode, ProtocolId, Record, RecordType, WarningCode, encode_records,
};

/// Client settings. Build with [`ClientConfig::default`] and adjust the fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// AEAD algorithms to offer, most preferred first. Default `[15, 17]`
    /// (AES-SIV-CMAC-256, then AES-SIV-CMAC-512). Each must have a known key length.
    pub aead_algorithms: Vec<AeadId>,
    /// Caps on the response. Default 16384 bytes / 64 records.
    pub limits: StreamLimits,
    /// Longest accepted cookie in bytes. Default 1024.
    pub max_cookie_len: usize,
}

impl ClientConfig {
    /// Default [`ClientConfig::max_cookie_len`].
    pub const DEFAULT_MAX_COOKIE_LEN: usize = 1024;

    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for an empty or duplicated AEAD list, or an AEAD with no known key
    /// length.
    pub fn validate(&self) -> Result<(), ConfigError> {
        crate::validate_aead_list(&self.aead_algorithms)
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            aead_algorithms: vec![AeadId::AES_SIV_CMAC_256, AeadId::AES_SIV_CMAC_512],
            limits: StreamLimits::default(),
            max_cookie_len: Self::DEFAULT_MAX_COOKIE_LEN,
        }
    }
}

/// What a successful NTS-KE exchange gave the client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientOutcome {
    /// The negotiated next protocol (always NTPv4 today).
    pub protocol: ProtocolId,
    /// The negotiated AEAD algorithm; export keys for it with [`crate::export`].
    pub aead: AeadId,
    /// The cookies, in order; at least one, all non-empty and the same length.
    pub cookies: Vec<Vec<u8>>,
    /// The NTP server to use, if the server named one (else the KE server's address).
    pub server: Option<String>,
    /// The NTP port to use, if the server named one (else 123).
    pub port: Option<u16>,
    /// Warnings the server sent. No warning codes are defined and RFC 8915 says an unknown
    /// one counts as an error, so any Warning fails the handshake and this is empty today.
    pub warnings: Vec<WarningCode>,
}

/// Why the client rejected the server's response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The response could not be read as records.
    #[error("malformed response: {0}")]
    Stream(#[from] StreamError),
    /// The server sent an Error record. Discard everything; retry only after
    /// [`ErrorCode::INTERNAL_SERVER_ERROR`].
    #[error("server sent error {code}")]
    ServerError {
        /// The server's error code.
        code: ErrorCode,
    },
    /// The server sent a Warning record (no codes are defined, so it is an error).
    #[error("server sent warning {code}")]
    ServerWarning {
        /// The warning code.
        code: WarningCode,
    },
    /// A record type we do not know arrived with the critical bit set.
    #[error("unrecognized critical record {record_type}")]
    UnrecognizedCriticalRecord {
        /// Its type.
        record_type: RecordType,
    },
    /// End of Message did not have the critical bit set.
    #[error("end of message record is not critical")]
    EndOfMessageNotCritical,
    /// A record that must appear at most once appeared again.
    #[error("duplicate record {record_type}")]
    DuplicateRecord {
        /// Its type.
        record_type: RecordType,
    },
    /// No Next Protocol Negotiation record.
    #[error("missing next protocol record")]
    MissingNextProtocol,
    /// The server supports none of the offered protocols (empty Next Protocol record).
    #[error("no common next protocol")]
    NoCommonProtocol,
    /// The server chose a protocol we did not offer.
    #[error("server chose protocol {protocol} that was not offered")]
    ProtocolNotOffered {
        /// The protocol it chose.
        protocol: ProtocolId,
    },
    /// NTPv4 was chosen but there is no AEAD Algorithm record.
    #[error("missing aead algorithm record")]
    MissingAead,
    /// The server supports none of the offered AEAD algorithms (empty AEAD record).
    #[error("no common aead algorithm")]
    NoCommonAead,
    /// The AEAD record lists more than one algorithm.
    #[error("aead record lists {count} algorithms")]
    MultipleAead {
        /// How many it lists.
        count: usize,
    },
    /// The server chose an AEAD algorithm we did not offer.
    #[error("server chose aead {aead} that was not offered")]
    AeadNotOffered {
        /// The algorithm it chose.
        aead: AeadId,
    },
    /// No New Cookie records.
    #[error("no cookies")]
    NoCookies,
    /// A New Cookie record was empty.
    #[error("empty cookie")]
    EmptyCookie,
    /// A cookie is longer than [`ClientConfig::max_cookie_len`].
    #[error("cookie of {len} bytes exceeds {limit}")]
    CookieTooLong {
        /// Its length.
        len: usize,
        /// The cap.
        limit: usize,
    },
    /// Cookies of different lengths in one response.
    #[error("cookie lengths differ ({first} and {other})")]
    CookieLengthMismatch {
        /// The first cookie's length.
        first: usize,
        /// A different length.
        other: usize,
    },
    /// [`ClientHandshake::receive`] was called after the handshake finished or failed.
    #[error("handshake already finished")]
    Finished,
}

/// Progress of [`ClientHandshake::receive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientProgress {
    /// The response is incomplete; feed more bytes.
    NeedMore,
    /// The response was complete and valid.
    Done(ClientOutcome),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    Finished,
}

/// Client NTS-KE state machine (sans-IO).
///
/// Call order, once per TLS connection:
///
/// 1. [`ClientHandshake::new`];
/// 2. write [`ClientHandshake::request_bytes`] as TLS application data;
/// 3. feed every chunk of TLS plaintext from the server to [`ClientHandshake::receive`]
///    until it returns [`ClientProgress::Done`] or an error;
/// 4. on `Done`, export the keys for the outcome's protocol and AEAD
///    ([`crate::export`]) and close the connection.
///
/// Any error is final: the client discards the response and must not use any key.
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    config: Arc<ClientConfig>,
    request: Vec<u8>,
    reader: RecordReader,
    records: Vec<Record>,
    state: State,
}

impl ClientHandshake {
    /// Starts a handshake: the request is `[NextProtocol [0]] [AEAD list] [End of Message]`,
    /// every record critical.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] if the configuration is invalid ([`ClientConfig::validate`]).
    pub fn new(config: Arc<ClientConfig>) -> Result<Self, ConfigError> {
        config.validate()?;
        let request = encode_records(&[
            Record::next_protocol(vec![ProtocolId::NTPV4]),
            Record::aead_algorithm(config.aead_algorithms.clone()),
            Record::end_of_message(),
        ])
        .map_err(|_| ConfigError::TooManyAlgorithms)?;
        Ok(Self {
            reader: RecordReader::new(config.limits),
            config,
            request,
            records: Vec::new(),
            state: State::Reading,
        })
    }

    /// The request to send, as TLS plaintext.
    pub fn request_bytes(&self) -> &[u8] {
        &self.request
    }

    /// Feeds a chunk of the server's response.
    ///
    /// # Errors
    ///
    /// [`ClientError`] when the response is malformed, too large, carries an Error or
    /// Warning, or breaks a negotiation rule (RFC 8915 §4.1); [`ClientError::Finished`] when
    /// called again after `Done` or an error.
    pub fn receive(&mut self, data: &[u8]) -> Result<ClientProgress, ClientError> {
        if self.state == State::Finished {
            return Err(ClientError::Finished);
        }
        let done = match self.reader.read_into(data, &mut self.records) {
            Ok(done) => done,
            Err(err) => {
                self.state = State::Finished;
                return Err(err.into());
            }
        };
        if !done {
            return Ok(ClientProgress::NeedMore);
        }
        self.state = State::Finished;
        let records = core::mem::take(&mut self.records);
        evaluate_response(&self.config, &records).map(ClientProgress::Done)
    }
}

/// Checks a whole response (End of Message included) against what `config` offered.
fn evaluate_response(
    config: &ClientConfig,
    records: &[Record],
) -> Result<ClientOutcome, ClientError> {
    // An Error or Warning wins over anything else wrong with the message.
    for record in records {
        match record {
            Record::Error { code, .. } => return Err(ClientError::ServerError { code: *code }),
            Record::Warning { code, .. } => return Err(ClientError::ServerWarning { code: *code }),
            _ => {}
        }
    }

    let mut protocols: Option<&[ProtocolId]> = None;
    let mut aeads: Option<&[AeadId]> = None;
    let mut server: Option<&str> = None;
    let mut port: Option<u16> = None;
    let mut cookies: Vec<Vec<u8>> = Vec::new();

    for record in records {
        let duplicate = || ClientError::DuplicateRecord {
            record_type: record.record_type(),
        };
        match record {
            Record::EndOfMessage { critical } => {
                if !critical {
                    return Err(ClientError::EndOfMessageNotCritical);
                }
            }
            Record::NextProtocol { protocols: p, .. } => {
                if protocols.replace(p).is_some() {
                    return Err(duplicate());
                }
            }
            Record::AeadAlgorithm { algorithms, .. } => {
                if aeads.replace(algorithms).is_some() {
                    return Err(duplicate());
                }
            }
            Record::Server { name, .. } => {
                if server.replace(name).is_some() {
                    return Err(duplicate());
                }
            }
            Record::Port { port: p, .. } => {
                if port.replace(*p).is_some() {
                    return Err(duplicate());
                }
            }
            Record::NewCookie { cookie, .. } => {
                check_cookie(config, cookies.first().map(Vec::len), cookie)?;
                cookies.push(cookie.clone());
            }
            Record::Unknown {
                record_type,
                critical,
                ..
            } => {
                if *critical {
                    return Err(ClientError::UnrecognizedCriticalRecord {
                        record_type: *record_type,
                    });
                }
            }
            Record::Error { .. } | Record::Warning { .. } => {}
        }
    }

    let protocols = protocols.ok_or(ClientError::MissingNextProtocol)?;
    let protocol = *protocols.first().ok_or(ClientError::NoCommonProtocol)?;
    if let Some(other) = protocols.iter().find(|p| **p != ProtocolId::NTPV4) {
        return Err(ClientError::ProtocolNotOffered { protocol: *other });
    }

    let aeads = aeads.ok_or(ClientError::MissingAead)?;
    let aead = match aeads {
        [] => return Err(ClientError::NoCommonAead),
        [aead] => *aead,
        more => return Err(ClientError::MultipleAead { count: more.len() }),
    };
    if !config.aead_algorithms.contains(&aead) {
        return Err(ClientError::AeadNotOffered { aead });
    }
    if cookies.is_empty() {
        return Err(ClientError::NoCookies);
    }

    Ok(ClientOutcome {
        protocol,
        aead,
        cookies,
        server: server.map(str::to_owned),
        port,
        warnings: Vec::new(),
    })
}

fn check_cookie(
    config: &ClientConfig,
    first_len: Option<usize>,
    cookie: &[u8],
) -> Result<(), ClientError> {
    if cookie.is_empty() {
        return Err(ClientError::EmptyCookie);
    }
    if cookie.len() > config.max_cookie_len {
        return Err(ClientError::CookieTooLong {
            len: cookie.len(),
            limit: config.max_cookie_len,
        });
    }
    match first_len {
        Some(first) if first != cookie.len() => Err(ClientError::CookieLengthMismatch {
            first,
            other: cookie.len(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use hex_literal::hex;

    fn client(aeads: &[u16]) -> ClientHandshake {
        let config = ClientConfig {
            aead_algorithms: aeads.iter().copied().map(AeadId).collect(),
            ..ClientConfig::default()
        };
        ClientHandshake::new(Arc::new(config)).expect("valid config")
    }

    fn run(records: &[Record]) -> Result<ClientProgress, ClientError> {
        let bytes = encode_records(records).expect("encodable");
        client(&[15, 17]).receive(&bytes)
    }

    fn good() -> Vec<Record> {
        vec![
            Record::next_protocol(vec![ProtocolId::NTPV4]),
            Record::aead_algorithm(vec![AeadId::AES_SIV_CMAC_512]),
            Record::new_cookie(vec![1; 100]),
            Record::new_cookie(vec![2; 100]),
            Record::end_of_message(),
        ]
    }

    fn with(mut records: Vec<Record>, index: usize, record: Record) -> Vec<Record> {
        records.insert(index, record);
        records
    }

    fn without(mut records: Vec<Record>, index: usize) -> Vec<Record> {
        records.remove(index);
        records
    }

    #[test]
    fn request_matches_protocol_vector() {
        assert_eq!(
            client(&[15]).request_bytes(),
            hex!("8001 0002 0000 8004 0002 000f 8000 0000")
        );
        assert_eq!(
            ClientHandshake::new(Arc::new(ClientConfig::default()))
                .expect("default is valid")
                .request_bytes(),
            hex!("8001 0002 0000 8004 0004 000f 0011 8000 0000")
        );
    }

    #[test]
    fn good_response() {
        let Ok(ClientProgress::Done(outcome)) = run(&good()) else {
            panic!("valid response");
        };
        assert_eq!(outcome.protocol, ProtocolId::NTPV4);
        assert_eq!(outcome.aead, AeadId::AES_SIV_CMAC_512);
        assert_eq!(outcome.cookies, vec![vec![1; 100], vec![2; 100]]);
        assert_eq!(outcome.server, None);
        assert_eq!(outcome.port, None);
    }

    #[test]
    fn server_and_port() {
        let records = with(
            with(good(), 2, Record::server("192.0.2.1".into())),
            2,
            Record::port(4123),
        );
        let Ok(ClientProgress::Done(outcome)) = run(&records) else {
            panic!("valid response");
        };
        assert_eq!(outcome.server.as_deref(), Some("192.0.2.1"));
        assert_eq!(outcome.port, Some(4123));
    }

    #[test]
    fn error_response_vector() {
        let mut client = client(&[15]);
        assert_eq!(
            client.receive(&hex!("8002 0002 0002 8000 0000")),
            Err(ClientError::ServerError {
                code: ErrorCode::INTERNAL_SERVER_ERROR
            })
        );
        assert_eq!(client.receive(&[]), Err(ClientError::Finished));
    }

    #[test]
    fn rejections() {
        let npn = |p: Vec<u16>| Record::next_protocol(p.into_iter().map(ProtocolId).collect());
        let aead = |a: Vec<u16>| Record::aead_algorithm(a.into_iter().map(AeadId).collect());
        let cases: Vec<(Vec<Record>, ClientError)> = vec![
            (
                with(good(), 0, Record::warning(WarningCode(5))),
                ClientError::ServerWarning {
                    code: WarningCode(5),
                },
            ),
            (without(good(), 0), ClientError::MissingNextProtocol),
            (
                with(good(), 0, npn(vec![0])),
                ClientError::DuplicateRecord {
                    record_type: RecordType::NEXT_PROTOCOL,
                },
            ),
            (
                with(good(), 0, aead(vec![15])),
                ClientError::DuplicateRecord {
                    record_type: RecordType::AEAD_ALGORITHM,
                },
            ),
            (
                with(
                    with(good(), 0, Record::server("a".into())),
                    0,
                    Record::server("b".into()),
                ),
                ClientError::DuplicateRecord {
                    record_type: RecordType::SERVER,
                },
            ),
            (
                with(with(good(), 0, Record::port(1)), 0, Record::port(2)),
                ClientError::DuplicateRecord {
                    record_type: RecordType::PORT,
                },
            ),
            (
                vec![npn(vec![]), Record::end_of_message()],
                ClientError::NoCommonProtocol,
            ),
            (
                with(without(good(), 0), 0, npn(vec![0x8001])),
                ClientError::ProtocolNotOffered {
                    protocol: ProtocolId::NTPV5_DRAFT,
                },
            ),
            (without(good(), 1), ClientError::MissingAead),
            (
                with(without(good(), 1), 1, aead(vec![])),
                ClientError::NoCommonAead,
            ),
            (
                with(without(good(), 1), 1, aead(vec![15, 17])),
                ClientError::MultipleAead { count: 2 },
            ),
            (
                with(without(good(), 1), 1, aead(vec![30])),
                ClientError::AeadNotOffered {
                    aead: AeadId::AES_128_GCM_SIV,
                },
            ),
            (without(without(good(), 2), 2), ClientError::NoCookies),
            (
                with(good(), 2, Record::new_cookie(vec![])),
                ClientError::EmptyCookie,
            ),
            (
                with(good(), 4, Record::new_cookie(vec![0; 99])),
                ClientError::CookieLengthMismatch {
                    first: 100,
                    other: 99,
                },
            ),
            (
                vec![
                    npn(vec![0]),
                    aead(vec![15]),
                    Record::new_cookie(vec![0; 1025]),
                    Record::end_of_message(),
                ],
                ClientError::CookieTooLong {
                    len: 1025,
                    limit: 1024,
                },
            ),
            (
                with(
                    good(),
                    1,
                    Record::Unknown {
                        record_type: RecordType(0x4000),
                        critical: true,
                        body: vec![],
                    },
                ),
                ClientError::UnrecognizedCriticalRecord {
                    record_type: RecordType(0x4000),
                },
            ),
            (
                with(
                    without(good(), 4),
                    4,
                    Record::EndOfMessage { critical: false },
                ),
                ClientError::EndOfMessageNotCritical,
            ),
        ];
        for (records, expected) in cases {
            assert_eq!(run(&records), Err(expected.clone()), "{records:?}");
        }
    }

    #[test]
    fn unknown_non_critical_is_ignored() {
        let records = with(
            good(),
            1,
            Record::Unknown {
                record_type: RecordType(1024),
                critical: false,
                body: vec![],
            },
        );
        assert!(matches!(run(&records), Ok(ClientProgress::Done(_))));
    }

    #[test]
    fn too_many_records() {
        let mut records = good();
        for _ in 0..70 {
            records.insert(2, Record::new_cookie(vec![1; 100]));
        }
        assert_eq!(
            run(&records),
            Err(ClientError::Stream(StreamError::TooManyRecords {
                limit: 64
            }))
        );
    }

    #[test]
    fn invalid_config() {
        let config = |a: Vec<u16>| {
            Arc::new(ClientConfig {
                aead_algorithms: a.into_iter().map(AeadId).collect(),
                ..ClientConfig::default()
            })
        };
        assert_eq!(
            ClientHandshake::new(config(vec![])).err(),
            Some(ConfigError::NoAeadAlgorithms)
        );
        assert_eq!(
            ClientHandshake::new(config(vec![15, 15])).err(),
            Some(ConfigError::DuplicateAead(AeadId(15)))
        );
        assert_eq!(
            ClientHandshake::new(config(vec![99])).err(),
            Some(ConfigError::UnsupportedAead(AeadId(99)))
        );
    }
}
