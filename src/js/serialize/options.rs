//! `SerializeOptions` from JS, checked into core [`SerializeOptions`](crate::serialize::SerializeOptions).

use napi::sys::{self, napi_value, ValueType as T};
use napi_derive::napi;

use crate::error::Error as CoreError;
use crate::js::raw::{check, Fault, Raw, R};
use crate::serialize::{Indent, SerializeOptions as Core};
use crate::tokens::Encoding;

/// Options of `serialize` / `serializeAsync`.
// Declared for the generated TypeScript types; values are built and read by hand.
#[allow(dead_code)]
#[napi(object)]
pub struct SerializeOptions {
    /// Limit on `serialized.length` (UTF-16 code units, as JS measures strings). A positive
    /// integer of at least 2.
    /// @default undefined (no limit)
    pub max_size: Option<f64>,
    /// With `maxSize`: cut an oversized result to valid JSON of at most `maxSize` (true) or
    /// reject with `RangeError` `ERR_MAX_SIZE` (false).
    /// @default true when maxSize is set
    pub truncate: Option<bool>,
    /// Indentation as JSON.stringify's third argument: `true` = 2 spaces, a number = that
    /// many spaces (above 10 counts as 10).
    /// @default false
    #[napi(ts_type = "boolean | number")]
    pub pretty: Option<bool>,
    /// Also count the tokens of the serialized text (exact, as `TokenEstimator.estimate`):
    /// `true` = `cl100k_base`, or the encoding to use. The count is in `tokens`.
    /// @default false
    #[napi(ts_type = "boolean | Encoding")]
    pub count_tokens: Option<bool>,
}

fn get(raw: Raw, obj: napi_value, name: &std::ffi::CStr) -> R<napi_value> {
    let mut out = std::ptr::null_mut();
    // SAFETY: live environment and handle of the current callback; `name` is NUL-terminated.
    check(raw.0, unsafe {
        sys::napi_get_named_property(raw.0, obj, name.as_ptr(), &mut out)
    })?;
    Ok(out)
}

fn describe(raw: Raw, v: napi_value) -> String {
    match raw.type_of(v) {
        Ok(T::napi_string) => {
            let mut u = Vec::new();
            let len = raw.str_len(v).unwrap_or(0).min(40);
            let _ = raw.append_utf16(v, len, &mut u);
            format!("the string {:?}", String::from_utf16_lossy(&u))
        }
        Ok(T::napi_number) => format!("{}", raw.f64(v).unwrap_or(f64::NAN)),
        Ok(T::napi_boolean) => "a boolean".into(),
        Ok(T::napi_null) => "null".into(),
        Ok(T::napi_object) => "an object".into(),
        Ok(T::napi_function) => "a function".into(),
        Ok(T::napi_bigint) => "a BigInt".into(),
        Ok(T::napi_symbol) => "a symbol".into(),
        _ => "an unsupported value".into(),
    }
}

fn bad(option: &str, what: &str, raw: Raw, v: napi_value) -> Fault {
    Fault::Core(CoreError::invalid_option(
        option,
        format!("must be {what}, got {}", describe(raw, v)),
    ))
}

/// Reads and checks the options argument (`undefined`/`null` = defaults).
pub fn parse(raw: Raw, options: Option<napi_value>) -> R<Core> {
    let Some(o) = options else {
        return Ok(Core::default());
    };
    match raw.type_of(o)? {
        T::napi_undefined | T::napi_null => return Ok(Core::default()),
        T::napi_object => {}
        _ => {
            return Err(Fault::Core(CoreError::invalid_option(
                "options",
                format!("must be an object, got {}", describe(raw, o)),
            )))
        }
    }
    let v = get(raw, o, c"maxSize")?;
    let max_size = match raw.type_of(v)? {
        T::napi_undefined => None,
        T::napi_number => Some(raw.f64(v)?),
        _ => return Err(bad("maxSize", "a positive integer", raw, v)),
    };
    let v = get(raw, o, c"truncate")?;
    let truncate = match raw.type_of(v)? {
        T::napi_undefined => None,
        T::napi_boolean => Some(raw.bool(v)?),
        _ => return Err(bad("truncate", "a boolean", raw, v)),
    };
    let v = get(raw, o, c"pretty")?;
    let indent = match raw.type_of(v)? {
        T::napi_undefined => Indent(0),
        T::napi_boolean => Indent::from_bool(raw.bool(v)?),
        T::napi_number => Indent::from_number(raw.f64(v)?)?,
        _ => return Err(bad("pretty", "a boolean or a number from 0 to 10", raw, v)),
    };
    let v = get(raw, o, c"countTokens")?;
    let count_tokens = match raw.type_of(v)? {
        T::napi_undefined => None,
        T::napi_boolean => raw.bool(v)?.then_some(Encoding::Cl100kBase),
        T::napi_string => {
            let mut u = Vec::new();
            raw.append_str(v, &mut u)?;
            let name = String::from_utf16_lossy(&u);
            Some(Encoding::parse(&name).map_err(|_| {
                bad(
                    "countTokens",
                    "true or an encoding (cl100k_base, o200k_base, p50k_base, r50k_base)",
                    raw,
                    v,
                )
            })?)
        }
        _ => return Err(bad("countTokens", "a boolean or an encoding name", raw, v)),
    };
    let mut core = Core::new(max_size, truncate, indent)?;
    core.count_tokens = count_tokens;
    Ok(core)
}
