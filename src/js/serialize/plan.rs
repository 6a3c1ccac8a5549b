//! What a serialization produces and how it is handed back: the checked options, the text's
//! target (a JS string, or UTF-8 kept in Rust), and the delivery of the rendered text.

use napi::bindgen_prelude::ToNapiValue;
use napi::sys::napi_value;
use std::sync::Arc;

use super::payload::SerializedPayload;
use crate::js::raw::{Fault, Raw, R};
use crate::js::strings::text_string;
use crate::serialize::{RenderConfig, RenderedText, SerializeOptions, Target, Text};

/// One serialization's settings.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub opts: SerializeOptions,
    pub target: Target,
}

impl Plan {
    pub fn render_config(&self) -> RenderConfig {
        self.opts.render_config()
    }

    /// Adds what is asked for beyond the text (the token count); CPU work on bytes, run
    /// where the text was rendered (`parallel`: the synchronous call, which waits anyway).
    pub fn complete(&self, mut r: RenderedText, parallel: bool) -> RenderedText {
        if let Some(enc) = self.opts.count_tokens {
            r.count_tokens(enc, parallel);
        }
        r
    }

    /// Hands the rendered text to JS: a `SerializationResult` object, or a
    /// `SerializedPayload` holding UTF-8 bytes that never become a JS string.
    pub fn deliver(&self, raw: Raw, r: RenderedText) -> R<napi_value> {
        match (self.target, r.text) {
            (Target::Utf8, Text::Utf8(bytes)) => {
                let p = SerializedPayload::new(Arc::new(bytes), r.len, r.truncated);
                // SAFETY: `raw.0` is the environment of the current callback.
                unsafe { ToNapiValue::to_napi_value(raw.0, p) }.map_err(|e| {
                    Fault::Core(crate::error::Error::new(
                        crate::error::Code::Internal,
                        e.reason,
                    ))
                })
            }
            (_, text) => {
                let s = text_string(raw.0, text)?;
                let o = raw.object()?;
                raw.set(o, c"serialized", s)?;
                raw.set(o, c"truncated", raw.boolean(r.truncated)?)?;
                raw.set(o, c"bytes", raw.number(r.utf8_len as f64)?)?;
                if let Some(t) = r.tokens {
                    raw.set(o, c"tokens", raw.number(t as f64)?)?;
                }
                Ok(o)
            }
        }
    }
}
