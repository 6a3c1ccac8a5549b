//! JSON text exactly as `JSON.stringify` writes it, from a [`Tape`] of values.
//!
//! The binding layer reads a JS value into a tape on the main thread (in short steps for
//! `serializeAsync`); everything here works on that tape and can run on any thread:
//! escaping, number formatting, indentation, truncation and size checks.

mod number;
mod options;
mod out;
mod pipeline;
mod render;
mod tape;
mod text;

pub use number::format_js_number;
pub use options::{Indent, SerializeOptions, MIN_MAX_SIZE};
pub use out::{utf8_len, Latin1Out, Out, Utf16Out, Utf8Out};
pub use pipeline::{Done, Pipeline};
pub use render::{render, RenderConfig, Rendered, Renderer};
pub use tape::{Span, Tape, Token};
pub use text::{render_for, render_text, RenderedText, Target, Text};
