//! Renders a [`Tape`] as JSON text exactly as `JSON.stringify(value, null, indent)` would,
//! optionally cut to a length limit while staying valid JSON.
//!
//! Truncation keeps the beginning of the document: elements are written while the text so
//! far, plus the element, plus the brackets that close every open container, fits the limit.
//! The first element that does not fit ends the document: a string may be cut short (never
//! inside an escape or a surrogate pair), any other value is left out whole, and the open
//! containers are closed. Lengths are UTF-16 code units, as JS measures strings.

use super::number::format_js_number;
use super::out::{utf8_len, Out};
use super::tape::{Tape, Token};
use crate::error::{Code, Error, Result};

/// How to render.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenderConfig {
    /// Spaces per level (0 = compact, at most 10 as in JSON.stringify).
    pub indent: usize,
    /// Limit on the output length in UTF-16 code units.
    pub max_size: Option<usize>,
    /// Cut to `max_size` (true) or fail with `ERR_MAX_SIZE` (false).
    pub truncate: bool,
}

/// The text and its measures.
#[derive(Debug)]
pub struct Rendered<O> {
    pub out: O,
    /// Length in UTF-16 code units (JS `string.length`).
    pub len: usize,
    /// Length in UTF-8 bytes.
    pub utf8_len: usize,
    pub truncated: bool,
}

#[derive(Clone, Copy)]
struct Frame {
    object: bool,
    count: usize,
}

const SPACES: &[u8; 64] = &[b' '; 64];

/// A renderer fed one tape segment at a time (see [`Renderer::feed`]), so that text can be
/// built while the value is still being read.
pub struct Renderer<O> {
    out: O,
    len: usize,
    utf8: usize,
    stack: Vec<Frame>,
    /// Length of the text that would close every open container now.
    closer_len: usize,
    indent: usize,
    /// Cut limit (usize::MAX when not truncating).
    limit: usize,
    /// Fail limit (usize::MAX when truncating or unbounded).
    fail_at: usize,
    ascii_only: bool,
    num: ryu_js::Buffer,
    /// A key was written; its value comes next (possibly in the next segment).
    after_key: bool,
    /// The text was cut: later segments are ignored.
    cut: bool,
    /// Something was written at the top level.
    started: bool,
}

/// Escaped length of one string's units (without quotes), in UTF-16 units.
fn escaped_len(u: &[u16]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < u.len() {
        let c = u[i];
        n += match c {
            0x22 | 0x5C | 0x08 | 0x09 | 0x0A | 0x0C | 0x0D => 2,
            0..=0x1F => 6,
            0xD800..=0xDBFF if i + 1 < u.len() && (0xDC00..=0xDFFF).contains(&u[i + 1]) => {
                i += 1;
                2
            }
            0xD800..=0xDFFF => 6,
            _ => 1,
        };
        i += 1;
    }
    n
}

/// True for a unit JSON.stringify writes as it is (not a control character, quote,
/// backslash or surrogate).
#[inline(always)]
fn plain(c: u16) -> bool {
    c >= 0x20 && c != 0x22 && c != 0x5C && (c & 0xF800) != 0xD800
}

/// Extra UTF-8 bytes of a non-surrogate unit beyond one.
#[inline(always)]
fn utf8_extra(c: u16) -> usize {
    usize::from(c >= 0x80) + usize::from(c >= 0x800)
}

