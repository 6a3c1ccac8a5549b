//! Reads a JS value into a [`Tape`] on the main thread, with JSON.stringify's semantics:
//! `toJSON(key)`, boxed primitives, `undefined`/functions/symbols dropped from objects and
//! `null` in arrays, holes, `Object.keys` order, getters and proxies run as they would, cycle
//! and BigInt errors. The walk is iterative (no recursion, so nesting cannot overflow the
//! stack) and resumable: `step` stops at a deadline and continues on the next call, which is
//! how `serializeAsync` leaves the event loop free between steps.
//!
//! Containers on the walk's stack are held as handles while a batch runs and as Node-API
//! references between batches (only those still open when a batch ends get one).

use napi::sys::{self, napi_value, ValueType as T};
use std::time::Instant;

use super::helpers::{helpers, Helpers};
use crate::error::{Code, Error as CoreError};
use crate::js::raw::{check, Fault, Raw, R};
use crate::serialize::Tape;

/// Deepest nesting accepted. JSON.stringify itself throws "Maximum call stack size exceeded"
/// at about 4,170 levels on Node 20 with the default stack.
pub const MAX_DEPTH: usize = 4096;
/// Strings longer than this are copied in pieces across steps (async walks only).
const LONG_STRING: usize = 1 << 20;
/// Nodes per batch: handles are released and the clock is read between batches.
const BATCH: usize = 64;

enum Kind {
    Array { len: u32, next: u32 },
    Object { keys: Handle, len: u32, next: u32 },
    LongStr { len: usize, pos: usize },
}

/// A JS value kept across batches: a live handle in the current batch, a reference after.
#[derive(Clone, Copy)]
struct Handle {
    value: napi_value,
    reference: sys::napi_ref,
}

impl Handle {
    fn new(value: napi_value) -> Self {
        Handle {
            value,
            reference: std::ptr::null_mut(),
        }
    }
}

struct Frame {
    obj: Handle,
    kind: Kind,
}

enum Key {
    Top,
    Index(u32),
    Name(napi_value),
}

enum Resolved {
    Skip(i32),
    Null,
    Bool(bool),
    Num(f64),
    Str(napi_value),
    Array(napi_value, bool),
    Object(napi_value),
}

/// A resumable walk of one value.
pub struct Walker {
    tape: Tape,
    root: Handle,
    started: bool,
    done: bool,
    frames: Vec<Frame>,
    /// Stop reading once the tape's lower-bound length passes this (truncation / maxSize).
    read_limit: Option<usize>,
    /// Copy long strings in pieces (async) or at once (sync).
    split_strings: bool,
}

fn type_name(t: i32) -> &'static str {
    match t {
        T::napi_undefined => "undefined",
        T::napi_function => "a function",
        T::napi_symbol => "a symbol",
        _ => "this value",
    }
}

impl Walker {
    /// Starts a walk of `value`, a handle of the current callback.
    pub fn new(value: napi_value, read_limit: Option<usize>, split_strings: bool) -> Self {
        Walker {
            tape: Tape::new(),
            root: Handle::new(value),
            started: false,
            done: false,
            frames: Vec::new(),
            read_limit,
            split_strings,
        }
    }

    /// Runs until done (`Ok(true)`) or until `deadline` passes (`Ok(false)`). Without a
    /// deadline it runs to the end.
    pub fn step(&mut self, raw: Raw, deadline: Option<Instant>) -> R<bool> {
        if self.done {
            return Ok(true);
        }
        let h = helpers(raw)?;
        loop {
            let mut scope = std::ptr::null_mut();
            // SAFETY: `raw.0` is the live environment of the current callback.
            check(raw.0, unsafe {
                sys::napi_open_handle_scope(raw.0, &mut scope)
            })?;
            // Re-resolve the handles held as references (after a previous batch or step).
            let r = self.reload(raw).and_then(|_| self.batch(raw, &h));
            // Handles created in the scope die with it: keep what the next batch needs.
            let kept = if r.is_ok() && !self.done {
                self.keep(raw)
            } else {
                Ok(())
            };
            // SAFETY: `scope` was opened above in this environment and is closed once.
            unsafe { sys::napi_close_handle_scope(raw.0, scope) };
            r?;
            kept?;
            if self.done {
                return Ok(true);
            }
            if let Some(d) = deadline {
                if Instant::now() >= d {
                    return Ok(false);
                }
            }
        }
    }

