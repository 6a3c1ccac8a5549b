//! The one place Redis key names are built.
//!
//! Every key of one thread carries the hash tag `{<threadId>}`, so that on a Redis Cluster
//! they all live in one slot and a Lua script may touch them together:
//!
//! | what | key |
//! | --- | --- |
//! | value | `<prefix>{<threadId>}` |
//! | version | `<prefix>{<threadId>}:ver` |
//! | the thread's tags | `<prefix>{<threadId>}:tags` (a set of tag names) |
//! | lock (update) | `<prefix>{<threadId>}:lock` |
//! | lease (distributed single flight) | `<prefix>{<threadId>}:lease` |
//! | a tag's threads | `<prefix>tag:{<tag>}` (a set of thread ids) |
//! | invalidation bus (channel) | `<prefix>bus` |
//!
//! The names are unambiguous: a value key ends with `}` and every other key of a thread with
//! its suffix (none of which ends with `}` or with another suffix), and tag keys have `tag:`
//! where thread keys have `{` right after the prefix. A thread id holding `{` or `}` still
//! gets keys of its own; they may merely share a slot with another thread's.

use crate::cache::l2::config::MAX_KEY_BYTES;
use crate::error::{Code, Error, Result};

/// The longest suffix a thread key gets (`:lease`), for the length check.
const LONGEST_SUFFIX: usize = ":lease".len();

/// Builds the keys of one `keyPrefix`.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

/// The keys of one thread (built once per call; each is bytes, ready to send).
#[derive(Debug, Clone)]
pub struct ThreadKeys {
    pub value: Vec<u8>,
    pub version: Vec<u8>,
    pub tags: Vec<u8>,
}

impl Keys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Keys {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Refuses an empty thread id, or one whose keys would exceed [`MAX_KEY_BYTES`].
    pub fn check(&self, thread_id: &str) -> Result<()> {
        if thread_id.is_empty() {
            return Err(Error::new(
                Code::InvalidKey,
                "a cache key must be a non-empty string",
            ));
        }
        let len = self.prefix.len() + thread_id.len() + 2 + LONGEST_SUFFIX;
        if len > MAX_KEY_BYTES {
            return Err(Error::new(
                Code::InvalidKey,
                format!(
                    "a cache key must be at most {} bytes with its prefix, got {}",
                    MAX_KEY_BYTES - 2 - LONGEST_SUFFIX,
                    self.prefix.len() + thread_id.len()
                ),
            ));
        }
        Ok(())
    }

    /// `<prefix>{<threadId>}<suffix>` (the id is not checked here).
    fn thread_key(&self, thread_id: &str, suffix: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.prefix.len() + thread_id.len() + 2 + suffix.len());
        k.extend_from_slice(self.prefix.as_bytes());
        k.push(b'{');
        k.extend_from_slice(thread_id.as_bytes());
        k.push(b'}');
        k.extend_from_slice(suffix.as_bytes());
        k
    }

    /// The value key, checking the id.
    pub fn value(&self, thread_id: &str) -> Result<Vec<u8>> {
        self.check(thread_id)?;
        Ok(self.thread_key(thread_id, ""))
    }

    /// Value, version and tag-list keys of a thread, checking the id.
    pub fn thread(&self, thread_id: &str) -> Result<ThreadKeys> {
        self.check(thread_id)?;
        Ok(ThreadKeys {
            value: self.thread_key(thread_id, ""),
            version: self.thread_key(thread_id, ":ver"),
            tags: self.thread_key(thread_id, ":tags"),
        })
    }

    /// The lock key of a thread (update's distributed lock), checking the id.
    pub fn lock(&self, thread_id: &str) -> Result<Vec<u8>> {
        self.check(thread_id)?;
        Ok(self.thread_key(thread_id, ":lock"))
    }

    /// The lease key of a thread (distributed single flight), checking the id.
    pub fn lease(&self, thread_id: &str) -> Result<Vec<u8>> {
        self.check(thread_id)?;
        Ok(self.thread_key(thread_id, ":lease"))
    }

    /// The set of thread ids stored with `tag`: `<prefix>tag:{<tag>}`.
    pub fn tag(&self, tag: &str) -> Result<Vec<u8>> {
        if tag.is_empty() {
            return Err(Error::new(
                Code::InvalidArgument,
                "a tag must be a non-empty string",
            ));
        }
        if self.prefix.len() + tag.len() + 6 > MAX_KEY_BYTES {
            return Err(Error::new(
                Code::InvalidArgument,
                format!("a tag must be at most {MAX_KEY_BYTES} bytes with the key prefix"),
            ));
        }
        let mut k = Vec::with_capacity(self.prefix.len() + tag.len() + 6);
        k.extend_from_slice(self.prefix.as_bytes());
        k.extend_from_slice(b"tag:{");
        k.extend_from_slice(tag.as_bytes());
        k.push(b'}');
        Ok(k)
    }

    /// The invalidation bus channel: `<prefix>bus`.
    pub fn bus_channel(&self) -> Vec<u8> {
        let mut k = self.prefix.as_bytes().to_vec();
        k.extend_from_slice(b"bus");
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_hash_tags() {
        let k = Keys::new("agent-core:conv:");
        let t = k.thread("t42").unwrap();
        assert_eq!(t.value, b"agent-core:conv:{t42}");
        assert_eq!(t.version, b"agent-core:conv:{t42}:ver");
        assert_eq!(t.tags, b"agent-core:conv:{t42}:tags");
        assert_eq!(k.lock("t42").unwrap(), b"agent-core:conv:{t42}:lock");
        assert_eq!(k.lease("t42").unwrap(), b"agent-core:conv:{t42}:lease");
        assert_eq!(k.tag("user:1").unwrap(), b"agent-core:conv:tag:{user:1}");
        assert_eq!(k.bus_channel(), b"agent-core:conv:bus");
        // (That they share a slot is checked against a real cluster: a script touching them
        // together would fail with CROSSSLOT otherwise.)
    }

    #[test]
    fn ids_with_braces_get_keys_of_their_own() {
        let k = Keys::new("p:");
        let a = k.thread("a").unwrap();
        let b = k.thread("a}:ver").unwrap();
        assert_ne!(a.version, b.value);
        assert_ne!(a.version, b.version);
    }

    #[test]
    fn refusals() {
        let k = Keys::new("p:");
        assert_eq!(k.value("").unwrap_err().code, Code::InvalidKey);
        assert_eq!(
            k.value(&"x".repeat(MAX_KEY_BYTES)).unwrap_err().code,
            Code::InvalidKey
        );
        assert_eq!(k.tag("").unwrap_err().code, Code::InvalidArgument);
    }
}
