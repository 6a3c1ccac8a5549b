//! Coherence across instances (issue 5, LOCK half): the distributed lock behind `update`,
//! the fenced write, and the lease behind a distributed single flight of `getOrLoad`.
//!
//! - [`RedisL2::lock`]: `SET lock token PX ttl` if free (a script, so that a retry after a
//!   lost reply recognises its own token), retried with jittered exponential backoff until
//!   `wait` runs out. It reads the thread's value and version in the same round trip.
//! - [`RedisL2::write_fenced`]: writes value + next version only if the lock still holds this
//!   token AND the version is still the one read under the lock, and releases the lock in
//!   the same step. A holder whose lock expired (a slow updater) gets [`Fenced::LockLost`]
//!   and writes nothing, so it can never overwrite what the next holder wrote.
//! - [`RedisL2::unlock`]: compare-and-delete; only the owner releases.
//! - [`RedisL2::lease`] / [`RedisL2::fill_leased`] / [`RedisL2::unlease`] (`lease.rs`): the
//!   load lease of a cold key, so that N instances run the loader once in total.
//!
//! Redis failing is not an error here either: the outcomes say what happened
//! ([`Acquire::Unavailable`], [`Fenced::Unreachable`], ...) and the caller decides (the
//! cache falls back to in-process semantics when the lock cannot be had at all).

mod lease;
mod scripts;

use std::time::{Duration, Instant};

use redis::Value;

use crate::cache::l2::reads::parse_version;
use crate::cache::l2::{Failure, Kind, Message, RedisL2};
use crate::error::{Code, Error, Result};

pub use lease::Lease;
use scripts::{ACQUIRE_SCRIPT, FENCED_WRITE_SCRIPT, RELEASE_SCRIPT};

/// First backoff step between two tries for a busy lock; doubles up to [`BACKOFF_MAX`],
/// each sleep drawn at random from its upper half (jitter), never past the holder's expiry.
pub const BACKOFF_MIN: Duration = Duration::from_millis(1);
pub const BACKOFF_MAX: Duration = Duration::from_millis(32);
/// How much longer than a write's deadline its receipt is kept (see [`RedisL2::write_fenced`]).
const RECEIPT_MARGIN: Duration = Duration::from_secs(1);
/// Shortest deadline of a release.
pub const RELEASE_TIMEOUT_MIN: Duration = Duration::from_millis(500);
/// Redis failures in a row after which `lock` answers `Unavailable` (when no other holder
/// was seen): the first is retried with the same token (it may have taken the lock).
const MAX_LOCK_FAILURES: u32 = 2;
/// Longest lock (or lease) accepted, in ms.
pub const MAX_TTL_MS: u64 = 3_600_000;

/// A thread's value as Redis holds it, with its version (0: never written).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Versioned {
    /// The payload (UTF-8 JSON); `None` when absent (or not decodable: counted as corrupt).
    pub payload: Option<String>,
    pub version: u64,
}

/// What [`RedisL2::lock`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquire {
    /// The lock is ours under `token` until released or `ttl` after it was taken; `current`
    /// is the thread as read in the same round trip.
    Held { token: String, current: Versioned },
    /// Another holder kept it for the whole wait.
    Busy,
    /// Redis could not be asked (down, circuit open, no answer before the wait ran out).
    Unavailable,
}

/// What [`RedisL2::write_fenced`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fenced {
    /// Written, and the lock released; the thread's new version.
    Written(u64),
    /// The lock is not this token's any more (it expired; maybe another holder took it).
    /// Nothing was written.
    LockLost,
    /// The lock is ours but the version moved since it was read (a write that did not take
    /// the lock, e.g. `set` or `invalidate`). Nothing was written; the current version.
    Conflict(u64),
    /// Redis could not be reached before the deadline; nothing was written.
    Unreachable,
    /// A try may have been applied but its reply never came, and the lock expired before
    /// that could be settled. The thread may or may not hold this write.
    Unknown,
}

