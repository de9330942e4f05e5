//! The system process's pure algorithms: selection by interval intersection,
//! clustering and combining (RFC 5905 §11.2, PROTOCOL.md §4).
//!
//! These functions take plain data and return indices into it, so they can
//! be tested and benchmarked alone; [`crate::System`] feeds them from the
//! sources. Units: `f64` seconds.

use crate::consts::MAXDIST;

/// A candidate's correctness interval: the true time lies in
/// `[offset − distance, offset + distance]` if the source is honest.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct Interval {
    /// The source's offset θ, seconds.
    pub offset: f64,
    /// Its root distance λ (half-width of the interval), seconds.
    pub distance: f64,
}

/// The result of a successful selection.
#[derive(Clone, PartialEq, Debug)]
pub struct Selection {
    /// Low end of the intersection interval, seconds.
    pub low: f64,
    /// High end of the intersection interval, seconds.
    pub high: f64,
    /// Number of falsetickers the algorithm had to allow for.
    pub allowed_falsetickers: usize,
    /// Indices of the truechimers: candidates whose offset lies in
    /// `[low, high]`. The rest are falsetickers.
    pub truechimers: Vec<usize>,
}

/// Marzullo-style selection as in RFC 5905 §11.2.1: find the smallest
/// number of falsetickers `f < m/2` for which `m − f` intervals share a point
/// and at most `f` midpoints lie outside that intersection.
///
/// Returns `None` when no majority agrees (or there are no candidates).
pub fn select(candidates: &[Interval]) -> Option<Selection> {
    let m = candidates.len();
    if m == 0 {
        return None;
    }
    // (value, kind): kind −1 = low end, 0 = midpoint, +1 = high end. At equal
    // values lows sort first, so touching intervals count as intersecting.
    let mut points: Vec<(f64, i8)> = Vec::with_capacity(3 * m);
    for c in candidates {
        let d = c.distance.abs();
        points.push((c.offset - d, -1));
        points.push((c.offset, 0));
        points.push((c.offset + d, 1));
    }
    points.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));

    let mut f = 0;
    while 2 * f < m {
        let need = m - f;
        let mut midpoints_outside = 0;
        let mut count = 0usize;
        let mut low = None;
        for &(value, kind) in &points {
            match kind {
                -1 => count += 1,
                1 => count = count.saturating_sub(1),
                _ => {}
            }
            if count >= need {
                low = Some(value);
                break;
            }
            if kind == 0 {
                midpoints_outside += 1;
            }
        }
        count = 0;
        let mut high = None;
        for &(value, kind) in points.iter().rev() {
            match kind {
                1 => count += 1,
                -1 => count = count.saturating_sub(1),
                _ => {}
            }
            if count >= need {
                high = Some(value);
                break;
            }
            if kind == 0 {
                midpoints_outside += 1;
            }
        }
        if let (Some(low), Some(high)) = (low, high) {
            if midpoints_outside <= f && low <= high {
                let truechimers = candidates
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.offset >= low && c.offset <= high)
                    .map(|(i, _)| i)
                    .collect::<Vec<_>>();
                if truechimers.is_empty() {
                    return None;
                }
                return Some(Selection {
                    low,
                    high,
                    allowed_falsetickers: f,
                    truechimers,
                });
            }
        }
        f += 1;
    }
    None
}

/// A truechimer as the cluster and combine algorithms see it.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct Survivor {
    /// θ, seconds.
    pub offset: f64,
    /// Root distance λ, seconds.
    pub distance: f64,
    /// The source's stratum.
    pub stratum: u8,
    /// The source's peer jitter ψ, seconds.
    pub jitter: f64,
}

