//! The one mapping from core errors to JS errors: the right class (`Error`, `TypeError`,
//! `RangeError`) with a stable `code` property.

use napi::bindgen_prelude::*;
use napi::sys;

use crate::error::{Error as CoreError, JsClass};

/// Builds the JS error object for a core error.
pub fn js_error_value(env: &Env, e: &CoreError) -> Result<Unknown<'static>> {
    let code = env.create_string(e.code.as_str())?;
    let msg = env.create_string(&e.message)?;
    let mut out = std::ptr::null_mut();
    // SAFETY: `env` is the live environment of this call, `code` and `msg` are JS strings
    // created in it just above, and `out` is a valid out-pointer.
    let status = unsafe {
        match e.code.class() {
            JsClass::TypeError => {
                sys::napi_create_type_error(env.raw(), code.raw(), msg.raw(), &mut out)
            }
            JsClass::RangeError => {
                sys::napi_create_range_error(env.raw(), code.raw(), msg.raw(), &mut out)
            }
            JsClass::Error => sys::napi_create_error(env.raw(), code.raw(), msg.raw(), &mut out),
        }
    };
    if status != sys::Status::napi_ok || out.is_null() {
        return Err(napi::Error::new(Status::GenericFailure, e.message.clone()));
    }
    // SAFETY: `out` is a JS value just created in `env`.
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), out) })
}

/// A napi error that carries the JS error object, so that throwing or rejecting with it
/// surfaces exactly that object (class and `code` included).
pub fn to_napi(env: &Env, e: &CoreError) -> napi::Error {
    match js_error_value(env, e) {
        Ok(v) => napi::Error::from(v),
        Err(err) => err,
    }
}

/// A task's core error, carried from `compute` (a worker thread, where no JS error can be
/// made) to `reject` (the main thread), where it becomes the coded JS error. napi-rs hands
/// `reject` only a plain error, which would lose the class and `code`.
#[derive(Default)]
pub struct TaskError(Option<CoreError>);

impl TaskError {
    /// `compute`'s result: a core error is kept for `reject`.
    pub fn keep<T>(&mut self, r: std::result::Result<T, CoreError>) -> Result<T> {
        r.map_err(|e| {
            let msg = e.message.clone();
            self.0 = Some(e);
            napi::Error::new(Status::GenericFailure, msg)
        })
    }

    /// `reject`'s error: the kept core error as its JS error, else `err` as it is.
    pub fn reject<T>(&mut self, env: &Env, err: napi::Error) -> Result<T> {
        match self.0.take() {
            Some(e) => Err(to_napi(env, &e)),
            None => Err(err),
        }
    }
}
