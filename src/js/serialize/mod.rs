//! `serialize`, `serializeAsync`, `shutdownSerializationPool`.
//!
//! Both functions read the value into a tape (main thread: the V8 heap can be read nowhere
//! else) and render it with the same core function. `serializeAsync` reads in steps of about
//! a millisecond, yielding to the event loop between them (`setImmediate`), then renders on
//! a libuv worker thread and hands the text to V8 without copying it (see `strings.rs`).
//! Small values are finished in the first step, with no thread hop.

mod helpers;
mod options;
mod walk;

use napi::bindgen_prelude::*;
use napi::sys::napi_value;
use napi_derive::napi;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::error::Code;
use crate::error::Error as CoreError;
use crate::js::error::to_napi;
use crate::js::raw::{fault_to_napi, Fault, Raw, RawValue, R};
use crate::js::strings::{latin1_string, utf16_string};
use crate::serialize::{
    render_text, Pipeline, RenderConfig, RenderedText, SerializeOptions as Core, Tape, Text,
};

use walk::Walker;

/// Main-thread time a step may take, from the milliseconds the scheduler (`helpers.rs`)
/// grants it (at most 1 ms per event-loop turn for all serializations together).
fn budget(ms: f64) -> Duration {
    Duration::from_secs_f64(ms.clamp(0.05, 1.0) / 1e3)
}
/// Tapes up to this many units are rendered on the main thread (a thread hop costs more).
const INLINE_UNITS: usize = 64 * 1024;

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
}

fn result_object(raw: Raw, r: RenderedText) -> R<napi_value> {
    let s = match r.text {
        Text::Latin1(b) => latin1_string(raw.0, b)?,
        Text::Utf16(u) => utf16_string(raw.0, u)?,
    };
    let o = raw.object()?;
    raw.set(o, c"serialized", s)?;
    raw.set(o, c"truncated", raw.boolean(r.truncated)?)?;
    raw.set(o, c"bytes", raw.number(r.utf8_len as f64)?)?;
    Ok(o)
}

/// What the worker thread turns into text.
enum Input {
    /// A whole tape, rendered at once.
    Whole(Tape, RenderConfig),
    /// The last segment of a tape whose earlier segments a render thread already took.
    Piped(Pipeline, Tape),
}

/// Finishes the text off the main thread.
pub struct RenderTask {
    input: Option<Input>,
    error: Option<CoreError>,
}

impl Task for RenderTask {
    type Output = RenderedText;
    type JsValue = RawValue;

    fn compute(&mut self) -> Result<RenderedText> {
        let input = self.input.take();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match input {
            Some(Input::Whole(tape, cfg)) => render_text(&tape, &cfg),
            Some(Input::Piped(p, last)) => p.finish(last),
            None => Err(CoreError::new(Code::Internal, "render task ran twice")),
        }))
        .unwrap_or_else(|_| Err(CoreError::new(Code::Internal, "rendering panicked")));
        r.map_err(|e| {
            let msg = e.message.clone();
            self.error = Some(e);
            Error::new(Status::GenericFailure, msg)
        })
    }

    fn resolve(&mut self, env: Env, output: RenderedText) -> Result<RawValue> {
        result_object(Raw(env.raw()), output)
            .map(RawValue)
            .map_err(|f| fault_to_napi(&env, f))
    }

    fn reject(&mut self, env: Env, err: Error) -> Result<RawValue> {
        match self.error.take() {
            Some(e) => Err(to_napi(&env, &e)),
            None => Err(err),
        }
    }
}

fn internal(e: Error) -> Fault {
    Fault::Core(CoreError::new(Code::Internal, e.reason))
}

/// Queues the render task; returns its promise.
fn spawn(env: &Env, input: Input) -> R<napi_value> {
    let work = env
        .spawn(RenderTask {
            input: Some(input),
            error: None,
        })
        .map_err(internal)?;
    // SAFETY: the promise belongs to `env`, the environment of the current callback.
    unsafe { ToNapiValue::to_napi_value(env.raw(), work.promise_object()) }.map_err(internal)
}

/// Renders a finished tape: inline when small, else on the libuv pool. Returns a promise.
fn finish(env: &Env, tape: Tape, opts: Core) -> R<napi_value> {
    let raw = Raw(env.raw());
    let cfg = opts.render_config();
    if tape.units.len() + tape.tokens.len() <= INLINE_UNITS {
        return match render_text(&tape, &cfg) {
            Ok(r) => raw.settled(true, result_object(raw, r)?),
            Err(e) => Err(Fault::Core(e)),
        };
    }
    spawn(env, Input::Whole(tape, cfg))
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
        let opts = options::parse(raw, options.map(|o| o.raw()))?;
        let mut w = Walker::new(value.raw(), opts.read_limit(), false);
        let done = w.step(raw, None);
        let tape = w.into_tape(raw);
        done?;
        let r = render_text(&tape, &opts.render_config())?;
        result_object(raw, r)
    };
    run().map(RawValue).map_err(|f| fault_to_napi(&env, f))
}

