//! The Redis key layout of a thread (issue 5). Every key of one thread carries the thread id
//! as a hash tag, so that all of them live in one cluster slot and one script may touch them
//! together:
//!
//! ```text
//! value    {prefix}{<threadId>}          the envelope (written by set / update / fills)
//! version  {prefix}{<threadId>}:ver      integer, INCR'd with every write of the thread
//! lock     {prefix}{<threadId>}:lock     update's distributed lock (a random token, PX)
//! lease    {prefix}{<threadId>}:lease    getOrLoad's distributed single-flight lease
//! ```
//!
//! (`{prefix}` is the configured `keyPrefix` as written, e.g. `agent-core:conv:{t42}:lock`.)
//! A value key ends in `}` and the others in `}:<suffix>`, so no two threads' keys can
//! coincide whatever the ids hold.
//!
//! MERGE NOTE: the BUS half keeps the same layout in `src/cache/l2/keys.rs`; one of the two
//! modules should go (they build identical bytes).

/// `prefix{id}`: where the thread's value lives.
pub fn value_key(prefix: &str, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + id.len() + 2);
    k.extend_from_slice(prefix.as_bytes());
    k.push(b'{');
    k.extend_from_slice(id.as_bytes());
    k.push(b'}');
    k
}

/// `prefix{id}:suffix`.
fn suffixed(prefix: &str, id: &str, suffix: &str) -> Vec<u8> {
    let mut k = value_key(prefix, id);
    k.push(b':');
    k.extend_from_slice(suffix.as_bytes());
    k
}

pub fn ver_key(prefix: &str, id: &str) -> Vec<u8> {
    suffixed(prefix, id, "ver")
}

pub fn lock_key(prefix: &str, id: &str) -> Vec<u8> {
    suffixed(prefix, id, "lock")
}

pub fn lease_key(prefix: &str, id: &str) -> Vec<u8> {
    suffixed(prefix, id, "lease")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(b: Vec<u8>) -> String {
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn layout_matches_the_design() {
        let p = "agent-core:conv:";
        assert_eq!(s(value_key(p, "t42")), "agent-core:conv:{t42}");
        assert_eq!(s(ver_key(p, "t42")), "agent-core:conv:{t42}:ver");
        assert_eq!(s(lock_key(p, "t42")), "agent-core:conv:{t42}:lock");
        assert_eq!(s(lease_key(p, "t42")), "agent-core:conv:{t42}:lease");
    }

    #[test]
    fn ids_that_look_like_suffixes_do_not_collide() {
        let p = "p:";
        let all = |id: &str| {
            vec![
                value_key(p, id),
                ver_key(p, id),
                lock_key(p, id),
                lease_key(p, id),
            ]
        };
        let mut seen = std::collections::HashSet::new();
        for id in ["x", "x}:lock", "x}:ver", "x:lock", "{x}", "x}"] {
            for k in all(id) {
                assert!(seen.insert(k.clone()), "{}", s(k));
            }
        }
    }
}
