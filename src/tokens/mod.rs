//! Exact token counts for OpenAI's encodings (cl100k_base, o200k_base, p50k_base,
//! r50k_base), the model -> encoding table, and chat-request counting.
//!
//! [`count_tokens`] is the one counting function: `TokenEstimator.estimateAsync`,
//! `countChat` and the serializer's `countTokens` option call it; `TokenEstimator.estimate`
//! calls [`count_tokens_parallel`], the same count cut into parts on all CPUs.
//! Counts equal OpenAI tiktoken's `encode_ordinary` (special-token-looking text counts as
//! ordinary text). The BPE tables are embedded in the binary and loaded once, lazily; see
//! [`engine`] for which engine counts which encoding and why.

mod chat;
mod encoding;
pub mod engine;
mod model;

pub use chat::{chat_setup, count_chat, ChatFormat, ChatMessage, ToolCall, TOOL_CALL_OVERHEAD};
pub use encoding::Encoding;
pub use engine::{count_tokens, count_tokens_parallel, warm, warm_in_background};
pub use model::encoding_for_model;
