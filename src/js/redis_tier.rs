//! `RedisTier`: the native Redis tier (L2) of `ConversationCache`, exported as an internal
//! but documented class. Every method answers within `timeoutMs`: Redis being slow, down,
//! refusing or holding garbage is a miss / `false` / `0`, never a rejection. Only caller
//! mistakes reject (bad key or option, call after `close()`), with a coded error.

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::ValueType;
use napi_derive::napi;

use crate::cache::l2::text::into_js_text;
use crate::cache::l2::{L2Config, RawL2Options, RedisL2};
use crate::error::{Code, Error as CoreError};
use crate::js::error::to_napi;
use crate::js::raw::fault_to_napi;
use crate::js::serialize::SerializedPayload;
use crate::js::settle;
use crate::js::strings::text_string;
use crate::serialize::Text;

/// Options of {@link RedisTier}. Only `url` is required.
// Declared for the generated typings; the constructor reads the JS object field by field,
// so that a wrong type is `ERR_INVALID_OPTION` naming the option.
#[allow(dead_code)]
#[napi(object)]
pub struct RedisTierOptions {
    /// `redis://[user[:password]@]host[:port][/db]`, or `rediss://` for TLS (server
    /// certificates are checked against the system's roots; `SSL_CERT_FILE` is honoured).
    /// Several hosts, `redis://[user[:password]@]h1:p1,h2:p2,...`, are the seed nodes of a
    /// Redis Cluster (credentials and scheme apply to all of them).
    /// The ConversationCache passes its `redisUrl` option, else `process.env.REDIS_URL`.
    /// Never shown with its password (see {@link RedisTier.url}).
    pub url: String,
    /// Prefix of every key written or read: a thread's value is stored under
    /// `keyPrefix{threadId}` (the id as a cluster hash tag), its version, lock and lease
    /// under `keyPrefix{threadId}:ver`, `:lock`, `:lease`.
    /// @default 'agent-core:conv:'
    pub key_prefix: Option<String>,
    /// Time to live of a written value, in seconds (integer >= 1).
    /// @default 3600
    pub ttl_seconds: Option<f64>,
    /// Up to this many seconds are added at random to each TTL, so that values written
    /// together do not expire together.
    /// @default 0
    pub ttl_jitter_seconds: Option<f64>,
    /// Deadline of every call, connecting included, in ms: a call slower than this answers
    /// a miss (get) / `false` (set) / `0` (del) and counts in `stats().timeouts`.
    /// @default 50
    pub timeout_ms: Option<f64>,
    /// Limit of one connection attempt (TCP, TLS and AUTH), in ms. Attempts go on in the
    /// background past `timeoutMs`; failed ones are retried after 50 ms doubling to 500 ms.
    /// @default 1000
    pub connect_timeout_ms: Option<f64>,
    /// Consecutive failed calls (errors or timeouts) that open the circuit breaker.
    /// @default 5
    pub breaker_failure_threshold: Option<f64>,
    /// How long an open circuit answers without Redis before one probe call is let
    /// through (half-open); the probe's success closes it.
    /// @default 1000
    pub breaker_cooldown_ms: Option<f64>,
    /// Compression of stored values: `'lz4'` compresses values of at least
    /// `compressThresholdBytes` (when that makes them smaller). On by default: it made gets
    /// and sets of 10 KB - 1 MB conversations faster even on loopback (benchmark/RESULTS.md,
    /// section `redis`). Values written either way are read either way.
    /// @default 'lz4'
    #[napi(ts_type = "'none' | 'lz4'")]
    pub compression: Option<String>,
    /// Smallest value compressed when `compression` is `'lz4'`, in bytes.
    /// @default 4096
    pub compress_threshold_bytes: Option<f64>,
    /// Redis Cluster: the async cluster client, sharded pub/sub (`SSUBSCRIBE` / `SPUBLISH`)
    /// for the invalidation bus. Implied when `url` lists several hosts; `true` makes a
    /// single-host `url` a cluster seed.
    /// @default false
    pub cluster: Option<bool>,
}

