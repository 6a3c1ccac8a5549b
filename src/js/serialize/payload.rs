//! `SerializedPayload`: JSON text kept in Rust as UTF-8, for consumers that are not JS. The
//! cache stores values in Redis from it without the text ever becoming a JS string (which
//! would be copied and transcoded on the main thread on its way back into Rust).

use napi_derive::napi;
use std::sync::Arc;

/// JSON text held natively as UTF-8 (from `serializeToPayload`). Low-level: used by the
/// cache to write values to Redis from Rust.
#[napi]
pub struct SerializedPayload {
    bytes: Arc<Vec<u8>>,
    length: usize,
    truncated: bool,
}

impl SerializedPayload {
    pub fn new(bytes: Arc<Vec<u8>>, length: usize, truncated: bool) -> Self {
        SerializedPayload {
            bytes,
            length,
            truncated,
        }
    }

    /// The UTF-8 bytes, shared (no copy).
    pub fn shared_bytes(&self) -> Arc<Vec<u8>> {
        Arc::clone(&self.bytes)
    }
}

#[napi]
impl SerializedPayload {
    /// Length of the text in UTF-16 code units: what `JSON.stringify(value).length` is.
    #[napi(getter)]
    pub fn length(&self) -> f64 {
        self.length as f64
    }

    /// Length of the text in UTF-8 bytes.
    #[napi(getter)]
    pub fn bytes(&self) -> f64 {
        self.bytes.len() as f64
    }

    /// True when the text was cut to `maxSize`.
    #[napi(getter)]
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// The text as a JS string (a copy; only for callers that need it).
    #[napi]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}
