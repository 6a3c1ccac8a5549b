//! Invalidation-bus messages: small JSON objects, so that another service can read (or, with
//! care, write) them: `{"k":"<threadId>","o":"<origin>","t":"w"|"i","v":<version>}`.
//!
//! - `k`: the thread id (without the key prefix).
//! - `v`: the thread's version after the change (see `scripts.rs`); a receiver drops its
//!   in-memory copy only if that copy's version is lower (a late message never evicts a
//!   newer value).
//! - `o`: the publishing instance's id; an instance ignores its own messages.
//! - `t`: `w` for a write (set, update), `i` for an invalidation (invalidate, invalidateTag).

use serde_json::Value as Json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Write,
    Invalidate,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Write => "w",
            Kind::Invalidate => "i",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub key: String,
    pub version: u64,
    pub origin: String,
    pub kind: Kind,
}

impl Message {
    /// The message up to its version: `{"k":..,"o":..,"t":..,"v":`. A script appends the
    /// version it made and `}` (see `scripts.rs`, `announce`).
    pub fn head(key: &str, origin: &str, kind: Kind) -> String {
        format!(
            r#"{{"k":{},"o":{},"t":"{}","v":"#,
            Json::from(key),
            Json::from(origin),
            kind.as_str()
        )
    }

    pub fn encode(&self) -> String {
        format!(
            "{}{}}}",
            Self::head(&self.key, &self.origin, self.kind),
            self.version
        )
    }

    /// `None` for anything that is not one of our messages (never an error: the channel is
    /// shared with whoever publishes on it).
    pub fn decode(bytes: &[u8]) -> Option<Message> {
        let v: Json = serde_json::from_slice(bytes).ok()?;
        let kind = match v.get("t")?.as_str()? {
            "w" => Kind::Write,
            "i" => Kind::Invalidate,
            _ => return None,
        };
        let key = v.get("k")?.as_str()?;
        if key.is_empty() {
            return None;
        }
        Some(Message {
            key: key.to_string(),
            version: v.get("v")?.as_u64()?,
            origin: v.get("o")?.as_str()?.to_string(),
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_escaping() {
        let m = Message {
            key: "t\"1\\ü{x}".into(),
            version: 1_730_000_000_123_456,
            origin: "abc".into(),
            kind: Kind::Invalidate,
        };
        let text = m.encode();
        assert!(text.starts_with(r#"{"k":"t\"1\\ü{x}","o":"abc","t":"i","v":1730000000123456}"#));
        assert_eq!(Message::decode(text.as_bytes()), Some(m));
    }

    #[test]
    fn foreign_messages_are_ignored() {
        for bad in [
            &b"hello"[..],
            br#"{"k":"a","o":"x","t":"w"}"#,
            br#"{"k":"a","o":"x","t":"z","v":1}"#,
            br#"{"k":"","o":"x","t":"w","v":1}"#,
            br#"{"k":"a","o":"x","t":"w","v":-1}"#,
            br#"{"k":1,"o":"x","t":"w","v":1}"#,
        ] {
            assert_eq!(
                Message::decode(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
