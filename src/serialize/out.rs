//! Output sinks for the renderer: UTF-8 bytes, Latin-1 bytes (for a one-byte JS string) or
//! UTF-16 units (for a two-byte JS string). The renderer hands them ASCII (structure, escapes,
//! numbers) and runs of string units that need no escaping and hold only whole surrogate pairs.

pub trait Out {
    fn ascii(&mut self, s: &[u8]);
    fn units(&mut self, u: &[u16]);
}

/// UTF-8 output (for Redis, token counting, and ASCII-only JS strings).
#[derive(Debug, Default)]
pub struct Utf8Out(pub Vec<u8>);

impl Out for Utf8Out {
    #[inline]
    fn ascii(&mut self, s: &[u8]) {
        self.0.extend_from_slice(s);
    }

    fn units(&mut self, u: &[u16]) {
        let v = &mut self.0;
        let mut i = 0;
        while i < u.len() {
            let c = u[i] as u32;
            if c < 0x80 {
                v.push(c as u8);
                i += 1;
            } else if c < 0x800 {
                v.extend_from_slice(&[0xC0 | (c >> 6) as u8, 0x80 | (c & 0x3F) as u8]);
                i += 1;
            } else if (0xD800..0xDC00).contains(&c) && i + 1 < u.len() {
                let lo = u[i + 1] as u32;
                let cp = 0x10000 + ((c - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3FF);
                v.extend_from_slice(&[
                    0xF0 | (cp >> 18) as u8,
                    0x80 | ((cp >> 12) & 0x3F) as u8,
                    0x80 | ((cp >> 6) & 0x3F) as u8,
                    0x80 | (cp & 0x3F) as u8,
                ]);
                i += 2;
            } else {
                // Lone surrogates never reach here (the renderer escapes them); write U+FFFD
                // rather than invalid UTF-8 should a caller break that rule.
                let c = if (0xD800..0xE000).contains(&c) {
                    0xFFFD
                } else {
                    c
                };
                v.extend_from_slice(&[
                    0xE0 | (c >> 12) as u8,
                    0x80 | ((c >> 6) & 0x3F) as u8,
                    0x80 | (c & 0x3F) as u8,
                ]);
                i += 1;
            }
        }
    }
}

/// Latin-1 output: only valid when every unit is below 0x100 (the tape says so).
#[derive(Debug, Default)]
pub struct Latin1Out(pub Vec<u8>);

impl Out for Latin1Out {
    #[inline]
    fn ascii(&mut self, s: &[u8]) {
        self.0.extend_from_slice(s);
    }

    #[inline]
    fn units(&mut self, u: &[u16]) {
        self.0.extend(u.iter().map(|&c| c as u8));
    }
}

/// UTF-16 output.
#[derive(Debug, Default)]
pub struct Utf16Out(pub Vec<u16>);

impl Out for Utf16Out {
    #[inline]
    fn ascii(&mut self, s: &[u8]) {
        self.0.extend(s.iter().map(|&b| b as u16));
    }

    #[inline]
    fn units(&mut self, u: &[u16]) {
        self.0.extend_from_slice(u);
    }
}

/// UTF-8 length of a run of units with whole surrogate pairs.
pub fn utf8_len(u: &[u16]) -> usize {
    u.iter()
        .map(|&c| match c {
            0..=0x7F => 1,
            0x80..=0x7FF => 2,
            0xD800..=0xDFFF => 2, // half of a 4-byte pair
            _ => 3,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_out_transcodes_pairs_and_bmp() {
        let s = "aé€😀";
        let u: Vec<u16> = s.encode_utf16().collect();
        let mut o = Utf8Out::default();
        o.units(&u);
        assert_eq!(String::from_utf8(o.0).unwrap(), s);
        assert_eq!(utf8_len(&u), s.len());
    }
}
