//! The Redis tier (L2) of the conversation cache.
//!
//! [`RedisL2`] answers `get` / `mget` / `set` / `del` within `timeoutMs` whatever Redis does:
//! slow, down, refusing, frozen or holding garbage is a miss / no-op, counted in
//! [`StatsSnapshot`], never an error to the caller. Only caller mistakes (a bad key, a call
//! after `close`) are errors. Payloads are bytes of UTF-8 JSON, so a Rust producer (the
//! serializer) can write straight into Redis without a JS string.

mod bus;
pub mod config;
pub mod conn;
pub mod envelope;
pub mod keys;
pub mod message;
pub(crate) mod reads;
pub mod scripts;
pub mod seeds;
pub mod stats;
mod subscriber;
mod tags;
pub mod text;
mod tier;
mod writes;

pub use config::{L2Config, RawL2Options};
pub use envelope::Compression;
pub use keys::Keys;
pub use message::{Kind, Message};
pub use reads::Versioned;
pub use stats::StatsSnapshot;
pub use subscriber::{BusEvent, Sink};
pub(crate) use tier::Failure;
pub use tier::{Health, RedisL2};
pub use writes::{Fill, Invalidated, Tags};
