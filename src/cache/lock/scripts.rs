//! The Lua scripts of the lock, the fenced write and the lease. They are `redis::Script`s
//! sent like every other script of the tier ([`RedisL2::eval_within`]: EVALSHA, the body
//! loaded on NOSCRIPT), and each touches the keys of ONE thread only (same hash tag, so the
//! same cluster slot).
//!
//! The two that change a thread (the fenced write, the lease fill) move its version exactly
//! as the tier's own write / fill / invalidate do: `bump` of
//! [`crate::cache::l2::scripts::VERSION_LUA`] (`max(old + 1, Redis TIME in µs)`), and
//! announce the change on the bus with `announce` (single server; on a cluster the tier
//! publishes after the script). Versions therefore stay monotonic and comparable whichever
//! path wrote them.
//!
//! [`RedisL2::eval_within`]: crate::cache::l2::RedisL2

use std::sync::LazyLock;

use redis::Script;

use crate::cache::l2::scripts::with_prelude;

// Takes the lock for a fresh token, or confirms that this token already holds it (a retry
// after a reply that never came). A receipt left by a finished write (`<token>:w:<ver>`,
// see FENCED_WRITE) is a free lock.
// KEYS[1] lock, KEYS[2] value, KEYS[3] version; ARGV[1] token, ARGV[2] ttl in ms,
// ARGV[3] '1' to read the value and version with the lock.
// -> {0, value|false, version|false} when held, else {remaining ms of the holder (>= 1)}.
const ACQUIRE: &str = r#"
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
"#;

// Compare-and-delete: only the owner (its token, or its write's receipt) releases.
// KEYS[1] lock; ARGV[1] token. -> 1 deleted, 0 not ours (expired, taken over).
const RELEASE: &str = r#"
local cur = redis.call('GET', KEYS[1])
if cur == false then return 0 end
local mark = ARGV[1] .. ':w:'
if cur == ARGV[1] or string.sub(cur, 1, #mark) == mark then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

// The fenced write, which also releases the lock: the value and the next version (`bump`),
// only if the lock is still this token's and the version is the one read under it; the
// thread's tags live on with the value; the change is announced (`announce`). The lock is
// replaced by a receipt `<token>:w:<ver>` that any other instance may take over at once (a
// free lock for ACQUIRE) but that lets a retry of this same call (its reply lost) learn that
// it was applied, instead of writing twice.
// KEYS[1] value, KEYS[2] version, KEYS[3] lock, KEYS[4] thread tags; ARGV[1] token,
// ARGV[2] expected version ('0' = none), ARGV[3] envelope, ARGV[4] ttl seconds, ARGV[5]
// receipt life in ms, ARGV[6] bus channel ('' = none), ARGV[7] bus message head.
// -> {1, ver} written (lock released), {2, ver} already written by this call, {0, 0} lock
//    lost, {-1, current version} the version moved (a write that did not take the lock;
//    the lock is still held). Versions are decimal strings.
const FENCED_WRITE: &str = r#"
local mark = ARGV[1] .. ':w:'
local cur = redis.call('GET', KEYS[3])
if cur and string.sub(cur, 1, #mark) == mark then
  return {2, string.sub(cur, #mark + 1)}
end
if cur ~= ARGV[1] then return {0, 0} end
local v = redis.call('GET', KEYS[2]) or '0'
if v ~= ARGV[2] then return {-1, v} end
local nv = bump(KEYS[2], ARGV[4])
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])
if redis.call('EXISTS', KEYS[4]) == 1 then redis.call('EXPIRE', KEYS[4], ARGV[4]) end
redis.call('SET', KEYS[3], mark .. nv, 'PX', ARGV[5])
announce(ARGV[6], ARGV[7], nv)
return {1, nv}
"#;

// The miss path of getOrLoad across instances: the value if there; else the load lease if
// free (SET NX PX); else who holds it for how long.
// KEYS[1] value, KEYS[2] version, KEYS[3] lease; ARGV[1] token, ARGV[2] lease ms.
// -> {1, value, version|false} hit; {2, false, version|false} lease won;
//    {3, false, false, remaining ms (>= 1)} held by another instance.
const LEASE: &str = r#"
local v = redis.call('GET', KEYS[1])
local ver = redis.call('GET', KEYS[2])
if v then return {1, v, ver} end
if redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2, false, ver} end
local left = redis.call('PTTL', KEYS[3])
if left < 1 then left = 1 end
return {3, false, false, left}
"#;

// The lease holder's fill: writes (and announces) only if nobody wrote the thread since the
// miss (version unchanged), so a fill never overwrites a newer value; then releases the
// lease if it is still this token's. Fill first, release second, in one step: a waiter
// never sees the lease gone before the value is there.
// KEYS[1] value, KEYS[2] version, KEYS[3] lease; ARGV[1] version seen at the miss
// ('0' = none), ARGV[2] envelope, ARGV[3] ttl seconds, ARGV[4] token, ARGV[5] bus channel
// ('' = none), ARGV[6] bus message head.
// -> the new version (a decimal string), or '0' when skipped.
const FILL_LEASED: &str = r#"
local v = redis.call('GET', KEYS[2]) or '0'
local nv = '0'
if v == ARGV[1] then
  nv = bump(KEYS[2], ARGV[3])
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  announce(ARGV[5], ARGV[6], nv)
end
if redis.call('GET', KEYS[3]) == ARGV[4] then redis.call('DEL', KEYS[3]) end
return nv
"#;

// Keeps a lease (or lock) alive while its holder works: a new expiry, only for its owner.
// KEYS[1] lease; ARGV[1] token, ARGV[2] ttl ms. -> 1 renewed, 0 not ours any more.
const RENEW: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"#;

pub static ACQUIRE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(ACQUIRE));
pub static RELEASE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(RELEASE));
pub static FENCED_WRITE_SCRIPT: LazyLock<Script> = LazyLock::new(|| with_prelude(FENCED_WRITE));
pub static LEASE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(LEASE));
pub static FILL_LEASED_SCRIPT: LazyLock<Script> = LazyLock::new(|| with_prelude(FILL_LEASED));
pub static RENEW_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(RENEW));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_sha1_hex_and_distinct() {
        let all = [
            &ACQUIRE_SCRIPT,
            &RELEASE_SCRIPT,
            &FENCED_WRITE_SCRIPT,
            &LEASE_SCRIPT,
            &FILL_LEASED_SCRIPT,
            &RENEW_SCRIPT,
        ];
        let mut seen = std::collections::HashSet::new();
        for s in all {
            let h = s.get_hash();
            assert_eq!(h.len(), 40);
            assert!(h.bytes().all(|b| b.is_ascii_hexdigit()));
            assert!(seen.insert(h.to_string()));
        }
    }

    #[test]
    fn changing_scripts_move_the_version_like_the_tier_does() {
        for body in [FENCED_WRITE, FILL_LEASED] {
            assert!(body.contains("bump(KEYS[2]"), "{body}");
            assert!(!body.contains("INCR"), "{body}");
            assert!(body.contains("announce("), "{body}");
        }
    }
}
