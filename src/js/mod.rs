//! The binding layer: the only place `#[napi]` appears. Each file converts JS arguments
//! into core types, calls one core function, and maps errors through [`error`].

pub mod error;
mod metrics;
pub mod raw;
mod redis_lock;
mod redis_tier;
mod serialize;
pub mod strings;