    /// Gives the value and every open frame a reference so they survive the end of the
    /// current handle scope (a batch, or the call that started the walk).
    pub fn keep(&mut self, raw: Raw) -> R<()> {
        // The value itself is only needed until the walk has started; it may be a primitive,
        // and Node-API (before version 10) references objects only: hold it in `[value]`.
        if !self.started && self.root.reference.is_null() {
            let holder = raw.array_of(self.root.value)?;
            self.root.reference = raw.new_ref(holder)?;
        }
        let mut handles: Vec<&mut Handle> = Vec::new();
        for f in self.frames.iter_mut() {
            handles.push(&mut f.obj);
            if let Kind::Object { keys, .. } = &mut f.kind {
                handles.push(keys);
            }
        }
        for h in handles {
            if h.reference.is_null() {
                h.reference = raw.new_ref(h.value)?;
            }
        }
        Ok(())
    }

    /// Refreshes the handles of referenced frames for the next batch.
    fn reload(&mut self, raw: Raw) -> R<()> {
        if !self.started && !self.root.reference.is_null() {
            let holder = raw.ref_value(self.root.reference)?;
            self.root.value = raw.element(holder, 0)?;
        }
        for f in self.frames.iter_mut() {
            if !f.obj.reference.is_null() {
                f.obj.value = raw.ref_value(f.obj.reference)?;
            }
            if let Kind::Object { keys, .. } = &mut f.kind {
                if !keys.reference.is_null() {
                    keys.value = raw.ref_value(keys.reference)?;
                }
            }
        }
        Ok(())
    }

    fn drop_handle(raw: Raw, h: &mut Handle) {
        if !h.reference.is_null() {
            raw.delete_ref(h.reference);
            h.reference = std::ptr::null_mut();
        }
    }

    fn pop(&mut self, raw: Raw) {
        if let Some(mut f) = self.frames.pop() {
            Self::drop_handle(raw, &mut f.obj);
            if let Kind::Object { mut keys, .. } = f.kind {
                Self::drop_handle(raw, &mut keys);
            }
        }
    }

    /// Releases every reference (on completion or failure).
    pub fn release(&mut self, raw: Raw) {
        while !self.frames.is_empty() {
            self.pop(raw);
        }
        Self::drop_handle(raw, &mut self.root);
    }

    /// Moves out what was read so far (see [`Tape::take_segment`]).
    pub fn take_segment(&mut self) -> Tape {
        self.tape.take_segment()
    }

    /// Stops reading: the text is already cut (what was read so far is enough).
    pub fn stop_reading(&mut self) {
        // A long string being read in pieces ends with what was read.
        self.tape.end_str();
        self.done = true;
    }

    /// The finished tape (references released).
    pub fn into_tape(mut self, raw: Raw) -> Tape {
        self.release(raw);
        std::mem::take(&mut self.tape)
    }

    fn batch(&mut self, raw: Raw, h: &Helpers) -> R<()> {
        for _ in 0..BATCH {
            if let Some(limit) = self.read_limit {
                if self.tape.min_len > limit {
                    // The rest would be cut (or refused) anyway.
                    self.stop_reading();
                    return Ok(());
                }
            }
            let Some(top) = self.frames.last_mut() else {
                if self.started {
                    self.tape.finish();
                    self.done = true;
                    return Ok(());
                }
                self.started = true;
                let v = self.root.value;
                self.value(raw, h, v, Key::Top, 0)?;
                if self.frames.is_empty() {
                    self.tape.finish();
                    self.done = true;
                    return Ok(());
                }
                continue;
            };
            let obj = top.obj.value;
            match &mut top.kind {
                Kind::Array { len, next } => {
                    if *next < *len {
                        let i = *next;
                        *next += 1;
                        let v = raw.element(obj, i)?;
                        self.value(raw, h, v, Key::Index(i), 1)?;
                    } else {
                        self.tape.end_array();
                        self.pop(raw);
                    }
                }
                Kind::Object { keys, len, next } => {
                    if *next < *len {
                        let k = raw.element(keys.value, *next)?;
                        *next += 1;
                        let v = raw.property(obj, k)?;
                        self.value(raw, h, v, Key::Name(k), 2)?;
                    } else {
                        self.tape.end_object();
                        self.pop(raw);
                    }
                }
                Kind::LongStr { len, pos } => {
                    let (a, b) = (*pos, (*pos + LONG_STRING).min(*len));
                    *pos = b;
                    let finished = b == *len;
                    let (start, end) = (raw.number(a as f64)?, raw.number(b as f64)?);
                    let text = raw.element(obj, 0)?;
                    let piece = raw.call(h.recv, h.slice, &[text, start, end])?;
                    let mut units = Vec::with_capacity(b - a + 1);
                    raw.append_utf16(piece, b - a, &mut units)?;
                    self.tape.extend_str(&units);
                    if finished {
                        self.tape.end_str();
                        self.pop(raw);
                    }
                }
            }
        }
        Ok(())
    }

