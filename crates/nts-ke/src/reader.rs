//! Streaming record reader (sans-IO).
//!
//! TLS hands application data over in chunks of any size. [`RecordReader`] buffers at most
//! one partial record, yields whole records as they complete and stops at End of Message,
//! the way RFC 8915 §4 asks ("parse up to the End of Message record; don't wait for EOF").
//!
//! Guarantees: it never panics, it never buffers more than
//! [`StreamLimits::max_message_len`] bytes, and it refuses a header that announces a body
//! beyond that cap before the body arrives.

use crate::record::{ParseError, Parsed, Record, RecordHeader};

/// Caps on one NTS-KE message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamLimits {
    /// Largest message in bytes, End of Message included. Default 16384, as chrony. RFC 8915
    /// asks servers to accept at least 1024 and clients to accept up to 65536.
    pub max_message_len: usize,
    /// Most records in one message, End of Message included. Default 64.
    pub max_records: usize,
}

impl StreamLimits {
    /// Default [`StreamLimits::max_message_len`].
    pub const DEFAULT_MAX_MESSAGE_LEN: usize = 16384;
    /// Default [`StreamLimits::max_records`].
    pub const DEFAULT_MAX_RECORDS: usize = 64;

    /// Limits with the given caps.
    pub fn new(max_message_len: usize, max_records: usize) -> Self {
        Self {
            max_message_len,
            max_records,
        }
    }
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self::new(Self::DEFAULT_MAX_MESSAGE_LEN, Self::DEFAULT_MAX_RECORDS)
    }
}

/// Why a record stream was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// A record body did not fit its type.
    #[error("bad record: {0}")]
    Record(#[from] ParseError),
    /// The message is, or announces that it will be, larger than the cap.
    #[error("message exceeds {limit} bytes")]
    MessageTooLarge {
        /// The cap in force.
        limit: usize,
    },
    /// The message has more records than the cap.
    #[error("message exceeds {limit} records")]
    TooManyRecords {
        /// The cap in force.
        limit: usize,
    },
    /// Bytes arrived after End of Message.
    #[error("data after end of message")]
    TrailingData,
}

/// Reads one NTS-KE message from TLS plaintext delivered in arbitrary chunks.
///
/// Call order: [`RecordReader::push`] each chunk, then call [`RecordReader::next_record`]
/// until it returns `Ok(None)` (need more bytes). After it has returned End of Message,
/// [`RecordReader::is_finished`] is true and further non-empty input is
/// [`StreamError::TrailingData`]. After any error the reader keeps returning that error.
///
/// ```
/// use nts_ke::reader::{RecordReader, StreamLimits};
/// use nts_ke::record::Record;
///
/// let mut reader = RecordReader::new(StreamLimits::default());
/// reader.push(&[0x80, 0x07, 0x00])?;
/// assert_eq!(reader.next_record()?, None);
/// reader.push(&[0x02, 0x00, 0x7b, 0x80, 0x00, 0x00, 0x00])?;
/// assert_eq!(reader.next_record()?, Some(Record::port(123)));
/// assert_eq!(reader.next_record()?, Some(Record::end_of_message()));
/// assert!(reader.is_finished());
/// # Ok::<(), nts_ke::reader::StreamError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RecordReader {
    limits: StreamLimits,
    /// Received bytes not yet decoded (at most one partial record plus what follows).
    buf: Vec<u8>,
    /// Bytes received in total.
    received: usize,
    /// Bytes decoded into records.
    decoded: usize,
    records: usize,
    finished: bool,
    failed: Option<StreamError>,
}

impl RecordReader {
    /// A reader for one message under `limits`.
    pub fn new(limits: StreamLimits) -> Self {
        Self {
            limits,
            buf: Vec::new(),
            received: 0,
            decoded: 0,
            records: 0,
            finished: false,
            failed: None,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> StreamLimits {
        self.limits
    }

    /// Bytes received so far.
    pub fn received(&self) -> usize {
        self.received
    }

    /// Records yielded so far (End of Message included).
    pub fn record_count(&self) -> usize {
        self.records
    }

    /// True once End of Message has been yielded.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Appends a chunk of TLS plaintext.
    ///
    /// # Errors
    ///
    /// [`StreamError::MessageTooLarge`] if the total would pass the cap (nothing is stored),
    /// [`StreamError::TrailingData`] for non-empty input after End of Message, or the error
    /// the reader already failed with.
    pub fn push(&mut self, data: &[u8]) -> Result<(), StreamError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        if data.is_empty() {
            return Ok(());
        }
        if self.finished {
            return self.fail(StreamError::TrailingData);
        }
        let total = self.received.saturating_add(data.len());
        if total > self.limits.max_message_len {
            return self.fail(StreamError::MessageTooLarge {
                limit: self.limits.max_message_len,
            });
        }
        self.buf.extend_from_slice(data);
        self.received = total;
        Ok(())
    }

    /// Decodes the next whole record, or `Ok(None)` if more bytes are needed (or the message
    /// is finished).
    ///
    /// # Errors
    ///
    /// [`StreamError`]: a bad record, a header announcing a record past the size cap, one
    /// record too many, or bytes after End of Message.
    pub fn next_record(&mut self) -> Result<Option<Record>, StreamError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        if self.finished {
            return Ok(None);
        }
        if let Some(header) = RecordHeader::peek(&self.buf) {
            let end = self.decoded.saturating_add(header.total_len());
            if end > self.limits.max_message_len {
                return self.fail(StreamError::MessageTooLarge {
                    limit: self.limits.max_message_len,
                });
            }
        }
        let (record, consumed) = match Record::parse(&self.buf) {
            Ok(Parsed::Complete { record, consumed }) => (record, consumed),
            Ok(Parsed::Incomplete { .. }) => return Ok(None),
            Err(err) => return self.fail(err.into()),
        };
        if self.records >= self.limits.max_records {
            return self.fail(StreamError::TooManyRecords {
                limit: self.limits.max_records,
            });
        }
        self.records = self.records.saturating_add(1);
        self.decoded = self.decoded.saturating_add(consumed);
        self.buf.drain(..consumed.min(self.buf.len()));
        if matches!(record, Record::EndOfMessage { .. }) {
            if !self.buf.is_empty() {
                return self.fail(StreamError::TrailingData);
            }
            self.finished = true;
            self.buf = Vec::new();
        }
        Ok(Some(record))
    }

