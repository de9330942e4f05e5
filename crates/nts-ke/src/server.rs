//! Server side of NTS-KE negotiation (RFC 8915 §4.1, PROTOCOL.md §3.3).
//!
//! The server core reads the request and decides the answer; it does not make cookies.
//! On [`ServerDecision::Accept`] the caller exports the keys for the chosen protocol and
//! AEAD, seals cookies with them (`nts-cookie`), and passes the cookies to
//! [`Acceptance::response_bytes`].

use std::sync::Arc;

use crate::ConfigError;
use crate::reader::{RecordReader, StreamError, StreamLimits};
use crate::record::{
    AeadId, EncodeError, ErrorCode, ProtocolId, Record, RecordType, encode_records,
};

/// Which side's order picks the AEAD algorithm when several are in common.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AeadPreference {
    /// The first of [`ServerConfig::aead_algorithms`] that the client offered (default).
    #[default]
    Server,
    /// The first algorithm in the client's list that the server supports.
    Client,
}

/// Server settings. Build with [`ServerConfig::default`] and adjust the fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Supported AEAD algorithms in the server's preference order. Default `[15, 17]`:
    /// AES-SIV-CMAC-256 first, because every client supports it (RFC 8915 requires it) and
    /// its cookies are the smallest; 17 for clients that offer only it. Must include only
    /// algorithms the cookie code can seal keys for.
    pub aead_algorithms: Vec<AeadId>,
    /// Whose order wins; default [`AeadPreference::Server`].
    pub aead_preference: AeadPreference,
    /// NTPv4 server to announce (record 6), if any: an IP address or FQDN, ASCII.
    pub ntp_server: Option<String>,
    /// NTPv4 port to announce (record 7), if any.
    pub ntp_port: Option<u16>,
    /// Caps on the request. Default 16384 bytes / 64 records (RFC 8915 requires ≥1024).
    pub limits: StreamLimits,
}

impl ServerConfig {
    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for an empty or duplicated AEAD list, an AEAD with no known key
    /// length, or a server name that is empty, non-ASCII or longer than 255 bytes.
    pub fn validate(&self) -> Result<(), ConfigError> {
        crate::validate_aead_list(&self.aead_algorithms)?;
        if let Some(name) = &self.ntp_server {
            if name.is_empty() || !name.is_ascii() || name.len() > 255 {
                return Err(ConfigError::BadServerName);
            }
        }
        Ok(())
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            aead_algorithms: vec![AeadId::AES_SIV_CMAC_256, AeadId::AES_SIV_CMAC_512],
            aead_preference: AeadPreference::Server,
            ntp_server: None,
            ntp_port: None,
            limits: StreamLimits::default(),
        }
    }
}

/// Why a request was found bad (answered with Error 1, Bad Request).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BadRequest {
    /// The request could not be read as records (bad body, too large, trailing data).
    #[error("malformed request: {0}")]
    Malformed(StreamError),
    /// No Next Protocol Negotiation record.
    #[error("missing next protocol record")]
    MissingNextProtocol,
    /// An empty Next Protocol Negotiation record.
    #[error("empty next protocol record")]
    EmptyNextProtocol,
    /// NTPv4 offered without an AEAD Algorithm record.
    #[error("missing aead algorithm record")]
    MissingAead,
    /// A record that may appear once appeared again.
    #[error("duplicate record {0}")]
    DuplicateRecord(RecordType),
    /// A record only a server may send (Error, Warning, New Cookie).
    #[error("client sent server-only record {0}")]
    ServerOnlyRecord(RecordType),
    /// End of Message without the critical bit.
    #[error("end of message record is not critical")]
    EndOfMessageNotCritical,
}

/// Why the server is not handing out keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RejectReason {
    /// An unknown record with the critical bit (answered with Error 0).
    #[error("unrecognized critical record {0}")]
    UnrecognizedCriticalRecord(RecordType),
    /// A bad request (answered with Error 1).
    #[error("bad request: {0}")]
    BadRequest(BadRequest),
    /// The client offered no protocol we support (answered with an empty Next Protocol
    /// record).
    #[error("no common next protocol")]
    NoCommonProtocol,
    /// The client offered no AEAD algorithm we support (answered with an empty AEAD
    /// record).
    #[error("no common aead algorithm")]
    NoCommonAead,
}

