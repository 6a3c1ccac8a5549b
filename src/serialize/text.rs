//! Rendering into the narrowest text a JS string can take over without transcoding:
//! Latin-1 when every unit is below 0x100 (ASCII included), UTF-16 otherwise.

use super::out::{Latin1Out, Utf16Out};
use super::render::{render, RenderConfig};
use super::tape::Tape;
use crate::error::Result;

/// Text in one of V8's two string representations.
#[derive(Debug)]
pub enum Text {
    Latin1(Vec<u8>),
    Utf16(Vec<u16>),
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
}

/// Renders `tape` as JSON text (see [`render`]) in the narrowest encoding.
pub fn render_text(tape: &Tape, cfg: &RenderConfig) -> Result<RenderedText> {
    // Room for the text: strings and literals (min_len), separators, and indentation.
    let estimate = tape.min_len + tape.tokens.len() * (1 + cfg.indent * 3) + 64;
    let hint = cfg.max_size.map_or(estimate, |m| m.min(estimate));
    if tape.max_unit < 0x100 {
        let r = render(tape, cfg, Latin1Out(Vec::with_capacity(hint)))?;
        Ok(RenderedText {
            text: Text::Latin1(r.out.0),
            len: r.len,
            utf8_len: r.utf8_len,
            truncated: r.truncated,
        })
    } else {
        let r = render(tape, cfg, Utf16Out(Vec::with_capacity(hint)))?;
        Ok(RenderedText {
            text: Text::Utf16(r.out.0),
            len: r.len,
            utf8_len: r.utf8_len,
            truncated: r.truncated,
        })
    }
}
