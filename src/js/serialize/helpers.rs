//! Small JS functions the walker calls for the rare cases Node-API has no call for (is this
//! object a boxed primitive? a proxy of an array?) and to drive a walk across event-loop
//! turns. Compiled once per thread (each worker thread has its own environment).

use napi::sys::{self, napi_value};
use std::cell::Cell;

use crate::js::raw::{Raw, R};

const SCRIPT: &str = r#"(function () {
  'use strict';
  const types = typeof process === 'object' && process !== null &&
    typeof process.getBuiltinModule === 'function' ? process.getBuiltinModule('node:util').types : null;
  const isArray = Array.isArray;
  const strSlice = String.prototype.slice;
  const nv = Number.prototype.valueOf, sv = String.prototype.valueOf;
  const bv = Boolean.prototype.valueOf, biv = BigInt.prototype.valueOf;
  const later = setImmediate;
  function brand(f, v) { try { f.call(v); return true; } catch { return false; } }
  // 0 plain object, 1 Number, 2 String, 3 true, 4 false (Boolean), 5 array (incl. proxies), 6 BigInt
  function classify(v) {
    if (isArray(v)) return 5;
    if (types !== null) {
      if (!types.isBoxedPrimitive(v)) return 0;
      if (types.isNumberObject(v)) return 1;
      if (types.isStringObject(v)) return 2;
      if (types.isBooleanObject(v)) return bv.call(v) ? 3 : 4;
      if (types.isBigIntObject(v)) return 6;
      return 0;
    }
    if (brand(nv, v)) return 1;
    if (brand(sv, v)) return 2;
    if (brand(bv, v)) return bv.call(v) ? 3 : 4;
    if (brand(biv, v)) return 6;
    return 0;
  }
  // One scheduler for every serializeAsync in this thread: each event-loop turn gives all
  // unfinished serializations together at most BUDGET ms of main-thread time (round robin),
  // so many concurrent calls stall the loop no more than one does. step(budgetMs) returns
  // undefined while unfinished. First steps run inside the serializeAsync() call itself, and
  // also draw on the current turn's budget (firstBudget / spent): a call made in the timers
  // or poll phase has its first step there, and the tick that follows in the same turn's
  // check phase gets only what that step left, not a budget of its own on top.
  const BUDGET = 0.5;
  const now = () => performance.now();
  const jobs = [];
  let pending = false;
  let used = 0;
  function schedule() { if (!pending) { pending = true; later(tick); } }
  // Each unfinished job gets at most one step per turn (a job whose steps are shorter than
  // the budget, like estimateAsync's 0.25 ms reads, then holds the loop only that long).
  function tick() {
    pending = false;
    const budget = BUDGET - used;
    used = 0;
    const start = now();
    for (let n = jobs.length; n > 0 && jobs.length > 0; n--) {
      const left = budget - (now() - start);
      if (left <= 0) break;
      const job = jobs.shift();
      let r;
      try { r = job.step(left); } catch (e) { job.reject(e); continue; }
      if (r === undefined) jobs.push(job); else job.resolve(r);
    }
    if (jobs.length > 0) schedule();
  }
  function drive(step) {
    return new Promise(function (resolve, reject) {
      jobs.push({ step: step, resolve: resolve, reject: reject });
      schedule();
    });
  }
  // Main-thread time the current turn still has for a first step (ms).
  function firstBudget() { schedule(); return BUDGET - used; }
  function spent(ms) { used += ms; }
  function slice(s, a, b) { return strSlice.call(s, a, b); }
  return { keys: Object.keys, classify: classify, drive: drive, firstBudget: firstBudget, spent: spent, slice: slice, objectProto: Object.prototype, toJSON: 'toJSON' };
})()"#;

thread_local! {
    static HELPERS: Cell<sys::napi_ref> = const { Cell::new(std::ptr::null_mut()) };
}

/// The helper object's members, as handles valid in the current callback.
pub struct Helpers {
    pub keys: napi_value,
    pub classify: napi_value,
    pub drive: napi_value,
    pub first_budget: napi_value,
    pub spent: napi_value,
    pub slice: napi_value,
    pub object_proto: napi_value,
    pub to_json: napi_value,
    pub recv: napi_value,
}

fn named(raw: Raw, obj: napi_value, name: &std::ffi::CStr) -> R<napi_value> {
    let mut out = std::ptr::null_mut();
    // SAFETY: `raw.0` is the live environment, `obj` a live handle, `name` NUL-terminated.
    crate::js::raw::check(raw.0, unsafe {
        sys::napi_get_named_property(raw.0, obj, name.as_ptr(), &mut out)
    })?;
    Ok(out)
}

/// Returns the helpers, compiling them on first use in this thread's environment.
pub fn helpers(raw: Raw) -> R<Helpers> {
    let mut r = HELPERS.with(|h| h.get());
    if r.is_null() {
        let script = raw.latin1(SCRIPT)?;
        let mut obj = std::ptr::null_mut();
        // SAFETY: `script` is a JS string of our own constant source in the live environment.
        crate::js::raw::check(raw.0, unsafe {
            sys::napi_run_script(raw.0, script, &mut obj)
        })?;
        // The reference is never deleted: it lives as long as the environment (Node frees
        // an environment's references when it is torn down).
        r = raw.new_ref(obj)?;
        HELPERS.with(|h| h.set(r));
    }
    let obj = raw.ref_value(r)?;
    Ok(Helpers {
        keys: named(raw, obj, c"keys")?,
        classify: named(raw, obj, c"classify")?,
        drive: named(raw, obj, c"drive")?,
        first_budget: named(raw, obj, c"firstBudget")?,
        spent: named(raw, obj, c"spent")?,
        slice: named(raw, obj, c"slice")?,
        object_proto: named(raw, obj, c"objectProto")?,
        to_json: named(raw, obj, c"toJSON")?,
        recv: obj,
    })
}