/// A complete response that hands out no keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    reason: RejectReason,
    records: Vec<Record>,
}

impl Rejection {
    /// Why the request was rejected (for logs).
    pub fn reason(&self) -> &RejectReason {
        &self.reason
    }

    /// The response records, End of Message last.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// The response as TLS plaintext.
    pub fn response_bytes(&self) -> Vec<u8> {
        // Every record here is built by this module from valid parts.
        encode_records(&self.records).unwrap_or_default()
    }
}

/// An accepted request, waiting for cookies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acceptance {
    protocol: ProtocolId,
    aead: AeadId,
    head: Vec<Record>,
}

impl Acceptance {
    /// The negotiated protocol (NTPv4).
    pub fn protocol(&self) -> ProtocolId {
        self.protocol
    }

    /// The negotiated AEAD algorithm: export keys for it, then seal the cookies.
    pub fn aead(&self) -> AeadId {
        self.aead
    }

    /// The response records: Next Protocol, AEAD, optional Server and Port (all C=1), one
    /// New Cookie (C=0) per cookie, End of Message.
    ///
    /// # Errors
    ///
    /// [`ServerError`] if there are no cookies, a cookie is empty or over 65535 bytes, or
    /// the cookies differ in length (clients such as NTPsec reject that).
    pub fn response_records<C: AsRef<[u8]>>(
        &self,
        cookies: &[C],
    ) -> Result<Vec<Record>, ServerError> {
        let first = cookies
            .first()
            .ok_or(ServerError::NoCookies)?
            .as_ref()
            .len();
        let mut records = self.head.clone();
        records.reserve(cookies.len().saturating_add(1));
        for cookie in cookies {
            let cookie = cookie.as_ref();
            if cookie.is_empty() {
                return Err(ServerError::EmptyCookie);
            }
            if cookie.len() != first {
                return Err(ServerError::CookieLengthMismatch {
                    first,
                    other: cookie.len(),
                });
            }
            records.push(Record::new_cookie(cookie.to_vec()));
        }
        records.push(Record::end_of_message());
        Ok(records)
    }

    /// The response as TLS plaintext; see [`Acceptance::response_records`].
    ///
    /// # Errors
    ///
    /// As [`Acceptance::response_records`], plus [`ServerError::Encode`] for a cookie over
    /// 65535 bytes.
    pub fn response_bytes<C: AsRef<[u8]>>(&self, cookies: &[C]) -> Result<Vec<u8>, ServerError> {
        Ok(encode_records(&self.response_records(cookies)?)?)
    }
}

/// What to answer a complete request with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerDecision {
    /// Send [`Rejection::response_bytes`] and close; no keys are exported.
    Reject(Rejection),
    /// Export keys, make cookies, send [`Acceptance::response_bytes`] and close.
    Accept(Acceptance),
}

/// Progress of [`ServerHandshake::receive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerProgress {
    /// The request is incomplete; feed more bytes (or time out and send
    /// [`error_response`]`(`[`ErrorCode::BAD_REQUEST`]`)`).
    NeedMore,
    /// The request is complete (or broken beyond repair): answer it.
    Done(ServerDecision),
}

/// Errors of the server state machine and of building a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// [`ServerHandshake::receive`] was called after it returned `Done`.
    #[error("handshake already finished")]
    Finished,
    /// An accepted response needs at least one cookie.
    #[error("no cookies")]
    NoCookies,
    /// A cookie was empty.
    #[error("empty cookie")]
    EmptyCookie,
    /// Cookies of different lengths in one response.
    #[error("cookie lengths differ ({first} and {other})")]
    CookieLengthMismatch {
        /// The first cookie's length.
        first: usize,
        /// A different length.
        other: usize,
    },
    /// A response record could not be encoded.
    #[error("cannot encode response: {0}")]
    Encode(#[from] EncodeError),
}

