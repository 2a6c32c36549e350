//! Percentiles of samples.

use serde::Serialize;

/// The spread of a set of samples, in the unit the caller names.
#[derive(Serialize, Clone, Copy, Debug, Default, PartialEq)]
pub struct Spread {
    pub count: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// The nearest-rank percentiles of `samples` (sorted in place); all zero when there are none.
pub fn spread(samples: &mut [f64]) -> Spread {
    if samples.is_empty() {
        return Spread::default();
    }
    samples.sort_by(f64::total_cmp);
    let at = |p: f64| {
        let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
        samples[rank.clamp(1, samples.len()) - 1]
    };
    Spread { count: samples.len(), p50: at(50.0), p90: at(90.0), p99: at(99.0), max: samples[samples.len() - 1] }
}

/// The median of `samples` (sorted in place), or 0.
pub fn median(samples: &mut [f64]) -> f64 {
    spread(samples).p50
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let s = spread(&mut v);
        assert_eq!((s.count, s.p50, s.p90, s.p99, s.max), (100, 50.0, 90.0, 99.0, 100.0));
        let mut one = [3.5];
        assert_eq!(spread(&mut one).p99, 3.5);
        assert_eq!(spread(&mut []), Spread::default());
        let mut three = [30.0, 10.0, 20.0];
        assert_eq!(median(&mut three), 20.0);
    }
}
