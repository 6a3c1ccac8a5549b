//! `TokenEstimator`: exact token counts for OpenAI encodings (see `crate::tokens`).

mod chat;
mod text;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::js::error::js_error_value;
use crate::js::raw::{fault_to_napi, Fault, Raw, RawValue, R};
use crate::tokens::{count_chat, encoding_for_model, warm_in_background, Encoding};

use text::{count_text, read_name, read_utf8, spawn_count, string_len, to_u32, Text};

/// An OpenAI BPE encoding, named as in tiktoken. (Declared for the TypeScript types; the
/// functions read and return encoding names as plain strings.)
// The variants mirror the core's `Encoding` (whose names end in `Base`, as tiktoken's do).
#[allow(clippy::enum_variant_names)]
#[napi(string_enum, js_name = "Encoding")]
pub enum EncodingName {
    #[napi(value = "cl100k_base")]
    Cl100kBase,
    #[napi(value = "o200k_base")]
    O200kBase,
    #[napi(value = "p50k_base")]
    P50kBase,
    #[napi(value = "r50k_base")]
    R50kBase,
}

/// The encoding `estimate` / `estimateAsync` use when none is given (as the serializer's
/// `countTokens: true`).
const DEFAULT_ENCODING: Encoding = Encoding::Cl100kBase;
/// The model `countChat` counts for when none is given.
const DEFAULT_MODEL: &str = "gpt-4o";

/// The encoding argument: `undefined` / `null` for the default, else an encoding name.
fn encoding_arg(raw: Raw, v: Option<Unknown>, what: &str) -> R<Encoding> {
    let Some(v) = v else {
        return Ok(DEFAULT_ENCODING);
    };
    match v.get_type() {
        Ok(ValueType::Undefined | ValueType::Null) => Ok(DEFAULT_ENCODING),
        _ => Ok(Encoding::parse(&read_name(raw, v.raw(), what)?)?),
    }
}

/// Exact token counts for OpenAI's BPE encodings, identical to OpenAI's tiktoken
/// (`encode_ordinary`: text that looks like a special token, such as `<|endoftext|>`, counts
/// as ordinary text). The tables ship inside the addon; nothing is downloaded. All four are
/// loaded on a background thread when the addon loads (set
/// `AGENT_CORE_NATIVE_PRELOAD_ENCODINGS` to a comma-separated list, or to `none`, to load
/// fewer; an encoding not preloaded loads on first use, in tens of milliseconds).
///
/// Strings are counted as UTF-8, with lone surrogates replaced by U+FFFD (as `TextEncoder`
/// does).
#[napi]
pub struct TokenEstimator {}

#[napi]
impl TokenEstimator {
    /// Number of tokens of `text` in `encoding`, synchronously. A text of 128 KiB or more is
    /// cut at points where the count splits exactly and counted on all CPUs.
    ///
    /// Throws `TypeError` `ERR_INVALID_ARG` when `text` is not a string and `RangeError`
    /// `ERR_UNKNOWN_ENCODING` for an unknown encoding name.
    /// @param text - The text to count.
    /// @param encoding - An encoding name (default `'cl100k_base'`).
    #[napi(ts_args_type = "text: string, encoding?: Encoding")]
    pub fn estimate(env: Env, text: Unknown, encoding: Option<Unknown>) -> Result<u32> {
        let raw = Raw(env.raw());
        let run = || -> R<u32> {
            let units = string_len(raw, text.raw(), "TokenEstimator.estimate: `text`")?;
            let enc = encoding_arg(raw, encoding, "TokenEstimator.estimate: `encoding`")?;
            let bytes = read_utf8(raw, text.raw(), units)?;
            let s = String::from_utf8(bytes).map_err(|_| {
                crate::error::Error::new(
                    crate::error::Code::Internal,
                    "Node-API returned invalid UTF-8",
                )
            })?;
            Ok(to_u32(count_text(&s, enc, true)?)?)
        };
        run().map_err(|f| fault_to_napi(&env, f))
    }