/// `[Error code][End of Message]`, both critical: the response for a request that timed
/// out (code 1) or for a failure while making cookies (code 2).
pub fn error_response(code: ErrorCode) -> Vec<u8> {
    encode_records(&error_records(code)).unwrap_or_default()
}

fn error_records(code: ErrorCode) -> Vec<Record> {
    vec![Record::error(code), Record::end_of_message()]
}

/// Server NTS-KE state machine (sans-IO), one per TLS connection.
///
/// Call order:
///
/// 1. [`ServerHandshake::new`] with a shared [`ServerConfig`];
/// 2. feed each chunk of TLS plaintext to [`ServerHandshake::receive`] until it returns
///    [`ServerProgress::Done`] (on a read timeout, send
///    [`error_response`]`(`[`ErrorCode::BAD_REQUEST`]`)` instead);
/// 3. on [`ServerDecision::Reject`] send [`Rejection::response_bytes`]; on
///    [`ServerDecision::Accept`] export the keys for [`Acceptance::aead`], make cookies and
///    send [`Acceptance::response_bytes`] (or [`error_response`]`(`
///    [`ErrorCode::INTERNAL_SERVER_ERROR`]`)` if that fails);
/// 4. close the connection.
#[derive(Debug, Clone)]
pub struct ServerHandshake {
    config: Arc<ServerConfig>,
    reader: RecordReader,
    records: Vec<Record>,
    finished: bool,
}

impl ServerHandshake {
    /// Starts reading a request.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] if the configuration is invalid ([`ServerConfig::validate`]).
    pub fn new(config: Arc<ServerConfig>) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            reader: RecordReader::new(config.limits),
            config,
            records: Vec::new(),
            finished: false,
        })
    }

    /// Feeds a chunk of the client's request.
    ///
    /// Malformed input is not an `Err`: it yields `Done(Reject(..))` with the Error record
    /// to send.
    ///
    /// # Errors
    ///
    /// [`ServerError::Finished`] when called after `Done`.
    pub fn receive(&mut self, data: &[u8]) -> Result<ServerProgress, ServerError> {
        if self.finished {
            return Err(ServerError::Finished);
        }
        let done = match self.reader.read_into(data, &mut self.records) {
            Ok(done) => done,
            Err(err) => {
                self.finished = true;
                let reason = RejectReason::BadRequest(BadRequest::Malformed(err));
                return Ok(ServerProgress::Done(reject(reason)));
            }
        };
        if !done {
            return Ok(ServerProgress::NeedMore);
        }
        self.finished = true;
        let records = core::mem::take(&mut self.records);
        Ok(ServerProgress::Done(decide(&self.config, &records)))
    }
}

fn reject(reason: RejectReason) -> ServerDecision {
    let records = match &reason {
        RejectReason::UnrecognizedCriticalRecord(_) => {
            error_records(ErrorCode::UNRECOGNIZED_CRITICAL_RECORD)
        }
        RejectReason::BadRequest(_) => error_records(ErrorCode::BAD_REQUEST),
        RejectReason::NoCommonProtocol => {
            vec![Record::next_protocol(vec![]), Record::end_of_message()]
        }
        RejectReason::NoCommonAead => vec![
            Record::next_protocol(vec![ProtocolId::NTPV4]),
            Record::aead_algorithm(vec![]),
            Record::end_of_message(),
        ],
    };
    ServerDecision::Reject(Rejection { reason, records })
}