/// End of the run of plain units starting at `i`, and the UTF-8 bytes of the run beyond one
/// per unit. Checks sixteen units at a time without branches, which the compiler turns into
/// SIMD compares.
#[inline]
fn plain_run(u: &[u16], mut i: usize) -> (usize, usize) {
    let mut extra = 0;
    while let Some(Ok(chunk)) = u.get(i..i + 16).map(<&[u16; 16]>::try_from) {
        let mut bad: u16 = 0;
        let mut ex: u16 = 0;
        for &c in chunk {
            bad |= u16::from(c < 0x20)
                | u16::from(c == 0x22)
                | u16::from(c == 0x5C)
                | u16::from((c & 0xF800) == 0xD800);
            ex += u16::from(c >= 0x80) + u16::from(c >= 0x800);
        }
        if bad != 0 {
            break;
        }
        extra += usize::from(ex);
        i += 16;
    }
    while i < u.len() && plain(u[i]) {
        extra += utf8_extra(u[i]);
        i += 1;
    }
    (i, extra)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl<O: Out> Renderer<O> {
    fn ascii(&mut self, s: &[u8]) {
        self.out.ascii(s);
        self.len += s.len();
        self.utf8 += s.len();
    }

    fn run(&mut self, u: &[u16]) {
        if u.is_empty() {
            return;
        }
        self.out.units(u);
        self.len += u.len();
        self.utf8 += if self.ascii_only {
            u.len()
        } else {
            utf8_len(u)
        };
    }

    /// Like [`Self::run`] with the UTF-8 length already known.
    #[inline]
    fn run_measured(&mut self, u: &[u16], utf8: usize) {
        self.out.units(u);
        self.len += u.len();
        self.utf8 += utf8;
    }

    fn newline(&mut self, depth: usize) {
        self.ascii(b"\n");
        let mut n = self.indent * depth;
        while n > 0 {
            let k = n.min(SPACES.len());
            self.ascii(&SPACES[..k]);
            n -= k;
        }
    }

    /// Escape of one unit that is not plain (or a lone surrogate).
    fn escape_unit(&mut self, c: u16) {
        match c {
            0x22 => self.ascii(b"\\\""),
            0x5C => self.ascii(b"\\\\"),
            0x08 => self.ascii(b"\\b"),
            0x09 => self.ascii(b"\\t"),
            0x0A => self.ascii(b"\\n"),
            0x0C => self.ascii(b"\\f"),
            0x0D => self.ascii(b"\\r"),
            _ => {
                let e = [
                    b'\\',
                    b'u',
                    HEX[(c >> 12) as usize & 15],
                    HEX[(c >> 8) as usize & 15],
                    HEX[(c >> 4) as usize & 15],
                    HEX[c as usize & 15],
                ];
                self.ascii(&e);
            }
        }
    }

    /// Writes the escaped content of a string, at most `room` units of it (never splitting
    /// an escape or a pair). Returns false when it had to stop early.
    fn string_body(&mut self, u: &[u16], room: usize) -> bool {
        let start_len = self.len;
        let mut i = 0;
        while i < u.len() {
            // Longest run of units written as they are, with the UTF-8 bytes it adds beyond
            // one per unit.
            let (j, extra) = plain_run(u, i);
            if j > i {
                let used = self.len - start_len;
                let take = (j - i).min(room - used);
                if take == j - i {
                    self.run_measured(&u[i..j], take + extra);
                } else {
                    self.run(&u[i..i + take]);
                    return false;
                }
                i = j;
                if i == u.len() {
                    break;
                }
            }
            let used = self.len - start_len;
            let c = u[i];
            if (0xD800..=0xDBFF).contains(&c)
                && i + 1 < u.len()
                && (0xDC00..=0xDFFF).contains(&u[i + 1])
            {
                if used + 2 > room {
                    return false;
                }
                self.run_measured(&u[i..i + 2], 4);
                i += 2;
                continue;
            }
            let need = match c {
                0x22 | 0x5C | 0x08 | 0x09 | 0x0A | 0x0C | 0x0D => 2,
                _ => 6,
            };
            if used + need > room {
                return false;
            }
            self.escape_unit(c);
            i += 1;
        }
        true
    }

    fn closer_of(&self, f: Frame, depth: usize) -> usize {
        if f.count > 0 && self.indent > 0 {
            2 + self.indent * depth
        } else {
            1
        }
    }

    /// Room left for content once every open container is closed.
    fn fits(&self, n: usize) -> bool {
        self.len
            .checked_add(n)
            .and_then(|x| x.checked_add(self.closer_len))
            .is_some_and(|x| x <= self.limit)
    }

    /// Length of the separator before the next element of the innermost container, and how
    /// much that container's closer grows if this is its first element.
    fn element_prefix(&self) -> (usize, usize) {
        match self.stack.last() {
            None => (0, 0),
            Some(f) => {
                let depth = self.stack.len();
                let sep = usize::from(f.count > 0);
                let nl = if self.indent > 0 {
                    1 + self.indent * depth
                } else {
                    0
                };
                let grow = if f.count == 0 && self.indent > 0 {
                    1 + self.indent * (depth - 1)
                } else {
                    0
                };
                (sep + nl, grow)
            }
        }
    }

    fn write_element_prefix(&mut self, grow: usize) {
        let depth = self.stack.len();
        let indent = self.indent;
        if let Some(f) = self.stack.last_mut() {
            let first = f.count == 0;
            f.count += 1;
            self.closer_len += grow;
            if !first {
                self.ascii(b",");
            }
            if indent > 0 {
                self.newline(depth);
            }
        }
    }

    /// Smallest text the value at token `i` can be cut to.
    /// Smallest text a value can be cut to (`None`: a value still to come, which can only
    /// be a long string, cut to `""`).
    fn min_len_of(&mut self, t: Option<Token>) -> usize {
        match t {
            Some(Token::Str(_)) | Some(Token::ArrayStart) | Some(Token::ObjectStart) | None => 2,
            Some(t) => self.scalar_len(t),
        }
    }

    fn scalar_len(&mut self, t: Token) -> usize {
        match t {
            Token::Null | Token::True => 4,
            Token::False => 5,
            Token::Number(n) => format_js_number(n, &mut self.num).len(),
            _ => 0,
        }
    }

    fn close_all(&mut self) {
        while let Some(f) = self.stack.pop() {
            self.write_closer(f);
        }
    }

    fn write_closer(&mut self, f: Frame) {
        let depth = self.stack.len();
        let c = self.closer_of(f, depth);
        self.closer_len -= c;
        if f.count > 0 && self.indent > 0 {
            self.newline(depth);
        }
        self.ascii(if f.object { b"}" } else { b"]" });
    }

    fn too_small(&self) -> Error {
        Error::invalid_option(
            "maxSize",
            format!(
                "({}) is too small to hold any JSON form of this value",
                self.limit
            ),
        )
    }

    fn check_fail(&self) -> Result<()> {
        if self.len > self.fail_at {
            return Err(Error::new(
                Code::MaxSize,
                format!(
                    "serialized value is longer than maxSize ({}); pass truncate: true to cut it",
                    self.fail_at
                ),
            ));
        }
        Ok(())
    }

    /// Writes a value token of `seg` (prefix already written). Returns false when cut.
    fn value(&mut self, t: Token, seg: &Tape) -> bool {
        match t {
            Token::Str(span) => {
                let u = seg.units_of(span);
                let room = self
                    .limit
                    .saturating_sub(self.len)
                    .saturating_sub(self.closer_len);
                let full = span.len.saturating_mul(6).saturating_add(2) <= room
                    || escaped_len(u) + 2 <= room;
                self.ascii(b"\"");
                let body_room = if full { usize::MAX } else { room - 2 };
                let done = self.string_body(u, body_room);
                self.ascii(b"\"");
                done
            }
            Token::ArrayStart | Token::ObjectStart => {
                self.ascii(if t == Token::ArrayStart { b"[" } else { b"{" });
                self.stack.push(Frame {
                    object: t == Token::ObjectStart,
                    count: 0,
                });
                self.closer_len += 1;
                true
            }
            Token::Number(n) => {
                let mut b = ryu_js::Buffer::new();
                let s = format_js_number(n, &mut b);
                self.out.ascii(s.as_bytes());
                self.len += s.len();
                self.utf8 += s.len();
                true
            }
            Token::Null => {
                self.ascii(b"null");
                true
            }
            Token::True => {
                self.ascii(b"true");
                true
            }
            Token::False => {
                self.ascii(b"false");
                true
            }
            Token::Key(_) | Token::ArrayEnd | Token::ObjectEnd => true,
        }
    }

    /// Renders the next segment of the document. Returns false once the text is cut (the
    /// caller may stop reading: further segments are ignored).
    pub fn feed(&mut self, seg: &Tape) -> Result<bool> {
        if self.cut {
            return Ok(false);
        }
        self.ascii_only = seg.max_unit < 0x80;
        let r = self.feed_tokens(seg);
        if let Ok(false) = r {
            self.cut = true;
        }
        r
    }

    fn feed_tokens(&mut self, seg: &Tape) -> Result<bool> {
        let tokens = &seg.tokens;
        let n = tokens.len();
        let mut i = 0;
        while i < n {
            let t = tokens[i];
            match t {
                Token::ArrayEnd | Token::ObjectEnd => {
                    if let Some(f) = self.stack.pop() {
                        self.write_closer(f);
                    }
                }
                Token::Key(span) => {
                    let (prefix, grow) = self.element_prefix();
                    let vmin = self.min_len_of(tokens.get(i + 1).copied());
                    let fixed = prefix + 3 + usize::from(self.indent > 0) + vmin + grow;
                    let key = seg.units_of(span);
                    if !self.fits(fixed.saturating_add(span.len.saturating_mul(6)))
                        && !self.fits(fixed + escaped_len(key))
                    {
                        return Ok(false);
                    }
                    self.write_element_prefix(grow);
                    self.ascii(b"\"");
                    self.string_body(key, usize::MAX);
                    self.ascii(if self.indent > 0 { b"\": " } else { b"\":" });
                    self.after_key = true;
                }
                _ => {
                    if self.after_key {
                        self.after_key = false;
                    } else {
                        let (prefix, grow) = self.element_prefix();
                        let vmin = self.min_len_of(Some(t));
                        if !self.fits(prefix + vmin + grow) {
                            if self.stack.is_empty() {
                                return Err(self.too_small());
                            }
                            return Ok(false);
                        }
                        self.write_element_prefix(grow);
                    }
                    self.started = true;
                    if !self.value(t, seg) {
                        return Ok(false);
                    }
                }
            }
            self.check_fail()?;
            i += 1;
        }
        Ok(true)
    }

    /// A renderer for text written into `out`.
    pub fn new(cfg: &RenderConfig, out: O) -> Self {
        let (limit, fail_at) = match (cfg.max_size, cfg.truncate) {
            (Some(m), true) => (m, usize::MAX),
            (Some(m), false) => (usize::MAX, m),
            (None, _) => (usize::MAX, usize::MAX),
        };
        Renderer {
            out,
            len: 0,
            utf8: 0,
            stack: Vec::new(),
            closer_len: 0,
            indent: cfg.indent.min(10),
            limit,
            fail_at,
            ascii_only: false,
            num: ryu_js::Buffer::new(),
            after_key: false,
            cut: false,
            started: false,
        }
    }

    /// Closes what is open and returns the text. `complete`: the whole value was fed (when
    /// not, the text counts as truncated).
    pub fn finish(mut self, complete: bool) -> Result<Rendered<O>> {
        if !self.started && self.stack.is_empty() {
            return Err(Error::new(Code::Internal, "nothing to render: empty tape"));
        }
        let truncated = self.cut || !complete || !self.stack.is_empty() || self.after_key;
        if self.after_key {
            // A key whose value never came (reading stopped): give it the empty string.
            self.ascii(b"\"\"");
            self.after_key = false;
        }
        self.close_all();
        self.check_fail()?;
        Ok(Rendered {
            out: self.out,
            len: self.len,
            utf8_len: self.utf8,
            truncated,
        })
    }

    /// Swaps the output sink (e.g. to widen Latin-1 text to UTF-16 mid-document).
    pub fn map_out<P>(self, f: impl FnOnce(O) -> P) -> Renderer<P> {
        Renderer {
            out: f(self.out),
            len: self.len,
            utf8: self.utf8,
            stack: self.stack,
            closer_len: self.closer_len,
            indent: self.indent,
            limit: self.limit,
            fail_at: self.fail_at,
            ascii_only: self.ascii_only,
            num: self.num,
            after_key: self.after_key,
            cut: self.cut,
            started: self.started,
        }
    }
}

/// Renders `tape` into `out`. With `truncate`, the result is at most `max_size` units and
/// valid JSON; without it an oversized result is `ERR_MAX_SIZE`.
pub fn render<O: Out>(tape: &Tape, cfg: &RenderConfig, out: O) -> Result<Rendered<O>> {
    let mut r = Renderer::new(cfg, out);
    r.feed(tape)?;
    r.finish(tape.complete)
}

#[cfg(test)]
mod tests;
