//! Rust-owned text handed to V8 as a JS string. Above a size threshold, and where the
//! runtime exports `node_api_create_external_string_latin1` / `_utf16` (Node >= 20.4, 18.18),
//! V8 takes the buffer as an external string: no copy and no transcoding on the main thread;
//! the buffer goes back to `buffer_pool` when V8 collects the string. Elsewhere, and for short
//! texts, the text is copied into the JS heap as usual and the buffer goes back at once.

use napi::sys::{self, napi_env, napi_value};
use std::ffi::c_void;
use std::sync::OnceLock;

use crate::buffer_pool::{self, Elem};
use crate::js::raw::{check, R};
use crate::serialize::Text;

/// Below this many units a copy is cheaper than an external string's bookkeeping.
const EXTERNAL_MIN_UNITS: usize = 32 * 1024;

type ExternalFn<T> = unsafe extern "C" fn(
    napi_env,
    *const T,
    isize,
    sys::napi_finalize,
    *mut c_void,
    *mut napi_value,
    *mut bool,
) -> sys::napi_status;

struct Externals {
    latin1: Option<ExternalFn<u8>>,
    utf16: Option<ExternalFn<u16>>,
}

fn externals() -> &'static Externals {
    static E: OnceLock<Externals> = OnceLock::new();
    E.get_or_init(|| {
        // Tests (and anyone who needs to) can force the copying fallback.
        if std::env::var_os("AGENT_CORE_NATIVE_NO_EXTERNAL_STRINGS").is_some() {
            return Externals {
                latin1: None,
                utf16: None,
            };
        }
        // SAFETY: looking up symbols of the running process (the Node executable). Both
        // names, when present, are Node-API functions with exactly the `ExternalFn`
        // signature (node_api.h); the process outlives every use.
        unsafe {
            let this = libloading::os::unix::Library::this();
            let latin1 = this
                .get::<ExternalFn<u8>>(b"node_api_create_external_string_latin1\0")
                .ok()
                .map(|s| *s);
            let utf16 = this
                .get::<ExternalFn<u16>>(b"node_api_create_external_string_utf16\0")
                .ok()
                .map(|s| *s);
            Externals { latin1, utf16 }
        }
    })
}

unsafe extern "C" fn give_back_boxed<T: Elem>(
    _env: napi_env,
    _data: *mut c_void,
    hint: *mut c_void,
) {
    // SAFETY: `hint` is the `Box<Vec<T>>` leaked in `external` for this string, and V8 calls
    // the finalizer once, when it no longer needs the buffer.
    let text = unsafe { Box::from_raw(hint.cast::<Vec<T>>()) };
    buffer_pool::give_back(*text);
}

fn external<T: Elem>(env: napi_env, text: Vec<T>, f: ExternalFn<T>) -> R<napi_value> {
    let boxed = Box::new(text);
    let ptr = boxed.as_ptr();
    let len = boxed.len() as isize;
    let hint = Box::into_raw(boxed);
    let mut out = std::ptr::null_mut();
    let mut copied = false;
    // SAFETY: `ptr`/`len` describe the vector owned by `hint`, which stays alive (its heap
    // buffer does not move) until the finalizer frees it, or until we free it below when V8
    // copied the text instead or the call failed.
    let status = unsafe {
        f(
            env,
            ptr,
            len,
            Some(give_back_boxed::<T>),
            hint.cast(),
            &mut out,
            &mut copied,
        )
    };
    if status != sys::Status::napi_ok || copied {
        // SAFETY: the finalizer is not called in these cases, so we still own `hint`.
        let text = unsafe { Box::from_raw(hint) };
        buffer_pool::give_back(*text);
    }
    check(env, status)?;
    Ok(out)
}

/// A JS string from Latin-1 bytes (every byte one character; ASCII is a subset).
pub fn latin1_string(env: napi_env, text: Vec<u8>) -> R<napi_value> {
    if text.len() >= EXTERNAL_MIN_UNITS {
        if let Some(f) = externals().latin1 {
            return external(env, text, f);
        }
    }
    let mut out = std::ptr::null_mut();
    // SAFETY: `text` is valid for `text.len()` bytes during the call, which copies it.
    check(env, unsafe {
        sys::napi_create_string_latin1(env, text.as_ptr().cast(), text.len() as isize, &mut out)
    })?;
    buffer_pool::give_back(text);
    Ok(out)
}

/// A JS string from UTF-16 code units.
pub fn utf16_string(env: napi_env, text: Vec<u16>) -> R<napi_value> {
    if text.len() >= EXTERNAL_MIN_UNITS {
        if let Some(f) = externals().utf16 {
            return external(env, text, f);
        }
    }
    let mut out = std::ptr::null_mut();
    // SAFETY: `text` is valid for `text.len()` units during the call, which copies it.
    check(env, unsafe {
        sys::napi_create_string_utf16(env, text.as_ptr(), text.len() as isize, &mut out)
    })?;
    buffer_pool::give_back(text);
    Ok(out)
}

/// A JS string from rendered text, in whichever representation it has (UTF-8 is copied and
/// transcoded by V8; the other two can be handed over without copying).
pub fn text_string(env: napi_env, text: Text) -> R<napi_value> {
    match text {
        Text::Latin1(b) => latin1_string(env, b),
        Text::Utf16(u) => utf16_string(env, u),
        Text::Utf8(b) => {
            let mut out = std::ptr::null_mut();
            // SAFETY: `b` is valid for `b.len()` bytes during the call, which copies it.
            check(env, unsafe {
                sys::napi_create_string_utf8(env, b.as_ptr().cast(), b.len() as isize, &mut out)
            })?;
            Ok(out)
        }
    }
}
