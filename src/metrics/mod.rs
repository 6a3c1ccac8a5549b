//! Cache metrics: latency histograms per tier and the Prometheus text exposition.
//!
//! The cache's hot path lives in JS; it batches latency samples into a `Float64Array` and
//! hands them here in one call (see the README, "Which side of the boundary").

pub mod latency;
pub mod prometheus;

pub use latency::{LatencyRecorder, Summary};
pub use prometheus::{render, Family, Kind, Sample, SummaryFamily};