/// The cluster algorithm (RFC 5905 §11.2.2): repeatedly drop the survivor
/// whose offset is farthest (in RMS) from the others, until what is left is
/// tighter than the best individual jitter or only `min_survivors` remain.
///
/// Returns indices into `candidates`, ordered by stratum·MAXDIST + λ (the
/// head is the preferred system peer).
pub fn cluster(candidates: &[Survivor], min_survivors: usize) -> Vec<usize> {
    let mut list: Vec<usize> = (0..candidates.len()).collect();
    let merit = |i: usize| {
        candidates.get(i).map_or(f64::INFINITY, |c| {
            f64::from(c.stratum) * MAXDIST + c.distance
        })
    };
    list.sort_by(|&a, &b| merit(a).total_cmp(&merit(b)));
    loop {
        if list.len() <= min_survivors.max(1) {
            return list;
        }
        let offsets: Vec<f64> = list
            .iter()
            .filter_map(|&i| candidates.get(i).map(|c| c.offset))
            .collect();
        let n = offsets.len() as f64;
        let mut worst = (0usize, f64::NEG_INFINITY);
        for (pos, &theta) in offsets.iter().enumerate() {
            let psi = (offsets.iter().map(|o| (theta - o).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
            if psi > worst.1 {
                worst = (pos, psi);
            }
        }
        let min_peer_jitter = list
            .iter()
            .filter_map(|&i| candidates.get(i).map(|c| c.jitter))
            .fold(f64::INFINITY, f64::min);
        if worst.1 < min_peer_jitter {
            return list;
        }
        list.remove(worst.0);
    }
}

/// The combined system offset and jitter.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct Combined {
    /// Θ = Σwθ/Σw with w = 1/λ, seconds.
    pub offset: f64,
    /// Ψ = sqrt(ψ_s² + ψ_p²): selection jitter of the survivors about the
    /// system peer combined with the system peer's own jitter, seconds.
    pub jitter: f64,
}

/// The combine algorithm (RFC 5905 §11.2.3) over the survivors `list`
/// (indices into `candidates`, head = system peer).
pub fn combine(candidates: &[Survivor], list: &[usize]) -> Option<Combined> {
    let peer = candidates.get(*list.first()?)?;
    let mut sum_w = 0.0;
    let mut sum_wt = 0.0;
    let mut sum_wj = 0.0;
    for c in list.iter().filter_map(|&i| candidates.get(i)) {
        let w = 1.0 / c.distance.max(1e-9);
        sum_w += w;
        sum_wt += w * c.offset;
        sum_wj += w * (c.offset - peer.offset).powi(2);
    }
    if sum_w <= 0.0 {
        return None;
    }
    let selection_jitter = (sum_wj / sum_w).sqrt();
    Some(Combined {
        offset: sum_wt / sum_w,
        jitter: (selection_jitter.powi(2) + peer.jitter.powi(2)).sqrt(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(offset: f64, distance: f64) -> Interval {
        Interval { offset, distance }
    }

    #[test]
    fn all_agree() {
        let s = select(&[iv(0.0, 0.01), iv(0.001, 0.01), iv(-0.002, 0.01)]).unwrap();
        assert_eq!(s.truechimers, vec![0, 1, 2]);
        assert_eq!(s.allowed_falsetickers, 0);
        assert!(s.low <= -0.002 && s.high >= 0.001);
    }

    #[test]
    fn one_of_three_lying() {
        let s = select(&[iv(0.0, 0.01), iv(0.5, 0.01), iv(0.002, 0.01)]).unwrap();
        assert_eq!(s.truechimers, vec![0, 2]);
        assert_eq!(s.allowed_falsetickers, 1);
    }

    #[test]
    fn two_of_five_lying() {
        let s = select(&[
            iv(0.0, 0.01),
            iv(-1.0, 0.01),
            iv(0.003, 0.01),
            iv(0.2, 0.05),
            iv(-0.001, 0.02),
        ])
        .unwrap();
        assert_eq!(s.truechimers, vec![0, 2, 4]);
    }

    #[test]
    fn no_majority() {
        assert!(select(&[iv(0.0, 0.01), iv(1.0, 0.01)]).is_none());
        assert!(select(&[iv(0.0, 0.01), iv(1.0, 0.01), iv(2.0, 0.01)]).is_none());
        assert!(select(&[iv(0.0, 0.01), iv(0.001, 0.01), iv(1.0, 0.01), iv(2.0, 0.01)]).is_none());
        assert!(select(&[]).is_none());
    }

    #[test]
    fn single_source_is_selected() {
        assert_eq!(select(&[iv(0.3, 0.01)]).unwrap().truechimers, vec![0]);
    }

    fn sv(offset: f64, distance: f64, stratum: u8, jitter: f64) -> Survivor {
        Survivor {
            offset,
            distance,
            stratum,
            jitter,
        }
    }

    #[test]
    fn cluster_orders_by_stratum_then_distance_and_drops_outliers() {
        let c = [
            sv(0.0, 0.02, 2, 1e-4),
            sv(0.0001, 0.01, 1, 1e-4),
            sv(0.0002, 0.015, 1, 1e-4),
            sv(0.008, 0.03, 1, 1e-4),
        ];
        let list = cluster(&c, 3);
        assert_eq!(list.len(), 3);
        assert_eq!(list.first(), Some(&1));
        assert!(!list.contains(&3), "the outlier is dropped: {list:?}");
        // With everyone within their jitter, nothing is dropped.
        let tight = [
            sv(0.0, 0.01, 1, 1e-3),
            sv(1e-5, 0.01, 1, 1e-3),
            sv(2e-5, 0.01, 1, 1e-3),
            sv(3e-5, 0.01, 1, 1e-3),
        ];
        assert_eq!(cluster(&tight, 3).len(), 4);
    }

    #[test]
    fn combine_weights_by_inverse_distance() {
        let c = [sv(0.0, 0.01, 1, 1e-4), sv(0.003, 0.02, 1, 2e-4)];
        let out = combine(&c, &[0, 1]).unwrap();
        // w = 100 and 50: Θ = 50·0.003/150 = 0.001.
        assert!((out.offset - 0.001).abs() < 1e-12);
        let psi_s = ((50.0 * 0.003f64.powi(2)) / 150.0).sqrt();
        assert!((out.jitter - (psi_s.powi(2) + 1e-8).sqrt()).abs() < 1e-12);
        assert!(combine(&c, &[]).is_none());
    }
}
