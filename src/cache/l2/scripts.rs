//! The Lua scripts of the tier. Each runs atomically on the node that owns its thread's slot
//! (all of a thread's keys share the hash tag `{<threadId>}`, see [`super::keys`]); they are
//! sent with EVALSHA, falling back to loading the script on NOSCRIPT (redis crate `Script`).
//!
//! **Versions.** Every change of a thread (write, fill, invalidate, update's write) sets its
//! version key to `max(old + 1, Redis TIME in µs)` in the same script as the change, and
//! returns it (a decimal string). Versions are opaque increasing integers (below 2^53, so a
//! JS number holds them exactly): compare them, never compute with them. Because they follow
//! the clock as well as the old value, they keep increasing even after the version key
//! expired with its value — an instance still holding an old copy in memory can never see a
//! new write announced with a smaller number than its copy's.
//!
//! **Announcing.** Scripts given a channel publish the bus message themselves (`PUBLISH`
//! inside the script: one round trip, and no change without its message). On a cluster the
//! bus channel lives in another slot, so the tier publishes (`SPUBLISH`) after the script;
//! the scripts then get an empty channel.
//!
//! Every script of the crate (these, and update's lock / fenced write / lease in
//! `crate::cache::lock`) is a `redis::Script` sent through [`RedisL2::run_script`]: EVALSHA,
//! loading the body on NOSCRIPT, behind the breaker and a deadline.

use std::sync::LazyLock;
use std::time::Duration;

use redis::{Script, ScriptInvocation, Value};

use crate::cache::l2::tier::{Failure, RedisL2};

/// Lua functions shared by the scripts (and available to other scripts of this crate, e.g.
/// update's fenced write): `bump(versionKey, ttl) -> version string` and
/// `announce(channel, head, version)` (no-op for an empty channel; `head` is the message
/// up to the version, see [`crate::cache::l2::bus::Message::head`]).
pub const VERSION_LUA: &str = r"
local function bump(key, ttl)
  local cur = tonumber(redis.call('GET', key) or '0') or 0
  local t = redis.call('TIME')
  local v = math.max(cur + 1, tonumber(t[1]) * 1000000 + tonumber(t[2]))
  local s = string.format('%.0f', v)
  redis.call('SET', key, s, 'EX', ttl)
  return s
end
local function announce(channel, head, v)
  if channel ~= '' then redis.call('PUBLISH', channel, head .. v .. '}') end
end
";

/// Write a value. KEYS: value, version, thread tags. ARGV: envelope, ttl, channel, message
/// head, tag mode (`k` keep the thread's tags, `r` replace them with ARGV[6..]), tags...
/// Returns the new version.
const WRITE: &str = r"
local v = bump(KEYS[2], ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
if ARGV[5] == 'r' then
  redis.call('DEL', KEYS[3])
  for i = 6, #ARGV do redis.call('SADD', KEYS[3], ARGV[i]) end
  if #ARGV >= 6 then redis.call('EXPIRE', KEYS[3], ARGV[2]) end
elseif redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('EXPIRE', KEYS[3], ARGV[2])
end
announce(ARGV[3], ARGV[4], v)
return v
";

/// Fill after a miss (the loader's result), only if nobody changed the thread since the
/// miss. KEYS: value, version. ARGV: envelope, ttl, the version seen at the miss (`''` =
/// none). Returns the new version, or nil (skipped: the version moved on).
const FILL: &str = r"
local cur = redis.call('GET', KEYS[2]) or ''
if cur ~= ARGV[3] then return false end
local v = bump(KEYS[2], ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return v
";

/// Invalidate a thread. KEYS: value, version, thread tags. ARGV: ttl of the version key,
/// channel, message head, required tag (`''` = none: with a tag, a thread that no longer
/// has it is left alone and nil returned). Returns {1 if a value was deleted else 0, version}.
const INVALIDATE: &str = r"
if ARGV[4] ~= '' and redis.call('SISMEMBER', KEYS[3], ARGV[4]) == 0 then return false end
local n = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[3])
local v = bump(KEYS[2], ARGV[1])
announce(ARGV[2], ARGV[3], v)
return {n, v}
";

/// Record a thread under a tag. KEYS: the tag's set. ARGV: thread id, ttl. The set lives as
/// long as the longest-lived write that joined it.
const TAG_ADD: &str = r"
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('TTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1
";

/// A script with the [`VERSION_LUA`] functions in front of `body`.
pub(crate) fn with_prelude(body: &str) -> Script {
    Script::new(&format!("{VERSION_LUA}{body}"))
}

pub static WRITE_SCRIPT: LazyLock<Script> = LazyLock::new(|| with_prelude(WRITE));
pub static FILL_SCRIPT: LazyLock<Script> = LazyLock::new(|| with_prelude(FILL));
pub static INVALIDATE_SCRIPT: LazyLock<Script> = LazyLock::new(|| with_prelude(INVALIDATE));
pub static TAG_ADD_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(TAG_ADD));

impl RedisL2 {
    /// Runs a prepared script invocation (EVALSHA, the body loaded on NOSCRIPT) behind the
    /// breaker, within `timeout` (see [`RedisL2::exec_within`]).
    pub(crate) async fn run_script(
        &self,
        inv: ScriptInvocation<'_>,
        timeout: Duration,
    ) -> std::result::Result<Value, Failure> {
        self.exec_within(
            |mut h| async move { inv.invoke_async(&mut h).await },
            timeout,
        )
        .await
    }

    /// [`RedisL2::run_script`] of `script` with `keys` then `args`.
    pub(crate) async fn eval_within(
        &self,
        script: &Script,
        keys: &[&[u8]],
        args: &[&[u8]],
        timeout: Duration,
    ) -> std::result::Result<Value, Failure> {
        let mut inv = script.prepare_invoke();
        for k in keys {
            inv.key(*k);
        }
        for a in args {
            inv.arg(*a);
        }
        self.run_script(inv, timeout).await
    }
}
