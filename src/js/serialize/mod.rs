//! `serialize`, `serializeAsync`, `serializeToPayload`, `shutdownSerializationPool`.
//!
//! All read the value into a tape (main thread: the V8 heap can be read nowhere else) and
//! render it with the same core function. The async ones read in steps of about a
//! millisecond, yielding to the event loop between them, render on a render thread while
//! reading goes on (`job.rs`), and hand the text to V8 without copying it (`strings.rs`) or
//! keep it in Rust as UTF-8 (`payload.rs`). Small values are finished in the first step.

pub(crate) mod helpers;
mod job;
mod options;
mod payload;
mod plan;
mod walk;

use napi::bindgen_prelude::*;
use napi::sys::napi_value;
use napi_derive::napi;

use crate::js::raw::{fault_to_napi, Raw, RawValue, R};
use crate::serialize::{render_for, Target};
use plan::Plan;
use walk::Walker;

pub(crate) use payload::SerializedPayload;

/// What `serialize` / `serializeAsync` return.
// Declared for the generated TypeScript types; values are built and read by hand.
#[allow(dead_code)]
#[napi(object)]
pub struct SerializationResult {
    /// The JSON text: exactly `JSON.stringify(value, null, indent)` unless `truncated`.
    pub serialized: String,
    /// True when the text was cut to `maxSize` (it is still valid JSON).
    pub truncated: bool,
    /// Length of `serialized` in UTF-8 bytes.
    pub bytes: f64,
    /// Tokens of `serialized`, when `countTokens` asked for them.
    pub tokens: Option<f64>,
}

/// Serializes `value` exactly as `JSON.stringify(value, null, indent)` does, synchronously.
///
/// Throws `TypeError` (`ERR_CIRCULAR`, `ERR_BIGINT`, `ERR_NOT_SERIALIZABLE`) where
/// JSON.stringify throws or returns undefined, `RangeError` `ERR_MAX_SIZE` when the text
/// exceeds `maxSize` without `truncate`, `RangeError` `ERR_DEPTH` past 4,096 levels of
/// nesting, and `RangeError` `ERR_INVALID_OPTION` for bad options. An exception thrown by a
/// getter, proxy or `toJSON` reaches the caller unchanged.
#[napi(
    catch_unwind,
    ts_args_type = "value: unknown, options?: SerializeOptions",
    ts_return_type = "SerializationResult"
)]
pub fn serialize(env: Env, value: Unknown, options: Option<Unknown>) -> Result<RawValue> {
    let raw = Raw(env.raw());
    let run = || -> R<napi_value> {
        let plan = Plan {
            opts: options::parse(raw, options.map(|o| o.raw()))?,
            target: Target::Js,
        };
        let mut w = Walker::new(value.raw(), plan.opts.read_limit(), false);
        let done = w.step(raw, None);
        let tape = w.into_tape(raw);
        done?;
        let r = render_for(&tape, &plan.render_config(), plan.target)?;
        plan.deliver(raw, plan.complete(r, true))
    };
    run().map(RawValue).map_err(|f| fault_to_napi(&env, f))
}

/// Serializes `value` exactly as `JSON.stringify(value, null, indent)` does, without
/// stalling the event loop: the value is read in steps of at most 0.5 ms with the event loop
/// running between them, and the text is built on a worker thread. Truncation with
/// `maxSize` stops reading once enough is read, so it costs what it keeps.
///
/// Rejects with the same errors `serialize` throws. If the value is changed while it is
/// being read, the result is still valid JSON and reflects each part as it was when read.
#[napi(
    catch_unwind,
    ts_args_type = "value: unknown, options?: SerializeOptions",
    ts_return_type = "Promise<SerializationResult>"
)]
pub fn serialize_async(env: Env, value: Unknown, options: Option<Unknown>) -> Result<RawValue> {
    start_async(&env, value, options, Target::Js)
}

/// Like `serializeAsync`, but the text stays in Rust as UTF-8 (a `SerializedPayload`
/// reporting its `length` and `bytes`) instead of becoming a JS string: for consumers that
/// are not JS, such as the cache writing values to Redis. Low-level.
#[napi(
    catch_unwind,
    ts_args_type = "value: unknown, options?: SerializeOptions",
    ts_return_type = "Promise<SerializedPayload>"
)]
pub fn serialize_to_payload(
    env: Env,
    value: Unknown,
    options: Option<Unknown>,
) -> Result<RawValue> {
    start_async(&env, value, options, Target::Utf8)
}

/// Checks the options and starts an async serialization for `target`; bad options reject.
fn start_async(
    env: &Env,
    value: Unknown,
    options: Option<Unknown>,
    target: Target,
) -> Result<RawValue> {
    match options::parse(Raw(env.raw()), options.map(|o| o.raw())) {
        Ok(opts) => job::start(env, value.raw(), Plan { opts, target }),
        Err(f) => job::rejected(env, f),
    }
}

/// Kept for drop-in compatibility with the TypeScript SerializationHelper, whose
/// serializeAsync ran on a worker pool. This addon has no pool to shut down: the call
/// resolves at once, may be made any number of times, and serialization keeps working after.
#[napi]
pub async fn shutdown_serialization_pool() {}
