//! A log-linear latency histogram: fixed buckets, no allocation per sample.
//!
//! Values are nanoseconds. Below 16 ns every value has its own bucket; above,
//! each power of two is split into 16 linear sub-buckets, so a bucket's width
//! is at most 1/16 (6.25 %) of its lower bound. Percentiles report the upper
//! bound of the bucket that holds them, so they over-state by at most that
//! much. Values from 2^40 ns (about 18 minutes) up share the last bucket.

/// Sub-buckets per power of two (2^4).
const SUB_BITS: u32 = 4;
const SUB: usize = 1 << SUB_BITS;
/// Largest exponent kept apart; larger values are clamped.
const MAX_EXP: u32 = 40;
/// Number of buckets.
const BUCKETS: usize = (MAX_EXP - SUB_BITS + 2) as usize * SUB;

/// Latency histogram in nanoseconds (see the module docs for the precision).
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
    max: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("total", &self.total)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram (one allocation, here).
    pub fn new() -> Self {
        Self {
            counts: Box::new([0; BUCKETS]),
            total: 0,
            max: 0,
        }
    }

    /// Records one value.
    pub fn record(&mut self, nanos: u64) {
        if let Some(c) = self.counts.get_mut(index(nanos)) {
            *c += 1;
        }
        self.total += 1;
        self.max = self.max.max(nanos);
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// Number of samples.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether no sample was recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The largest sample, exactly.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0.0 to 1.0): the upper bound of the bucket
    /// holding the `ceil(q·n)`-th smallest sample, capped at the maximum seen.
    /// `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        // Rank of the wanted sample, 1-based; float to integer saturates.
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(upper_bound(i).min(self.max));
            }
        }
        Some(self.max)
    }
}

/// The bucket of a value.
fn index(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let exp = (63 - v.leading_zeros()).min(MAX_EXP);
    let v = v.min((1u64 << (MAX_EXP + 1)) - 1);
    let sub = (v >> (exp - SUB_BITS)) as usize & (SUB - 1);
    (exp - SUB_BITS + 1) as usize * SUB + sub
}

/// The largest value that lands in bucket `i`.
fn upper_bound(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let exp = (i / SUB) as u32 + SUB_BITS - 1;
    let sub = (i % SUB) as u64;
    let width = 1u64 << (exp - SUB_BITS);
    (1u64 << exp) + (sub + 1) * width - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for v in (0..1_000_000u64).step_by(7).chain([1 << 39, (1 << 41) + 5]) {
            let i = index(v);
            assert!(i >= last, "{v}");
            last = i;
            let ub = upper_bound(i);
            if v < (1 << (MAX_EXP + 1)) {
                assert!(ub >= v, "{v} {ub}");
                assert!((ub - v) as f64 <= v as f64 / 16.0 + 1.0, "{v} {ub}");
            }
        }
        assert!(index(u64::MAX) < BUCKETS);
    }

    #[test]
    fn percentiles_of_uniform_samples() {
        let mut h = Histogram::new();
        assert_eq!(h.quantile(0.5), None);
        for v in 1..=10_000u64 {
            h.record(v * 1000); // 1 µs .. 10 ms
        }
        let within = |got: u64, want: f64| (got as f64 - want).abs() <= want * 0.07;
        assert!(within(h.quantile(0.5).unwrap_or(0), 5_000_000.0));
        assert!(within(h.quantile(0.99).unwrap_or(0), 9_900_000.0));
        assert!(within(h.quantile(0.999).unwrap_or(0), 9_990_000.0));
        assert_eq!(h.quantile(1.0), Some(10_000_000));
        assert_eq!(h.len(), 10_000);
    }

    #[test]
    fn small_values_are_exact_and_merge_adds() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        for v in [3, 3, 5] {
            a.record(v);
        }
        b.record(9);
        a.merge(&b);
        assert_eq!(a.quantile(0.5), Some(3));
        assert_eq!(a.quantile(0.75), Some(5));
        assert_eq!(a.quantile(1.0), Some(9));
        assert_eq!(a.max(), 9);
    }
}
