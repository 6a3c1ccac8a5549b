//! A payload read from Redis (UTF-8) turned, off the main thread, into the text V8 can take
//! over without transcoding: Latin-1 when every character is below U+0100 (ASCII included,
//! which costs nothing), UTF-16 otherwise. The binding hands it to V8 as an external string.

use crate::serialize::Text;

pub fn into_js_text(s: String) -> Text {
    if s.is_ascii() {
        return Text::Latin1(s.into_bytes());
    }
    if s.chars().all(|c| (c as u32) < 0x100) {
        return Text::Latin1(s.chars().map(|c| c as u8).collect());
    }
    Text::Utf16(s.encode_utf16().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrowest_encoding() {
        assert!(matches!(into_js_text("{\"a\":1}".into()), Text::Latin1(b) if b == b"{\"a\":1}"));
        assert!(matches!(into_js_text("é".into()), Text::Latin1(b) if b == [0xE9]));
        match into_js_text("é👋".into()) {
            Text::Utf16(u) => assert_eq!(u, "é👋".encode_utf16().collect::<Vec<_>>()),
            _ => panic!("expected UTF-16"),
        }
    }
}