/// Serializes `value` exactly as `JSON.stringify(value, null, indent)` does, without
/// stalling the event loop: the value is read in steps of about 1 ms with the event loop
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
    let raw = Raw(env.raw());
    let start = || -> R<napi_value> {
        let opts = options::parse(raw, options.map(|o| o.raw()))?;
        let mut w = Walker::new(value.raw(), opts.read_limit(), true);
        // The first step runs now, within what this event-loop turn has left.
        let h = helpers::helpers(raw)?;
        let left = raw.f64(raw.call(h.recv, h.first_budget, &[])?)?;
        let started = Instant::now();
        let first = if left > 0.0 {
            w.step(raw, Some(started + budget(left)))
        } else {
            // No time left in this turn: only hold on to the value for later steps.
            w.keep(raw).map(|_| false)
        };
        let used = started.elapsed().as_secs_f64() * 1e3;
        raw.call(h.recv, h.spent, &[raw.number(used)?])?;
        match first {
            Err(f) => {
                w.release(raw);
                Err(f)
            }
            Ok(true) => finish(&env, w.into_tape(raw), opts),
            Ok(false) => {
                let job = Rc::new(RefCell::new(Some(AsyncJob {
                    walker: w,
                    opts,
                    pipeline: None,
                })));
                let step = env
                    .create_function_from_closure::<f64, RawValue, _>("serializeStep", move |ctx| {
                        let left = ctx.get::<f64>(0).unwrap_or(1.0);
                        let env = &*ctx.env;
                        // No panic may cross into Node: a bug here becomes ERR_INTERNAL.
                        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            step_once(env, &job, left)
                        }))
                        .unwrap_or_else(|_| {
                            Err(Fault::Core(CoreError::new(
                                Code::Internal,
                                "serializeAsync step panicked",
                            )))
                        });
                        r.map_err(|f| fault_to_napi(env, f))
                    })
                    .map_err(internal)?;
                raw.call(h.recv, h.drive, &[step.raw()])
            }
        }
    };
    match start() {
        Ok(p) => Ok(RawValue(p)),
        Err(Fault::Js) => {
            let e = raw.take_exception().map_err(|f| fault_to_napi(&env, f))?;
            raw.settled(false, e)
                .map(RawValue)
                .map_err(|f| fault_to_napi(&env, f))
        }
        Err(Fault::Core(e)) => {
            let v = crate::js::error::js_error_value(&env, &e)?;
            raw.settled(false, v.raw())
                .map(RawValue)
                .map_err(|f| fault_to_napi(&env, f))
        }
    }
}

/// An async serialization between steps.
struct AsyncJob {
    walker: Walker,
    opts: Core,
    /// The render thread, started once the value proves large (None: render at the end).
    pipeline: Option<Pipeline>,
}

type Job = Rc<RefCell<Option<AsyncJob>>>;

/// One step of an async walk: `undefined` while unfinished, then the render promise.
fn step_once(env: &Env, job: &Job, left_ms: f64) -> R<RawValue> {
    let raw = Raw(env.raw());
    let mut slot = job.borrow_mut();
    let Some(j) = slot.as_mut() else {
        return Err(Fault::Core(CoreError::new(
            Code::Internal,
            "serialization step called after the walk ended",
        )));
    };
    if j.pipeline.as_ref().is_some_and(|p| p.stopped()) {
        j.walker.stop_reading();
    }
    match j.walker.step(raw, Some(Instant::now() + budget(left_ms))) {
        Ok(false) => {
            // Render what was read so far on a render thread while reading goes on.
            if j.pipeline.is_none() {
                j.pipeline = Pipeline::start(j.opts.render_config());
            }
            if let Some(p) = &j.pipeline {
                p.send(j.walker.take_segment());
            }
            Ok(RawValue(raw.undefined()?))
        }
        Ok(true) => match slot.take() {
            Some(AsyncJob {
                walker,
                opts,
                pipeline,
            }) => {
                let tape = walker.into_tape(raw);
                match pipeline {
                    Some(p) => spawn(env, Input::Piped(p, tape)).map(RawValue),
                    None => finish(env, tape, opts).map(RawValue),
                }
            }
            None => Ok(RawValue(raw.undefined()?)),
        },
        Err(f) => {
            if let Some(mut j) = slot.take() {
                j.walker.release(raw);
            }
            Err(f)
        }
    }
}

/// Kept for drop-in compatibility with the TypeScript SerializationHelper, whose
/// serializeAsync ran on a worker pool. This addon has no pool to shut down: the call
/// resolves at once, may be made any number of times, and serialization keeps working after.
#[napi]
pub async fn shutdown_serialization_pool() {}
