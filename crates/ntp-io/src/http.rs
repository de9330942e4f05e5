//! The request side of the small HTTP/1.1 endpoints the programs serve
//! (`ntp-server`'s `/metrics`, `ntp-monitor`'s API and dashboard): one request
//! per connection, read with a size limit. Each program writes its own
//! response, since their headers differ.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Reads a request head — until the blank line that ends the headers, the
/// peer closing, or `max_bytes` — and returns the request line's method and
/// target (empty strings when missing). The caller bounds the time.
///
/// # Errors
/// Read errors from the stream.
pub async fn read_request_line<S: AsyncRead + Unpin>(
    stream: &mut S,
    max_bytes: usize,
) -> std::io::Result<(String, String)> {
    let mut buf = vec![0u8; max_bytes];
    let mut len = 0;
    while len < buf.len() {
        let n = stream.read(buf.get_mut(len..).unwrap_or_default()).await?;
        if n == 0 {
            break;
        }
        len += n;
        if buf
            .get(..len)
            .is_some_and(|b| b.windows(4).any(|w| w == b"\r\n\r\n"))
        {
            break;
        }
    }
    let request = String::from_utf8_lossy(buf.get(..len).unwrap_or_default());
    let mut parts = request.lines().next().unwrap_or("").split_whitespace();
    Ok((
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &[u8], max: usize) -> (String, String) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let mut stream = input;
        runtime
            .block_on(read_request_line(&mut stream, max))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn method_and_target() {
        let request = b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\nignored";
        assert_eq!(read(request, 4096), ("GET".into(), "/metrics?x=1".into()));
    }

    #[test]
    fn empty_and_cut_requests() {
        assert_eq!(read(b"", 4096), (String::new(), String::new()));
        assert_eq!(read(b"\r\n\r\n", 4096), (String::new(), String::new()));
        // Only `max_bytes` are read: the target is cut at the limit.
        assert_eq!(
            read(b"GET /abcdef HTTP/1.1\r\n\r\n", 8),
            ("GET".into(), "/abc".into())
        );
    }
}
