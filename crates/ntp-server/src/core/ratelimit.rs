//! Per-client rate limiting in bounded memory.
//!
//! # Design
//!
//! The table remembers, per client, when its last request arrived. It is a
//! **set-associative cache** of fixed size, allocated once at construction:
//!
//! - **Keying.** IPv4 clients (and IPv4-mapped IPv6 ones) are keyed by their
//!   full address. IPv6 clients are keyed by their **/64 prefix**: one host
//!   commonly owns a whole /64, and keying by full address would let a single
//!   host spread its requests over 2⁶⁴ addresses and never be limited, while
//!   flushing everyone else out of the table.
//! - **Hashing.** The key goes through SipHash-2-4 with a 128-bit key derived
//!   from the constructor's `seed`, so a client that does not know the seed
//!   cannot choose addresses that land in one bucket to evict a victim.
//! - **Buckets and eviction.** A key hashes to one bucket of [`WAYS`] entries.
//!   A client found there is checked and updated; a new client takes an empty
//!   entry, or else evicts the entry with the **oldest** last request. So the
//!   memory is exactly `capacity` entries (rounded up to whole buckets, see
//!   [`RateLimiter::capacity`]) however many clients there are; under a flood
//!   of distinct sources the quietest entries are forgotten first, which only
//!   ever errs towards answering.
//! - **Concurrency.** The buckets are split into up to [`MAX_SHARDS`] shards,
//!   each behind its own `Mutex`, chosen by other hash bits than the bucket.
//!   A lookup holds one shard lock for a scan of [`WAYS`] entries, tens of
//!   nanoseconds, so a handful of UDP workers rarely contend. (An atomics-only
//!   table would need a multi-word compare-and-swap per entry for the key and
//!   time; the mutex is simpler and as fast at this scale.) A poisoned lock is
//!   entered anyway: the table holds only plain data that is valid after any
//!   partial update.
//!
//! # Policy
//!
//! A request is **limited** if the same key was seen less than `cutoff_ms`
//! before it. Every request, limited or not, records its time (as ntpd-rs
//! does), so a client that keeps polling faster than the cutoff stays limited
//! until it slows down. Time is a caller-supplied monotonic millisecond count;
//! a time earlier than the recorded one (two workers racing) counts as no time
//! elapsed.

use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use super::access::canonical;

/// Entries per bucket.
pub const WAYS: usize = 4;

/// The most shards (independently locked parts) a table is split into.
pub const MAX_SHARDS: usize = 16;

/// What to do with a request that comes too soon.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateLimitAction {
    /// Answer with a Kiss-o'-Death RATE (RFC 5905 §7.4): the client must
    /// increase its poll interval. The default, as in ntpd-rs.
    #[default]
    Kod,
    /// Send nothing.
    Drop,
}

/// Rate limiting settings (ntpd-rs's `rate-limiting-cache-size` and
/// `rate-limiting-cutoff-ms`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RateLimitConfig {
    /// How many clients to remember; 0 turns rate limiting off.
    pub capacity: usize,
    /// A request less than this many milliseconds after the previous one from
    /// the same client is limited.
    pub cutoff_ms: u64,
    /// What a limited request gets.
    pub action: RateLimitAction,
}

#[derive(Clone, Copy, Default)]
struct Entry {
    key: u128,
    last_ms: u64,
    used: bool,
}

type Bucket = [Entry; WAYS];

/// A fixed-size, sharded table of the last request time per client; see the
/// module documentation.
pub struct RateLimiter {
    shards: Box<[Mutex<Box<[Bucket]>>]>,
    buckets_per_shard: usize,
    cutoff_ms: u64,
    k0: u64,
    k1: u64,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The hash keys stay out of logs.
        f.debug_struct("RateLimiter")
            .field("capacity", &self.capacity())
            .field("shards", &self.shards.len())
            .field("cutoff_ms", &self.cutoff_ms)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A table for at least `capacity` clients, or `None` if `capacity` is 0
    /// (rate limiting off). `seed` keys the hash; pass a random value.
    pub fn new(capacity: usize, cutoff_ms: u64, seed: u64) -> Option<Self> {
        if capacity == 0 {
            return None;
        }
        let buckets = capacity.div_ceil(WAYS);
        // A power of two no larger than the bucket count, at most MAX_SHARDS.
        let mut shard_count = 1;
        while shard_count * 2 <= buckets.min(MAX_SHARDS) {
            shard_count *= 2;
        }
        let buckets_per_shard = buckets.div_ceil(shard_count);
        let shards = (0..shard_count)
            .map(|_| {
                Mutex::new(vec![[Entry::default(); WAYS]; buckets_per_shard].into_boxed_slice())
            })
            .collect();
        let mut state = seed;
        let k0 = splitmix64(&mut state);
        let k1 = splitmix64(&mut state);
        Some(Self {
            shards,
            buckets_per_shard,
            cutoff_ms,
            k0,
            k1,
        })
    }

    /// How many clients the table holds at most: the requested capacity
    /// rounded up to whole buckets in every shard. Fixed at construction.
    pub fn capacity(&self) -> usize {
        self.shards.len() * self.buckets_per_shard * WAYS
    }

