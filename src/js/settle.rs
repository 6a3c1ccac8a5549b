//! Promises of the Redis tier, settled in batches: one threadsafe function per JS
//! environment carries every finished call back to the main thread.
//!
//! napi-rs's own bridge (`Env::spawn_future_with_callback`) creates a threadsafe function, an
//! env cleanup hook and a second watcher task for EACH call, and wakes the event loop once per
//! call. With 50 reads in flight that was a large part of the main thread's time and of the
//! tokio threads' (notes/perf-session5.md). Here a call costs one promise and one task; the
//! first call that finishes while the main thread has not yet looked wakes it once, and that
//! wake-up settles every call finished by then.
//!
//! Node is kept alive only while calls are in flight (the threadsafe function is referenced
//! from the first pending call to the last), so an idle tier never holds the process open.
//! A task that panics or is dropped unfinished (runtime shut down) still settles: its guard
//! rejects the promise with `ERR_INTERNAL`.

use std::cell::RefCell;
use std::ffi::c_void;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use napi::bindgen_prelude::*;
use napi::sys::{self, napi_env, napi_value};

use crate::error::{Code, Error as CoreError};
use crate::js::error::to_napi;
use crate::js::raw::Raw;

/// Turns a finished call's outcome into the JS value its promise settles with.
type Settle = Box<dyn FnOnce(&Env) -> Result<napi_value> + Send>;

/// A promise's resolver handle.
struct Deferred(sys::napi_deferred);

// SAFETY: a `napi_deferred` is an opaque handle that is only handed back to Node-API on the JS
// thread that created it (`drain`); other threads merely carry it.
unsafe impl Send for Deferred {}

struct Finished {
    deferred: Deferred,
    settle: Settle,
}

#[derive(Default)]
struct Queue {
    finished: Vec<Finished>,
    /// A call of the threadsafe function is on its way to the main thread.
    scheduled: bool,
    /// The environment is tearing down (Node finalized the threadsafe function): nothing may
    /// be sent any more.
    closed: bool,
}

/// The threadsafe function of one environment.
struct Tsfn(sys::napi_threadsafe_function);

// SAFETY: Node-API allows `napi_call_threadsafe_function` from any thread. The handle is only
// used while `Queue::closed` is false, checked under the queue's lock, and the finalizer sets
// it under that same lock before Node frees the function.
unsafe impl Send for Tsfn {}
// SAFETY: as above; the handle itself is never mutated after creation.
unsafe impl Sync for Tsfn {}

struct Settler {
    /// Set once, right after Node created it.
    tsfn: OnceLock<Tsfn>,
    queue: Mutex<Queue>,
    /// Calls whose promise is not settled yet (touched on the main thread only).
    pending: AtomicUsize,
}

impl Settler {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn handle(&self) -> sys::napi_threadsafe_function {
        self.tsfn.get().map_or(ptr::null_mut(), |t| t.0)
    }

    /// Queues a finished call (any thread); wakes the main thread unless a wake is on its way.
    fn send(&self, done: Finished) {
        let mut q = self.queue();
        if q.closed {
            return; // the environment is gone: nobody is left to settle for
        }
        q.finished.push(done);
        if q.scheduled {
            return;
        }
        // SAFETY: `closed` is false under the lock, so Node has not finalized the function
        // (and a settler is only handed out once its handle is set).
        let status = unsafe {
            sys::napi_call_threadsafe_function(
                self.handle(),
                ptr::null_mut(),
                sys::ThreadsafeFunctionCallMode::nonblocking,
            )
        };
        if status == sys::Status::napi_ok {
            q.scheduled = true;
        } else {
            // Only `napi_closing` is possible with an unbounded queue: the env is tearing down.
            q.closed = true;
            q.finished.clear();
        }
    }
}

thread_local! {
    /// The settler of the environment running on this thread (Node runs one environment per
    /// thread: the main one or a worker's).
    static SETTLER: RefCell<Option<Arc<Settler>>> = const { RefCell::new(None) };
}

fn internal(msg: impl Into<String>) -> napi::Error {
    napi::Error::new(Status::GenericFailure, msg.into())
}

/// This environment's settler, created on first use.
fn settler(env: &Env) -> Result<Arc<Settler>> {
    if let Some(s) = SETTLER.with(|s| s.borrow().clone()) {
        return Ok(s);
    }
    let name = env.create_string("agent-core-native:redis")?;
    let s = Arc::new(Settler {
        tsfn: OnceLock::new(),
        queue: Mutex::new(Queue::default()),
        pending: AtomicUsize::new(0),
    });
    // The threadsafe function's context: one strong count, given back in `finalize`.
    let context = Arc::into_raw(s.clone()).cast_mut().cast::<c_void>();
    let mut tsfn = ptr::null_mut();
    // SAFETY: live environment of this callback; `name` is a JS string of it; no JS function
    // (the call_js callback does the work); `context` stays valid until `finalize` takes it
    // back, which Node does exactly once, after the last `drain`.
    let status = unsafe {
        sys::napi_create_threadsafe_function(
            env.raw(),
            ptr::null_mut(),
            ptr::null_mut(),
            name.raw(),
            0,
            1,
            context,
            Some(finalize),
            context,
            Some(drain),
            &mut tsfn,
        )
    };
    if status != sys::Status::napi_ok {
        // SAFETY: creation failed, so Node holds no copy of `context`.
        drop(unsafe { Arc::from_raw(context.cast_const().cast::<Settler>()) });
        return Err(internal(format!(
            "could not create the settling threadsafe function (status {status})"
        )));
    }
    // Idle: it must not keep the event loop alive until a call is pending.
    // SAFETY: main thread of `env`, `tsfn` just created in it.
    unsafe { sys::napi_unref_threadsafe_function(env.raw(), tsfn) };
    let _ = s.tsfn.set(Tsfn(tsfn));
    SETTLER.with(|c| c.replace(Some(s.clone())));
    Ok(s)
}