/// What {@link RedisTier.health} reports.
#[napi(object)]
pub struct RedisTierHealth {
    /// `'up'` when Redis answered a PING within `timeoutMs`.
    #[napi(ts_type = "'up' | 'down'")]
    pub state: String,
    /// Round trip of that PING in ms, when it answered.
    pub latency_ms: Option<f64>,
    #[napi(ts_type = "'closed' | 'open' | 'half-open'")]
    pub circuit: String,
    /// The last failure, with no URL or password in it.
    pub last_error: Option<String>,
}

/// Counters of {@link RedisTier} since it was created.
#[napi(object)]
pub struct RedisTierStats {
    /// Keys asked for (a `getMany` of n keys counts n).
    pub gets: f64,
    pub hits: f64,
    /// Keys answered with a miss for any reason (absent, corrupt, Redis failing, circuit open).
    pub misses: f64,
    /// Writes Redis confirmed.
    pub sets: f64,
    /// Writes not confirmed (Redis failing, timed out, circuit open).
    pub set_failures: f64,
    /// Keys Redis confirmed deleted.
    pub dels: f64,
    /// Calls that failed because of Redis (errors and timeouts).
    pub redis_errors: f64,
    /// Calls that did not answer within `timeoutMs` (also in `redisErrors`).
    pub timeouts: f64,
    /// Values under our keys that were not ours or did not decode (answered as misses).
    pub corrupt: f64,
    /// Calls answered without Redis because the circuit was open.
    pub short_circuited: f64,
    /// Times the circuit opened.
    pub circuit_opened: f64,
    pub compressed_writes: f64,
    pub bytes_written: f64,
    pub bytes_read: f64,
    /// Loader results written after a miss (only if the thread had not changed since).
    pub fills: f64,
    /// Fills not written because the thread changed since the miss.
    pub fills_skipped: f64,
    /// Invalidation-bus messages published (writes and invalidations).
    pub published: f64,
    /// Announcements Redis did not take at the first attempt (cluster only: kept and
    /// published again every second until it does).
    pub publish_failures: f64,
    /// Announcements given up because 10,000 were already waiting.
    pub publish_dropped: f64,
    /// Bus messages received from other instances.
    pub bus_received: f64,
    /// This instance's own bus messages, ignored.
    pub bus_own: f64,
    /// Times the bus subscriber re-subscribed after losing its connection (the cache then
    /// drops its whole L1, as it may have missed messages).
    pub bus_resyncs: f64,
    #[napi(ts_type = "'closed' | 'open' | 'half-open'")]
    pub circuit: String,
    /// Whether a connection is open right now.
    pub connected: bool,
}

/// The Redis tier (L2) of `ConversationCache`: internal, documented for the curious and
/// for tests. Values are UTF-8 JSON strings stored under `keyPrefix + '{' + key + '}'` (a
/// hash tag: all of a thread's keys share one cluster slot) in a small versioned envelope,
/// next to the thread's version (`...}:ver`). Construction never touches the network; the connection opens on the
/// first call and reopens by itself.
#[napi]
pub struct RedisTier {
    pub(super) inner: Arc<RedisL2>,
}

/// A value read from Redis, already in the string form V8 takes over without copying
/// (`src/js/strings.rs`: external Latin-1 / UTF-16 strings above 32 K units).
pub struct JsText(Text);

impl JsText {
    pub(super) fn from_payload(s: String) -> Self {
        JsText(into_js_text(s))
    }
}

impl ToNapiValue for JsText {
    unsafe fn to_napi_value(env: napi::sys::napi_env, val: Self) -> Result<napi::sys::napi_value> {
        text_string(env, val.0).map_err(|f| fault_to_napi(&Env::from_raw(env), f))
    }
}

fn invalid_option(env: &Env, option: &str, why: impl std::fmt::Display) -> napi::Error {
    to_napi(env, &CoreError::invalid_option(option, why))
}

pub(super) fn core<T>(env: &Env, r: crate::error::Result<T>) -> Result<T> {
    r.map_err(|e| to_napi(env, &e))
}

/// A property of `obj` (`undefined` / `null` = absent).
fn prop<'a>(obj: &Object<'a>, name: &str) -> Result<Option<Unknown<'a>>> {
    let v: Option<Unknown> = obj.get(name)?;
    Ok(match v {
        Some(v) if !matches!(v.get_type()?, ValueType::Undefined | ValueType::Null) => Some(v),
        _ => None,
    })
}

