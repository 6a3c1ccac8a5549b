//! `RedisTier`'s coherence methods: versioned reads and writes, conditional fills, tags, and
//! the invalidation bus (publish; the subscriber is in `redis_bus.rs`).

use napi::bindgen_prelude::*;
use napi::ValueType;
use napi_derive::napi;

use crate::cache::l2::{Fill, Kind, Tags, Versioned};
use crate::error::{Code, Error as CoreError};
use crate::js::redis_tier::{
    json_arg, key_arg, keys_arg, napi_err, spawn, ttl_arg, type_name, JsText, RedisTier,
};

/// A thread's value and version as Redis holds them ({@link RedisTier.read}).
#[napi(object, object_from_js = false)]
pub struct RedisTierRead {
    /// The value (JSON text), or `null`: absent, expired, foreign or corrupt.
    #[napi(ts_type = "string | null")]
    pub json: Either<JsText, Null>,
    /// The thread's version, or `null` when it has none (never written, or expired).
    /// Versions are increasing integers below 2^53: compare them, never compute with them.
    #[napi(ts_type = "number | null")]
    pub version: Either<f64, Null>,
}

/// How {@link RedisTier.fill} went.
#[napi(object)]
pub struct RedisTierFill {
    /// `'written'`; `'skipped'`: the thread changed since the miss (someone else wrote or
    /// invalidated it), so the loaded value may be stale; `'failed'`: Redis failed.
    #[napi(ts_type = "'written' | 'skipped' | 'failed'")]
    pub outcome: String,
    /// The new version, when written.
    pub version: Option<f64>,
}

/// Largest version JS numbers hold exactly.
const MAX_VERSION: f64 = 9_007_199_254_740_991.0;

fn read_to_js(r: Option<Versioned>) -> Option<RedisTierRead> {
    r.map(|r| RedisTierRead {
        json: nullable(r.payload.map(JsText::from_payload)),
        version: nullable(r.version.map(|v| v as f64)),
    })
}

/// `null` in JS for `None` (an `Option` field of an object would be left out instead).
fn nullable<T>(v: Option<T>) -> Either<T, Null> {
    match v {
        Some(v) => Either::A(v),
        None => Either::B(Null),
    }
}

fn invalid_arg(msg: String) -> CoreError {
    CoreError::new(Code::InvalidArgument, msg)
}

/// A version argument: `null` / `undefined` = none, else an integer 0..2^53.
fn version_arg(v: Option<Unknown>, name: &str) -> crate::error::Result<Option<u64>> {
    let Some(v) = v else { return Ok(None) };
    match v.get_type().map_err(napi_err)? {
        ValueType::Undefined | ValueType::Null => Ok(None),
        ValueType::Number => {
            // SAFETY: the value was just checked to be a JS number.
            let n = unsafe { v.cast::<f64>() }.map_err(napi_err)?;
            if n.is_finite() && n.fract() == 0.0 && (0.0..=MAX_VERSION).contains(&n) {
                Ok(Some(n as u64))
            } else {
                Err(invalid_arg(format!(
                    "{name} must be an integer from 0 to 2^53 - 1, got {n}"
                )))
            }
        }
        _ => Err(invalid_arg(format!(
            "{name} must be a number, got {}",
            type_name(&v)
        ))),
    }
}

/// A tags argument: `null` / `undefined` = keep the thread's tags, else an array of
/// non-empty strings.
fn tags_arg(v: Option<Unknown>) -> crate::error::Result<Option<Vec<String>>> {
    let Some(v) = v else { return Ok(None) };
    if matches!(
        v.get_type().map_err(napi_err)?,
        ValueType::Undefined | ValueType::Null
    ) {
        return Ok(None);
    }
    let tags = keys_arg(&v)
        .map_err(|_| invalid_arg("tags must be an array of non-empty strings".to_string()))?;
    if tags.iter().any(String::is_empty) {
        return Err(invalid_arg(
            "tags must be an array of non-empty strings".to_string(),
        ));
    }
    Ok(Some(tags))
}

fn tag_arg(v: &Unknown) -> crate::error::Result<String> {
    match key_arg(v) {
        Ok(t) if !t.is_empty() => Ok(t),
        _ => Err(invalid_arg("a tag must be a non-empty string".to_string())),
    }
}

#[napi]
impl RedisTier {
    /// This instance's id on the invalidation bus (its own messages are ignored).
    #[napi(getter)]
    pub fn instance_id(&self) -> String {
        self.inner.origin().to_string()
    }