/// A fresh random token (128 bits from the OS, hex).
pub fn new_token() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| {
        Error::new(
            Code::Internal,
            format!("no randomness for a lock token: {e}"),
        )
    })?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// A duration in whole ms (>= 1), for a `PX` argument; `name` is the option it came from.
pub(crate) fn px(d: Duration, name: &str) -> Result<String> {
    let ms = d.as_millis();
    if ms == 0 || ms > u128::from(MAX_TTL_MS) {
        return Err(Error::invalid_option(
            name,
            format!("must be from 1 to {MAX_TTL_MS} ms, got {ms}"),
        ));
    }
    Ok(ms.to_string())
}

/// The backoff before try `n + 1` (n >= 1), jittered, capped by `hint` (the holder's
/// remaining time) and by what is left of the wait.
pub fn backoff(n: u32, hint: Option<Duration>, left: Duration) -> Duration {
    let step = BACKOFF_MIN
        .saturating_mul(1u32 << n.saturating_sub(1).min(16))
        .min(BACKOFF_MAX);
    let half = step / 2;
    let jittered = half + Duration::from_micros(fastrand::u64(0..=half.as_micros() as u64));
    let mut d = jittered.min(left);
    if let Some(h) = hint {
        d = d.min(h);
    }
    d
}

/// Parses a version (`GET ver`, as the tier's reads do): absent = 0; a value that is not a
/// number is treated as 0 (the next write fails its version check and says so).
pub(crate) fn version_of(v: &Value) -> u64 {
    parse_version(v).unwrap_or(0)
}

/// What is left until `deadline`, at least `floor` (so that one try always gets a chance).
fn left(deadline: Instant, floor: Duration) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(floor)
}

impl RedisL2 {
    /// Takes the lock of thread `id` for `ttl`, trying until `wait` has passed, and reads
    /// the thread's value and version with it.
    pub async fn lock(&self, id: &str, ttl: Duration, wait: Duration) -> Result<Acquire> {
        self.check_open()?;
        let k = self.keys_of(id)?;
        let token = new_token()?;
        let ttl_ms = px(ttl, "lockTtlMs")?;
        let deadline = Instant::now() + wait;
        let mut tries = 0u32;
        // Whether another holder was seen: then running out of time is `Busy`, never
        // `Unavailable` (which would let the caller write without the lock).
        let mut busy = false;
        let mut failures = 0u32;
        loop {
            tries += 1;
            let per_try = left(deadline, self.config().timeout);
            let r = self
                .eval_within(
                    &ACQUIRE_SCRIPT,
                    &[&k.lock, &k.value, &k.ver],
                    &[token.as_bytes(), ttl_ms.as_bytes(), b"1"],
                    per_try,
                )
                .await;
            let mut hint = None;
            match r {
                Ok(Value::Array(items)) => match items.as_slice() {
                    [Value::Int(0), value, ver] => {
                        let current = Versioned {
                            payload: self.reply_value(value.clone()),
                            version: version_of(ver),
                        };
                        return Ok(Acquire::Held { token, current });
                    }
                    [Value::Int(ms)] => {
                        busy = true;
                        hint = Some(Duration::from_millis((*ms).max(1) as u64));
                    }
                    _ => return Ok(Acquire::Unavailable),
                },
                Ok(_) | Err(Failure::Reply) | Err(Failure::NoScript) => {
                    return Ok(Acquire::Unavailable)
                }
                Err(Failure::ShortCircuit) => return Ok(Acquire::Unavailable),
                // A try that failed or timed out may still have taken the lock: the next try
                // with the same token finds out. A second failure in a row (and no holder
                // seen) means Redis is not answering: unavailable at once, rather than feeding
                // the breaker until it opens, which would keep this instance's writes (and
                // their bus messages) off Redis for a cooldown after Redis is back.
                Err(Failure::Redis | Failure::Unsent) => {
                    failures += 1;
                    if failures >= MAX_LOCK_FAILURES && !busy {
                        return Ok(Acquire::Unavailable);
                    }
                }
            }
            let rest = deadline.saturating_duration_since(Instant::now());
            if rest.is_zero() {
                return Ok(if busy {
                    Acquire::Busy
                } else {
                    Acquire::Unavailable
                });
            }
            tokio::time::sleep(backoff(tries, hint, rest)).await;
        }
    }

