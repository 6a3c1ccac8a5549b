//! Thin checked wrappers over the raw Node-API calls the hot paths need. A failed call is a
//! [`Fault`]: either a JS exception now pending in the environment (a getter, proxy trap or
//! `toJSON` threw: the caller must see that very exception) or a core error.

use napi::sys::{self, napi_env, napi_status, napi_value};
use std::ptr;

use crate::error::{Code, Error as CoreError};

/// Why a walk stopped.
#[derive(Debug)]
pub enum Fault {
    /// A JS exception is pending in the environment.
    Js,
    Core(CoreError),
}

impl From<CoreError> for Fault {
    fn from(e: CoreError) -> Self {
        Fault::Core(e)
    }
}

pub type R<T> = std::result::Result<T, Fault>;

/// Turns a status into a [`Fault`], looking for a pending exception when the call failed.
#[inline]
pub fn check(env: napi_env, status: napi_status) -> R<()> {
    if status == sys::Status::napi_ok {
        return Ok(());
    }
    let mut pending = false;
    // SAFETY: `env` is the live environment of the current callback.
    unsafe { sys::napi_is_exception_pending(env, &mut pending) };
    if pending {
        Err(Fault::Js)
    } else {
        Err(Fault::Core(CoreError::new(
            Code::Internal,
            format!("Node-API call failed with status {status}"),
        )))
    }
}

/// Strings shorter than this many units are copied without asking their length first.
pub const SHORT: usize = 256;

/// A raw environment handle for the duration of one callback.
#[derive(Clone, Copy)]
pub struct Raw(pub napi_env);

// Every method below is a single Node-API call on `self.0`, the environment of the callback
// that is running now, with arguments that are live handles of that callback and valid
// out-pointers. That is the whole safety argument for each `unsafe` block in this impl.
impl Raw {
    #[inline]
    pub fn type_of(self, v: napi_value) -> R<i32> {
        let mut t = 0;
        // SAFETY: see the impl comment.
        check(self.0, unsafe { sys::napi_typeof(self.0, v, &mut t) })?;
        Ok(t)
    }

    #[inline]
    pub fn f64(self, v: napi_value) -> R<f64> {
        let mut n = 0.0;
        // SAFETY: see the impl comment.
        check(self.0, unsafe {
            sys::napi_get_value_double(self.0, v, &mut n)
        })?;
        Ok(n)
    }

    #[inline]
    pub fn bool(self, v: napi_value) -> R<bool> {
        let mut b = false;
        // SAFETY: see the impl comment.
        check(self.0, unsafe {
            sys::napi_get_value_bool(self.0, v, &mut b)
        })?;
        Ok(b)
    }

    /// Length of a JS string in UTF-16 units.
    #[inline]
    pub fn str_len(self, v: napi_value) -> R<usize> {
        let mut len = 0usize;
        // SAFETY: see the impl comment; a null buffer asks for the length only.
        check(self.0, unsafe {
            sys::napi_get_value_string_utf16(self.0, v, ptr::null_mut(), 0, &mut len)
        })?;
        Ok(len)
    }

    /// Appends the UTF-16 units of a JS string of known length `len` to `out`.
    #[inline]
    pub fn append_utf16(self, v: napi_value, len: usize, out: &mut Vec<u16>) -> R<()> {
        out.reserve(len + 1);
        let start = out.len();
        let mut copied = 0usize;
        // SAFETY: see the impl comment. The buffer is the vector's spare capacity, which has
        // room for `len + 1` units (Node-API writes a terminating NUL); `set_len` covers only
        // the `copied` units Node-API reports as written, all initialised by it.
        unsafe {
            let buf = out.as_mut_ptr().add(start);
            check(
                self.0,
                sys::napi_get_value_string_utf16(self.0, v, buf, len + 1, &mut copied),
            )?;
            out.set_len(start + copied.min(len));
        }
        Ok(())
    }

