//! A payload read from Redis (UTF-8) turned, off the main thread, into the text V8 can take
//! over without transcoding: Latin-1 when every character is below U+0100 (ASCII included,
//! which costs nothing), UTF-16 otherwise. The binding hands it to V8 as an external string.

use encoding_rs::mem;

use crate::buffer_pool;
use crate::serialize::Text;

pub fn into_js_text(s: String) -> Text {
    if s.is_ascii() {
        return Text::Latin1(s.into_bytes());
    }
    // Both conversions need room for as many units as the text has bytes (each character
    // takes at least as many UTF-8 bytes as Latin-1 bytes or UTF-16 units).
    // The buffers come from `buffer_pool.rs`: reused, their pages are in memory already (the
    // page faults of a fresh buffer were half of this conversion) and they are not zeroed.
    if mem::is_str_latin1(&s) {
        let mut out = buffer_pool::take::<u8>(s.len());
        let n = mem::convert_utf8_to_latin1_lossy(s.as_bytes(), &mut out);
        out.truncate(n);
        return Text::Latin1(buffer_pool::fit(out));
    }
    let mut out = buffer_pool::take::<u16>(s.len() + 1);
    let n = mem::convert_str_to_utf16(&s, &mut out);
    out.truncate(n);
    Text::Utf16(buffer_pool::fit(out))
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
}
