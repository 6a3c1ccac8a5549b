//! The asynchronous machine behind `serializeAsync` and `serializeToPayload`: read in steps
//! under the shared per-turn budget (`helpers.rs`), render on a render thread while reading
//! goes on (`Pipeline`), and settle a promise with the delivered result.

use napi::bindgen_prelude::*;
use napi::sys::napi_value;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::helpers;
use super::plan::Plan;
use super::walk::Walker;
use crate::error::{Code, Error as CoreError};
use crate::js::error::{js_error_value, to_napi, TaskError};
use crate::js::raw::{fault_to_napi, Fault, Raw, RawValue, R};
use crate::serialize::{render_for, Done, Pipeline, RenderedText, Tape};

/// Main-thread time a step may take, from the milliseconds the scheduler (`helpers.rs`)
/// grants it (at most 0.5 ms per event-loop turn for all serializations together).
fn budget(ms: f64) -> Duration {
    Duration::from_secs_f64(ms.clamp(0.05, 1.0) / 1e3)
}

/// Reading within a step is cut into pieces this long, each handed to the render thread.
const SUB_STEP: Duration = Duration::from_micros(250);

/// Tapes up to this many units are rendered on the main thread (a thread hop costs more).
const INLINE_UNITS: usize = 64 * 1024;

/// Renders a whole tape on the libuv pool: only when no render thread could be started.
struct RenderTask {
    tape: Option<Tape>,
    plan: Plan,
    error: TaskError,
}

impl Task for RenderTask {
    type Output = RenderedText;
    type JsValue = RawValue;

    fn compute(&mut self) -> Result<RenderedText> {
        let tape = self.tape.take();
        let plan = self.plan;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            match tape {
                Some(tape) => render_for(&tape, &plan.render_config(), plan.target),
                None => Err(CoreError::new(Code::Internal, "render task ran twice")),
            }
            .map(|r| plan.complete(r, false))
        }))
        .unwrap_or_else(|_| Err(CoreError::new(Code::Internal, "rendering panicked")));
        self.error.keep(r)
    }

    fn resolve(&mut self, env: Env, output: RenderedText) -> Result<RawValue> {
        deliver(&env, &self.plan, output)
    }

    fn reject(&mut self, env: Env, err: Error) -> Result<RawValue> {
        self.error.reject(&env, err)
    }
}

/// Hands a text rendered off the main thread to JS (the resolved value of its promise).
fn deliver(env: &Env, plan: &Plan, text: RenderedText) -> Result<RawValue> {
    plan.deliver(Raw(env.raw()), text)
        .map(RawValue)
        .map_err(|f| fault_to_napi(env, f))
}

fn internal(e: Error) -> Fault {
    Fault::Core(CoreError::new(Code::Internal, e.reason))
}

/// Queues the render task; returns its promise.
fn spawn(env: &Env, tape: Tape, plan: Plan) -> R<napi_value> {
    let work = env
        .spawn(RenderTask {
            tape: Some(tape),
            plan,
            error: TaskError::default(),
        })
        .map_err(internal)?;
    // SAFETY: the promise belongs to `env`, the environment of the current callback.
    unsafe { ToNapiValue::to_napi_value(env.raw(), work.promise_object()) }.map_err(internal)
}

/// What settles a promise on the main thread, called from a render thread.
type Settle = Box<dyn FnOnce(Env) -> Result<RawValue>>;

/// Finishes the text on a render thread (`pipeline`: the one that rendered the earlier
/// segments; `None`: a new job, `last` then being the whole tape), which settles the returned
/// promise itself through a threadsafe function. No libuv worker is woken to wait for it:
/// waking one, at the event loop's own priority, let the scheduler run it on the loop's CPU
/// ahead of the loop (notes/perf-session3.md). Uses the libuv pool only when no render
/// thread could be started.
fn render_off_thread(
    env: &Env,
    pipeline: Option<Pipeline>,
    last: Tape,
    plan: Plan,
) -> R<napi_value> {
    let Some(p) = pipeline.or_else(|| Pipeline::start(plan.render_config(), plan.target)) else {
        return spawn(env, last, plan);
    };
    let (deferred, promise) = env
        .create_deferred::<RawValue, Settle>()
        .map_err(internal)?;
    p.finish_then(
        last,
        Done::new(move |r| {
            let r = r.map(|text| plan.complete(text, false));
            deferred.resolve(Box::new(move |env: Env| match r {
                Ok(text) => deliver(&env, &plan, text),
                Err(e) => Err(to_napi(&env, &e)),
            }));
        }),
    );
    Ok(promise.raw())
}

