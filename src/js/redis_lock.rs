//! `RedisTier`'s lock methods (issue 5): the distributed lock and the fenced write behind
//! `ConversationCache#update`. Like the rest of the tier, Redis failing is an outcome
//! (`'unavailable'`, `'unreachable'`), never a rejection; only caller mistakes reject.

use std::time::{Duration, Instant};

use napi::bindgen_prelude::*;
use napi::ValueType;
use napi_derive::napi;

use crate::cache::lock::{Acquire, Fenced, Lease, MAX_TTL_MS};
use crate::error::{Code, Error as CoreError, Result as CoreResult};
use crate::js::redis_tier::{
    json_arg, key_arg, napi_err, spawn, ttl_arg, type_name, JsText, Json, RedisTier,
};

/// What {@link RedisTier.lock} got.
#[napi(object, object_from_js = false)]
pub struct TierLockResult {
    /// `'held'`: the lock is yours under `token`; `'busy'`: another holder kept it for the
    /// whole wait; `'unavailable'`: Redis could not be asked (down, circuit open).
    #[napi(ts_type = "'held' | 'busy' | 'unavailable'")]
    pub status: String,
    /// Your token (when held): pass it to `writeFenced` and `unlock`.
    pub token: Option<String>,
    /// The thread's value, read with the lock (when held); `null` when absent.
    #[napi(ts_type = "string | null")]
    pub json: Option<JsText>,
    /// The thread's version read with the lock (0: never written).
    pub version: f64,
}

/// What {@link RedisTier.writeFenced} did.
#[napi(object, object_from_js = false)]
pub struct TierFencedResult {
    /// `'written'` (the lock is released); `'lost'`: the lock is not yours any more, nothing written; `'conflict'`:
    /// the version moved under the lock, nothing written; `'unreachable'`: Redis could not be
    /// reached in time, nothing written; `'unknown'`: a try may have been applied but its
    /// reply never came and the lock expired before that could be settled.
    #[napi(ts_type = "'written' | 'lost' | 'conflict' | 'unreachable' | 'unknown'")]
    pub status: String,
    /// The new version (`'written'`) or the current one (`'conflict'`); 0 otherwise.
    pub version: f64,
}

/// What {@link RedisTier.lease} found.
#[napi(object, object_from_js = false)]
pub struct TierLeaseResult {
    /// `'hit'`: the value is there (`json`); `'won'`: it is not, and the load lease is yours
    /// under `token` (load, then `fillLeased`); `'held'`: another instance is loading it (for
    /// at most `leftMs` more); `'unavailable'`: Redis could not be asked, or holds a value
    /// that is not ours: load without a lease.
    #[napi(ts_type = "'hit' | 'won' | 'held' | 'unavailable'")]
    pub status: String,
    #[napi(ts_type = "string | null")]
    pub json: Option<JsText>,
    /// The thread's version (`'hit'`, `'won'`: pass it to `fillLeased`).
    pub version: f64,
    pub token: Option<String>,
    /// How long the other instance's lease lasts at most (`'held'`), ms.
    pub left_ms: f64,
}

/// A non-negative integer (milliseconds, a version) named `name`, within `[min, max]`.
fn ms_arg(v: &Unknown, name: &str, min: f64, max: f64) -> CoreResult<u64> {
    let n = match v.get_type().map_err(napi_err)? {
        // SAFETY: the value was just checked to be a JS number.
        ValueType::Number => unsafe { v.cast::<f64>() }.map_err(napi_err)?,
        _ => {
            return Err(CoreError::invalid_option(
                name,
                format!("must be a number, got {}", type_name(v)),
            ))
        }
    };
    if n.is_finite() && n.fract() == 0.0 && n >= min && n <= max {
        Ok(n as u64)
    } else {
        Err(CoreError::invalid_option(
            name,
            format!("must be an integer from {min} to {max}, got {n}"),
        ))
    }
}

fn token_arg(v: &Unknown) -> CoreResult<String> {
    if v.get_type().map_err(napi_err)? == ValueType::String {
        // SAFETY: the value was just checked to be a JS string.
        return unsafe { v.cast::<String>() }.map_err(napi_err);
    }
    Err(CoreError::new(
        Code::InvalidArgument,
        format!("token must be a string, got {}", type_name(v)),
    ))
}

const MAX_MS: f64 = MAX_TTL_MS as f64;

/// What a fenced write (`writeFenced`, `fillLeased`) is given first: the thread's key, the
/// token that must still hold it, the version the write expects, and the JSON.
fn write_args(
    env: &Env,
    key: &Unknown,
    token: &Unknown,
    version: &Unknown,
    json: &Unknown,
) -> CoreResult<(String, String, u64, Json)> {
    Ok((
        key_arg(key)?,
        token_arg(token)?,
        ms_arg(version, "version", 0.0, MAX_VERSION)?,
        json_arg(env, json)?,
    ))
}