    /// Releases the lock of `id` if `token` still holds it. `true` when it was ours and is
    /// gone; `false` when it was not ours any more (expired, taken over) or Redis could not
    /// be reached (then it expires by itself).
    pub async fn unlock(&self, id: &str, token: &str) -> Result<bool> {
        let k = self.keys_of(id)?;
        self.release(&k.lock, token).await
    }

    /// Compare-and-delete of `key` for `token` (lock or lease).
    pub(crate) async fn release(&self, key: &[u8], token: &str) -> Result<bool> {
        self.check_open()?;
        // Not `timeoutMs` alone: a release that times out leaves the lock in the way of every
        // other instance until it expires.
        let timeout = self.config().timeout.max(RELEASE_TIMEOUT_MIN);
        let r = self
            .eval_within(&RELEASE_SCRIPT, &[key], &[token.as_bytes()], timeout)
            .await;
        Ok(matches!(r, Ok(Value::Int(1))))
    }

    /// Writes `payload` as thread `id`'s value with the next version, only if `token` still
    /// holds the lock and the version is still `expected` (as read under the lock), and
    /// releases the lock in the same step ([`Fenced::Written`]; otherwise the lock is left as
    /// it is, for [`RedisL2::unlock`]). Tries again on Redis failures until `until`; a retry
    /// of a write that was applied but whose reply got lost is recognised (the write leaves a
    /// receipt in place of the lock), never applied twice.
    pub async fn write_fenced(
        &self,
        id: &str,
        token: &str,
        expected: u64,
        payload: &[u8],
        ttl_seconds: Option<u64>,
        until: Instant,
    ) -> Result<Fenced> {
        let WriteArgs {
            k,
            env,
            compressed,
            expected,
            ttl,
        } = self.write_args(id, expected, payload, ttl_seconds)?;
        let channel = self.script_channel();
        let head = Message::head(id, self.origin(), Kind::Write);
        let mut maybe_applied = false;
        let mut tries = 0u32;
        loop {
            tries += 1;
            let per_try = left(until, self.config().timeout);
            // The receipt must outlive every retry of this call.
            let receipt_ms = (per_try + RECEIPT_MARGIN).as_millis().to_string();
            let r = self
                .eval_within(
                    &FENCED_WRITE_SCRIPT,
                    &[&k.value, &k.ver, &k.lock, &k.tags],
                    &[
                        token.as_bytes(),
                        expected.as_bytes(),
                        &env,
                        ttl.as_bytes(),
                        receipt_ms.as_bytes(),
                        &channel,
                        head.as_bytes(),
                    ],
                    per_try,
                )
                .await;
            let outcome = match r {
                Ok(Value::Array(items)) => {
                    let code = items.first().map(version_of_signed).unwrap_or(i64::MIN);
                    let ver = items.get(1).map(version_of).unwrap_or(0);
                    match code {
                        1 | 2 => {
                            if code == 1 {
                                self.count_write(env.len() as u64, compressed);
                            }
                            Fenced::Written(ver)
                        }
                        0 if maybe_applied => Fenced::Unknown,
                        0 => Fenced::LockLost,
                        -1 => Fenced::Conflict(ver),
                        _ => Fenced::Unreachable,
                    }
                }
                Ok(_) | Err(Failure::Reply) | Err(Failure::NoScript) => {
                    if maybe_applied {
                        Fenced::Unknown
                    } else {
                        Fenced::Unreachable
                    }
                }
                Err(f) => {
                    if matches!(f, Failure::Redis) {
                        maybe_applied = true;
                    }
                    let rest = until.saturating_duration_since(Instant::now());
                    if !rest.is_zero() {
                        tokio::time::sleep(backoff(tries, None, rest)).await;
                        continue;
                    }
                    if maybe_applied {
                        Fenced::Unknown
                    } else {
                        Fenced::Unreachable
                    }
                }
            };
            // Other instances drop their copies: the script announced the write on a single
            // server; on a cluster the tier publishes it now (a write that may or may not
            // have landed is announced as unknown, so that they drop them too).
            match outcome {
                Fenced::Written(v) => self.after_change(id, v, Kind::Write).await,
                Fenced::Unknown => self.after_maybe_changed(id, Kind::Write).await,
                _ => {}
            }
            return Ok(outcome);
        }
    }
}

