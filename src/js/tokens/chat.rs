//! `countChat`'s argument types (declared for TypeScript and converted by napi-rs) and their
//! conversion into the core's chat messages.

use napi::bindgen_prelude::*;
use napi::sys::napi_value;
use napi_derive::napi;

use crate::error::{Code, Error as CoreError};
use crate::js::raw::{Fault, Raw, R};
use crate::tokens::{ChatMessage as CoreMessage, ToolCall as CoreToolCall};

/// One chat message, as the OpenAI Chat Completions API takes it.
#[napi(object)]
pub struct ChatMessage {
    /// `'system'`, `'developer'`, `'user'`, `'assistant'`, `'tool'`, ...
    pub role: String,
    /// The text, or an array of text parts (counted joined, without separator). `null` or
    /// absent counts as no text (an assistant message that only calls tools).
    #[napi(ts_type = "string | ChatTextPart[] | null")]
    pub content: Option<Either3<String, Vec<ChatTextPart>, Null>>,
    /// Sender name; counted instead of the role, as gpt-tokenizer's `encodeChat` does.
    pub name: Option<String>,
    /// Tool calls of an assistant message: each adds its function's name and arguments
    /// and 3 tokens of framing (an estimate: OpenAI does not publish this rendering).
    #[napi(js_name = "tool_calls")]
    pub tool_calls: Option<Vec<ChatToolCall>>,
}

/// A text part of a message's content. Other parts (images, audio) cannot be counted from
/// the message alone and are refused with `ERR_INVALID_ARG`.
#[napi(object)]
pub struct ChatTextPart {
    #[napi(js_name = "type", ts_type = "'text'")]
    pub kind: String,
    pub text: Option<String>,
}

/// A tool call as the Chat Completions API returns it.
#[napi(object)]
pub struct ChatToolCall {
    pub id: Option<String>,
    #[napi(js_name = "type", ts_type = "'function'")]
    pub kind: Option<String>,
    pub function: ChatFunctionCall,
}

/// The function a tool call invokes: its name and its arguments as JSON text.
#[napi(object)]
pub struct ChatFunctionCall {
    pub name: String,
    pub arguments: String,
}

fn exception_pending(raw: Raw) -> bool {
    let mut pending = false;
    // SAFETY: `raw.0` is the live environment of the current callback.
    unsafe { napi::sys::napi_is_exception_pending(raw.0, &mut pending) };
    pending
}

fn bad(msg: String) -> Fault {
    Fault::Core(CoreError::new(Code::InvalidArgument, msg))
}

fn convert(i: usize, m: ChatMessage) -> R<CoreMessage> {
    let content = match m.content {
        None | Some(Either3::C(Null)) => String::new(),
        Some(Either3::A(s)) => s,
        Some(Either3::B(parts)) => {
            let mut s = String::new();
            for (j, p) in parts.into_iter().enumerate() {
                match (p.kind.as_str(), p.text) {
                    ("text", Some(t)) => s.push_str(&t),
                    ("text", None) => {
                        return Err(bad(format!(
                            "countChat: messages[{i}].content[{j}] is a text part without `text`"
                        )))
                    }
                    (kind, _) => {
                        return Err(bad(format!(
              "countChat: messages[{i}].content[{j}] is a {kind:?} part; only text parts can be \
               counted (image and audio tokens depend on the media, not on the message)"
            )))
                    }
                }
            }
            s
        }
    };
    let tool_calls = m
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .map(|c| CoreToolCall {
            name: c.function.name,
            arguments: c.function.arguments,
        })
        .collect();
    Ok(CoreMessage {
        role: m.role,
        name: m.name,
        content,
        tool_calls,
    })
}

/// Converts the `messages` argument; a malformed message is `ERR_INVALID_ARG` naming its
/// index and what is wrong.
pub fn messages(raw: Raw, v: napi_value) -> R<Vec<CoreMessage>> {
    if !raw.is_array(v)? {
        return Err(super::text::invalid_arg(
            "countChat: `messages`",
            "an array",
            raw,
            v,
        ));
    }
    let n = raw.array_len(v)?;
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let el = raw.element(v, i)?;
        // SAFETY: `raw.0` is the live environment and `el` a handle of this callback.
        let m = match unsafe { ChatMessage::from_napi_value(raw.0, el) } {
            Ok(m) => m,
            // A getter or proxy trap threw: that exception is pending and reaches the caller.
            Err(_) if exception_pending(raw) => return Err(Fault::Js),
            Err(e) => return Err(bad(format!("countChat: messages[{i}]: {}", e.reason))),
        };
        out.push(convert(i as usize, m)?);
    }
    Ok(out)
}
