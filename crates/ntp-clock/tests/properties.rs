#![allow(clippy::unwrap_used)]
//! Invariants of the filter and of selection.

use ntp_clock::filter::{ClockFilter, FilterSample};
use ntp_clock::select::{Interval, select};
use ntp_proto::{NtpDuration, NtpTimestamp};
use proptest::prelude::*;

fn at(s: f64) -> NtpTimestamp {
    NtpTimestamp::from_seconds_and_fraction(3_913_056_000, 0) + NtpDuration::from_seconds_f64(s)
}

proptest! {
    /// The filter's offset and delay are those of one of the samples it was
    /// given.
    #[test]
    fn filter_output_is_one_of_its_inputs(
        samples in prop::collection::vec((-1.0f64..1.0, 0.0f64..0.5), 1..30),
        poll in 4i8..10,
    ) {
        let mut f = ClockFilter::new(-20);
        for (i, (offset, delay)) in samples.iter().enumerate() {
            let t = i as f64 * 64.0;
            f.add(FilterSample { offset: *offset, delay: *delay, dispersion: 1e-6, time: at(t) }, at(t), poll);
            let out = f.output().unwrap();
            prop_assert!(samples.iter().any(|(o, d)| *o == out.offset && *d == out.delay));
        }
    }

    /// When a strict majority of intervals agree (every one of them contains
    /// every agreeing midpoint), selection succeeds and marks none of them a
    /// falseticker, whatever the others do.
    #[test]
    fn agreeing_majority_is_never_falseticker(
        center in -10.0f64..10.0,
        honest in prop::collection::vec((-1.0f64..1.0, 1.0f64..3.0), 1..8),
        liars in prop::collection::vec((-50.0f64..50.0, 0.001f64..5.0), 0..7),
        scale in 0.001f64..1.0,
    ) {
        prop_assume!(liars.len() < honest.len());
        let mut intervals: Vec<Interval> = honest
            .iter()
            .map(|(o, d)| Interval { offset: center + o * scale, distance: 2.0 * scale * d })
            .collect();
        let n_honest = intervals.len();
        intervals.extend(liars.iter().map(|(o, d)| Interval { offset: *o, distance: *d }));
        let s = select(&intervals).unwrap();
        for i in 0..n_honest {
            prop_assert!(s.truechimers.contains(&i), "honest {} rejected: {:?}", i, s);
        }
    }
}
