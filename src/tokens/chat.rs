//! Token count of a chat request: the messages' text plus the tokens the chat format wraps
//! around each message and the reply priming.

use super::{count_tokens, encoding_for_model, Encoding};
use crate::error::Result;

/// One tool (function) call an assistant message carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolCall {
    pub name: String,
    pub arguments: String,
}

/// One chat message. `content` is the message text (text parts already joined).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: String,
    pub name: Option<String>,
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
}

/// How a model frames messages (as gpt-tokenizer's `encodeChat` renders them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatFormat {
    /// `<|im_start|>{name or role}<|im_sep|>{content}<|im_end|>`; reply primed with
    /// `<|im_start|>assistant<|im_sep|>`. Every chat model not listed below.
    ChatMl,
    /// gpt-3.5-*: `<|im_start|>{name or role}\n{content}<|im_end|>\n`; reply primed with
    /// `<|im_start|>assistant\n`.
    Gpt35,
    /// gpt-oss-* (Harmony): `<|start|>{name or role}<|message|>{content}<|end|>`; reply primed
    /// with `<|start|>assistant`.
    Harmony,
}

impl ChatFormat {
    fn for_model(model: &str) -> ChatFormat {
        if model.starts_with("gpt-3.5") || model.starts_with("gpt-35") {
            ChatFormat::Gpt35
        } else if model.starts_with("gpt-oss") {
            ChatFormat::Harmony
        } else {
            ChatFormat::ChatMl
        }
    }
}

/// Tokens a tool call adds: its name, its arguments and 3 for the call's framing; the same
/// accounting gpt-tokenizer's `countChatCompletionTokens` applies to a `function_call`.
/// OpenAI does not publish how tool calls are rendered, so this part is an estimate.
pub const TOOL_CALL_OVERHEAD: usize = 3;

/// The encoding and chat format of `model_or_encoding`: a model name as
/// [`encoding_for_model`] knows it, or an encoding name (`'cl100k_base'`, ...) to count an
/// unlisted model's chat in the ChatML format with that encoding.
pub fn chat_setup(model_or_encoding: &str) -> Result<(Encoding, ChatFormat)> {
    if let Ok(enc) = Encoding::parse(model_or_encoding) {
        return Ok((enc, ChatFormat::ChatMl));
    }
    let enc = encoding_for_model(model_or_encoding)?;
    Ok((enc, ChatFormat::for_model(model_or_encoding)))
}

/// Tokens of a chat request for `model_or_encoding` (see [`chat_setup`]), equal to the
/// length of gpt-tokenizer's `encodeChat(messages, model)` for every model it supports when
/// no message has tool calls. With `T(s)` the token count of `s` (ordinary text) and
/// `header = name ?? role`:
///
/// - ChatML (gpt-4, gpt-4o, gpt-4.1, gpt-5, o1, o3, o4-mini, ...):
///   `sum(3 + T(header) + T(content)) + 3` (`<|im_start|>`, `<|im_sep|>`, `<|im_end|>` per
///   message; `<|im_start|>assistant<|im_sep|>` to prime the reply).
/// - gpt-3.5-*: `sum(2 + T(header) + 2*T("\n") + T(content)) + 1 + T("assistant") + T("\n")`,
///   i.e. `sum(4 + T(header) + T(content)) + 3` (newline separators instead of `<|im_sep|>`).
/// - gpt-oss-* (Harmony): `sum(3 + T(header) + T(content)) + 1 + T("assistant")`, i.e. `+ 2`.
///
/// Plus, per tool call, `T(name) + T(arguments) + 3` (an estimate; see [`TOOL_CALL_OVERHEAD`]).
/// Note that, as in gpt-tokenizer, a message's `name` replaces its role in the header (the
/// OpenAI cookbook's formula instead adds `T(name) + 1` to the role).
pub fn count_chat(messages: &[ChatMessage], model_or_encoding: &str) -> Result<usize> {
    let (enc, format) = chat_setup(model_or_encoding)?;
    let t = |s: &str| count_tokens(s, enc);
    let (per_message, priming) = match format {
        ChatFormat::ChatMl => (3, 2 + t("assistant")),
        ChatFormat::Gpt35 => (2 + 2 * t("\n"), 1 + t("assistant") + t("\n")),
        ChatFormat::Harmony => (3, 1 + t("assistant")),
    };
    let mut total = priming;
    for m in messages {
        let header = m.name.as_deref().unwrap_or(&m.role);
        total += per_message + t(header) + t(&m.content);
        for call in &m.tool_calls {
            total += t(&call.name) + t(&call.arguments) + TOOL_CALL_OVERHEAD;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
            ..Default::default()
        }
    }

    #[test]
    fn chatml_overhead() {
        let enc = Encoding::O200kBase;
        let messages = [
            msg("system", "You are helpful."),
            msg("user", "Hello there!"),
        ];
        let text: usize = messages
            .iter()
            .map(|m| count_tokens(&m.role, enc) + count_tokens(&m.content, enc))
            .sum();
        assert_eq!(count_chat(&messages, "gpt-4o"), Ok(text + 3 * 2 + 3));
        assert_eq!(count_chat(&messages, "o200k_base"), Ok(text + 3 * 2 + 3));
        assert_eq!(count_chat(&[], "gpt-4o"), Ok(3));
    }

    #[test]
    fn formats_by_model() {
        let m = [msg("user", "hi")];
        let base = |enc| count_tokens("user", enc) + count_tokens("hi", enc);
        assert_eq!(
            count_chat(&m, "gpt-4"),
            Ok(base(Encoding::Cl100kBase) + 3 + 3)
        );
        assert_eq!(
            count_chat(&m, "gpt-3.5-turbo"),
            Ok(base(Encoding::Cl100kBase) + 4 + 3)
        );
        assert_eq!(
            count_chat(&m, "gpt-oss-20b"),
            Ok(base(Encoding::O200kBase) + 3 + 2)
        );
    }

    #[test]
    fn name_replaces_role_and_tool_calls_add_their_text() {
        let enc = Encoding::Cl100kBase;
        let mut m = msg("user", "hi");
        m.name = Some("alice_smith".into());
        assert_eq!(
            count_chat(std::slice::from_ref(&m), "gpt-4"),
            Ok(3 + count_tokens("alice_smith", enc) + count_tokens("hi", enc) + 3)
        );
        let mut a = msg("assistant", "");
        a.tool_calls = vec![ToolCall {
            name: "get_weather".into(),
            arguments: r#"{"city":"Berlin"}"#.into(),
        }];
        let call = count_tokens("get_weather", enc) + count_tokens(r#"{"city":"Berlin"}"#, enc) + 3;
        assert_eq!(
            count_chat(&[a], "gpt-4"),
            Ok(3 + count_tokens("assistant", enc) + call + 3)
        );
    }

    #[test]
    fn unknown_model_is_an_error() {
        let err = count_chat(&[msg("user", "hi")], "my-model").expect_err("unknown");
        assert_eq!(err.code.as_str(), "ERR_UNKNOWN_MODEL");
        assert!(err.message.contains("\"my-model\""));
    }
}
