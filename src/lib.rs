//! agent_core_native: a pure Rust core (no napi imports) under a thin napi binding layer.
//!
//! - [`serialize`]: JSON rendering exactly like `JSON.stringify`, truncation that keeps valid
//!   JSON, indentation; works on a [`serialize::Tape`] of values read from JS.
//! - [`cache`]: the conversation cache's native parts: the Redis tier, the circuit breaker,
//!   credential redaction.
//! - [`metrics`]: latency histograms per tier and Prometheus text for the cache.
//! - [`tokens`]: exact token counts (OpenAI encodings), model -> encoding, chat overhead.
//! - [`error`]: the one error type, with stable `ERR_*` codes.
//! - [`background`]: low-priority threads for long CPU work the event loop waits on.
//! - `js` (feature `node`): the only place `#[napi]` appears.

pub mod background;
pub mod buffer_pool;
pub mod cache;
pub mod error;
pub mod metrics;
pub mod serialize;
pub mod tokens;

#[cfg(all(feature = "node", not(test)))]
mod js;