    /// SerializeJSONProperty for one value. `holder`: 0 top level, 1 array, 2 object.
    fn value(&mut self, raw: Raw, h: &Helpers, v: napi_value, key: Key, holder: u8) -> R<()> {
        let resolved = self.resolve(raw, h, v, &key)?;
        if let Resolved::Skip(t) = resolved {
            return match holder {
                0 => Err(Fault::Core(CoreError::new(
                    Code::NotSerializable,
                    format!(
                        "{} has no JSON form (JSON.stringify would return undefined)",
                        type_name(t)
                    ),
                ))),
                1 => {
                    self.tape.push_null();
                    Ok(())
                }
                _ => Ok(()),
            };
        }
        if let Key::Name(k) = key {
            let start = self.tape.mark();
            raw.append_str(k, &mut self.tape.units)?;
            self.tape.push_key_from(start);
        }
        match resolved {
            Resolved::Skip(_) => {}
            Resolved::Null => self.tape.push_null(),
            Resolved::Bool(b) => self.tape.push_bool(b),
            Resolved::Num(n) => self.tape.push_number(n),
            Resolved::Str(s) => {
                // Short strings (most) are copied in one call; longer ones are measured first.
                let start = self.tape.mark();
                if raw.append_short_str(s, &mut self.tape.units)? {
                    self.tape.push_str_from(start);
                    return Ok(());
                }
                let len = raw.str_len(s)?;
                if self.split_strings && len > LONG_STRING {
                    self.tape.begin_str();
                    // Node-API (before version 10) makes references to objects only: hold
                    // the string in a one-element array.
                    let holder = raw.array_of(s)?;
                    self.frames.push(Frame {
                        obj: Handle::new(holder),
                        kind: Kind::LongStr { len, pos: 0 },
                    });
                } else {
                    let start = self.tape.mark();
                    raw.append_utf16(s, len, &mut self.tape.units)?;
                    self.tape.push_str_from(start);
                }
            }
            Resolved::Array(a, real) => {
                self.check_cycle(raw, a)?;
                let len = if real {
                    raw.array_len(a)?
                } else {
                    let l = raw.property(a, raw.latin1("length")?)?;
                    let n = raw.f64(raw.to_number(l)?)?;
                    if n.is_finite() && n > 0.0 {
                        n.min(u32::MAX as f64) as u32
                    } else {
                        0
                    }
                };
                self.tape.begin_array();
                self.frames.push(Frame {
                    obj: Handle::new(a),
                    kind: Kind::Array { len, next: 0 },
                });
            }
            Resolved::Object(o) => {
                self.check_cycle(raw, o)?;
                // `Object.keys` (own enumerable string keys, integer-like first): faster than
                // napi_get_all_property_names, which takes V8's slow key-collection path.
                let keys = raw.call(h.recv, h.keys, &[o])?;
                let len = raw.array_len(keys)?;
                self.tape.begin_object();
                self.frames.push(Frame {
                    obj: Handle::new(o),
                    kind: Kind::Object {
                        keys: Handle::new(keys),
                        len,
                        next: 0,
                    },
                });
            }
        }
        Ok(())
    }

