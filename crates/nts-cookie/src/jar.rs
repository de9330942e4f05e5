//! The client's cookie jar (RFC 8915 §5.7, §6).

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;

use crate::cookie::CookieKeys;

/// The most cookies a client holds (RFC 8915 §5.7 and NTPsec's limit).
pub const MAX_COOKIES: usize = 8;

/// Bytes of a request that do not depend on the cookie length, as our client builds
/// it: the 48-byte header, a Unique Identifier EF with a 32-byte body (36), and an
/// authenticator EF with a 16-byte nonce and a 16-byte tag and no padding (40).
pub const REQUEST_FIXED_LEN: usize = 48 + 36 + 40;

/// Length of an extension field carrying `body_len` bytes: 4-byte header plus the body
/// padded to a multiple of 4.
#[must_use]
pub const fn ef_len(body_len: usize) -> usize {
    4 + body_len.div_ceil(4) * 4
}

/// Why [`CookieJar::store`] refused a cookie.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JarError {
    /// Cookies are never empty.
    #[error("empty cookie")]
    Empty,
    /// The cookie's length differs from the cookies held.
    #[error("cookie of {actual} bytes differs from the {expected}-byte cookies held")]
    LengthMismatch {
        /// The length of the held cookies.
        expected: usize,
        /// The length of the refused cookie.
        actual: usize,
    },
}

/// A client's cookies for one NTS association and the keys that go with them.
///
/// - [`CookieJar::take`] hands out each cookie once, oldest first (older cookies are
///   closer to their server key's expiry).
/// - [`CookieJar::placeholders_to_request`] says how many Cookie Placeholder EFs to
///   send after taking the request's cookie so the reply refills the jar to
///   [`MAX_COOKIES`].
/// - [`CookieJar::store`] adds the cookies from a verified reply. All held cookies
///   have one length: a cookie of another length is **refused** with
///   [`JarError::LengthMismatch`] (as NTPsec does) while the jar holds any; when the
///   jar is empty any length is accepted and becomes the expected one. Beyond
///   [`MAX_COOKIES`] the oldest cookie is evicted.
/// - When the jar is empty the client must run NTS-KE again ([`CookieJar::needs_rekey`]).
///
/// `Debug` shows counts and lengths only.
#[derive(Clone)]
pub struct CookieJar {
    keys: CookieKeys,
    cookies: VecDeque<Vec<u8>>,
    /// Length of the held cookies, or of the last one taken when the jar is empty.
    cookie_len: Option<usize>,
}

impl fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieJar")
            .field("algorithm", &self.keys.algorithm())
            .field("cookies", &self.cookies.len())
            .field("cookie_len", &self.cookie_len)
            .finish_non_exhaustive()
    }
}

impl CookieJar {
    /// An empty jar for the keys of a fresh NTS-KE exchange.
    #[must_use]
    pub fn new(keys: CookieKeys) -> Self {
        Self {
            keys,
            cookies: VecDeque::with_capacity(MAX_COOKIES),
            cookie_len: None,
        }
    }

    /// A jar filled with the cookies of an NTS-KE response (at most [`MAX_COOKIES`]
    /// are kept).
    ///
    /// # Errors
    /// As [`CookieJar::store`]: an empty cookie, or cookies of different lengths.
    pub fn with_cookies<I>(keys: CookieKeys, cookies: I) -> Result<Self, JarError>
    where
        I: IntoIterator<Item = Vec<u8>>,
    {
        let mut jar = Self::new(keys);
        for c in cookies {
            jar.store(c)?;
        }
        Ok(jar)
    }

    /// The association's keys.
    #[must_use]
    pub fn keys(&self) -> &CookieKeys {
        &self.keys
    }

    /// Takes the oldest cookie for a request; each cookie is used once.
    pub fn take(&mut self) -> Option<Vec<u8>> {
        self.cookies.pop_front()
    }

    /// Adds a cookie from a verified reply (only from the encrypted part).
    ///
    /// # Errors
    /// [`JarError::Empty`] or [`JarError::LengthMismatch`]; the jar is unchanged.
    pub fn store(&mut self, cookie: Vec<u8>) -> Result<(), JarError> {
        if cookie.is_empty() {
            return Err(JarError::Empty);
        }
        if let (Some(first), Some(expected)) = (self.cookies.front(), self.cookie_len) {
            debug_assert_eq!(first.len(), expected);
            if cookie.len() != expected {
                return Err(JarError::LengthMismatch {
                    expected,
                    actual: cookie.len(),
                });
            }
        }
        self.cookie_len = Some(cookie.len());
        if self.cookies.len() >= MAX_COOKIES {
            self.cookies.pop_front();
        }
        self.cookies.push_back(cookie);
        Ok(())
    }

