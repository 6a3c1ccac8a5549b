//! Getting JS text into Rust for the token counter, and counting it on the libuv pool.
//!
//! Node-API copies a string synchronously. Measured here (Node 20, 10 MB): one UTF-8 copy
//! costs ~2.5-3.5 ms for ASCII and ~10 ms for mixed-script text; a UTF-16 copy ~3-4.5 ms.
//! So `estimateAsync` reads a long string in slices (`String.prototype.slice` + a UTF-16
//! copy of the slice), in steps of at most 0.25 ms under the package's shared per-turn
//! budget, and turns the UTF-16 into UTF-8 on the worker thread. Short strings are copied
//! as UTF-8 at once.
//!
//! Lone surrogates become U+FFFD on every path (V8's UTF-8 writer with
//! `REPLACE_INVALID_UTF8`, or `String::from_utf16_lossy`), as `TextEncoder` does in the JS
//! tokenizers, so all paths count the same text.

use napi::bindgen_prelude::*;
use napi::sys::{self, napi_value};
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::background;
use crate::error::{Code, Error as CoreError};
use crate::js::error::TaskError;
use crate::js::raw::{check, fault_to_napi, Fault, Raw, RawValue, R};
use crate::js::serialize::helpers::helpers;
use crate::tokens::{count_tokens, count_tokens_parallel, Encoding};

/// Strings up to this many UTF-16 units are copied in one go (well under 1 ms).
pub const INLINE_UNITS: usize = 256 * 1024;
/// Units per `slice` call when reading a long string.
const SLICE_UNITS: usize = 32 * 1024;
/// The most main-thread time one step of reading a long string takes. Steps run under the
/// package's one scheduler of main-thread work (`serialize::helpers`' `drive`: every
/// event-loop turn gives all unfinished jobs together a fixed budget, round robin), which
/// passes each step the budget left in the turn.
const STEP: Duration = Duration::from_micros(250);

/// `ERR_INVALID_ARG` (a `TypeError`) for an argument of the wrong type.
pub fn invalid_arg(what: &str, expected: &str, raw: Raw, v: napi_value) -> Fault {
    let got = match raw.type_of(v) {
        Ok(sys::ValueType::napi_undefined) => "undefined",
        Ok(sys::ValueType::napi_null) => "null",
        Ok(sys::ValueType::napi_boolean) => "a boolean",
        Ok(sys::ValueType::napi_number) => "a number",
        Ok(sys::ValueType::napi_string) => "a string",
        Ok(sys::ValueType::napi_symbol) => "a symbol",
        Ok(sys::ValueType::napi_function) => "a function",
        Ok(sys::ValueType::napi_bigint) => "a bigint",
        _ => "an object",
    };
    Fault::Core(CoreError::new(
        Code::InvalidArgument,
        format!("{what} must be {expected}, got {got}"),
    ))
}

/// The length in UTF-16 units of `v`, which must be a string (else `ERR_INVALID_ARG`).
pub fn string_len(raw: Raw, v: napi_value, what: &str) -> R<usize> {
    if raw.type_of(v)? != sys::ValueType::napi_string {
        return Err(invalid_arg(what, "a string", raw, v));
    }
    raw.str_len(v)
}

/// The UTF-8 bytes of the string `v` of `units` UTF-16 units, in one Node-API call.
pub fn read_utf8(raw: Raw, v: napi_value, units: usize) -> R<Vec<u8>> {
    // A UTF-16 unit takes at most 3 UTF-8 bytes (a surrogate pair: 2 units, 4 bytes), so
    // this capacity always fits and V8 never stops early. V8's longest string (2^29 - 24
    // units) keeps it below i32::MAX, the most V8's writer takes.
    let cap = units
        .checked_mul(3)
        .and_then(|n| n.checked_add(1))
        .filter(|&n| n <= i32::MAX as usize)
        .ok_or_else(|| {
            CoreError::new(
                Code::StringTooLong,
                format!("a string of {units} units is too long"),
            )
        })?;
    let mut buf: Vec<u8> = Vec::new();
    buf.try_reserve_exact(cap).map_err(|_| {
        CoreError::new(
            Code::Internal,
            format!("out of memory reading a string of {units} units"),
        )
    })?;
    let mut written = 0usize;
    // SAFETY: `raw.0` is the live environment and `v` a string handle of this callback; the
    // buffer has room for `cap` bytes and Node-API writes at most `cap` (the text and a NUL)
    // and reports in `written` how many text bytes it wrote, all of them initialised.
    unsafe {
        check(
            raw.0,
            sys::napi_get_value_string_utf8(raw.0, v, buf.as_mut_ptr().cast(), cap, &mut written),
        )?;
        buf.set_len(written.min(cap - 1));
    }
    Ok(buf)
}