    fn resolve(&mut self, raw: Raw, h: &Helpers, v: napi_value, key: &Key) -> R<Resolved> {
        let mut v = v;
        let mut t = raw.type_of(v)?;
        if t == T::napi_object || t == T::napi_bigint {
            let f = raw.property(v, h.to_json)?;
            if raw.type_of(f)? == T::napi_function {
                let k = match key {
                    Key::Top => raw.latin1("")?,
                    Key::Index(i) => raw.latin1(&i.to_string())?,
                    Key::Name(k) => *k,
                };
                v = raw.call(v, f, &[k])?;
                t = raw.type_of(v)?;
            }
        }
        Ok(match t {
            T::napi_null => Resolved::Null,
            T::napi_boolean => Resolved::Bool(raw.bool(v)?),
            T::napi_number => Resolved::Num(raw.f64(v)?),
            T::napi_string => Resolved::Str(v),
            T::napi_bigint => return Err(self.bigint_error(raw)),
            T::napi_object | T::napi_external => self.classify(raw, h, v)?,
            other => Resolved::Skip(other),
        })
    }

    fn classify(&mut self, raw: Raw, h: &Helpers, v: napi_value) -> R<Resolved> {
        if raw.is_array(v)? {
            return Ok(Resolved::Array(v, true));
        }
        let proto = raw.prototype(v)?;
        // Fast path: plain objects. Everything else (class instances, null-prototype objects,
        // and proxies, whose prototype Node-API reports as null) asks the JS helper.
        if raw.strict_equals(proto, h.object_proto)? {
            return Ok(Resolved::Object(v));
        }
        let kind = raw.f64(raw.call(h.recv, h.classify, &[v])?)?;
        Ok(match kind as i32 {
            5 => Resolved::Array(v, false),
            1 => Resolved::Num(raw.f64(raw.to_number(v)?)?),
            2 => Resolved::Str(raw.to_string(v)?),
            3 => Resolved::Bool(true),
            4 => Resolved::Bool(false),
            6 => return Err(self.bigint_error(raw)),
            _ => Resolved::Object(v),
        })
    }

    fn check_cycle(&self, raw: Raw, v: napi_value) -> R<()> {
        if self.frames.len() >= MAX_DEPTH {
            return Err(Fault::Core(CoreError::new(
                Code::Depth,
                format!("value nests deeper than {MAX_DEPTH} levels"),
            )));
        }
        for (i, f) in self.frames.iter().enumerate() {
            if matches!(f.kind, Kind::LongStr { .. }) {
                continue;
            }
            if raw.strict_equals(f.obj.value, v)? {
                let at = self.path(raw, self.frames.len());
                let back = self.path(raw, i);
                return Err(Fault::Core(CoreError::new(
                    Code::Circular,
                    format!(
                        "Converting circular structure to JSON: the value at {at} is its own ancestor {back}"
                    ),
                )));
            }
        }
        Ok(())
    }

    fn bigint_error(&self, raw: Raw) -> Fault {
        Fault::Core(CoreError::new(
            Code::BigInt,
            format!(
                "Do not know how to serialize a BigInt (at {})",
                self.path(raw, self.frames.len())
            ),
        ))
    }

    /// `$.messages[3].content`-style path of the value being read under the first `depth`
    /// frames (best effort: used in error messages only).
    fn path(&self, raw: Raw, depth: usize) -> String {
        let mut p = String::from("$");
        for f in &self.frames[..depth.min(self.frames.len())] {
            match &f.kind {
                Kind::Array { next, .. } => p.push_str(&format!("[{}]", next.saturating_sub(1))),
                Kind::Object { keys, next, .. } => {
                    let name = raw
                        .element(keys.value, next.saturating_sub(1))
                        .ok()
                        .and_then(|k| {
                            let len = raw.str_len(k).ok()?;
                            let mut u = Vec::new();
                            raw.append_utf16(k, len, &mut u).ok()?;
                            Some(String::from_utf16_lossy(&u))
                        })
                        .unwrap_or_else(|| "?".into());
                    if !name.is_empty()
                        && name
                            .chars()
                            .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
                    {
                        p.push('.');
                        p.push_str(&name);
                    } else {
                        p.push_str(&format!("[{name:?}]"));
                    }
                }
                Kind::LongStr { .. } => {}
            }
        }
        p
    }
}
