//! The one error type of the core. Every error has a stable `code` (`ERR_*`), a message a
//! person can act on, and the class JavaScript would use for it (`TypeError`, `RangeError`
//! or plain `Error`). The binding layer (`src/js/error.rs`) maps it to a JS error once.

use std::fmt;

/// The JavaScript class an error becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsClass {
    Error,
    TypeError,
    RangeError,
}

/// Stable error codes. Adding one means adding it to [`Code::as_str`] and [`Code::class`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// A value refers to itself (JSON.stringify: "Converting circular structure to JSON").
    Circular,
    /// A BigInt was met (JSON.stringify: "Do not know how to serialize a BigInt").
    BigInt,
    /// The top-level value has no JSON form (`undefined`, a function, a symbol).
    NotSerializable,
    /// The serialized value is longer than `maxSize` and truncation is off.
    MaxSize,
    /// An option has a wrong type or value; the message names the option.
    InvalidOption,
    /// The value nests deeper than the serializer allows.
    Depth,
    /// A string longer than a JS string can be.
    StringTooLong,
    /// A cache key that is empty, not a string or too long.
    InvalidKey,
    /// An argument of the wrong type (not an option, not a key).
    InvalidArgument,
    /// A loader did not settle within `loaderTimeoutMs`.
    LoaderTimeout,
    /// The rate limiter refused a loader call within `maxWaitMs`.
    RateLimited,
    /// A model name the token counter does not know.
    UnknownModel,
    /// An encoding name the token counter does not know.
    UnknownEncoding,
    /// A distributed lock expired before its holder wrote.
    LockLost,
    /// A distributed lock stayed with another holder for the whole wait.
    LockTimeout,
    /// The object was closed.
    Closed,
    /// A failure inside the addon that is not the caller's doing.
    Internal,
}

impl Code {
    /// The `code` string seen from JavaScript.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Circular => "ERR_CIRCULAR",
            Code::BigInt => "ERR_BIGINT",
            Code::NotSerializable => "ERR_NOT_SERIALIZABLE",
            Code::MaxSize => "ERR_MAX_SIZE",
            Code::InvalidOption => "ERR_INVALID_OPTION",
            Code::Depth => "ERR_DEPTH",
            Code::StringTooLong => "ERR_STRING_TOO_LONG",
            Code::InvalidKey => "ERR_INVALID_KEY",
            Code::InvalidArgument => "ERR_INVALID_ARG",
            Code::LoaderTimeout => "ERR_LOADER_TIMEOUT",
            Code::RateLimited => "ERR_RATE_LIMITED",
            Code::UnknownModel => "ERR_UNKNOWN_MODEL",
            Code::UnknownEncoding => "ERR_UNKNOWN_ENCODING",
            Code::LockLost => "ERR_LOCK_LOST",
            Code::LockTimeout => "ERR_LOCK_TIMEOUT",
            Code::Closed => "ERR_CLOSED",
            Code::Internal => "ERR_INTERNAL",
        }
    }

    /// The JavaScript class JS itself would throw for this kind of failure.
    pub fn class(self) -> JsClass {
        match self {
            Code::Circular
            | Code::BigInt
            | Code::NotSerializable
            | Code::InvalidKey
            | Code::InvalidArgument => JsClass::TypeError,
            Code::MaxSize
            | Code::InvalidOption
            | Code::Depth
            | Code::StringTooLong
            | Code::UnknownModel
            | Code::UnknownEncoding => JsClass::RangeError,
            Code::LoaderTimeout
            | Code::RateLimited
            | Code::LockLost
            | Code::LockTimeout
            | Code::Closed
            | Code::Internal => JsClass::Error,
        }
    }
}

/// An error of the core: a code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: Code,
    pub message: String,
}

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
        }
    }

    /// `ERR_INVALID_OPTION` naming the option.
    pub fn invalid_option(option: &str, why: impl fmt::Display) -> Self {
        Error::new(Code::InvalidOption, format!("option `{option}` {why}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code.as_str())
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_prefixed() {
        for c in [
            Code::Circular,
            Code::BigInt,
            Code::NotSerializable,
            Code::MaxSize,
            Code::InvalidOption,
            Code::Depth,
            Code::StringTooLong,
            Code::InvalidKey,
            Code::InvalidArgument,
            Code::LoaderTimeout,
            Code::RateLimited,
            Code::UnknownModel,
            Code::UnknownEncoding,
            Code::LockLost,
            Code::LockTimeout,
            Code::Closed,
            Code::Internal,
        ] {
            assert!(c.as_str().starts_with("ERR_"), "{c:?}");
        }
        assert_eq!(Code::Circular.class(), JsClass::TypeError);
        assert_eq!(Code::MaxSize.class(), JsClass::RangeError);
        let e = Error::invalid_option("maxSize", "must be a positive integer, got -1");
        assert_eq!(e.code.as_str(), "ERR_INVALID_OPTION");
        assert!(e.message.contains("maxSize"));
    }
}