    /// Number of tokens of `text` in `encoding`, counted off the main thread (texts of 64 Ki
    /// units and more on a low-priority background thread): the same count as `estimate`.
    /// The event loop only pays for reading the string out of V8; a string above 256 Ki
    /// UTF-16 units is read in slices across event-loop turns, sharing
    /// the per-turn main-thread budget of `serializeAsync` (at most 0.5 ms per turn in all).
    ///
    /// Rejects with `TypeError` `ERR_INVALID_ARG` when `text` is not a string and
    /// `RangeError` `ERR_UNKNOWN_ENCODING` for an unknown encoding name.
    /// @param text - The text to count.
    /// @param encoding - An encoding name (default `'cl100k_base'`).
    #[napi(
        ts_args_type = "text: string, encoding?: Encoding",
        ts_return_type = "Promise<number>"
    )]
    pub fn estimate_async(env: Env, text: Unknown, encoding: Option<Unknown>) -> Result<RawValue> {
        let raw = Raw(env.raw());
        let start = || -> R<napi::sys::napi_value> {
            let units = string_len(raw, text.raw(), "TokenEstimator.estimateAsync: `text`")?;
            let enc = encoding_arg(raw, encoding, "TokenEstimator.estimateAsync: `encoding`")?;
            if units <= text::INLINE_UNITS {
                let bytes = read_utf8(raw, text.raw(), units)?;
                spawn_count(&env, Text::Utf8(bytes), enc)
            } else {
                text::count_long_async(&env, text.raw(), units, enc)
            }
        };
        match start() {
            Ok(p) => Ok(RawValue(p)),
            Err(Fault::Core(e)) => {
                // A promise-returning call reports bad arguments by rejecting.
                let err = js_error_value(&env, &e)?;
                raw.settled(false, err.raw())
                    .map(RawValue)
                    .map_err(|f| fault_to_napi(&env, f))
            }
            Err(f) => Err(fault_to_napi(&env, f)),
        }
    }

    /// The encoding of an OpenAI model: OpenAI tiktoken's own table, with dated and sized
    /// variants (`'gpt-4o'`, `'gpt-4o-mini'`, `'gpt-4o-2024-08-06'`, `'gpt-4.1'`, `'o1'`,
    /// `'o3'`, `'o4-mini'`, `'gpt-5'` ... -> `'o200k_base'`; `'gpt-4'`, `'gpt-3.5-turbo'` ->
    /// `'cl100k_base'`; `'text-davinci-003'` -> `'p50k_base'`; `'davinci'` -> `'r50k_base'`).
    ///
    /// Throws `RangeError` `ERR_UNKNOWN_MODEL` naming an unknown model, `TypeError`
    /// `ERR_INVALID_ARG` when `model` is not a string.
    #[napi(ts_args_type = "model: string", ts_return_type = "Encoding")]
    pub fn encoding_for_model(env: Env, model: Unknown) -> Result<&'static str> {
        let raw = Raw(env.raw());
        let run = || -> R<&'static str> {
            let name = read_name(raw, model.raw(), "TokenEstimator.encodingForModel: `model`")?;
            Ok(encoding_for_model(&name)?.as_str())
        };
        run().map_err(|f| fault_to_napi(&env, f))
    }

    /// Tokens of a chat request: the messages' text plus the chat format's overhead, equal
    /// to the length of gpt-tokenizer's `encodeChat(messages, model)` (for messages without
    /// tool calls). With `T(s)` the token count of `s` and `header = name ?? role`:
    /// - most models (gpt-4, gpt-4o, gpt-4.1, gpt-5, o1, o3, o4-mini, or an encoding name):
    ///   `sum(3 + T(header) + T(content)) + 3`;
    /// - gpt-3.5-*: `sum(4 + T(header) + T(content)) + 3`;
    /// - gpt-oss-* (Harmony format): `sum(3 + T(header) + T(content)) + 2`;
    ///
    /// plus `T(name) + T(arguments) + 3` per tool call (an estimate).
    ///
    /// `model` is a model name or an encoding name (for a model this table does not know).
    /// Throws `RangeError` `ERR_UNKNOWN_MODEL` for an unknown model and `TypeError`
    /// `ERR_INVALID_ARG` for malformed messages (the message says which and why).
    /// @param messages - The chat messages.
    /// @param model - A model or encoding name (default `'gpt-4o'`).
    #[napi(ts_args_type = "messages: ChatMessage[], model?: string")]
    pub fn count_chat(env: Env, messages: Unknown, model: Option<Unknown>) -> Result<u32> {
        let raw = Raw(env.raw());
        let run = || -> R<u32> {
            let msgs = chat::messages(raw, messages.raw())?;
            let model = match model {
                Some(m) if !matches!(m.get_type(), Ok(ValueType::Undefined | ValueType::Null)) => {
                    read_name(raw, m.raw(), "TokenEstimator.countChat: `model`")?
                }
                _ => DEFAULT_MODEL.to_owned(),
            };
            let n = std::panic::catch_unwind(|| count_chat(&msgs, &model)).map_err(|_| {
                crate::error::Error::new(
                    crate::error::Code::Internal,
                    "the token counter failed unexpectedly",
                )
            })??;
            Ok(to_u32(n)?)
        };
        run().map_err(|f| fault_to_napi(&env, f))
    }
}

/// The encodings to load ahead of first use: `AGENT_CORE_NATIVE_PRELOAD_ENCODINGS` (a
/// comma-separated list, or `none`), all four by default. Unknown names are skipped.
fn preload_list() -> Vec<Encoding> {
    match std::env::var("AGENT_CORE_NATIVE_PRELOAD_ENCODINGS") {
        Err(_) => Encoding::ALL.to_vec(),
        Ok(list) => list
            .split(',')
            .filter_map(|name| Encoding::parse(name.trim()).ok())
            .collect(),
    }
}

/// Called once when the addon loads: starts loading the token tables on a background thread
/// so that the first count does not stall the event loop. If the thread cannot be started,
/// tables load on first use instead.
pub fn on_load() {
    let list = preload_list();
    if !list.is_empty() {
        let _ = warm_in_background(list);
    }
}