    /// The value AND version of `key`, in one round trip; `null` when Redis could not be
    /// asked or did not answer within `timeoutMs` (then the caller must not assume the key
    /// is absent: see {@link RedisTier.fill}).
    #[napi(
        ts_args_type = "key: string",
        ts_return_type = "Promise<RedisTierRead | null>"
    )]
    pub fn read<'env>(
        &self,
        env: &'env Env,
        key: Unknown,
    ) -> Result<PromiseRaw<'env, Option<RedisTierRead>>> {
        let key = key_arg(&key);
        let inner = self.inner.clone();
        spawn(env, async move { Ok(read_to_js(inner.read(&key?).await?)) })
    }

    /// {@link RedisTier.read} for many keys, in order, in one command (`MGET`; on a cluster
    /// one per node).
    #[napi(
        ts_args_type = "keys: string[]",
        ts_return_type = "Promise<(RedisTierRead | null)[]>"
    )]
    pub fn read_many<'env>(
        &self,
        env: &'env Env,
        keys: Unknown,
    ) -> Result<PromiseRaw<'env, Vec<Option<RedisTierRead>>>> {
        let keys = keys_arg(&keys);
        let inner = self.inner.clone();
        spawn(env, async move {
            Ok(inner
                .read_many(&keys?)
                .await?
                .into_iter()
                .map(read_to_js)
                .collect())
        })
    }

    /// Stores `json` under `key` (TTL `ttlSeconds`, default the option, plus jitter), moves
    /// the thread's version and announces the change on the invalidation bus, atomically.
    /// `tags` replaces the thread's tags (`null`/omitted keeps them). Resolves the new
    /// version, or `null` when Redis did not confirm the write.
    #[napi(
        ts_args_type = "key: string, json: string | SerializedPayload, ttlSeconds?: number | null, tags?: string[] | null",
        ts_return_type = "Promise<number | null>"
    )]
    pub fn write<'env>(
        &self,
        env: &'env Env,
        key: Unknown,
        json: Unknown,
        ttl_seconds: Option<Unknown>,
        tags: Option<Unknown>,
    ) -> Result<PromiseRaw<'env, Option<f64>>> {
        let args = key_arg(&key).and_then(|k| {
            Ok((
                k,
                json_arg(env, &json)?,
                ttl_arg(ttl_seconds)?,
                tags_arg(tags)?,
            ))
        });
        let inner = self.inner.clone();
        spawn(env, async move {
            let (key, json, ttl, tags) = args?;
            let tags = match &tags {
                Some(t) => Tags::Replace(t),
                None => Tags::Keep,
            };
            Ok(inner
                .write(&key, json.as_bytes(), ttl, tags)
                .await?
                .map(|v| v as f64))
        })
    }

    /// Stores a loader's result after a miss, only if the thread's version is still
    /// `seenVersion` (what {@link RedisTier.read} returned at the miss; `null` = it had
    /// none), so that a slow load never overwrites a newer write. Not announced.
    #[napi(
        ts_args_type = "key: string, json: string | SerializedPayload, seenVersion: number | null, ttlSeconds?: number | null",
        ts_return_type = "Promise<RedisTierFill>"
    )]
    pub fn fill<'env>(
        &self,
        env: &'env Env,
        key: Unknown,
        json: Unknown,
        seen_version: Option<Unknown>,
        ttl_seconds: Option<Unknown>,
    ) -> Result<PromiseRaw<'env, RedisTierFill>> {
        let args = key_arg(&key).and_then(|k| {
            Ok((
                k,
                json_arg(env, &json)?,
                version_arg(seen_version, "seenVersion")?,
                ttl_arg(ttl_seconds)?,
            ))
        });
        let inner = self.inner.clone();
        spawn(env, async move {
            let (key, json, seen, ttl) = args?;
            let (outcome, version) = match inner.fill(&key, json.as_bytes(), seen, ttl).await? {
                Fill::Written(v) => ("written", Some(v as f64)),
                Fill::Skipped => ("skipped", None),
                Fill::Failed => ("failed", None),
            };
            Ok(RedisTierFill {
                outcome: outcome.to_string(),
                version,
            })
        })
    }

    /// Invalidates every thread that has `tag` (set by `write(.., tags)`), in Redis and,
    /// through the bus, in every other instance; resolves their ids (`null` when Redis
    /// could not be asked).
    #[napi(
        ts_args_type = "tag: string",
        ts_return_type = "Promise<string[] | null>"
    )]
    pub fn invalidate_tag<'env>(
        &self,
        env: &'env Env,
        tag: Unknown,
    ) -> Result<PromiseRaw<'env, Option<Vec<String>>>> {
        let tag = tag_arg(&tag);
        let inner = self.inner.clone();
        spawn(env, async move { inner.invalidate_tag(&tag?).await })
    }

    /// Announces on the invalidation bus that `key` changed to `version` (`kind` `'w'` for a
    /// write, `'i'` for an invalidation). For changes made outside this tier's own methods
    /// (e.g. a fenced update); `write`, `del` and `invalidateTag` announce by themselves.
    /// Resolves whether Redis took the message.
    #[napi(
        ts_args_type = "key: string, version: number, kind?: 'w' | 'i'",
        ts_return_type = "Promise<boolean>"
    )]
    pub fn publish<'env>(
        &self,
        env: &'env Env,
        key: Unknown,
        version: Unknown,
        kind: Option<String>,
    ) -> Result<PromiseRaw<'env, bool>> {
        let args = key_arg(&key).and_then(|k| {
            let v = version_arg(Some(version), "version")?
                .ok_or_else(|| invalid_arg("version is required".to_string()))?;
            let kind = match kind.as_deref() {
                None | Some("w") => Kind::Write,
                Some("i") => Kind::Invalidate,
                Some(other) => {
                    return Err(invalid_arg(format!(
                        "kind must be 'w' or 'i', got {other:?}"
                    )))
                }
            };
            Ok((k, v, kind))
        });
        let inner = self.inner.clone();
        spawn(env, async move {
            let (key, version, kind) = args?;
            Ok(inner.publish(&key, version, kind).await)
        })
    }
}
