//! The tokio + rustls shell of the NTP/NTS suite: it moves bytes and time,
//! and keeps no protocol logic of its own.
//!
//! # Design overview
//!
//! The protocol crates are sans-IO: `ntp-proto` encodes and checks packets,
//! `nts-ke` negotiates keys from TLS plaintext, `nts-cookie` seals and opens
//! NTS packets. This crate connects them to the network:
//!
//! - [`udp`]: a connected UDP socket that stamps each datagram with its
//!   arrival time from the kernel (`SO_TIMESTAMPNS`), so T4 excludes
//!   scheduling delay.
//! - [`ke`]: NTS-KE over TLS 1.3 with ALPN `ntske/1` (RFC 8915 §4), bounded in
//!   time; certificate failures are told apart from other TLS failures.
//! - [`query`](mod@query): one-shot and repeated queries returning a [`Measurement`],
//!   plain or NTS, with retries and re-keying when cookies run out.
//! - [`http`]: reading the request of the programs' small HTTP endpoints.
//! - [`sync`]: the synchronisation engine over many sources (`ntp-clock`'s
//!   filter, selection and discipline), in observe mode by default (a
//!   virtual clock; see the module docs), publishing a [`sync::Status`].
//!
//! Nothing here sets the system clock; it is only read.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), ntp_io::QueryError> {
//! let options = ntp_io::QueryOptions { nts: true, ..Default::default() };
//! let m = ntp_io::query("time.example.com", &options).await?;
//! println!("offset {:+.6} s, delay {:.6} s", m.offset, m.delay);
//! # Ok(()) }
//! ```

pub mod http;
pub mod ke;
pub mod query;
pub mod sync;
pub mod udp;

pub use ke::{DEFAULT_KE_PORT, DEFAULT_NTP_PORT, KeError, KeOptions, KeyExchange, key_exchange};
pub use query::{Measurement, NtsDetails, QueryClient, QueryError, QueryOptions, query};
