//! The conversation cache's native parts (pure core, no napi).
//!
//! - [`l2`]: the Redis tier — connection management, the value envelope, get / mget / set /
//!   del with a per-call timeout, statistics.
//! - [`breaker`]: the circuit breaker state machine the tier consults before each call.
//! - [`lock`]: coherence across instances: the distributed lock and fenced write behind
//!   `update`, the lease behind a distributed single flight of `getOrLoad`.
//! - [`redact`]: keeps credentials and full URLs out of every message the tier produces.

pub mod breaker;
pub mod l2;
pub mod lock;
pub mod redact;
