//! Rendering into the narrowest text a JS string can take over without transcoding
//! (Latin-1 when every unit is below 0x100, ASCII included; UTF-16 otherwise), or into UTF-8
//! bytes for consumers that are not JS (Redis, token counting).

use super::out::{Latin1Out, Utf16Out, Utf8Out};
use super::render::{render, RenderConfig, Rendered};
use super::tape::Tape;
use crate::error::Result;

/// What the text is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Target {
    /// A JS string: Latin-1 or UTF-16, whichever V8 can take as it is.
    #[default]
    Js,
    /// UTF-8 bytes.
    Utf8,
}

/// Text in one of V8's two string representations, or UTF-8.
#[derive(Debug)]
pub enum Text {
    Latin1(Vec<u8>),
    Utf16(Vec<u16>),
    Utf8(Vec<u8>),
}

/// Rendered text with its measures.
#[derive(Debug)]
pub struct RenderedText {
    pub text: Text,
    /// UTF-16 length (JS `string.length`).
    pub len: usize,
    /// UTF-8 byte length.
    pub utf8_len: usize,
    pub truncated: bool,
    /// Tokens of the text, when asked for ([`RenderedText::count_tokens`]).
    pub tokens: Option<usize>,
}

impl RenderedText {
    /// Counts the text's tokens (exact, see `crate::tokens`): on all CPUs when `parallel`
    /// (a caller that waits anyway), else on this thread (a worker, leaving the other CPUs
    /// to the event loop).
    pub fn count_tokens(&mut self, enc: crate::tokens::Encoding, parallel: bool) {
        let count = if parallel {
            crate::tokens::count_tokens_parallel
        } else {
            crate::tokens::count_tokens
        };
        let n = match &self.text {
            // UTF-8, and Latin-1 that is ASCII, are already the UTF-8 the counter reads.
            Text::Utf8(b) => count(&String::from_utf8_lossy(b), enc),
            Text::Latin1(b) if b.is_ascii() => count(&String::from_utf8_lossy(b), enc),
            Text::Latin1(b) => count(&b.iter().map(|&c| char::from(c)).collect::<String>(), enc),
            Text::Utf16(u) => count(&String::from_utf16_lossy(u), enc),
        };
        self.tokens = Some(n);
    }
}

impl From<Latin1Out> for Text {
    fn from(o: Latin1Out) -> Text {
        Text::Latin1(o.0)
    }
}

impl From<Utf16Out> for Text {
    fn from(o: Utf16Out) -> Text {
        Text::Utf16(o.0)
    }
}

impl From<Utf8Out> for Text {
    fn from(o: Utf8Out) -> Text {
        Text::Utf8(o.0)
    }
}

impl<O: Into<Text>> From<Rendered<O>> for RenderedText {
    fn from(r: Rendered<O>) -> RenderedText {
        RenderedText {
            text: r.out.into(),
            len: r.len,
            utf8_len: r.utf8_len,
            truncated: r.truncated,
            tokens: None,
        }
    }
}

/// Renders `tape` as JSON text (see [`render`]) for `target`.
pub fn render_for(tape: &Tape, cfg: &RenderConfig, target: Target) -> Result<RenderedText> {
    match target {
        Target::Js => render_text(tape, cfg),
        Target::Utf8 => {
            let out = Utf8Out(Vec::with_capacity(capacity(tape, cfg)));
            Ok(render(tape, cfg, out)?.into())
        }
    }
}

fn capacity(tape: &Tape, cfg: &RenderConfig) -> usize {
    // Room for the text: strings and literals (min_len), separators, and indentation.
    let estimate = tape.min_len + tape.tokens.len() * (1 + cfg.indent * 3) + 64;
    cfg.max_size.map_or(estimate, |m| m.min(estimate))
}

/// Renders `tape` as JSON text (see [`render`]) in the narrowest JS string encoding.
pub fn render_text(tape: &Tape, cfg: &RenderConfig) -> Result<RenderedText> {
    let hint = capacity(tape, cfg);
    if tape.max_unit < 0x100 {
        Ok(render(tape, cfg, Latin1Out(Vec::with_capacity(hint)))?.into())
    } else {
        Ok(render(tape, cfg, Utf16Out(Vec::with_capacity(hint)))?.into())
    }
}