    /// Pushes `data` and decodes every record that completes, appending them to `out`.
    /// Returns true once End of Message has been read.
    ///
    /// # Errors
    ///
    /// As [`RecordReader::push`] and [`RecordReader::next_record`].
    pub fn read_into(&mut self, data: &[u8], out: &mut Vec<Record>) -> Result<bool, StreamError> {
        self.push(data)?;
        while let Some(record) = self.next_record()? {
            out.push(record);
        }
        Ok(self.finished)
    }

    fn fail<T>(&mut self, err: StreamError) -> Result<T, StreamError> {
        self.failed = Some(err.clone());
        self.buf = Vec::new();
        Err(err)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::record::RecordType;
    use hex_literal::hex;

    const REQUEST: [u8; 16] = hex!("8001 0002 0000 8004 0002 000f 8000 0000");

    fn read_chunks<'a>(
        limits: StreamLimits,
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(Vec<Record>, bool), StreamError> {
        let mut reader = RecordReader::new(limits);
        let mut out = Vec::new();
        let mut done = false;
        for chunk in chunks {
            done = reader.read_into(chunk, &mut out)?;
        }
        Ok((out, done))
    }

    #[test]
    fn byte_at_a_time_and_every_split() {
        let whole = read_chunks(StreamLimits::default(), [&REQUEST[..]]).expect("valid");
        assert!(whole.1);
        assert_eq!(whole.0.len(), 3);
        let bytes = read_chunks(StreamLimits::default(), REQUEST.chunks(1)).expect("valid");
        assert_eq!(bytes, whole);
        for split in 0..=REQUEST.len() {
            let (a, b) = REQUEST.split_at(split);
            let got = read_chunks(StreamLimits::default(), [a, b]).expect("valid");
            assert_eq!(got, whole, "split at {split}");
        }
    }

    #[test]
    fn need_more_before_end_of_message() {
        let (records, done) =
            read_chunks(StreamLimits::default(), [&REQUEST[..13]]).expect("valid prefix");
        assert!(!done);
        assert_eq!(records.len(), 2);
    }

    #[test]
    fn message_size_cap() {
        // Exactly at the cap is fine.
        let limits = StreamLimits::new(REQUEST.len(), 64);
        assert!(read_chunks(limits, [&REQUEST[..]]).expect("fits").1);
        // One byte less: the final push overflows.
        let limits = StreamLimits::new(REQUEST.len() - 1, 64);
        assert_eq!(
            read_chunks(limits, REQUEST.chunks(1)),
            Err(StreamError::MessageTooLarge { limit: 15 })
        );
        // A header announcing a huge body is refused before the body arrives.
        let mut reader = RecordReader::new(StreamLimits::default());
        reader.push(&hex!("0005 ffff")).expect("small");
        assert_eq!(
            reader.next_record(),
            Err(StreamError::MessageTooLarge { limit: 16384 })
        );
        // And the reader stays failed.
        assert_eq!(
            reader.push(&[0]),
            Err(StreamError::MessageTooLarge { limit: 16384 })
        );
    }

    #[test]
    fn record_count_cap() {
        let limits = StreamLimits::new(16384, 3);
        assert!(read_chunks(limits, [&REQUEST[..]]).expect("3 records").1);
        let limits = StreamLimits::new(16384, 2);
        assert_eq!(
            read_chunks(limits, [&REQUEST[..]]),
            Err(StreamError::TooManyRecords { limit: 2 })
        );
    }

    #[test]
    fn trailing_data() {
        let mut with_tail = REQUEST.to_vec();
        with_tail.push(0);
        assert_eq!(
            read_chunks(StreamLimits::default(), [&with_tail[..]]),
            Err(StreamError::TrailingData)
        );
        assert_eq!(
            read_chunks(StreamLimits::default(), [&REQUEST[..], &[0u8][..]]),
            Err(StreamError::TrailingData)
        );
        // Empty pushes after the end are harmless.
        assert!(
            read_chunks(StreamLimits::default(), [&REQUEST[..], &[][..]])
                .expect("empty")
                .1
        );
    }

    #[test]
    fn bad_record_is_reported() {
        assert_eq!(
            read_chunks(StreamLimits::default(), [&hex!("8007 0001 00")[..]]),
            Err(StreamError::Record(ParseError::BadLength {
                record_type: RecordType::PORT,
                len: 1
            }))
        );
    }
}
