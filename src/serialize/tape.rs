//! A tape: the values read from JS, in document order, as flat tokens plus one arena of
//! UTF-16 code units for every string and key. Reading JS (main thread) fills it; rendering
//! (any thread) turns it into JSON text. Nothing on a tape refers to the JS heap.

/// Where a string's code units lie in [`Tape::units`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub len: usize,
}

/// One JSON token. Numbers are kept as `f64` and formatted the way JS does when rendered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Token {
    Null,
    True,
    False,
    Number(f64),
    Str(Span),
    /// An object member's key; the member's value follows immediately.
    Key(Span),
    ArrayStart,
    ArrayEnd,
    ObjectStart,
    ObjectEnd,
}

/// Tokens and string units of one document.
#[derive(Debug, Default, Clone)]
pub struct Tape {
    pub tokens: Vec<Token>,
    pub units: Vec<u16>,
    /// A lower bound of the compact JSON length (UTF-16 units) of what the tape holds. Reading
    /// may stop once it exceeds a truncation limit: the rest would be cut anyway.
    pub min_len: usize,
    /// True once the whole value was read; false when reading stopped early for truncation.
    pub complete: bool,
    /// Largest code unit stored, to pick the narrowest output encoding.
    pub max_unit: u16,
    open_string: Option<usize>,
    /// `min_len` already handed out in segments.
    taken_len: usize,
}

impl Tape {
    pub fn new() -> Self {
        Tape::default()
    }

    pub fn push_null(&mut self) {
        self.tokens.push(Token::Null);
        self.min_len += 4;
    }

    pub fn push_bool(&mut self, b: bool) {
        self.tokens.push(if b { Token::True } else { Token::False });
        self.min_len += if b { 4 } else { 5 };
    }

    /// Pushes a number; `NaN` and infinities become `null` as in JSON.stringify.
    pub fn push_number(&mut self, n: f64) {
        if n.is_finite() {
            self.tokens.push(Token::Number(n));
            self.min_len += 1;
        } else {
            self.push_null();
        }
    }

    fn store(&mut self, units: &[u16]) -> Span {
        let start = self.units.len();
        self.units.extend_from_slice(units);
        self.note_units(units);
        Span {
            start,
            len: units.len(),
        }
    }

    fn note_units(&mut self, units: &[u16]) {
        if self.max_unit < 0x100 {
            let m = units.iter().copied().max().unwrap_or(0);
            if m > self.max_unit {
                self.max_unit = m;
            }
        }
    }

    pub fn push_str(&mut self, units: &[u16]) {
        let span = self.store(units);
        self.tokens.push(Token::Str(span));
        self.min_len += units.len() + 2;
    }

    pub fn push_key(&mut self, units: &[u16]) {
        let span = self.store(units);
        self.tokens.push(Token::Key(span));
        self.min_len += units.len() + 3;
    }

    /// Where the next string's units start; the caller appends units to [`Tape::units`] and
    /// then calls [`Tape::push_str_from`] or [`Tape::push_key_from`] (lets the binding copy a
    /// JS string straight into the arena).
    pub fn mark(&self) -> usize {
        self.units.len()
    }

    fn span_from(&mut self, start: usize) -> Span {
        let end = self.units.len();
        if self.max_unit < 0x100 {
            let m = self.units[start..end].iter().copied().max().unwrap_or(0);
            if m > self.max_unit {
                self.max_unit = m;
            }
        }
        Span {
            start,
            len: end - start,
        }
    }

    /// Ends a string whose units were appended since `start` (see [`Tape::mark`]).
    pub fn push_str_from(&mut self, start: usize) {
        let span = self.span_from(start);
        self.tokens.push(Token::Str(span));
        self.min_len += span.len + 2;
    }

    /// Ends a key whose units were appended since `start` (see [`Tape::mark`]).
    pub fn push_key_from(&mut self, start: usize) {
        let span = self.span_from(start);
        self.tokens.push(Token::Key(span));
        self.min_len += span.len + 3;
    }

    /// Starts a string whose units arrive in pieces ([`Tape::extend_str`]), for strings too
    /// long to copy out of JS in one step.
    pub fn begin_str(&mut self) {
        self.open_string = Some(self.units.len());
    }

    pub fn extend_str(&mut self, units: &[u16]) {
        self.units.extend_from_slice(units);
        self.note_units(units);
        self.min_len += units.len();
    }

    pub fn end_str(&mut self) {
        if let Some(start) = self.open_string.take() {
            self.tokens.push(Token::Str(Span {
                start,
                len: self.units.len() - start,
            }));
            self.min_len += 2;
        }
    }

    pub fn begin_array(&mut self) {
        self.tokens.push(Token::ArrayStart);
        self.min_len += 1;
    }

    pub fn end_array(&mut self) {
        self.tokens.push(Token::ArrayEnd);
        self.min_len += 1;
    }

    pub fn begin_object(&mut self) {
        self.tokens.push(Token::ObjectStart);
        self.min_len += 1;
    }

    pub fn end_object(&mut self) {
        self.tokens.push(Token::ObjectEnd);
        self.min_len += 1;
    }

    /// Moves out everything written so far as a segment that renders on its own, leaving a
    /// tape that goes on where it stopped (a long string still being read stays here).
    /// `min_len` keeps counting the whole document; the segment's `min_len` is its share.
    pub fn take_segment(&mut self) -> Tape {
        // A key stays with its value (the renderer must know what follows a key to decide
        // whether the member fits), unless the value is a long string being read in pieces.
        let held_key = match (self.open_string, self.tokens.last().copied()) {
            (None, Some(Token::Key(span))) => {
                self.tokens.pop();
                let units = self.units.split_off(span.start);
                Some(units)
            }
            _ => None,
        };
        let keep_from = self.open_string.unwrap_or(self.units.len());
        let open_units = self.units.split_off(keep_from);
        let seg_units = std::mem::replace(&mut self.units, open_units);
        let tokens = std::mem::take(&mut self.tokens);
        let seg_min = self.min_len - self.taken_len;
        self.taken_len = self.min_len;
        let seg_max = self.max_unit;
        self.max_unit = 0;
        if self.open_string.is_some() {
            self.open_string = Some(0);
            let units = std::mem::take(&mut self.units);
            self.note_units(&units);
            self.units = units;
        }
        let seg = Tape {
            tokens,
            units: seg_units,
            min_len: seg_min,
            complete: self.complete,
            max_unit: seg_max,
            open_string: None,
            taken_len: 0,
        };
        if let Some(key) = held_key {
            let start = self.units.len();
            self.units.extend_from_slice(&key);
            self.note_units(&key);
            self.tokens.push(Token::Key(Span {
                start,
                len: key.len(),
            }));
        }
        seg
    }

    /// Marks the tape as holding the whole value.
    pub fn finish(&mut self) {
        self.complete = true;
    }

    /// The code units of a span.
    pub fn units_of(&self, span: Span) -> &[u16] {
        &self.units[span.start..span.start + span.len]
    }
}

/// Builds a tape from Rust literals in tests.
#[cfg(test)]
pub(crate) fn utf16(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}
