//! A payload read from Redis (UTF-8) turned, off the main thread, into the text V8 can take
//! over without transcoding: Latin-1 when every character is below U+0100 (ASCII included,
//! which costs nothing), UTF-16 otherwise. The binding hands it to V8 as an external string.

use crate::buffer_pool::{self, Elem};
use crate::serialize::Text;

/// The conversion, by simdutf (SIMD, picked at run time for the CPU). Every output buffer
/// comes from `buffer_pool.rs`: reused, its pages are in memory already (the page faults of a
/// fresh buffer were half of this conversion) and it is not zeroed. The UTF-8 buffer, once
/// converted, goes back to the pool too (a decompressed payload was taken from it).
pub fn into_js_text(s: String) -> Text {
    if simdutf::validate_ascii(s.as_bytes()) {
        return Text::Latin1(buffer_pool::fit(s.into_bytes()));
    }
    if is_latin1(s.as_bytes()) {
        return Text::Latin1(convert(s, |src, dst| {
            // SAFETY: `src` is valid UTF-8 (a `String`'s) and every character is below U+0100
            // (`is_latin1`), as the conversion requires; `dst` has room for `src.len()` units,
            // at least one per character (`convert`); live, aligned, non-overlapping buffers.
            unsafe {
                simdutf::convert_valid_utf8_to_latin1(src.as_ptr(), src.len(), dst.as_mut_ptr())
            }
        }));
    }
    Text::Utf16(convert(s, |src, dst| {
        // SAFETY: `src` is valid UTF-8 (a `String`'s); `dst` has room for `src.len()` units, at
        // least as many as the text has UTF-16 units (`convert`); live, aligned,
        // non-overlapping buffers.
        unsafe { simdutf::convert_valid_utf8_to_utf16(src.as_ptr(), src.len(), dst.as_mut_ptr()) }
    }))
}

/// Runs `f` (the UTF-8 text, an output of as many units as the text has bytes, which is room
/// enough for both encodings; returns the units written) into a pooled buffer, and gives the
/// text's own buffer back to the pool.
fn convert<T: Elem>(s: String, f: impl FnOnce(&[u8], &mut [T]) -> usize) -> Vec<T> {
    let mut out = buffer_pool::take::<T>(s.len());
    let n = f(s.as_bytes(), &mut out);
    out.truncate(n);
    buffer_pool::give_back(s.into_bytes());
    buffer_pool::fit(out)
}

/// Whether valid UTF-8 holds only characters below U+0100: no lead byte of a longer one
/// (0xC4 and above; 0xC2/0xC3 lead U+0080-U+00FF). A max over each 4 KiB chunk (vectorized),
/// stopping at the first chunk that has one.
fn is_latin1(bytes: &[u8]) -> bool {
    bytes
        .chunks(4096)
        .all(|c| c.iter().fold(0u8, |m, &b| m.max(b)) < 0xC4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrowest_encoding() {
        assert!(matches!(into_js_text("{\"a\":1}".into()), Text::Latin1(b) if b == b"{\"a\":1}"));
        assert!(matches!(into_js_text("é".into()), Text::Latin1(b) if b == [0xE9]));
        let mixed = "aé€😀\u{7f}\u{80}\u{ff}\u{100}日本".repeat(50);
        match into_js_text(mixed.clone()) {
            Text::Utf16(u) => assert_eq!(u, mixed.encode_utf16().collect::<Vec<_>>()),
            _ => panic!("expected UTF-16"),
        }
        let latin = "Straße café \u{ff}".repeat(50);
        match into_js_text(latin.clone()) {
            Text::Latin1(b) => assert_eq!(b, latin.chars().map(|c| c as u8).collect::<Vec<_>>()),
            _ => panic!("expected Latin-1"),
        }
        match into_js_text("é👋".into()) {
            Text::Utf16(u) => assert_eq!(u, "é👋".encode_utf16().collect::<Vec<_>>()),
            _ => panic!("expected UTF-16"),
        }
    }

    /// Checks one conversion exactly, and that it chose the narrowest encoding.
    fn check(s: &str) {
        match into_js_text(s.to_string()) {
            Text::Latin1(b) => {
                assert!(s.chars().all(|c| (c as u32) < 0x100), "Latin-1 for {s:.20}");
                assert_eq!(b, s.chars().map(|c| c as u8).collect::<Vec<_>>());
            }
            Text::Utf16(u) => {
                assert!(s.chars().any(|c| (c as u32) >= 0x100), "UTF-16 for {s:.20}");
                assert_eq!(u, s.encode_utf16().collect::<Vec<_>>());
            }
            Text::Utf8(_) => panic!("a text for V8 is never UTF-8"),
        }
    }

    /// Sizes around the pool's classes and the Latin-1 check's 4 KiB chunks, one wide
    /// character at the start, a chunk edge, the middle or the end; one after another, so
    /// that later conversions get buffers that still hold an earlier text.
    #[test]
    fn every_size_and_position_converts_exactly() {
        for len in [1, 4095, 4096, 4097, 40_000, 100_000, 300_000] {
            for wide in ['é', '\u{ff}', '\u{100}', '€', '😀'] {
                for pos in [0, 4095.min(len - 1), 4096.min(len - 1), len / 2, len - 1] {
                    let mut s = "x".repeat(len);
                    s.replace_range(pos..pos + 1, wide.encode_utf8(&mut [0; 4]));
                    check(&s);
                }
            }
        }
        check("");
    }
}