    /// The number of cookies held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.cookies.len()
    }

    /// Whether no cookie is left.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    /// Whether the client must run NTS-KE again before the next request (no cookie
    /// left).
    #[must_use]
    pub fn needs_rekey(&self) -> bool {
        self.is_empty()
    }

    /// The length of the held cookies (or of the last one taken), which is also the
    /// body length of a Cookie Placeholder EF.
    #[must_use]
    pub fn cookie_len(&self) -> Option<usize> {
        self.cookie_len
    }

    /// How many placeholders to send, to be called **after** [`CookieJar::take`]: the
    /// reply brings one cookie per placeholder plus one, so this is
    /// `MAX_COOKIES - 1 - len()`, at most 7.
    #[must_use]
    pub fn placeholders_to_request(&self) -> usize {
        MAX_COOKIES.saturating_sub(1).saturating_sub(self.len())
    }

    /// Like [`CookieJar::placeholders_to_request`], but fewer if the request would
    /// otherwise exceed `max_packet_bytes` (e.g. 1280 to avoid fragmentation). The
    /// request is [`REQUEST_FIXED_LEN`] plus one cookie EF plus one placeholder EF per
    /// placeholder, each [`ef_len`]`(cookie_len)`. Returns 0 if even a request without
    /// placeholders does not fit, or if no cookie length is known yet.
    #[must_use]
    pub fn placeholders_to_request_within(&self, max_packet_bytes: usize) -> usize {
        let Some(len) = self.cookie_len else {
            return 0;
        };
        let per = ef_len(len);
        let Some(room) = max_packet_bytes.checked_sub(REQUEST_FIXED_LEN + per) else {
            return 0;
        };
        self.placeholders_to_request().min(room / per)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aead::AeadAlgorithm;

    fn keys() -> CookieKeys {
        CookieKeys::new(AeadAlgorithm::AesSivCmac256, &[1; 32], &[2; 32]).unwrap()
    }

    fn cookie(tag: u8, len: usize) -> Vec<u8> {
        vec![tag; len]
    }

    #[test]
    fn fifo_and_single_use() {
        let mut jar = CookieJar::with_cookies(keys(), (0..3).map(|i| cookie(i, 104))).unwrap();
        assert_eq!(jar.len(), 3);
        assert_eq!(jar.take(), Some(cookie(0, 104)));
        assert_eq!(jar.take(), Some(cookie(1, 104)));
        assert_eq!(jar.take(), Some(cookie(2, 104)));
        assert_eq!(jar.take(), None);
        assert!(jar.is_empty());
        assert!(jar.needs_rekey());
        assert_eq!(jar.cookie_len(), Some(104));
    }

    #[test]
    fn cap_evicts_oldest() {
        let mut jar = CookieJar::new(keys());
        for i in 0..10 {
            jar.store(cookie(i, 100)).unwrap();
            assert!(jar.len() <= MAX_COOKIES);
        }
        assert_eq!(jar.len(), 8);
        assert_eq!(jar.take(), Some(cookie(2, 100)));
    }

    #[test]
    fn length_change_is_refused() {
        let mut jar = CookieJar::new(keys());
        jar.store(cookie(0, 104)).unwrap();
        assert_eq!(
            jar.store(cookie(1, 168)),
            Err(JarError::LengthMismatch {
                expected: 104,
                actual: 168
            })
        );
        assert_eq!(jar.len(), 1);
        assert_eq!(jar.store(Vec::new()), Err(JarError::Empty));
        // once empty, a new length is accepted
        jar.take();
        jar.store(cookie(2, 168)).unwrap();
        assert_eq!(jar.cookie_len(), Some(168));
        assert!(CookieJar::with_cookies(keys(), [cookie(0, 8), cookie(0, 12)]).is_err());
    }

    #[test]
    fn placeholders_refill_to_eight() {
        let mut jar = CookieJar::with_cookies(keys(), (0..8).map(|i| cookie(i, 104))).unwrap();
        assert_eq!(jar.placeholders_to_request(), 0, "full jar before take");
        for held_after_take in (0..8).rev() {
            let c = jar.take().unwrap();
            assert_eq!(jar.len(), held_after_take);
            let p = jar.placeholders_to_request();
            assert_eq!(p, 7 - held_after_take);
            // the reply brings p + 1 cookies and the jar is full again
            let mut sim = jar.clone();
            for _ in 0..=p {
                sim.store(c.clone()).unwrap();
            }
            assert_eq!(sim.len(), MAX_COOKIES);
        }
        assert_eq!(jar.placeholders_to_request(), 7);
    }

    #[test]
    fn placeholders_within_budget() {
        // PROTOCOL.md §3.7: 100-byte cookies, 7 placeholders → 956 bytes.
        let mut jar = CookieJar::with_cookies(keys(), [cookie(0, 100)]).unwrap();
        jar.take();
        assert_eq!(REQUEST_FIXED_LEN + 8 * ef_len(100), 956);
        assert_eq!(jar.placeholders_to_request_within(956), 7);
        assert_eq!(jar.placeholders_to_request_within(955), 6);
        assert_eq!(jar.placeholders_to_request_within(1280), 7);
        assert_eq!(
            jar.placeholders_to_request_within(REQUEST_FIXED_LEN + 104),
            0
        );
        assert_eq!(jar.placeholders_to_request_within(10), 0);
        // 168-byte cookies (AEAD 17): 124 + 172·(1 + p) ≤ 1280 → p = 5
        let mut jar = CookieJar::with_cookies(keys(), [cookie(0, 168)]).unwrap();
        jar.take();
        assert_eq!(jar.placeholders_to_request_within(1280), 5);
        // odd lengths are padded in the EF
        assert_eq!(ef_len(101), 108);
        assert_eq!(
            CookieJar::new(keys()).placeholders_to_request_within(1280),
            0
        );
    }

    #[test]
    fn debug_hides_keys_and_cookies() {
        let jar = CookieJar::with_cookies(keys(), [cookie(0xEE, 104)]).unwrap();
        let dbg = format!("{jar:?}");
        assert!(!dbg.contains("238") && !dbg.contains("[1, 1"), "{dbg}");
    }
}
