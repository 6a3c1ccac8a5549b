//! `CacheMetrics`: the native half of ConversationCache's metrics. The cache counts hits in
//! JS and writes latency samples into a `Float64Array`; it hands a full batch here in one
//! call, so the per-hit cost stays in JS (see the README, "Which side of the boundary").

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::error::to_napi;
use crate::error::{Code, Error as CoreError};
use crate::metrics::{render, Family, Kind, LatencyRecorder, Sample, SummaryFamily};

/// Latency histograms (HDR, 3 significant digits) per cache tier and the Prometheus text
/// exposition of a cache. Used by `ConversationCache`; not meant to be used on its own.
#[napi]
pub struct CacheMetrics {
    recorder: LatencyRecorder,
    tiers: Vec<String>,
}

/// Latencies of one tier, in milliseconds (all 0 when nothing was recorded).
#[napi(object)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: f64,
    /// Sum of the samples.
    pub sum: f64,
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// One label of a metric sample.
#[napi(object)]
pub struct MetricLabel {
    pub name: String,
    pub value: String,
}

/// One sample line of a counter or gauge.
#[napi(object)]
pub struct MetricSample {
    pub labels: Option<Vec<MetricLabel>>,
    pub value: f64,
}

/// A counter or gauge family to render.
#[napi(object)]
pub struct MetricFamily {
    pub name: String,
    pub help: String,
    /// `'counter'` or `'gauge'`.
    #[napi(js_name = "type")]
    pub kind: String,
    pub samples: Vec<MetricSample>,
}

#[napi]
impl CacheMetrics {
    /// One latency histogram per tier name, e.g. `['l1', 'l2', 'loader']`.
    #[napi(constructor)]
    pub fn new(env: Env, tiers: Vec<String>) -> Result<Self> {
        let recorder = LatencyRecorder::new(tiers.len()).map_err(|e| to_napi(&env, &e))?;
        Ok(CacheMetrics { recorder, tiers })
    }

    /// Records the first `count` samples (milliseconds) of `samples` for tier number `tier`.
    #[napi]
    pub fn record(
        &mut self,
        env: Env,
        tier: u32,
        samples: Float64ArraySlice,
        count: u32,
    ) -> Result<()> {
        let all: &[f64] = &samples;
        let n = (count as usize).min(all.len());
        self.recorder
            .record_ms(tier as usize, &all[..n])
            .map_err(|e| to_napi(&env, &e))
    }

    /// Count, sum, mean and percentiles of tier number `tier`, in milliseconds.
    #[napi]
    pub fn summary(&self, env: Env, tier: u32) -> Result<LatencySummary> {
        let s = self
            .recorder
            .summary(tier as usize)
            .map_err(|e| to_napi(&env, &e))?;
        Ok(LatencySummary {
            count: s.count as f64,
            sum: s.sum_ms,
            mean: s.mean_ms,
            p50: s.p50_ms,
            p95: s.p95_ms,
            p99: s.p99_ms,
            max: s.max_ms,
        })
    }

    /// Prometheus text: the given counter/gauge families, then a summary family
    /// `latencyName` (seconds) with one `tierLabel="<tier>"` set of lines per tier.
    #[napi]
    pub fn prometheus(
        &self,
        env: Env,
        families: Vec<MetricFamily>,
        latency_name: String,
        latency_help: String,
        tier_label: String,
    ) -> Result<String> {
        let fams = families
            .into_iter()
            .map(to_family)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| to_napi(&env, &e))?;
        let mut samples = Vec::with_capacity(self.tiers.len());
        for (i, name) in self.tiers.iter().enumerate() {
            let s = self.recorder.summary(i).map_err(|e| to_napi(&env, &e))?;
            samples.push((vec![(tier_label.clone(), name.clone())], s));
        }
        let summary = SummaryFamily {
            name: latency_name,
            help: latency_help,
            samples,
        };
        render(&fams, &[summary]).map_err(|e| to_napi(&env, &e))
    }

    /// Forgets every latency sample.
    #[napi]
    pub fn reset(&mut self) {
        self.recorder.reset();
    }
}

fn to_family(f: MetricFamily) -> std::result::Result<Family, CoreError> {
    let kind = match f.kind.as_str() {
        "counter" => Kind::Counter,
        "gauge" => Kind::Gauge,
        other => {
            return Err(CoreError::new(
                Code::InvalidArgument,
                format!(
                    "metric family `{}` has type `{other}`; expected counter or gauge",
                    f.name
                ),
            ))
        }
    };
    let samples = f
        .samples
        .into_iter()
        .map(|s| Sample {
            labels: s
                .labels
                .unwrap_or_default()
                .into_iter()
                .map(|l| (l.name, l.value))
                .collect(),
            value: s.value,
        })
        .collect();
    Ok(Family {
        name: f.name,
        help: f.help,
        kind,
        samples,
    })
}