/// Decides the answer to a whole request (End of Message included).
fn decide(config: &ServerConfig, records: &[Record]) -> ServerDecision {
    let bad = |why| reject(RejectReason::BadRequest(why));

    // An unknown critical record is reported as such even if other things are wrong too.
    if let Some(record_type) = records.iter().find_map(|r| match r {
        Record::Unknown {
            record_type,
            critical: true,
            ..
        } => Some(*record_type),
        _ => None,
    }) {
        return reject(RejectReason::UnrecognizedCriticalRecord(record_type));
    }

    let mut protocols: Option<&[ProtocolId]> = None;
    let mut aeads: Option<&[AeadId]> = None;
    let mut seen_server = false;
    let mut seen_port = false;
    for record in records {
        let duplicate = BadRequest::DuplicateRecord(record.record_type());
        match record {
            Record::EndOfMessage { critical: false } => {
                return bad(BadRequest::EndOfMessageNotCritical);
            }
            Record::Error { .. } | Record::Warning { .. } | Record::NewCookie { .. } => {
                return bad(BadRequest::ServerOnlyRecord(record.record_type()));
            }
            Record::NextProtocol { protocols: p, .. } => {
                if protocols.replace(p).is_some() {
                    return bad(duplicate);
                }
            }
            Record::AeadAlgorithm { algorithms, .. } => {
                if aeads.replace(algorithms).is_some() {
                    return bad(duplicate);
                }
            }
            // A client SHOULD NOT send these; we ignore their values but not duplicates.
            Record::Server { .. } => {
                if core::mem::replace(&mut seen_server, true) {
                    return bad(duplicate);
                }
            }
            Record::Port { .. } => {
                if core::mem::replace(&mut seen_port, true) {
                    return bad(duplicate);
                }
            }
            Record::EndOfMessage { critical: true } | Record::Unknown { .. } => {}
        }
    }

    let Some(protocols) = protocols else {
        return bad(BadRequest::MissingNextProtocol);
    };
    if protocols.is_empty() {
        return bad(BadRequest::EmptyNextProtocol);
    }
    if !protocols.contains(&ProtocolId::NTPV4) {
        return reject(RejectReason::NoCommonProtocol);
    }
    let Some(offered) = aeads else {
        return bad(BadRequest::MissingAead);
    };
    let chosen = match config.aead_preference {
        AeadPreference::Server => config.aead_algorithms.iter().find(|a| offered.contains(a)),
        AeadPreference::Client => offered.iter().find(|a| config.aead_algorithms.contains(a)),
    };
    let Some(&aead) = chosen else {
        return reject(RejectReason::NoCommonAead);
    };

    let mut head = vec![
        Record::next_protocol(vec![ProtocolId::NTPV4]),
        Record::aead_algorithm(vec![aead]),
    ];
    if let Some(name) = &config.ntp_server {
        head.push(Record::server(name.clone()));
    }
    if let Some(port) = config.ntp_port {
        head.push(Record::port(port));
    }
    ServerDecision::Accept(Acceptance {
        protocol: ProtocolId::NTPV4,
        aead,
        head,
    })
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use hex_literal::hex;

    fn server(config: ServerConfig) -> ServerHandshake {
        ServerHandshake::new(Arc::new(config)).expect("valid config")
    }

    fn decide_bytes(config: ServerConfig, request: &[u8]) -> ServerDecision {
        match server(config).receive(request) {
            Ok(ServerProgress::Done(decision)) => decision,
            other => panic!("not done: {other:?} for {}", hex::encode(request)),
        }
    }

    fn response_of(decision: &ServerDecision) -> Vec<u8> {
        match decision {
            ServerDecision::Reject(r) => r.response_bytes(),
            ServerDecision::Accept(a) => a.response_bytes(&[[0xc0u8; 4]]).expect("cookie"),
        }
    }

    const E0: [u8; 10] = hex!("8002 0002 0000 8000 0000");
    const E1: [u8; 10] = hex!("8002 0002 0001 8000 0000");

    #[test]
    fn validation_table() {
        let cases: &[(&str, &[u8], &[u8])] = &[
            // Accepted: 15 offered, cookie c0c0c0c0.
            (
                "plain request",
                &hex!("8001 0002 0000 8004 0002 000f 8000 0000"),
                &hex!("8001 0002 0000 8004 0002 000f 0005 0004 c0c0c0c0 8000 0000"),
            ),
            (
                "unknown critical",
                &hex!("8001 0002 0000 8004 0002 000f c000 0000 8000 0000"),
                &E0,
            ),
            (
                "unknown critical 1024 after a duplicate",
                &hex!("8001 0002 0000 8001 0002 0000 8400 0000 8000 0000"),
                &E0,
            ),
            (
                "unknown non-critical ignored",
                &hex!("8001 0002 0000 0400 0000 8004 0002 000f 8000 0000"),
                &hex!("8001 0002 0000 8004 0002 000f 0005 0004 c0c0c0c0 8000 0000"),
            ),
            ("missing npn", &hex!("8004 0002 000f 8000 0000"), &E1),
            (
                "empty npn",
                &hex!("8001 0000 8004 0002 000f 8000 0000"),
                &E1,
            ),
            (
                "duplicate npn",
                &hex!("8001 0002 0000 8001 0002 0000 8004 0002 000f 8000 0000"),
                &E1,
            ),
            (
                "duplicate aead",
                &hex!("8001 0002 0000 8004 0002 000f 8004 0002 000f 8000 0000"),
                &E1,
            ),
            ("missing aead", &hex!("8001 0002 0000 8000 0000"), &E1),
            (
                "client sends error",
                &hex!("8001 0002 0000 8004 0002 000f 8002 0002 0000 8000 0000"),
                &E1,
            ),
            (
                "client sends warning",
                &hex!("8001 0002 0000 8004 0002 000f 8003 0002 0000 8000 0000"),
                &E1,
            ),
            (
                "client sends cookie",
                &hex!("8001 0002 0000 8004 0002 000f 0005 0001 00 8000 0000"),
                &E1,
            ),
            (
                "duplicate server",
                &hex!("8001 0002 0000 8004 0002 000f 8006 0001 61 8006 0001 62 8000 0000"),
                &E1,
            ),
            (
                "duplicate port",
                &hex!("8001 0002 0000 8004 0002 000f 8007 0002 0001 8007 0002 0002 8000 0000"),
                &E1,
            ),
            (
                "odd npn body",
                &hex!("8001 0001 00 8004 0002 000f 8000 0000"),
                &E1,
            ),
            (
                "port body of 3",
                &hex!("8001 0002 0000 8004 0002 000f 8007 0003 000000 8000 0000"),
                &E1,
            ),
            (
                "non-critical end of message",
                &hex!("8001 0002 0000 8004 0002 000f 0000 0000"),
                &E1,
            ),
            (
                "trailing bytes",
                &hex!("8001 0002 0000 8004 0002 000f 8000 0000 00"),
                &E1,
            ),
            ("body announced past the cap", &hex!("8001 ffff"), &E1),
            (
                "no common protocol",
                &hex!("8001 0002 8001 8004 0002 000f 8000 0000"),
                &hex!("8001 0000 8000 0000"),
            ),
            (
                "no common aead",
                &hex!("8001 0002 0000 8004 0002 001e 8000 0000"),
                &hex!("8001 0002 0000 8004 0000 8000 0000"),
            ),
            (
                "empty aead",
                &hex!("8001 0002 0000 8004 0000 8000 0000"),
                &hex!("8001 0002 0000 8004 0000 8000 0000"),
            ),
        ];
        for (name, request, response) in cases {
            let decision = decide_bytes(ServerConfig::default(), request);
            assert_eq!(
                hex::encode(response_of(&decision)),
                hex::encode(response),
                "{name}"
            );
        }
    }

    #[test]
    fn reasons() {
        let decision = decide_bytes(
            ServerConfig::default(),
            &hex!("8001 0002 0000 8004 0002 000f 8004 0002 000f 8000 0000"),
        );
        let ServerDecision::Reject(rejection) = decision else {
            panic!("duplicate aead accepted");
        };
        assert_eq!(
            rejection.reason(),
            &RejectReason::BadRequest(BadRequest::DuplicateRecord(RecordType::AEAD_ALGORITHM))
        );
    }

    #[test]
    fn aead_preference() {
        // Client offers [17, 15].
        let request = hex!("8001 0002 0000 8004 0004 0011 000f 8000 0000");
        let chosen = |config: ServerConfig| match decide_bytes(config, &request) {
            ServerDecision::Accept(a) => a.aead(),
            ServerDecision::Reject(r) => panic!("rejected: {:?}", r.reason()),
        };
        assert_eq!(chosen(ServerConfig::default()), AeadId::AES_SIV_CMAC_256);
        assert_eq!(
            chosen(ServerConfig {
                aead_preference: AeadPreference::Client,
                ..ServerConfig::default()
            }),
            AeadId::AES_SIV_CMAC_512
        );
        assert_eq!(
            chosen(ServerConfig {
                aead_algorithms: vec![AeadId::AES_SIV_CMAC_512, AeadId::AES_SIV_CMAC_256],
                ..ServerConfig::default()
            }),
            AeadId::AES_SIV_CMAC_512
        );
    }

    #[test]
    fn accepted_response_like_chrony() {
        let config = ServerConfig {
            ntp_port: Some(11123),
            ..ServerConfig::default()
        };
        let ServerDecision::Accept(acceptance) =
            decide_bytes(config, &hex!("8001 0002 0000 8004 0002 000f 8000 0000"))
        else {
            panic!("rejected");
        };
        assert_eq!(acceptance.protocol(), ProtocolId::NTPV4);
        let cookies = vec![vec![7u8; 100]; 8];
        let bytes = acceptance.response_bytes(&cookies).expect("valid cookies");
        assert_eq!(bytes.len(), 854, "same size as the chrony capture");
        assert_eq!(
            &bytes[..24],
            hex!("8001 0002 0000 8004 0002 000f 8007 0002 2b73 0005 0064 0707")
        );
        assert_eq!(&bytes[bytes.len() - 4..], hex!("8000 0000"));
    }

    #[test]
    fn server_name_record() {
        let config = ServerConfig {
            ntp_server: Some("ntp.example".into()),
            ..ServerConfig::default()
        };
        let ServerDecision::Accept(acceptance) =
            decide_bytes(config, &hex!("8001 0002 0000 8004 0002 000f 8000 0000"))
        else {
            panic!("rejected");
        };
        let records = acceptance.response_records(&[[1u8]]).expect("cookie");
        assert_eq!(records[2], Record::server("ntp.example".into()));
    }

    #[test]
    fn cookie_checks() {
        let ServerDecision::Accept(acceptance) = decide_bytes(
            ServerConfig::default(),
            &hex!("8001 0002 0000 8004 0002 000f 8000 0000"),
        ) else {
            panic!("rejected");
        };
        let none: &[Vec<u8>] = &[];
        assert_eq!(acceptance.response_bytes(none), Err(ServerError::NoCookies));
        assert_eq!(
            acceptance.response_bytes(&[vec![]]),
            Err(ServerError::EmptyCookie)
        );
        assert_eq!(
            acceptance.response_bytes(&[vec![1; 4], vec![1; 5]]),
            Err(ServerError::CookieLengthMismatch { first: 4, other: 5 })
        );
        assert!(matches!(
            acceptance.response_bytes(&[vec![1; 70000]]),
            Err(ServerError::Encode(EncodeError::BodyTooLong { len: 70000 }))
        ));
    }

    #[test]
    fn streaming_and_finished() {
        let request = hex!("8001 0002 0000 8004 0002 000f 8000 0000");
        let whole = decide_bytes(ServerConfig::default(), &request);
        for split in 0..request.len() {
            let mut s = server(ServerConfig::default());
            assert_eq!(s.receive(&request[..split]), Ok(ServerProgress::NeedMore));
            assert_eq!(
                s.receive(&request[split..]),
                Ok(ServerProgress::Done(whole.clone()))
            );
            assert_eq!(s.receive(&[]), Err(ServerError::Finished));
        }
    }

    #[test]
    fn error_response_vector() {
        assert_eq!(
            error_response(ErrorCode::INTERNAL_SERVER_ERROR),
            hex!("8002 0002 0002 8000 0000")
        );
    }

    #[test]
    fn invalid_config() {
        let config = ServerConfig {
            ntp_server: Some("ü".into()),
            ..ServerConfig::default()
        };
        assert_eq!(
            ServerHandshake::new(Arc::new(config)).err(),
            Some(ConfigError::BadServerName)
        );
    }
}
