//! Sans-IO NTS Key Establishment (RFC 8915 §4).
//!
//! This crate does no I/O: no sockets, no async, no clock. It takes TLS plaintext and
//! returns records, "need more bytes", decisions or errors. A shell (such as `ntp-io`) owns
//! the TCP connection, drives rustls and moves bytes.
//!
//! # Design overview
//!
//! The crate has five layers, each with its own error type:
//!
//! 1. [`record`]: the record codec. [`record::Record`] is the owned form of every record
//!    type, with `parse`, `emit` and `encoded_len`; unknown types and the critical bit
//!    round-trip byte for byte. Wire integers are newtypes with constants
//!    ([`record::ProtocolId`], [`record::AeadId`], [`record::ErrorCode`], …).
//! 2. [`reader`]: [`reader::RecordReader`] buffers TLS plaintext in any chunking and
//!    yields records up to End of Message, under a message-size cap (default 16384 bytes)
//!    and a record-count cap (default 64).
//! 3. [`client`] and [`server`]: the negotiation state machines.
//!    [`client::ClientHandshake`] builds the request and validates the response into a
//!    [`client::ClientOutcome`]; [`server::ServerHandshake`] validates the request into a
//!    [`server::ServerDecision`]. The server core does not make cookies: the caller passes
//!    them to [`server::Acceptance::response_bytes`].
//! 4. [`export`]: the exporter label, the 5-byte context and the key length, and
//!    [`export::export_keys`] over any [`export::KeyingMaterialExporter`].
//! 5. `tls` (feature `tls`, off by default): rustls 0.23 configs with the aws-lc-rs provider,
//!    TLS 1.3 only and ALPN `ntske/1`, the post-handshake ALPN check, and key export from a
//!    rustls connection.
//!
//! # Call order
//!
//! Client: `ClientHandshake::new(config)` → send `request_bytes()` → feed the server's
//! plaintext to `receive()` until `Done(outcome)` → `export_keys(conn, outcome.protocol,
//! outcome.aead)` → close.
//!
//! Server: `ServerHandshake::new(config)` → feed the client's plaintext to `receive()`
//! until `Done(decision)` → on `Reject` send its bytes; on `Accept` export the keys, seal
//! cookies, send `response_bytes(&cookies)` → close. On a read timeout send
//! [`server::error_response`]`(ErrorCode::BAD_REQUEST)`.
//!
//! Both sides must also call `tls::check_alpn` once the TLS handshake is done.
//!
//! # Example
//!
//! A whole exchange in memory (TLS left out):
//!
//! ```
//! use std::sync::Arc;
//! use nts_ke::client::{ClientConfig, ClientHandshake, ClientProgress};
//! use nts_ke::record::{AeadId, ProtocolId};
//! use nts_ke::server::{ServerConfig, ServerDecision, ServerHandshake, ServerProgress};
//!
//! let mut client = ClientHandshake::new(Arc::new(ClientConfig::default()))?;
//! let mut server = ServerHandshake::new(Arc::new(ServerConfig::default()))?;
//!
//! let ServerProgress::Done(ServerDecision::Accept(accept)) =
//!     server.receive(client.request_bytes())?
//! else {
//!     panic!("server rejected the request");
//! };
//! assert_eq!(accept.aead(), AeadId::AES_SIV_CMAC_256);
//! // Here the server would export keys and seal cookies with them.
//! let cookies = vec![vec![0xab; 104]; 8];
//! let response = accept.response_bytes(&cookies)?;
//!
//! let ClientProgress::Done(outcome) = client.receive(&response)? else {
//!     panic!("response incomplete");
//! };
//! assert_eq!(outcome.protocol, ProtocolId::NTPV4);
//! assert_eq!(outcome.aead, AeadId::AES_SIV_CMAC_256);
//! assert_eq!(outcome.cookies, cookies);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Guarantees
//!
//! No path reachable from network input panics, indexes unchecked or truncates with `as`;
//! no buffer grows beyond the configured message cap. Keys are returned in
//! [`zeroize::Zeroizing`] and never printed by `Debug`.
#![warn(clippy::indexing_slicing)]

pub mod client;
pub mod export;
pub mod reader;
pub mod record;
pub mod server;
#[cfg(feature = "tls")]
pub mod tls;

pub use client::{ClientConfig, ClientError, ClientHandshake, ClientOutcome, ClientProgress};
pub use export::{ExportError, SessionKeys};
pub use reader::{RecordReader, StreamError, StreamLimits};
pub use record::{AeadId, ErrorCode, ProtocolId, Record, RecordType, WarningCode};
pub use server::{
    Acceptance, Rejection, ServerConfig, ServerDecision, ServerError, ServerHandshake,
    ServerProgress,
};

/// An invalid [`ClientConfig`] or [`ServerConfig`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The AEAD list is empty.
    #[error("no aead algorithms configured")]
    NoAeadAlgorithms,
    /// An AEAD algorithm is listed twice.
    #[error("aead algorithm {0} listed twice")]
    DuplicateAead(AeadId),
    /// An AEAD algorithm whose key length this crate does not know (keys could not be
    /// exported).
    #[error("unsupported aead algorithm {0}")]
    UnsupportedAead(AeadId),
    /// The AEAD list does not fit in one record.
    #[error("too many aead algorithms")]
    TooManyAlgorithms,
    /// The NTP server name is empty, not ASCII or longer than 255 bytes.
    #[error("bad ntp server name")]
    BadServerName,
}

fn validate_aead_list(list: &[AeadId]) -> Result<(), ConfigError> {
    if list.is_empty() {
        return Err(ConfigError::NoAeadAlgorithms);
    }
    if list.len() > 1024 {
        return Err(ConfigError::TooManyAlgorithms);
    }
    for (i, aead) in list.iter().enumerate() {
        if aead.key_len().is_none() {
            return Err(ConfigError::UnsupportedAead(*aead));
        }
        if list.iter().take(i).any(|a| a == aead) {
            return Err(ConfigError::DuplicateAead(*aead));
        }
    }
    Ok(())
}