    /// How many clients are remembered now (at most [`RateLimiter::capacity`]).
    /// Takes every shard lock in turn; for tests and metrics, not the hot path.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
                shard.iter().flatten().filter(|e| e.used).count()
            })
            .sum()
    }

    /// Whether no client is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cutoff in milliseconds.
    pub const fn cutoff_ms(&self) -> u64 {
        self.cutoff_ms
    }

    /// Records a request from `addr` at `now_ms` and returns whether it may be
    /// answered: `false` if the same client (key, see the module docs) was
    /// seen less than the cutoff before.
    pub fn check(&self, addr: IpAddr, now_ms: u64) -> bool {
        let key = rate_key(addr);
        let hash = self.hash(key);
        // Low bits pick the shard, high bits the bucket inside it.
        let shard_count = self.shards.len() as u64;
        let shard_index = (hash % shard_count) as usize;
        let bucket_index = ((hash >> 32) % self.buckets_per_shard as u64) as usize;
        let Some(shard) = self.shards.get(shard_index) else {
            return true;
        };
        let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(bucket) = shard.get_mut(bucket_index) else {
            return true;
        };
        if let Some(entry) = bucket.iter_mut().find(|e| e.used && e.key == key) {
            let elapsed = now_ms.saturating_sub(entry.last_ms);
            entry.last_ms = entry.last_ms.max(now_ms);
            return elapsed >= self.cutoff_ms;
        }
        // A free entry (unused sorts first), else the oldest.
        if let Some(victim) = bucket.iter_mut().min_by_key(|e| (e.used, e.last_ms)) {
            *victim = Entry {
                key,
                last_ms: now_ms,
                used: true,
            };
        }
        true
    }

    fn hash(&self, key: u128) -> u64 {
        use std::hash::Hasher;
        // SipHash-2-4 with our own keys: deprecated in std only in favour of
        // unkeyed `DefaultHasher`, which is what we must not use here.
        #[allow(deprecated)]
        let mut hasher = std::hash::SipHasher::new_with_keys(self.k0, self.k1);
        hasher.write_u128(key);
        hasher.finish()
    }
}

/// The table key of a client: IPv4 (also mapped) as `::ffff:a.b.c.d`, IPv6 as
/// its /64 prefix.
fn rate_key(addr: IpAddr) -> u128 {
    match canonical(addr) {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6) & !u128::from(u64::MAX),
    }
}

/// SplitMix64, to turn one seed into two independent hash keys.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn zero_capacity_is_off() {
        assert!(RateLimiter::new(0, 1000, 1).is_none());
    }

    #[test]
    fn capacity_rounds_up_to_whole_buckets() {
        for (asked, got) in [(1, 4), (4, 4), (5, 8), (64, 64), (65, 128), (1000, 1024)] {
            let table = RateLimiter::new(asked, 1, 7).unwrap();
            assert_eq!(table.capacity(), got, "capacity {asked}");
            assert!(table.is_empty());
        }
    }

    #[test]
    fn cutoff_and_reset() {
        let table = RateLimiter::new(16, 1000, 3).unwrap();
        let a = ip("192.0.2.1");
        assert!(table.check(a, 10_000));
        assert!(!table.check(a, 10_999), "inside the cutoff");
        // The limited request was recorded: the cutoff counts from it.
        assert!(!table.check(a, 11_500));
        assert!(table.check(a, 12_500));
        // Time going backwards (racing workers) counts as no time elapsed.
        assert!(!table.check(a, 12_000));
        assert!(table.check(a, 13_500));
    }

    #[test]
    fn keys_ipv6_by_64_and_mapped_as_ipv4() {
        let table = RateLimiter::new(64, 1000, 3).unwrap();
        assert!(table.check(ip("2001:db8:1:2::1"), 0));
        assert!(!table.check(ip("2001:db8:1:2:ffff::9"), 1), "same /64");
        assert!(table.check(ip("2001:db8:1:3::1"), 2), "another /64");
        assert!(table.check(ip("192.0.2.1"), 3));
        assert!(
            !table.check(ip("::ffff:192.0.2.1"), 4),
            "mapped is the same client"
        );
        assert!(table.check(ip("192.0.2.2"), 5));
    }

    #[test]
    fn memory_is_bounded() {
        let table = RateLimiter::new(1024, 1000, 99).unwrap();
        let capacity = table.capacity();
        for i in 0..1_000_000u32 {
            assert!(table.check(IpAddr::V4(Ipv4Addr::from(i)), u64::from(i)));
        }
        assert_eq!(table.len(), capacity);
        for i in 0..1_000u128 {
            table.check(IpAddr::V6(Ipv6Addr::from(i << 64)), 2_000_000);
        }
        assert_eq!(table.len(), capacity);
        let fresh = ip("203.0.113.7");
        assert!(table.check(fresh, 3_000_000));
        assert!(!table.check(fresh, 3_000_001));
    }

    #[test]
    fn eviction_takes_the_oldest_in_the_bucket() {
        // One shard, one bucket: every client shares it.
        let table = RateLimiter::new(WAYS, 1000, 5).unwrap();
        assert_eq!(table.capacity(), WAYS);
        let clients: Vec<IpAddr> = (1..=WAYS as u32 + 1)
            .map(|i| IpAddr::V4(Ipv4Addr::from(i)))
            .collect();
        for (t, c) in clients.iter().take(WAYS).enumerate() {
            assert!(table.check(*c, t as u64));
        }
        // Refresh the first so the second is the oldest.
        assert!(!table.check(clients[0], 10));
        assert!(table.check(clients[WAYS], 20));
        assert!(!table.check(clients[0], 30), "kept");
        assert!(table.check(clients[1], 40), "evicted, so new again");
    }

    #[test]
    fn different_seeds_hash_differently() {
        let a = RateLimiter::new(64, 1, 1).unwrap();
        let b = RateLimiter::new(64, 1, 2).unwrap();
        let key = rate_key(ip("192.0.2.1"));
        assert_ne!(a.hash(key), b.hash(key));
    }
}
