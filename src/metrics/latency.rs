//! Latency histograms, one per tier (HDR histograms: 3 significant digits from 1 ns to an hour).
//!
//! Samples arrive in batches of milliseconds (`f64`, as `performance.now()` differences are in
//! JS); they are kept in nanoseconds so that sub-microsecond L1 hits keep their precision.

use hdrhistogram::Histogram;

use crate::error::{Code, Error, Result};

/// Longest latency kept as itself: one hour. Longer samples count as one hour.
const MAX_NS: u64 = 3_600_000_000_000;
const SIGNIFICANT_DIGITS: u8 = 3;

/// Count, mean and percentiles of one tier, in milliseconds (0 when nothing was recorded).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Summary {
    pub count: u64,
    pub sum_ms: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

struct Tier {
    hist: Histogram<u64>,
    sum_ns: f64,
}

/// One HDR histogram per tier, tiers numbered in the order they were named.
pub struct LatencyRecorder {
    tiers: Vec<Tier>,
}

impl LatencyRecorder {
    /// A recorder for `tiers` tiers (at least one).
    pub fn new(tiers: usize) -> Result<Self> {
        if tiers == 0 {
            return Err(Error::new(
                Code::InvalidArgument,
                "a latency recorder needs at least one tier",
            ));
        }
        let mut out = Vec::with_capacity(tiers);
        for _ in 0..tiers {
            // Auto-resizing: memory grows with the largest value seen, not with the bound.
            let hist = Histogram::new(SIGNIFICANT_DIGITS).map_err(|e| {
                Error::new(
                    Code::Internal,
                    format!("cannot create a latency histogram: {e}"),
                )
            })?;
            out.push(Tier { hist, sum_ns: 0.0 });
        }
        Ok(LatencyRecorder { tiers: out })
    }

    /// How many tiers this recorder has.
    pub fn tiers(&self) -> usize {
        self.tiers.len()
    }

    fn tier_mut(&mut self, tier: usize) -> Result<&mut Tier> {
        let n = self.tiers.len();
        self.tiers.get_mut(tier).ok_or_else(|| {
            Error::new(
                Code::InvalidArgument,
                format!("tier {tier} out of range 0..{n}"),
            )
        })
    }

    /// Records latency samples in milliseconds. Negative or NaN samples (a clock that went
    /// backwards) count as 0; samples above an hour count as an hour.
    pub fn record_ms(&mut self, tier: usize, samples: &[f64]) -> Result<()> {
        let t = self.tier_mut(tier)?;
        for &ms in samples {
            let ns = to_ns(ms);
            t.sum_ns += ns as f64;
            // `record` grows the histogram (auto-resize) up to MAX_NS; should growing fail,
            // the sample still counts, at the largest value the histogram tracks.
            if t.hist.record(ns).is_err() {
                t.hist.saturating_record(ns);
            }
        }
        Ok(())
    }

    /// Count, mean and percentiles of one tier.
    pub fn summary(&self, tier: usize) -> Result<Summary> {
        let n = self.tiers.len();
        let t = self.tiers.get(tier).ok_or_else(|| {
            Error::new(
                Code::InvalidArgument,
                format!("tier {tier} out of range 0..{n}"),
            )
        })?;
        let h = &t.hist;
        let count = h.len();
        if count == 0 {
            return Ok(Summary::default());
        }
        let ms = |ns: u64| ns as f64 / 1e6;
        Ok(Summary {
            count,
            sum_ms: t.sum_ns / 1e6,
            mean_ms: t.sum_ns / 1e6 / count as f64,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        })
    }

    /// Forgets every sample.
    pub fn reset(&mut self) {
        for t in &mut self.tiers {
            t.hist.reset();
            t.sum_ns = 0.0;
        }
    }
}

fn to_ns(ms: f64) -> u64 {
    if ms.is_nan() || ms <= 0.0 {
        return 0;
    }
    let ns = (ms * 1e6).round();
    if ns >= MAX_NS as f64 {
        MAX_NS
    } else {
        ns as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut r = LatencyRecorder::new(2).unwrap();
        // 1..=1000 microseconds.
        let samples: Vec<f64> = (1..=1000).map(|us| us as f64 / 1000.0).collect();
        r.record_ms(1, &samples).unwrap();
        let s = r.summary(1).unwrap();
        assert_eq!(s.count, 1000);
        assert!((s.p50_ms - 0.5).abs() < 0.001, "{s:?}");
        assert!((s.p95_ms - 0.95).abs() < 0.001, "{s:?}");
        assert!((s.p99_ms - 0.99).abs() < 0.001, "{s:?}");
        assert!((s.max_ms - 1.0).abs() < 0.001, "{s:?}");
        assert!((s.mean_ms - 0.5005).abs() < 1e-9, "{s:?}");
        assert_eq!(r.summary(0).unwrap(), Summary::default());
    }

    #[test]
    fn sub_microsecond_samples_keep_their_precision() {
        let mut r = LatencyRecorder::new(1).unwrap();
        r.record_ms(0, &[0.000_123; 10]).unwrap();
        let s = r.summary(0).unwrap();
        assert!((s.p50_ms - 0.000_123).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn odd_samples_are_clamped_not_rejected() {
        let mut r = LatencyRecorder::new(1).unwrap();
        r.record_ms(0, &[f64::NAN, -5.0, f64::INFINITY, 1e12])
            .unwrap();
        let s = r.summary(0).unwrap();
        assert_eq!(s.count, 4);
        assert!(
            (s.max_ms - 3_600_000.0).abs() / 3_600_000.0 < 0.001,
            "{s:?}"
        );
    }

    #[test]
    fn bad_tier_is_an_error_and_reset_forgets() {
        let mut r = LatencyRecorder::new(1).unwrap();
        assert_eq!(
            r.record_ms(1, &[1.0]).unwrap_err().code,
            Code::InvalidArgument
        );
        assert!(r.summary(7).is_err());
        assert!(LatencyRecorder::new(0).is_err());
        r.record_ms(0, &[1.0]).unwrap();
        r.reset();
        assert_eq!(r.summary(0).unwrap().count, 0);
    }
}