/// Node finalizes the threadsafe function (environment teardown): stop sending, forget it.
unsafe extern "C" fn finalize(_env: napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: `data` is the strong count `settler` gave Node, taken back here only.
    let s = unsafe { Arc::from_raw(data.cast_const().cast::<Settler>()) };
    {
        let mut q = s.queue();
        q.closed = true;
        q.finished.clear();
    }
    // The thread may be exiting: its thread-locals may already be gone.
    let _ = SETTLER.try_with(|c| c.borrow_mut().take());
}

/// Runs on the main thread when woken: settles every call finished so far.
unsafe extern "C" fn drain(
    env: napi_env,
    _js: napi_value,
    context: *mut c_void,
    _data: *mut c_void,
) {
    if env.is_null() {
        return; // teardown: Node empties its queue without an environment; `finalize` cleans up
    }
    // SAFETY: `context` holds a strong count until `finalize`, which Node calls only after
    // the last call of this callback with an environment.
    let s = unsafe { &*context.cast_const().cast::<Settler>() };
    let finished = {
        let mut q = s.queue();
        q.scheduled = false;
        std::mem::take(&mut q.finished)
    };
    let n = finished.len();
    let env_ref = Env::from_raw(env);
    for done in finished {
        settle_one(&env_ref, done);
    }
    if n > 0 && s.pending.fetch_sub(n, Ordering::Relaxed) == n {
        // SAFETY: main thread of `env`; the function is live (we are inside its callback).
        unsafe { sys::napi_unref_threadsafe_function(env, s.handle()) };
    }
}

/// Settles one promise inside a handle scope of its own; a panic is contained.
fn settle_one(env: &Env, done: Finished) {
    let raw = env.raw();
    let mut scope = ptr::null_mut();
    // SAFETY: live environment of the current callback; the scope is closed below.
    let opened = unsafe { sys::napi_open_handle_scope(raw, &mut scope) } == sys::Status::napi_ok;
    let Finished { deferred, settle } = done;
    let outcome = catch_unwind(AssertUnwindSafe(|| settle(env)))
        .unwrap_or_else(|_| Err(internal("settling a Redis call panicked")));
    // SAFETY: `deferred` was created in this environment by `spawn` and is settled exactly
    // once, here; the values are handles of the open scope.
    unsafe {
        match outcome {
            Ok(v) => {
                sys::napi_resolve_deferred(raw, deferred.0, v);
            }
            Err(e) => {
                sys::napi_reject_deferred(raw, deferred.0, rejection(raw, e));
            }
        }
        if opened {
            sys::napi_close_handle_scope(raw, scope);
        }
    }
}

/// The JS value to reject with: a pending exception (thrown while converting) as it is, else
/// the error's own JS object.
fn rejection(env: napi_env, e: napi::Error) -> napi_value {
    let mut pending = false;
    // SAFETY: live environment of the current callback, valid out-pointer.
    unsafe { sys::napi_is_exception_pending(env, &mut pending) };
    if pending {
        if let Ok(exc) = Raw(env).take_exception() {
            return exc;
        }
    }
    // SAFETY: live environment of the current callback (the JS thread).
    unsafe { JsError::from(e).into_value(env) }
}

/// Settles the promise with `ERR_INTERNAL` if the task ends without settling it (it panicked,
/// or the runtime dropped it).
struct Guard {
    settler: Arc<Settler>,
    deferred: Option<Deferred>,
}

impl Guard {
    fn finish(mut self, settle: Settle) {
        if let Some(deferred) = self.deferred.take() {
            self.settler.send(Finished { deferred, settle });
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(deferred) = self.deferred.take() {
            let e = CoreError::new(Code::Internal, "a Redis call ended without an answer");
            self.settler.send(Finished {
                deferred,
                settle: Box::new(move |env| Err(to_napi(env, &e))),
            });
        }
    }
}

/// Runs `fut` on the tokio runtime; returns a promise that resolves with its value, or
/// rejects with the coded JS error of its core error.
pub fn spawn<T, F>(env: &Env, fut: F) -> Result<napi_value>
where
    T: 'static + Send + ToNapiValue,
    F: 'static + Send + Future<Output = crate::error::Result<T>>,
{
    let s = settler(env)?;
    let mut deferred = ptr::null_mut();
    let mut promise = ptr::null_mut();
    // SAFETY: live environment of this callback, valid out-pointers.
    let status = unsafe { sys::napi_create_promise(env.raw(), &mut deferred, &mut promise) };
    if status != sys::Status::napi_ok {
        return Err(internal("could not create a promise"));
    }
    if s.pending.fetch_add(1, Ordering::Relaxed) == 0 {
        // SAFETY: main thread of `env`; the function is live: a finalized settler is no
        // longer in the thread-local `settler` took it from.
        unsafe { sys::napi_ref_threadsafe_function(env.raw(), s.handle()) };
    }
    let guard = Guard {
        settler: s,
        deferred: Some(Deferred(deferred)),
    };
    let task = async move {
        let r = fut.await;
        guard.finish(Box::new(move |env: &Env| match r {
            // SAFETY: called on the main thread with its live environment (`drain`).
            Ok(v) => unsafe { T::to_napi_value(env.raw(), v) },
            Err(e) => Err(to_napi(env, &e)),
        }));
    };
    // napi-rs's `spawn` panics only when its runtime is gone (environment teardown); the
    // dropped task's guard then rejects the promise.
    let _ = catch_unwind(AssertUnwindSafe(|| napi::bindgen_prelude::spawn(task)));
    Ok(promise)
}