/// An optional property of JS type `want` (`what` names it in the error), read as `T`.
fn opt_typed<T: FromNapiValue>(
    env: &Env,
    obj: &Object,
    name: &str,
    want: ValueType,
    what: &str,
) -> Result<Option<T>> {
    match prop(obj, name)? {
        None => Ok(None),
        // SAFETY: the value was just checked to be of the JS type `T` reads.
        Some(v) if v.get_type()? == want => Ok(Some(unsafe { v.cast::<T>() }?)),
        Some(v) => Err(invalid_option(
            env,
            name,
            format!("must be {what}, got {}", type_name(&v)),
        )),
    }
}

fn opt_string(env: &Env, obj: &Object, name: &str) -> Result<Option<String>> {
    opt_typed(env, obj, name, ValueType::String, "a string")
}

fn opt_number(env: &Env, obj: &Object, name: &str) -> Result<Option<f64>> {
    opt_typed(env, obj, name, ValueType::Number, "a number")
}

fn opt_bool(env: &Env, obj: &Object, name: &str) -> Result<Option<bool>> {
    opt_typed(env, obj, name, ValueType::Boolean, "a boolean")
}

pub(super) fn type_name(v: &Unknown) -> &'static str {
    match v.get_type() {
        Ok(ValueType::String) => "a string",
        Ok(ValueType::Number) => "a number",
        Ok(ValueType::Boolean) => "a boolean",
        Ok(ValueType::Object) => "an object",
        Ok(ValueType::Function) => "a function",
        Ok(ValueType::Symbol) => "a symbol",
        Ok(ValueType::BigInt) => "a bigint",
        Ok(ValueType::Null) => "null",
        Ok(ValueType::Undefined) => "undefined",
        _ => "a value of another type",
    }
}

pub(super) fn napi_err(e: napi::Error) -> CoreError {
    CoreError::new(Code::Internal, e.reason.clone())
}

pub(super) fn key_arg(v: &Unknown) -> crate::error::Result<String> {
    if v.get_type().map_err(napi_err)? == ValueType::String {
        // SAFETY: the value was just checked to be a JS string.
        return unsafe { v.cast::<String>() }.map_err(napi_err);
    }
    Err(CoreError::new(
        Code::InvalidKey,
        format!("a cache key must be a string, got {}", type_name(v)),
    ))
}

pub(super) fn keys_arg(v: &Unknown) -> crate::error::Result<Vec<String>> {
    if !v.is_array().map_err(napi_err)? {
        return Err(CoreError::new(
            Code::InvalidArgument,
            format!("keys must be an array of strings, got {}", type_name(v)),
        ));
    }
    // SAFETY: the value was just checked to be a JS array.
    let arr = unsafe { v.cast::<Array>() }.map_err(napi_err)?;
    let mut out = Vec::with_capacity(arr.len() as usize);
    for i in 0..arr.len() {
        let item: Option<Unknown> = arr.get(i).map_err(napi_err)?;
        match item {
            Some(item) => out.push(key_arg(&item)?),
            None => {
                return Err(CoreError::new(
                    Code::InvalidKey,
                    format!("a cache key must be a string, got a hole at index {i}"),
                ))
            }
        }
    }
    Ok(out)
}

/// A value's JSON text for a write: a JS string (copied out as UTF-8), or the bytes of a
/// `SerializedPayload` (shared: the text never became a JS string).
pub(super) enum Json {
    Text(String),
    Payload(Arc<Vec<u8>>),
}

impl Json {
    pub(super) fn as_bytes(&self) -> &[u8] {
        match self {
            Json::Text(s) => s.as_bytes(),
            Json::Payload(b) => b,
        }
    }
}

pub(super) fn json_arg(env: &Env, v: &Unknown) -> crate::error::Result<Json> {
    match v.get_type().map_err(napi_err)? {
        // SAFETY: the value was just checked to be a JS string.
        ValueType::String => {
            return unsafe { v.cast::<String>() }
                .map(Json::Text)
                .map_err(napi_err)
        }
        ValueType::Object if SerializedPayload::instance_of(env, v).map_err(napi_err)? => {
            // SAFETY: `v` is a live handle of this callback; the conversion checks the class
            // (type tag and wrapped class) before it reads the wrapped value.
            let p =
                unsafe { ClassInstance::<SerializedPayload>::from_napi_value(env.raw(), v.raw()) }
                    .map_err(napi_err)?;
            return Ok(Json::Payload(p.shared_bytes()));
        }
        _ => {}
    }
    Err(CoreError::new(
        Code::InvalidArgument,
        format!(
            "json must be a string or a SerializedPayload, got {}",
            type_name(v)
        ),
    ))
}

