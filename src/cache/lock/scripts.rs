//! The Lua scripts of the lock, the fenced write and the lease, and how they are sent:
//! `EVALSHA` first, `EVAL` with the body when the server answers `NOSCRIPT` (after a restart
//! or a `SCRIPT FLUSH`). Each script touches the keys of ONE thread only (same hash tag, so
//! the same cluster slot).
//!
//! MERGE NOTE: the BUS half has its own write / invalidate scripts and probably its own
//! EVALSHA helper; [`RedisL2::eval_within`] should become the one both use.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Value;

use crate::cache::l2::{Failure, RedisL2};

/// A script's body and its SHA1 (computed once).
pub struct Lua {
    pub body: &'static str,
    hash: LazyLock<String>,
}

macro_rules! lua {
    ($name:ident, $body:expr) => {
        pub static $name: Lua = Lua {
            body: $body,
            hash: LazyLock::new(|| redis::Script::new($body).get_hash().to_string()),
        };
    };
}

// Takes the lock for a fresh token, or confirms that this token already holds it (a retry
// after a reply that never came). A receipt left by a finished write (`<token>:w:<ver>`,
// see FENCED_WRITE) is a free lock.
// KEYS[1] lock, KEYS[2] value, KEYS[3] version; ARGV[1] token, ARGV[2] ttl in ms,
// ARGV[3] '1' to read the value and version with the lock.
// -> {0, value|false, version|false} when held, else {remaining ms of the holder (>= 1)}.
lua!(
    ACQUIRE,
    r#"
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] or string.find(cur, ':w:', 1, true) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  if ARGV[3] == '1' then
    return {0, redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3])}
  end
  return {0}
end
local left = redis.call('PTTL', KEYS[1])
if left < 1 then left = 1 end
return {left}
"#
);

// Compare-and-delete: only the owner (its token, or its write's receipt) releases.
// KEYS[1] lock; ARGV[1] token. -> 1 deleted, 0 not ours (expired, taken over).
lua!(
    RELEASE,
    r#"
local cur = redis.call('GET', KEYS[1])
if cur == false then return 0 end
local mark = ARGV[1] .. ':w:'
if cur == ARGV[1] or string.sub(cur, 1, #mark) == mark then
  return redis.call('DEL', KEYS[1])
end
return 0
"#
);

// The fenced write, which also releases the lock: the value and the next version, only if
// the lock is still this token's and the version is the one read under it. The lock is
// replaced by a receipt `<token>:w:<ver>` that any other instance may take over at once
// (a free lock for ACQUIRE) but that lets a retry of this same call (its reply lost) learn
// that it was applied, instead of writing twice.
// KEYS[1] value, KEYS[2] version, KEYS[3] lock; ARGV[1] token, ARGV[2] expected version
// ('0' = none), ARGV[3] envelope, ARGV[4] ttl seconds, ARGV[5] receipt life in ms.
// -> {1, ver} written (lock released), {2, ver} already written by this call, {0, 0} lock
//    lost, {-1, current version} the version moved (a write that did not take the lock;
//    the lock is still held).
lua!(
    FENCED_WRITE,
    r#"
local mark = ARGV[1] .. ':w:'
local cur = redis.call('GET', KEYS[3])
if cur and string.sub(cur, 1, #mark) == mark then
  return {2, tonumber(string.sub(cur, #mark + 1)) or 0}
end
if cur ~= ARGV[1] then return {0, 0} end
local v = redis.call('GET', KEYS[2]) or '0'
if v ~= ARGV[2] then return {-1, tonumber(v) or -1} end
local nv = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])
redis.call('SET', KEYS[3], mark .. nv, 'PX', ARGV[5])
return {1, nv}
"#
);

// The miss path of getOrLoad across instances: the value if there; else the load lease if
// free (SET NX PX); else who holds it for how long.
// KEYS[1] value, KEYS[2] version, KEYS[3] lease; ARGV[1] token, ARGV[2] lease ms.
// -> {1, value, version|false} hit; {2, false, version|false} lease won;
//    {3, false, false, remaining ms (>= 1)} held by another instance.
lua!(
    LEASE,
    r#"
local v = redis.call('GET', KEYS[1])
local ver = redis.call('GET', KEYS[2])
if v then return {1, v, ver} end
if redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2, false, ver} end
local left = redis.call('PTTL', KEYS[3])
if left < 1 then left = 1 end
return {3, false, false, left}
"#
);

// The lease holder's fill: writes only if nobody wrote the thread since the miss (version
// unchanged), so a fill never overwrites a newer value; then releases the lease if it is
// still this token's. Fill first, release second, in one step: a waiter never sees the
// lease gone before the value is there.
// KEYS[1] value, KEYS[2] version, KEYS[3] lease; ARGV[1] version seen at the miss
// ('0' = none), ARGV[2] envelope, ARGV[3] ttl seconds, ARGV[4] token.
// -> the new version, or 0 when skipped.
lua!(
    FILL_LEASED,
    r#"
local v = redis.call('GET', KEYS[2]) or '0'
local nv = 0
if v == ARGV[1] then
  nv = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
if redis.call('GET', KEYS[3]) == ARGV[4] then redis.call('DEL', KEYS[3]) end
return nv
"#
);

// Keeps a lease (or lock) alive while its holder works: a new expiry, only for its owner.
// KEYS[1] lease; ARGV[1] token, ARGV[2] ttl ms. -> 1 renewed, 0 not ours any more.
lua!(
    RENEW,
    r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"#
);

impl Lua {
    pub fn hash(&self) -> &str {
        &self.hash
    }
}

/// Arguments of a script call: keys, then plain arguments.
pub type Args<'a> = &'a [&'a [u8]];

impl RedisL2 {
    /// Runs `script` (EVALSHA, then EVAL on NOSCRIPT) within `timeout` per round trip.
    pub(crate) async fn eval_within(
        &self,
        script: &Lua,
        keys: Args<'_>,
        args: Args<'_>,
        timeout: Duration,
    ) -> std::result::Result<Value, Failure> {
        let build = |verb: &str, head: &str| {
            let mut cmd = redis::cmd(verb);
            cmd.arg(head).arg(keys.len());
            for k in keys {
                cmd.arg(*k);
            }
            for a in args {
                cmd.arg(*a);
            }
            cmd
        };
        match self
            .call_within(&build("EVALSHA", script.hash()), timeout)
            .await
        {
            Err(Failure::NoScript) => self.call_within(&build("EVAL", script.body), timeout).await,
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_sha1_hex() {
        for s in [
            &ACQUIRE,
            &RELEASE,
            &FENCED_WRITE,
            &LEASE,
            &FILL_LEASED,
            &RENEW,
        ] {
            assert_eq!(s.hash().len(), 40);
            assert!(s.hash().bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_ne!(ACQUIRE.hash(), RELEASE.hash());
    }
}
