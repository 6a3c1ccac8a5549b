//! The lease behind a distributed single flight of `getOrLoad` (issue 5): on a cold key, the
//! instance that takes the lease runs the loader; the others wait for its value in Redis.
//!
//! One script does the whole check: value there -> a hit; else `SET lease token NX PX ms` ->
//! won (load, then [`RedisL2::fill_leased`]); else held by another instance (wait and ask
//! again). A leader that dies leaves a lease that expires by itself, after which the next
//! caller to ask takes it and loads. A live leader renews its lease while loading
//! ([`RedisL2::renew_lease`]), so a load may outlast the lease length.

use std::time::Duration;

use redis::Value;

use crate::cache::l2::{Failure, Kind, Message, RedisL2};
use crate::cache::lock::scripts::{FILL_LEASED_SCRIPT, LEASE_SCRIPT, RENEW_SCRIPT};
use crate::cache::lock::{new_token, px, version_of, Versioned, WriteArgs};
use crate::error::Result;

/// What one [`RedisL2::lease`] call found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    /// The value is there (with its version).
    Hit(Versioned),
    /// No value, and the lease is now ours under `token`: load, then `fill_leased`.
    /// `version` is the thread's version seen now (the fill is conditional on it).
    Won { token: String, version: u64 },
    /// No value; another instance holds the lease for `left` more.
    Held { left: Duration },
    /// Redis could not be asked, or the value there is not ours / corrupt: load without a lease.
    Unavailable,
}

impl RedisL2 {
    /// Reads thread `id`; when it is absent, tries to take its load lease for `ttl`.
    /// One round trip within `timeoutMs` (this is the read path of a miss).
    pub async fn lease(&self, id: &str, ttl: Duration) -> Result<Lease> {
        self.check_open()?;
        let k = self.keys_of(id)?;
        let token = new_token()?;
        let ms = px(ttl, "loadLeaseMs")?;
        let r = self
            .eval_within(
                &LEASE_SCRIPT,
                &[&k.value, &k.ver, &k.lease],
                &[token.as_bytes(), ms.as_bytes()],
                self.config().timeout,
            )
            .await;
        let Ok(Value::Array(items)) = r else {
            return Ok(Lease::Unavailable);
        };
        Ok(match items.as_slice() {
            [Value::Int(1), value, ver, ..] => match self.reply_value(value.clone()) {
                Some(payload) => Lease::Hit(Versioned {
                    payload: Some(payload),
                    version: version_of(ver),
                }),
                None => Lease::Unavailable,
            },
            [Value::Int(2), _, ver, ..] => Lease::Won {
                token,
                version: version_of(ver),
            },
            [Value::Int(3), _, _, Value::Int(left)] => Lease::Held {
                left: Duration::from_millis((*left).max(1) as u64),
            },
            _ => Lease::Unavailable,
        })
    }

    /// The leader's fill: writes `payload` with the next version only if the thread's
    /// version is still `expected` (nobody wrote since the miss), then releases the lease
    /// (if still `token`'s), in one round trip. `Some(version)` when written; `None` when
    /// skipped (a newer write) or Redis was not reached.
    pub async fn fill_leased(
        &self,
        id: &str,
        token: &str,
        expected: u64,
        payload: &[u8],
        ttl_seconds: Option<u64>,
    ) -> Result<Option<u64>> {
        let WriteArgs {
            k,
            env,
            compressed: _,
            expected,
            ttl,
        } = self.write_args(id, expected, payload, ttl_seconds)?;
        let head = Message::head(id, self.origin(), Kind::Write);
        let r = self
            .eval_within(
                &FILL_LEASED_SCRIPT,
                &[&k.value, &k.ver, &k.lease],
                &[
                    expected.as_bytes(),
                    &env,
                    ttl.as_bytes(),
                    token.as_bytes(),
                    &self.script_channel(),
                    head.as_bytes(),
                ],
                self.config().timeout,
            )
            .await;
        match r {
            Ok(v) => match version_of(&v) {
                0 => {
                    self.count_fill(None);
                    Ok(None)
                }
                ver => {
                    // Announced by the script on a single server; published now on a cluster.
                    self.count_fill(Some(env.len() as u64));
                    self.after_change(id, ver, Kind::Write).await;
                    Ok(Some(ver))
                }
            },
            Err(f) => {
                if matches!(f, Failure::Redis) {
                    self.after_maybe_changed(id, Kind::Write).await;
                }
                Ok(None)
            }
        }
    }

    /// Extends the lease of `id` to `ttl` from now if `token` still holds it (the leader
    /// renews while its loader runs, so that a short lease detects a dead leader quickly
    /// without cutting a long load short). `false`: not ours any more, or Redis not reached.
    pub async fn renew_lease(&self, id: &str, token: &str, ttl: Duration) -> Result<bool> {
        self.check_open()?;
        let k = self.keys_of(id)?;
        let ms = px(ttl, "loadLeaseMs")?;
        let r = self
            .eval_within(
                &RENEW_SCRIPT,
                &[&k.lease],
                &[token.as_bytes(), ms.as_bytes()],
                self.config().timeout,
            )
            .await;
        Ok(matches!(r, Ok(Value::Int(1))))
    }

    /// Gives the lease of `id` up (the load failed or found nothing), if `token` holds it.
    pub async fn unlease(&self, id: &str, token: &str) -> Result<bool> {
        let k = self.keys_of(id)?;
        self.release(&k.lease, token).await
    }
}