pub(super) fn ttl_arg(v: Option<Unknown>) -> crate::error::Result<Option<u64>> {
    let Some(v) = v else { return Ok(None) };
    let n = match v.get_type().map_err(napi_err)? {
        ValueType::Undefined | ValueType::Null => return Ok(None),
        // SAFETY: the value was just checked to be a JS number.
        ValueType::Number => unsafe { v.cast::<f64>() }.map_err(napi_err)?,
        _ => f64::NAN,
    };
    if n.is_finite() && n.fract() == 0.0 && (1.0..=315_360_000.0).contains(&n) {
        Ok(Some(n as u64))
    } else {
        Err(CoreError::invalid_option(
            "ttlSeconds",
            "must be an integer from 1 to 315360000",
        ))
    }
}

/// Spawns `fut` on the tokio runtime; a core error it yields rejects with the coded JS error.
/// The promise settles through the environment's batching settler (`settle.rs`).
pub(super) fn spawn<'env, T, F>(env: &'env Env, fut: F) -> Result<PromiseRaw<'env, T>>
where
    T: 'static + Send + ToNapiValue,
    F: 'static + Send + std::future::Future<Output = crate::error::Result<T>>,
{
    Ok(PromiseRaw::new(env.raw(), settle::spawn(env, fut)?))
}

#[napi]
impl RedisTier {
    /// Validates the options and opens nothing: an unreachable Redis never makes this throw.
    /// Bad options throw `RangeError`/`TypeError` with code `ERR_INVALID_OPTION` naming the option.
    #[napi(constructor, ts_args_type = "options: RedisTierOptions")]
    pub fn new(env: Env, options: Unknown) -> Result<Self> {
        if options.get_type()? != ValueType::Object {
            return Err(invalid_option(
                &env,
                "options",
                "must be an object with at least `url`",
            ));
        }
        // SAFETY: the value was just checked to be a JS object.
        let obj = unsafe { options.cast::<Object>() }?;
        let raw = RawL2Options {
            url: opt_string(&env, &obj, "url")?,
            key_prefix: opt_string(&env, &obj, "keyPrefix")?,
            ttl_seconds: opt_number(&env, &obj, "ttlSeconds")?,
            ttl_jitter_seconds: opt_number(&env, &obj, "ttlJitterSeconds")?,
            timeout_ms: opt_number(&env, &obj, "timeoutMs")?,
            connect_timeout_ms: opt_number(&env, &obj, "connectTimeoutMs")?,
            breaker_failure_threshold: opt_number(&env, &obj, "breakerFailureThreshold")?,
            breaker_cooldown_ms: opt_number(&env, &obj, "breakerCooldownMs")?,
            compression: opt_string(&env, &obj, "compression")?,
            compress_threshold_bytes: opt_number(&env, &obj, "compressThresholdBytes")?,
            cluster: opt_bool(&env, &obj, "cluster")?,
        };
        let cfg = core(&env, L2Config::from_raw(raw))?;
        let inner = core(&env, RedisL2::new(cfg))?;
        Ok(RedisTier {
            inner: Arc::new(inner),
        })
    }

    /// The URL with its password masked (`redis://user:***@host:port/db`).
    #[napi(getter)]
    pub fn url(&self) -> String {
        self.inner.redacted_url()
    }