    /// Appends a JS string to `out` if it has fewer than [`SHORT`] units, in one call;
    /// returns false (appending nothing) for a longer string.
    #[inline]
    pub fn append_short_str(self, v: napi_value, out: &mut Vec<u16>) -> R<bool> {
        out.reserve(SHORT);
        let start = out.len();
        let mut copied = 0usize;
        // SAFETY: see the impl comment. The buffer is the vector's spare capacity of at least
        // SHORT units; Node-API writes at most SHORT - 1 units plus a NUL, and `set_len`
        // covers only the units it reports as written.
        unsafe {
            let buf = out.as_mut_ptr().add(start);
            check(
                self.0,
                sys::napi_get_value_string_utf16(self.0, v, buf, SHORT, &mut copied),
            )?;
            if copied < SHORT - 1 {
                out.set_len(start + copied);
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Appends a whole JS string to `out`.
    #[inline]
    pub fn append_str(self, v: napi_value, out: &mut Vec<u16>) -> R<()> {
        if !self.append_short_str(v, out)? {
            let len = self.str_len(v)?;
            self.append_utf16(v, len, out)?;
        }
        Ok(())
    }

    #[inline]
    pub fn element(self, obj: napi_value, i: u32) -> R<napi_value> {
        let mut out = ptr::null_mut();
        // SAFETY: see the impl comment.
        check(self.0, unsafe {
            sys::napi_get_element(self.0, obj, i, &mut out)
        })?;
        Ok(out)
    }

    #[inline]
    pub fn property(self, obj: napi_value, key: napi_value) -> R<napi_value> {
        let mut out = ptr::null_mut();
        // SAFETY: see the impl comment.
        check(self.0, unsafe {
            sys::napi_get_property(self.0, obj, key, &mut out)
        })?;
        Ok(out)
    }

    #[inline]
    pub fn is_array(self, v: napi_value) -> R<bool> {
        let mut b = false;
        // SAFETY: see the impl comment.
        check(self.0, unsafe { sys::napi_is_array(self.0, v, &mut b) })?;
        Ok(b)
    }

    #[inline]
    pub fn prototype(self, v: napi_value) -> R<napi_value> {
        let mut out = ptr::null_mut();
        // SAFETY: see the impl comment.
        check(self.0, unsafe {
            sys::napi_get_prototype(self.0, v, &mut out)
        })?;
        Ok(out)
    }

    #[inline]
    pub fn strict_equals(self, a: napi_value, b: napi_value) -> R<bool> {
        let mut eq = false;
        // SAFETY: see the impl comment.
        check(self.0, unsafe {
            sys::napi_strict_equals(self.0, a, b, &mut eq)
        })?;
        Ok(eq)
    }

    /// `array.length` of a real array.
    #[inline]
    pub fn array_len(self, v: napi_value) -> R<u32> {
        let mut n = 0u32;
        // SAFETY: see the impl comment.
        check(self.0, unsafe {
            sys::napi_get_array_length(self.0, v, &mut n)
        })?;
        Ok(n)
    }

    #[inline]
    pub fn call(self, recv: napi_value, f: napi_value, args: &[napi_value]) -> R<napi_value> {
        let mut out = ptr::null_mut();
        // SAFETY: see the impl comment; `args` points to `args.len()` live handles.
        check(self.0, unsafe {
            sys::napi_call_function(self.0, recv, f, args.len(), args.as_ptr(), &mut out)
        })?;
        Ok(out)
    }

    #[inline]
    pub fn to_number(self, v: napi_value) -> R<napi_value> {
        let mut out = ptr::null_mut();
        // SAFETY: see the impl comment.
        check(self.0, unsafe {
            sys::napi_coerce_to_number(self.0, v, &mut out)
        })?;
        Ok(out)
    }

    #[inline]
    pub fn to_string(self, v: napi_value) -> R<napi_value> {
        let mut out = ptr::null_mut();
        // SAFETY: see the impl comment.
        check(self.0, unsafe {
            sys::napi_coerce_to_string(self.0, v, &mut out)
        })?;
        Ok(out)
    }

    pub fn latin1(self, s: &str) -> R<napi_value> {
        let mut out = ptr::null_mut();
        // SAFETY: see the impl comment; `s` is valid for `s.len()` bytes.
        check(self.0, unsafe {
            sys::napi_create_string_utf8(self.0, s.as_ptr().cast(), s.len() as isize, &mut out)
        })?;
        Ok(out)
    }

    pub fn number(self, n: f64) -> R<napi_value> {
        let mut out = ptr::null_mut();
        // SAFETY: see the impl comment.
        check(self.0, unsafe {
            sys::napi_create_double(self.0, n, &mut out)
        })?;
        Ok(out)
    }

    pub fn undefined(self) -> R<napi_value> {
        let mut out = ptr::null_mut();
        // SAFETY: see the impl comment.
        check(self.0, unsafe { sys::napi_get_undefined(self.0, &mut out) })?;
        Ok(out)
    }

    /// `[v]`.
    pub fn array_of(self, v: napi_value) -> R<napi_value> {
        let mut out = ptr::null_mut();
        // SAFETY: see the impl comment.
        check(self.0, unsafe {
            sys::napi_create_array_with_length(self.0, 1, &mut out)
        })?;
        // SAFETY: see the impl comment.
        check(self.0, unsafe { sys::napi_set_element(self.0, out, 0, v) })?;
        Ok(out)
    }

    pub fn new_ref(self, v: napi_value) -> R<sys::napi_ref> {
        let mut out = ptr::null_mut();
        // SAFETY: see the impl comment.
        check(self.0, unsafe {
            sys::napi_create_reference(self.0, v, 1, &mut out)
        })?;
        Ok(out)
    }

    pub fn ref_value(self, r: sys::napi_ref) -> R<napi_value> {
        let mut out = ptr::null_mut();
        // SAFETY: see the impl comment; `r` is a reference this module created and has not
        // deleted yet.
        check(self.0, unsafe {
            sys::napi_get_reference_value(self.0, r, &mut out)
        })?;
        Ok(out)
    }

    pub fn delete_ref(self, r: sys::napi_ref) {
        // SAFETY: see the impl comment; each reference is deleted exactly once by its owner.
        unsafe { sys::napi_delete_reference(self.0, r) };
    }

    /// Takes the pending exception out of the environment (to reject a promise with it).
    pub fn take_exception(self) -> R<napi_value> {
        let mut out = ptr::null_mut();
        // SAFETY: see the impl comment.
        check(self.0, unsafe {
            sys::napi_get_and_clear_last_exception(self.0, &mut out)
        })?;
        Ok(out)
    }
}

/// A handle returned as is from a `#[napi]` function or closure.
pub struct RawValue(pub napi_value);

impl napi::bindgen_prelude::ToNapiValue for RawValue {
    unsafe fn to_napi_value(_env: napi_env, val: Self) -> napi::Result<napi_value> {
        Ok(val.0)
    }
}

impl napi::bindgen_prelude::TypeName for RawValue {
    fn type_name() -> &'static str {
        "unknown"
    }

    fn value_type() -> napi::ValueType {
        napi::ValueType::Unknown
    }
}

impl Raw {
    /// A new object.
    pub fn object(self) -> R<napi_value> {
        let mut out = ptr::null_mut();
        // SAFETY: see the impl comment above.
        check(self.0, unsafe { sys::napi_create_object(self.0, &mut out) })?;
        Ok(out)
    }

    pub fn set(self, obj: napi_value, name: &std::ffi::CStr, v: napi_value) -> R<()> {
        // SAFETY: live environment and handles; `name` is NUL-terminated.
        check(self.0, unsafe {
            sys::napi_set_named_property(self.0, obj, name.as_ptr(), v)
        })
    }

    pub fn boolean(self, b: bool) -> R<napi_value> {
        let mut out = ptr::null_mut();
        // SAFETY: see the impl comment above.
        check(self.0, unsafe {
            sys::napi_get_boolean(self.0, b, &mut out)
        })?;
        Ok(out)
    }

    /// A promise already settled with `v` (fulfilled when `ok`, else rejected).
    pub fn settled(self, ok: bool, v: napi_value) -> R<napi_value> {
        let mut deferred = ptr::null_mut();
        let mut promise = ptr::null_mut();
        // SAFETY: live environment; the deferred is settled exactly once, right after.
        unsafe {
            check(
                self.0,
                sys::napi_create_promise(self.0, &mut deferred, &mut promise),
            )?;
            if ok {
                check(self.0, sys::napi_resolve_deferred(self.0, deferred, v))?;
            } else {
                check(self.0, sys::napi_reject_deferred(self.0, deferred, v))?;
            }
        }
        Ok(promise)
    }
}

/// The napi error for a fault: a pending JS exception stays pending (napi-rs rethrows
/// nothing), a core error becomes its JS error.
pub fn fault_to_napi(env: &napi::Env, f: Fault) -> napi::Error {
    match f {
        Fault::Js => napi::Error::new(napi::Status::PendingException, String::new()),
        Fault::Core(e) => crate::js::error::to_napi(env, &e),
    }
}