/// Renders a finished tape: inline when small, else on a render thread. Returns a promise.
fn finish(env: &Env, tape: Tape, plan: Plan) -> R<napi_value> {
    let raw = Raw(env.raw());
    // Counting tokens stays off the main thread even for small texts (a table's first use
    // loads it).
    if tape.units.len() + tape.tokens.len() <= INLINE_UNITS && plan.opts.count_tokens.is_none() {
        let r = render_for(&tape, &plan.render_config(), plan.target)?;
        return raw.settled(true, plan.deliver(raw, r)?);
    }
    render_off_thread(env, None, tape, plan)
}

/// An async serialization between steps.
struct AsyncJob {
    walker: Walker,
    plan: Plan,
    /// The render job, started once the value proves large (None: render at the end).
    pipeline: Option<Pipeline>,
}

impl AsyncJob {
    /// Sends what was read so far to the render thread (starting the render job on first
    /// use), which renders it while reading goes on.
    fn hand_over(&mut self) {
        if self.pipeline.is_none() {
            self.pipeline = Pipeline::start(self.plan.render_config(), self.plan.target);
        }
        if let Some(p) = &self.pipeline {
            p.send(self.walker.take_segment());
        }
    }
}

type Job = Rc<RefCell<Option<AsyncJob>>>;

/// Starts an async serialization of `value`; returns its promise (rejected, not thrown, on
/// any failure).
pub fn start(env: &Env, value: napi_value, plan: Plan) -> Result<RawValue> {
    let raw = Raw(env.raw());
    let begin = || -> R<napi_value> {
        let mut w = Walker::new(value, plan.opts.read_limit(), true);
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
            Ok(true) => finish(env, w.into_tape(raw), plan),
            Ok(false) => {
                // Rendering starts now, on what the first step read, while reading goes on.
                let mut j = AsyncJob {
                    walker: w,
                    plan,
                    pipeline: None,
                };
                j.hand_over();
                let job: Job = Rc::new(RefCell::new(Some(j)));
                let step = env
                    .create_function_from_closure::<f64, RawValue, _>("serializeStep", move |ctx| {
                        let left = ctx.get::<f64>(0).unwrap_or(1.0);
                        let env = &*ctx.env;
                        // No panic may cross into Node: a bug here becomes ERR_INTERNAL.
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            step_once(env, &job, left)
                        }))
                        .unwrap_or_else(|_| {
                            Err(Fault::Core(CoreError::new(
                                Code::Internal,
                                "serialization step panicked",
                            )))
                        })
                        .map_err(|f| fault_to_napi(env, f))
                    })
                    .map_err(internal)?;
                raw.call(h.recv, h.drive, &[step.raw()])
            }
        }
    };
    match begin() {
        Ok(p) => Ok(RawValue(p)),
        Err(f) => rejected(env, f),
    }
}

/// A promise rejected with the fault's error (the pending JS exception, or the core error).
pub fn rejected(env: &Env, f: Fault) -> Result<RawValue> {
    let raw = Raw(env.raw());
    match f {
        Fault::Js => {
            let e = raw.take_exception().map_err(|f| fault_to_napi(env, f))?;
            raw.settled(false, e)
                .map(RawValue)
                .map_err(|f| fault_to_napi(env, f))
        }
        Fault::Core(e) => {
            let v = js_error_value(env, &e)?;
            raw.settled(false, v.raw())
                .map(RawValue)
                .map_err(|f| fault_to_napi(env, f))
        }
    }
}

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
    let deadline = Instant::now() + budget(left_ms);
    // Read in sub-steps, handing each one's segment to the render thread right away, so that
    // rendering keeps pace within the step and little is left to render after the last one.
    let done = loop {
        if j.pipeline.as_ref().is_some_and(|p| p.stopped()) {
            j.walker.stop_reading();
        }
        let until = (Instant::now() + SUB_STEP).min(deadline);
        match j.walker.step(raw, Some(until)) {
            Ok(false) => {
                j.hand_over();
                if Instant::now() >= deadline {
                    break Ok(false);
                }
            }
            other => break other,
        }
    };
    match done {
        Ok(false) => Ok(RawValue(raw.undefined()?)),
        Ok(true) => match slot.take() {
            Some(AsyncJob {
                walker,
                plan,
                pipeline,
            }) => {
                let tape = walker.into_tape(raw);
                match pipeline {
                    Some(p) => render_off_thread(env, Some(p), tape, plan).map(RawValue),
                    None => finish(env, tape, plan).map(RawValue),
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