    /// The value stored under `key`, or `null` (absent, expired, foreign or corrupt value,
    /// Redis failing or slower than `timeoutMs`). A key that is not a non-empty string
    /// rejects with `ERR_INVALID_KEY`.
    #[napi(
        ts_args_type = "key: string",
        ts_return_type = "Promise<string | null>"
    )]
    pub fn get<'env>(
        &self,
        env: &'env Env,
        key: Unknown,
    ) -> Result<PromiseRaw<'env, Option<JsText>>> {
        let key = key_arg(&key);
        let inner = self.inner.clone();
        spawn(env, async move {
            Ok(inner.get(&key?).await?.map(JsText::from_payload))
        })
    }

    /// The values of `keys`, in order, fetched in ONE round trip (MGET); `null` for each miss.
    #[napi(
        ts_args_type = "keys: string[]",
        ts_return_type = "Promise<(string | null)[]>"
    )]
    pub fn get_many<'env>(
        &self,
        env: &'env Env,
        keys: Unknown,
    ) -> Result<PromiseRaw<'env, Vec<Option<JsText>>>> {
        let keys = keys_arg(&keys);
        let inner = self.inner.clone();
        spawn(env, async move {
            let values = inner.mget(&keys?).await?;
            Ok(values
                .into_iter()
                .map(|v| v.map(JsText::from_payload))
                .collect())
        })
    }

    /// Stores `json` under `key` for `ttlSeconds` (default: the `ttlSeconds` option), plus
    /// jitter. Resolves `true` when Redis confirmed the write, `false` when it was not written
    /// (or not confirmed in time).
    #[napi(
        ts_args_type = "key: string, json: string | SerializedPayload, ttlSeconds?: number",
        ts_return_type = "Promise<boolean>"
    )]
    pub fn set<'env>(
        &self,
        env: &'env Env,
        key: Unknown,
        json: Unknown,
        ttl_seconds: Option<Unknown>,
    ) -> Result<PromiseRaw<'env, bool>> {
        let args =
            key_arg(&key).and_then(|k| Ok((k, json_arg(env, &json)?, ttl_arg(ttl_seconds)?)));
        let inner = self.inner.clone();
        spawn(env, async move {
            let (key, json, ttl) = args?;
            inner.set(&key, json.as_bytes(), ttl).await
        })
    }

    /// Invalidates `keys` (value and tags deleted, version moved, announced on the
    /// invalidation bus; pipelined on one connection); resolves the number of values Redis
    /// removed (`0` when Redis could not be reached: see `stats().redisErrors`).
    #[napi(ts_args_type = "keys: string[]", ts_return_type = "Promise<number>")]
    pub fn del<'env>(&self, env: &'env Env, keys: Unknown) -> Result<PromiseRaw<'env, u32>> {
        let keys = keys_arg(&keys);
        let inner = self.inner.clone();
        spawn(env, async move {
            inner
                .del(&keys?)
                .await
                .map(|n| n.min(u32::MAX as u64) as u32)
        })
    }

    /// PINGs Redis (within `timeoutMs`, whatever the circuit says) and reports the circuit.
    #[napi]
    pub async fn health(&self) -> RedisTierHealth {
        let h = self.inner.health().await;
        RedisTierHealth {
            state: if h.up { "up" } else { "down" }.to_string(),
            latency_ms: h.latency_ms,
            circuit: h.circuit.as_str().to_string(),
            last_error: h.last_error,
        }
    }

    /// The counters (synchronous, no I/O).
    #[napi]
    pub fn stats(&self) -> RedisTierStats {
        let s = self.inner.stats();
        RedisTierStats {
            gets: s.gets as f64,
            hits: s.hits as f64,
            misses: s.misses as f64,
            sets: s.sets as f64,
            set_failures: s.set_failures as f64,
            dels: s.dels as f64,
            redis_errors: s.redis_errors as f64,
            timeouts: s.timeouts as f64,
            corrupt: s.corrupt as f64,
            short_circuited: s.short_circuited as f64,
            circuit_opened: s.circuit_opened as f64,
            compressed_writes: s.compressed_writes as f64,
            bytes_written: s.bytes_written as f64,
            bytes_read: s.bytes_read as f64,
            fills: s.fills as f64,
            fills_skipped: s.fills_skipped as f64,
            published: s.published as f64,
            publish_failures: s.publish_failures as f64,
            publish_dropped: s.publish_dropped as f64,
            bus_received: s.bus_received as f64,
            bus_own: s.bus_own as f64,
            bus_resyncs: s.bus_resyncs as f64,
            circuit: self.inner.circuit().as_str().to_string(),
            connected: self.inner.is_connected(),
        }
    }

    /// Closes the connection and waits (at most `timeoutMs` + 100 ms) for calls in flight;
    /// afterwards nothing of this tier keeps Node alive, and calls reject with `ERR_CLOSED`.
    /// Idempotent.
    #[napi]
    pub async fn close(&self) {
        self.inner.close().await;
    }
}