/// Which of a thread's tokens a release is for.
#[derive(Clone, Copy)]
enum Held {
    Lock,
    Lease,
}

impl RedisTier {
    /// `unlock` / `unlease`: a compare-and-delete of the lock or the lease of `key`.
    fn release<'env>(
        &self,
        env: &'env Env,
        key: Unknown,
        token: Unknown,
        what: Held,
    ) -> Result<PromiseRaw<'env, bool>> {
        let args = key_arg(&key).and_then(|k| Ok((k, token_arg(&token)?)));
        let inner = self.inner.clone();
        spawn(env, async move {
            let (key, token) = args?;
            match what {
                Held::Lock => inner.unlock(&key, &token).await,
                Held::Lease => inner.unlease(&key, &token).await,
            }
        })
    }
}
/// Versions travel as JS numbers: exact up to 2^53 - 1.
const MAX_VERSION: f64 = 9_007_199_254_740_991.0;

#[napi]
impl RedisTier {
    /// Takes the distributed lock of thread `key` for `ttlMs` (SET NX PX with a random token),
    /// trying with jittered backoff for up to `waitMs`, and reads the thread's value and
    /// version in the same round trip.
    #[napi(
        ts_args_type = "key: string, ttlMs: number, waitMs: number",
        ts_return_type = "Promise<TierLockResult>"
    )]
    pub fn lock<'env>(
        &self,
        env: &'env Env,
        key: Unknown,
        ttl_ms: Unknown,
        wait_ms: Unknown,
    ) -> Result<PromiseRaw<'env, TierLockResult>> {
        let args = key_arg(&key).and_then(|k| {
            Ok((
                k,
                ms_arg(&ttl_ms, "lockTtlMs", 1.0, MAX_MS)?,
                ms_arg(&wait_ms, "lockWaitMs", 0.0, MAX_MS)?,
            ))
        });
        let inner = self.inner.clone();
        spawn(env, async move {
            let (key, ttl, wait) = args?;
            let got = inner
                .lock(
                    &key,
                    Duration::from_millis(ttl),
                    Duration::from_millis(wait),
                )
                .await?;
            Ok(match got {
                Acquire::Held { token, current } => TierLockResult {
                    status: "held".into(),
                    token: Some(token),
                    json: current.payload.map(JsText::from_payload),
                    version: current.version as f64,
                },
                other => TierLockResult {
                    status: if other == Acquire::Busy {
                        "busy"
                    } else {
                        "unavailable"
                    }
                    .into(),
                    token: None,
                    json: None,
                    version: 0.0,
                },
            })
        })
    }

    /// Releases the lock of `key` if `token` still holds it (compare-and-delete). Resolves
    /// `true` when it was yours and is gone, `false` otherwise (expired, taken over, or Redis
    /// not reached: then it expires by itself).
    #[napi(
        ts_args_type = "key: string, token: string",
        ts_return_type = "Promise<boolean>"
    )]
    pub fn unlock<'env>(
        &self,
        env: &'env Env,
        key: Unknown,
        token: Unknown,
    ) -> Result<PromiseRaw<'env, bool>> {
        self.release(env, key, token, Held::Lock)
    }

    /// Writes `json` as thread `key`'s value with the next version, only if `token` still
    /// holds the lock AND the version is still `version` (as read by `lock`), releasing the
    /// lock in the same step when it writes (otherwise call `unlock`). Retries Redis failures
    /// for up to `forMs` (the lock's remaining time); a retry never applies twice.
    #[napi(
        ts_args_type = "key: string, token: string, version: number, json: string | SerializedPayload, forMs: number, ttlSeconds?: number",
        ts_return_type = "Promise<TierFencedResult>"
    )]
    #[allow(clippy::too_many_arguments)]
    pub fn write_fenced<'env>(
        &self,
        env: &'env Env,
        key: Unknown,
        token: Unknown,
        version: Unknown,
        json: Unknown,
        for_ms: Unknown,
        ttl_seconds: Option<Unknown>,
    ) -> Result<PromiseRaw<'env, TierFencedResult>> {
        let args = write_args(env, &key, &token, &version, &json).and_then(|w| {
            Ok((
                w,
                ms_arg(&for_ms, "forMs", 0.0, MAX_MS)?,
                ttl_arg(ttl_seconds)?,
            ))
        });
        let inner = self.inner.clone();
        spawn(env, async move {
            let ((key, token, version, json), for_ms, ttl) = args?;
            let until = Instant::now() + Duration::from_millis(for_ms);
            let r = inner
                .write_fenced(&key, &token, version, json.as_bytes(), ttl, until)
                .await?;
            let (status, version) = match r {
                Fenced::Written(v) => ("written", v),
                Fenced::LockLost => ("lost", 0),
                Fenced::Conflict(v) => ("conflict", v),
                Fenced::Unreachable => ("unreachable", 0),
                Fenced::Unknown => ("unknown", 0),
            };
            Ok(TierFencedResult {
                status: status.into(),
                version: version as f64,
            })
        })
    }

    /// The miss path of `getOrLoad` across instances, in one round trip within `timeoutMs`:
    /// the value of thread `key` if Redis has it; else its load lease for `ttlMs` if free
    /// (SET NX PX with a random token); else how long another instance's lease lasts.
    #[napi(
        ts_args_type = "key: string, ttlMs: number",
        ts_return_type = "Promise<TierLeaseResult>"
    )]
    pub fn lease<'env>(
        &self,
        env: &'env Env,
        key: Unknown,
        ttl_ms: Unknown,
    ) -> Result<PromiseRaw<'env, TierLeaseResult>> {
        let args =
            key_arg(&key).and_then(|k| Ok((k, ms_arg(&ttl_ms, "loadLeaseMs", 1.0, MAX_MS)?)));
        let inner = self.inner.clone();
        spawn(env, async move {
            let (key, ttl) = args?;
            let r = inner.lease(&key, Duration::from_millis(ttl)).await?;
            let mut out = TierLeaseResult {
                status: String::new(),
                json: None,
                version: 0.0,
                token: None,
                left_ms: 0.0,
            };
            match r {
                Lease::Hit(v) => {
                    out.status = "hit".into();
                    out.json = v.payload.map(JsText::from_payload);
                    out.version = v.version as f64;
                }
                Lease::Won { token, version } => {
                    out.status = "won".into();
                    out.token = Some(token);
                    out.version = version as f64;
                }
                Lease::Held { left } => {
                    out.status = "held".into();
                    out.left_ms = left.as_millis() as f64;
                }
                Lease::Unavailable => out.status = "unavailable".into(),
            }
            Ok(out)
        })
    }

    /// The lease holder's fill: stores `json` with the next version only if the thread's
    /// version is still `version` (nobody wrote it since the miss), then releases the lease,
    /// in one round trip. Resolves the new version, or `0` when skipped (a newer write) or
    /// Redis was not reached.
    #[napi(
        ts_args_type = "key: string, token: string, version: number, json: string | SerializedPayload, ttlSeconds?: number",
        ts_return_type = "Promise<number>"
    )]
    pub fn fill_leased<'env>(
        &self,
        env: &'env Env,
        key: Unknown,
        token: Unknown,
        version: Unknown,
        json: Unknown,
        ttl_seconds: Option<Unknown>,
    ) -> Result<PromiseRaw<'env, f64>> {
        let args = write_args(env, &key, &token, &version, &json)
            .and_then(|w| Ok((w, ttl_arg(ttl_seconds)?)));
        let inner = self.inner.clone();
        spawn(env, async move {
            let ((key, token, version, json), ttl) = args?;
            let r = inner
                .fill_leased(&key, &token, version, json.as_bytes(), ttl)
                .await?;
            Ok(r.unwrap_or(0) as f64)
        })
    }

    /// Gives up the load lease of `key` (the load failed or found nothing) if `token` holds it.
    #[napi(
        ts_args_type = "key: string, token: string",
        ts_return_type = "Promise<boolean>"
    )]
    pub fn unlease<'env>(
        &self,
        env: &'env Env,
        key: Unknown,
        token: Unknown,
    ) -> Result<PromiseRaw<'env, bool>> {
        self.release(env, key, token, Held::Lease)
    }

    /// Extends the load lease of `key` to `ttlMs` from now if `token` still holds it.
    /// Resolves `false` when it is not yours any more (or Redis was not reached).
    #[napi(
        ts_args_type = "key: string, token: string, ttlMs: number",
        ts_return_type = "Promise<boolean>"
    )]
    pub fn renew_lease<'env>(
        &self,
        env: &'env Env,
        key: Unknown,
        token: Unknown,
        ttl_ms: Unknown,
    ) -> Result<PromiseRaw<'env, bool>> {
        let args = key_arg(&key).and_then(|k| {
            Ok((
                k,
                token_arg(&token)?,
                ms_arg(&ttl_ms, "loadLeaseMs", 1.0, MAX_MS)?,
            ))
        });
        let inner = self.inner.clone();
        spawn(env, async move {
            let (key, token, ttl) = args?;
            inner
                .renew_lease(&key, &token, Duration::from_millis(ttl))
                .await
        })
    }
}