/// A short JS string argument (an encoding or model name) as a Rust string.
pub fn read_name(raw: Raw, v: napi_value, what: &str) -> R<String> {
    let units = string_len(raw, v, what)?;
    let bytes = read_utf8(raw, v, units)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Text a count task owns.
pub enum Text {
    Utf8(Vec<u8>),
    Utf16(Vec<u16>),
}

impl Text {
    /// Its length in code units (bytes or UTF-16 units).
    fn units(&self) -> usize {
        match self {
            Text::Utf8(b) => b.len(),
            Text::Utf16(u) => u.len(),
        }
    }
}

/// Counts of texts this long (code units) run on the low-priority background threads.
const BACKGROUND_UNITS: usize = 64 * 1024;

fn internal(msg: impl Into<String>) -> CoreError {
    CoreError::new(Code::Internal, msg)
}

/// Counts `text` with the core function (on all CPUs when `parallel`: for the synchronous
/// call, which blocks anyway; the async path counts on its one worker thread and leaves the
/// other CPUs to the event loop), turning a panic (there should be none) into
/// `ERR_INTERNAL` so that it never crosses into Node.
pub fn count_text(
    text: &str,
    enc: Encoding,
    parallel: bool,
) -> std::result::Result<usize, CoreError> {
    catch_unwind(AssertUnwindSafe(|| {
        if parallel {
            count_tokens_parallel(text, enc)
        } else {
            count_tokens(text, enc)
        }
    }))
    .map_err(|_| internal("the token counter failed unexpectedly"))
}

/// A token count as a JS number (counts never approach 2^32: a JS string holds at most
/// 2^29 units, at most 1.6e9 UTF-8 bytes).
pub fn to_u32(n: usize) -> std::result::Result<u32, CoreError> {
    u32::try_from(n).map_err(|_| internal(format!("{n} tokens do not fit a u32")))
}

/// Counts tokens on a libuv worker thread: `estimateAsync`'s second half.
pub struct CountTask {
    text: Option<Text>,
    enc: Encoding,
    error: TaskError,
}

impl Task for CountTask {
    type Output = u32;
    type JsValue = u32;

    fn compute(&mut self) -> Result<u32> {
        // The text (possibly hundreds of MB) is converted and freed here, off the main thread.
        let enc = self.enc;
        let count = move |text: Text| match text {
            Text::Utf8(bytes) => String::from_utf8(bytes)
                .map_err(|_| internal("Node-API returned invalid UTF-8"))
                .and_then(|s| count_text(&s, enc, false)),
            Text::Utf16(units) => count_text(&String::from_utf16_lossy(&units), enc, false),
        };
        let r = match self.text.take() {
            // A long count runs on a low-priority thread (`background.rs`; this libuv thread
            // only waits for it); a short one here (two more thread hops would cost more).
            Some(text) if text.units() >= BACKGROUND_UNITS => background::run(move || count(text))
                .unwrap_or_else(|| Err(internal("the token counter failed unexpectedly"))),
            Some(text) => count(text),
            None => Err(internal("count task ran twice")),
        };
        self.error.keep(r.and_then(to_u32))
    }

    fn resolve(&mut self, _env: Env, n: u32) -> Result<u32> {
        Ok(n)
    }

    fn reject(&mut self, env: Env, err: Error) -> Result<u32> {
        self.error.reject(&env, err)
    }
}

/// Queues a count task; returns its promise.
pub fn spawn_count(env: &Env, text: Text, enc: Encoding) -> R<napi_value> {
    let work = env
        .spawn(CountTask {
            text: Some(text),
            enc,
            error: TaskError::default(),
        })
        .map_err(|e| internal(e.reason))?;
    // SAFETY: the promise belongs to `env`, the environment of the current callback.
    unsafe { ToNapiValue::to_napi_value(env.raw(), work.promise_object()) }
        .map_err(|e| Fault::Core(internal(e.reason)))
}

/// A long string being read in slices across event-loop turns.
struct SlicedRead {
    /// A one-element array holding the string (Node-API 9 references only objects).
    holder: sys::napi_ref,
    units: usize,
    pos: usize,
    buf: Vec<u16>,
    enc: Encoding,
}

impl SlicedRead {
    /// Reads slices for about `min(left, STEP)`; returns the count's promise once all is
    /// read. On failure the string is let go (no later step comes).
    fn step(&mut self, env: &Env, left: Duration) -> R<Option<napi_value>> {
        let r = self.read(env, left.min(STEP));
        if r.is_err() {
            Raw(env.raw()).delete_ref(self.holder);
        }
        r
    }

    fn read(&mut self, env: &Env, budget: Duration) -> R<Option<napi_value>> {
        let raw = Raw(env.raw());
        let started = Instant::now();
        let holder = raw.ref_value(self.holder)?;
        let text = raw.element(holder, 0)?;
        let h = helpers(raw)?;
        while self.pos < self.units {
            let end = (self.pos + SLICE_UNITS).min(self.units);
            let args = [raw.number(self.pos as f64)?, raw.number(end as f64)?];
            let piece = raw.call(h.recv, h.slice, &[text, args[0], args[1]])?;
            raw.append_utf16(piece, end - self.pos, &mut self.buf)?;
            self.pos = end;
            if started.elapsed() >= budget {
                break;
            }
        }
        if self.pos < self.units {
            return Ok(None);
        }
        raw.delete_ref(self.holder);
        let buf = std::mem::take(&mut self.buf);
        spawn_count(env, Text::Utf16(buf), self.enc).map(Some)
    }
}

/// `estimateAsync` for a string longer than [`INLINE_UNITS`]: reads it in slices, one
/// short step per event-loop turn, then counts on the libuv pool. Returns a promise.
pub fn count_long_async(env: &Env, text: napi_value, units: usize, enc: Encoding) -> R<napi_value> {
    let raw = Raw(env.raw());
    let mut buf: Vec<u16> = Vec::new();
    // Reserved up front so that no step pays for growing (copying) the buffer.
    buf.try_reserve_exact(units + 1)
        .map_err(|_| internal(format!("out of memory reading a string of {units} units")))?;
    let holder = raw.array_of(text)?;
    let read = SlicedRead {
        holder: raw.new_ref(holder)?,
        units,
        pos: 0,
        buf,
        enc,
    };
    let job = Rc::new(RefCell::new(read));
    let step = env
        .create_function_from_closure::<f64, RawValue, _>("estimateAsyncStep", move |ctx| {
            // The scheduler passes the milliseconds left in this turn's budget.
            let left_ms = ctx.get::<f64>(0).unwrap_or(0.25);
            let left = Duration::from_secs_f64((left_ms / 1000.0).clamp(0.0, 1.0));
            let env = &*ctx.env;
            let r = match job.try_borrow_mut() {
                Ok(mut read) => read.step(env, left),
                Err(_) => Err(Fault::Core(internal("estimateAsync step re-entered"))),
            };
            match r {
                Ok(Some(promise)) => Ok(RawValue(promise)),
                Ok(None) => Raw(env.raw()).undefined().map(RawValue),
                Err(f) => Err(f),
            }
            .map_err(|f| fault_to_napi(env, f))
        })
        .map_err(|e| internal(e.reason))?;
    let h = helpers(raw)?;
    raw.call(h.recv, h.drive, &[step.raw()])
}