fn version_of_signed(v: &Value) -> i64 {
    match v {
        Value::Int(n) => *n,
        _ => i64::MIN,
    }
}

/// What a conditional write of a thread sends (see [`RedisL2::write_args`]).
pub(crate) struct WriteArgs {
    pub k: ThreadKeys,
    /// The envelope, and whether it is compressed (for the statistics).
    pub env: Vec<u8>,
    pub compressed: bool,
    /// The version the write is conditional on, as a script argument.
    pub expected: String,
    /// The value's TTL in seconds (jitter included), as a script argument.
    pub ttl: String,
}

/// The keys of one thread this module touches (built by [`crate::cache::l2::Keys`], the one
/// key layout).
pub(crate) struct ThreadKeys {
    pub value: Vec<u8>,
    pub ver: Vec<u8>,
    pub tags: Vec<u8>,
    pub lock: Vec<u8>,
    pub lease: Vec<u8>,
}

impl RedisL2 {
    /// The arguments of a conditional write of `payload` to thread `id`.
    pub(crate) fn write_args(
        &self,
        id: &str,
        expected: u64,
        payload: &[u8],
        ttl_seconds: Option<u64>,
    ) -> Result<WriteArgs> {
        self.check_open()?;
        let k = self.keys_of(id)?;
        let env = crate::cache::l2::envelope::encode(payload, self.config().compression);
        Ok(WriteArgs {
            k,
            compressed: env.is_compressed(),
            env: env.to_vec(),
            expected: expected.to_string(),
            ttl: self.ttl_for(ttl_seconds).to_string(),
        })
    }

    /// The keys of thread `id`, refusing ids the tier refuses.
    pub(crate) fn keys_of(&self, id: &str) -> Result<ThreadKeys> {
        let keys = self.keys();
        let t = keys.thread(id)?;
        Ok(ThreadKeys {
            value: t.value,
            ver: t.version,
            tags: t.tags,
            lock: keys.lock(id)?,
            lease: keys.lease(id)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn backoff_grows_with_jitter_and_respects_caps() {
        let long = Duration::from_secs(10);
        for n in 1..40 {
            let d = backoff(n, None, long);
            let step = (BACKOFF_MIN * (1u32 << (n - 1).min(16))).min(BACKOFF_MAX);
            assert!(
                d >= step / 2 && d <= step,
                "try {n}: {d:?} vs step {step:?}"
            );
        }
        assert!(backoff(30, Some(Duration::from_millis(3)), long) <= Duration::from_millis(3));
        assert!(backoff(30, None, Duration::from_millis(2)) <= Duration::from_millis(2));
        // Jitter: not always the same sleep.
        let draws: std::collections::HashSet<_> = (0..50).map(|_| backoff(6, None, long)).collect();
        assert!(draws.len() > 1);
    }

    #[test]
    fn ttl_bounds_are_checked() {
        assert!(px(Duration::ZERO, "x").unwrap_err().message.contains("`x`"));
        assert!(px(Duration::from_millis(MAX_TTL_MS + 1), "x").is_err());
        assert_eq!(px(Duration::from_millis(250), "x").unwrap(), "250");
    }

    #[test]
    fn versions_parse_leniently() {
        assert_eq!(version_of(&Value::Nil), 0);
        assert_eq!(version_of(&Value::BulkString(b"42".to_vec())), 42);
        assert_eq!(version_of(&Value::BulkString(b"x".to_vec())), 0);
        assert_eq!(version_of(&Value::Int(7)), 7);
    }
}
