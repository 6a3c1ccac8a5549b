//! Credentials never leave the tier: URLs are shown with their password replaced by `***`
//! (`redis://user:***@127.0.0.1:6380/2`), and any text that may quote a secret (a driver's
//! error message) is scrubbed of it before it is stored, returned or logged.

use url::Url;

/// What stands in for a secret.
pub const MASK: &str = "***";

/// The URL with its password (and any query string, which may carry one) masked. A string
/// that does not parse as a URL is never echoed: it becomes a fixed placeholder.
pub fn redact_url(raw: &str) -> String {
    let Ok(mut url) = Url::parse(raw) else {
        return "<unparseable URL>".to_string();
    };
    if url.password().is_some() && url.set_password(Some(MASK)).is_err() {
        return "<URL with credentials>".to_string();
    }
    if url.query().is_some() {
        url.set_query(Some(MASK));
    }
    if url.fragment().is_some() {
        url.set_fragment(Some(MASK));
    }
    url.to_string()
}

/// The secrets of a URL that must never appear in output: the raw URL itself, its password
/// (as written, percent-encoded, and decoded) and its query string.
pub fn secrets_of(raw: &str) -> Vec<String> {
    let mut out = vec![raw.to_string()];
    if let Ok(url) = Url::parse(raw) {
        if let Some(p) = url.password() {
            out.push(p.to_string());
            if let Ok(decoded) = percent_decode(p) {
                out.push(decoded);
            }
        }
        if let Some(q) = url.query() {
            out.push(q.to_string());
        }
        if let Some(f) = url.fragment() {
            out.push(f.to_string());
        }
    }
    out.retain(|s| !s.is_empty());
    // Longest first, so that a password inside the raw URL is masked as part of the URL.
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// `text` with every occurrence of every secret replaced by [`MASK`].
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    out
}

fn percent_decode(s: &str) -> Result<String, std::string::FromUtf8Error> {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_password_keeps_user_host_db() {
        assert_eq!(
            redact_url("redis://user:s3cret@127.0.0.1:6380/2"),
            "redis://user:***@127.0.0.1:6380/2"
        );
        assert_eq!(
            redact_url("rediss://:pw@example.test/0"),
            "rediss://:***@example.test/0"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            redact_url("redis://u:p@h/1?password=x"),
            "redis://u:***@h/1?***"
        );
    }

    #[test]
    fn never_echoes_an_unparseable_url() {
        let r = redact_url("not a url with secret");
        assert!(!r.contains("secret"));
    }

    #[test]
    fn scrub_removes_url_and_password_in_all_spellings() {
        let url = "redis://alice:p%40ss%20word@127.0.0.1:1/0";
        let secrets = secrets_of(url);
        let text = format!("failed {url}; auth p@ss word; also p%40ss%20word");
        let out = scrub(&text, &secrets);
        assert!(!out.contains("p@ss word"), "{out}");
        assert!(!out.contains("p%40ss%20word"), "{out}");
        assert!(!out.contains(url), "{out}");
        assert!(out.contains("failed ***"), "{out}");
    }
}
