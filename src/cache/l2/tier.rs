//! [`RedisL2`]: the operations, each behind the circuit breaker and a per-call deadline.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::{Cmd, Value};
use tokio::sync::Notify;

use crate::cache::breaker::{Admit, Breaker, CircuitState, Clock, SystemClock, Transition};
use crate::cache::l2::config::{L2Config, MAX_KEY_BYTES};
use crate::cache::l2::conn::{ConnectFailure, Connection};
use crate::cache::l2::envelope::{self, Decoded};
use crate::cache::l2::stats::{Stats, StatsSnapshot};
use crate::cache::lock::keys;
use crate::cache::redact::{scrub, secrets_of};
use crate::error::{Code, Error, Result};

/// What `health()` reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// Redis answered a PING within `timeoutMs`.
    pub up: bool,
    /// Round trip of that PING, when it answered.
    pub latency_ms: Option<f64>,
    pub circuit: CircuitState,
    /// The last failure, redacted (no URL, no password).
    pub last_error: Option<String>,
}

/// How an attempt failed before the deadline.
enum Attempt {
    Connect(ConnectFailure),
    Query(redis::RedisError, u64),
}

/// Why a call did not produce a reply.
pub(crate) enum Failure {
    /// The circuit is open: Redis was not asked.
    ShortCircuit,
    /// Redis failed or did not answer in time (counted, fed to the breaker).
    Redis,
    /// Redis answered with an error about the data (e.g. WRONGTYPE: the key holds a
    /// foreign value). Redis itself is healthy.
    Reply,
    /// EVALSHA of a script the server does not hold (run it with EVAL). Redis is healthy.
    NoScript,
}

pub struct RedisL2 {
    cfg: L2Config,
    conn: Connection,
    breaker: Mutex<Breaker>,
    clock: Arc<dyn Clock>,
    stats: Stats,
    secrets: Vec<String>,
    last_error: Mutex<Option<String>>,
    closed: AtomicBool,
    in_flight: AtomicUsize,
    drained: Notify,
}

/// Counts a call in flight until dropped (so `close` can wait for them).
struct InFlight<'a>(&'a RedisL2);

impl<'a> InFlight<'a> {
    fn new(t: &'a RedisL2) -> Self {
        t.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(t)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.drained.notify_waiters();
        }
    }
}

impl RedisL2 {
    /// Validates nothing but the URL's syntax (the config is already valid) and opens
    /// nothing: construction never fails because Redis is unreachable.
    pub fn new(cfg: L2Config) -> Result<Self> {
        Self::with_clock(cfg, Arc::new(SystemClock))
    }

    pub fn with_clock(cfg: L2Config, clock: Arc<dyn Clock>) -> Result<Self> {
        let conn = Connection::new(&cfg)?;
        Ok(RedisL2 {
            breaker: Mutex::new(Breaker::new(cfg.breaker)),
            secrets: secrets_of(&cfg.url),
            cfg,
            conn,
            clock,
            stats: Stats::default(),
            last_error: Mutex::new(None),
            closed: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            drained: Notify::new(),
        })
    }

    pub fn config(&self) -> &L2Config {
        &self.cfg
    }

    /// The URL with its password masked.
    pub fn redacted_url(&self) -> String {
        self.cfg.redacted_url()
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    pub fn circuit(&self) -> CircuitState {
        lock(&self.breaker).state(self.clock.now())
    }

    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    /// Whether a connection is open right now.
    pub fn is_connected(&self) -> bool {
        self.conn.is_connected()
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.is_closed() {
            Err(Error::new(Code::Closed, "the Redis tier is closed"))
        } else {
            Ok(())
        }
    }

    /// The value key of `key` (`keyPrefix{key}`, see [`keys`]), refusing empty or oversized keys.
    pub fn full_key(&self, key: &str) -> Result<Vec<u8>> {
        if key.is_empty() {
            return Err(Error::new(
                Code::InvalidKey,
                "a cache key must be a non-empty string",
            ));
        }
        let len = self.cfg.key_prefix.len() + key.len() + 2;
        if len > MAX_KEY_BYTES {
            return Err(Error::new(
                Code::InvalidKey,
                format!(
                    "a cache key must be at most {MAX_KEY_BYTES} bytes with its prefix, got {len}"
                ),
            ));
        }
        Ok(keys::value_key(&self.cfg.key_prefix, key))
    }

    fn note_error(&self, msg: String) {
        *lock(&self.last_error) = Some(scrub(&msg, &self.secrets));
    }

    fn on_failure(&self, probe: bool) {
        let now = self.clock.now();
        if lock(&self.breaker).on_failure(now, probe) == Transition::Opened {
            Stats::add(&self.stats.circuit_opened, 1);
        }
    }

    /// Sends one command behind the breaker. The deadline (`timeoutMs`) covers opening the
    /// connection as well as the round trip.
    async fn call(&self, cmd: &Cmd) -> std::result::Result<Value, Failure> {
        self.call_within(cmd, self.cfg.timeout).await
    }

    /// [`RedisL2::call`] with a deadline of its own (the lock's calls wait as long as the
    /// lock lasts rather than `timeoutMs`).
    pub(crate) async fn call_within(
        &self,
        cmd: &Cmd,
        timeout: Duration,
    ) -> std::result::Result<Value, Failure> {
        let probe = match lock(&self.breaker).admit(self.clock.now()) {
            Admit::Yes { probe } => probe,
            Admit::No => {
                Stats::add(&self.stats.short_circuited, 1);
                return Err(Failure::ShortCircuit);
            }
        };
        let _in_flight = InFlight::new(self);
        let mut generation = None;
        let attempt = async {
            let (mut handle, gen) = self.conn.handle().await.map_err(Attempt::Connect)?;
            generation = Some(gen);
            handle.query(cmd).await.map_err(|e| Attempt::Query(e, gen))
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(v)) => {
                lock(&self.breaker).on_success();
                Ok(v)
            }
            Ok(Err(Attempt::Query(e, _))) if e.code() == Some("WRONGTYPE") => {
                lock(&self.breaker).on_success();
                Err(Failure::Reply)
            }
            Ok(Err(Attempt::Query(e, _))) if e.code() == Some("NOSCRIPT") => {
                lock(&self.breaker).on_success();
                Err(Failure::NoScript)
            }
            Ok(Err(Attempt::Connect(ConnectFailure::Closed))) => Err(Failure::ShortCircuit),
            Ok(Err(Attempt::Connect(ConnectFailure::Backoff(m) | ConnectFailure::Failed(m)))) => {
                self.failed(probe, &m, false);
                Err(Failure::Redis)
            }
            Ok(Err(Attempt::Query(e, gen))) => {
                if e.is_connection_dropped() || e.is_unrecoverable_error() || e.is_io_error() {
                    self.conn.invalidate(gen);
                }
                self.failed(probe, &format!("Redis call failed: {e}"), false);
                Err(Failure::Redis)
            }
            Err(_) => {
                // A probe that times out on an open connection: the connection may be
                // half-dead (peer gone without a FIN); open a fresh one next time.
                if let (true, Some(gen)) = (probe, generation) {
                    self.conn.invalidate(gen);
                }
                let msg = format!("Redis did not answer within {} ms", timeout.as_millis());
                self.failed(probe, &msg, true);
                Err(Failure::Redis)
            }
        }
    }

    fn failed(&self, probe: bool, msg: &str, timeout: bool) {
        Stats::add(&self.stats.redis_errors, 1);
        if timeout {
            Stats::add(&self.stats.timeouts, 1);
        }
        self.note_error(msg.to_string());
        self.on_failure(probe);
    }

    /// Turns a stored value into a payload, counting hits / corrupt values.
    fn decode_counted(&self, raw: Vec<u8>) -> Option<String> {
        Stats::add(&self.stats.bytes_read, raw.len() as u64);
        match envelope::decode(raw) {
            Decoded::Value(s) => {
                Stats::add(&self.stats.hits, 1);
                Some(s)
            }
            Decoded::Corrupt(_) => {
                Stats::add(&self.stats.corrupt, 1);
                Stats::add(&self.stats.misses, 1);
                None
            }
        }
    }

    pub(crate) fn reply_value(&self, v: Value) -> Option<String> {
        match v {
            Value::BulkString(b) => self.decode_counted(b),
            Value::Nil => {
                Stats::add(&self.stats.misses, 1);
                None
            }
            _ => {
                Stats::add(&self.stats.corrupt, 1);
                Stats::add(&self.stats.misses, 1);
                None
            }
        }
    }

    /// The payload stored under `key`, or `None` (absent, foreign, corrupt, Redis failing).
    pub async fn get(&self, key: &str) -> Result<Option<String>> {
        self.check_open()?;
        let k = self.full_key(key)?;
        Stats::add(&self.stats.gets, 1);
        match self.call(redis::cmd("GET").arg(k)).await {
            Ok(v) => Ok(self.reply_value(v)),
            Err(Failure::Reply) => {
                Stats::add(&self.stats.corrupt, 1);
                Stats::add(&self.stats.misses, 1);
                Ok(None)
            }
            Err(_) => {
                Stats::add(&self.stats.misses, 1);
                Ok(None)
            }
        }
    }

    /// `NAME prefix+key1 prefix+key2 ...` and the key count; `None` for no keys.
    fn multi_key_cmd<S: AsRef<str>>(&self, name: &str, keys: &[S]) -> Result<Option<(Cmd, usize)>> {
        self.check_open()?;
        if keys.is_empty() {
            return Ok(None);
        }
        let mut cmd = redis::cmd(name);
        for k in keys {
            cmd.arg(self.full_key(k.as_ref())?);
        }
        Ok(Some((cmd, keys.len())))
    }

    /// The payloads of `keys`, in order, in ONE round trip (MGET).
    pub async fn mget<S: AsRef<str>>(&self, keys: &[S]) -> Result<Vec<Option<String>>> {
        let Some((cmd, n)) = self.multi_key_cmd("MGET", keys)? else {
            return Ok(Vec::new());
        };
        Stats::add(&self.stats.gets, n as u64);
        match self.call(&cmd).await {
            Ok(Value::Array(items)) if items.len() == n => {
                Ok(items.into_iter().map(|v| self.reply_value(v)).collect())
            }
            Ok(_) | Err(Failure::Reply) => {
                Stats::add(&self.stats.corrupt, n as u64);
                Stats::add(&self.stats.misses, n as u64);
                Ok(vec![None; n])
            }
            Err(_) => {
                Stats::add(&self.stats.misses, n as u64);
                Ok(vec![None; n])
            }
        }
    }

    /// The TTL a write gets: the given (or configured) seconds plus a random jitter.
    pub fn ttl_for(&self, ttl_seconds: Option<u64>) -> u64 {
        let base = ttl_seconds.unwrap_or(self.cfg.ttl_seconds).max(1);
        let jitter = self.cfg.ttl_jitter_seconds;
        if jitter == 0 {
            base
        } else {
            base.saturating_add(fastrand::u64(0..=jitter))
        }
    }

    /// Stores `payload` (UTF-8 JSON bytes) under `key`. `true` when Redis confirmed the
    /// write; `false` when it was not confirmed (failing, timed out, circuit open).
    pub async fn set(&self, key: &str, payload: &[u8], ttl_seconds: Option<u64>) -> Result<bool> {
        self.check_open()?;
        let k = self.full_key(key)?;
        let env = envelope::encode(payload, self.cfg.compression);
        let compressed = env.is_compressed();
        let len = env.len() as u64;
        let ttl = self.ttl_for(ttl_seconds);
        let mut cmd = redis::cmd("SET");
        cmd.arg(k).arg(env).arg("EX").arg(ttl);
        match self.call(&cmd).await {
            Ok(Value::Okay) => {
                self.count_write(len, compressed);
                Ok(true)
            }
            _ => {
                Stats::add(&self.stats.set_failures, 1);
                Ok(false)
            }
        }
    }

    /// Counts a write Redis confirmed (`len` envelope bytes).
    pub(crate) fn count_write(&self, len: u64, compressed: bool) {
        Stats::add(&self.stats.sets, 1);
        Stats::add(&self.stats.bytes_written, len);
        if compressed {
            Stats::add(&self.stats.compressed_writes, 1);
        }
    }

    /// Deletes `keys` in one round trip; the number Redis removed (0 when not reached).
    pub async fn del<S: AsRef<str>>(&self, keys: &[S]) -> Result<u64> {
        let Some((cmd, _)) = self.multi_key_cmd("DEL", keys)? else {
            return Ok(0);
        };
        match self.call(&cmd).await {
            Ok(Value::Int(n)) => {
                let n = n.max(0) as u64;
                Stats::add(&self.stats.dels, n);
                Ok(n)
            }
            _ => Ok(0),
        }
    }

    /// PINGs Redis (whatever the circuit says, without feeding the breaker).
    pub async fn health(&self) -> Health {
        let circuit = self.circuit();
        if self.is_closed() {
            return Health {
                up: false,
                latency_ms: None,
                circuit,
                last_error: Some("the Redis tier is closed".into()),
            };
        }
        let started = Instant::now();
        let _in_flight = InFlight::new(self);
        let ping = async {
            let (mut h, _) = self.conn.handle().await.map_err(|f| match f {
                ConnectFailure::Closed => "the Redis tier is closed".to_string(),
                ConnectFailure::Backoff(m) | ConnectFailure::Failed(m) => m.to_string(),
            })?;
            h.query(&redis::cmd("PING"))
                .await
                .map_err(|e| format!("Redis PING failed: {e}"))
        };
        match tokio::time::timeout(self.cfg.timeout, ping).await {
            Ok(Ok(_)) => Health {
                up: true,
                latency_ms: Some(started.elapsed().as_secs_f64() * 1000.0),
                circuit: self.circuit(),
                last_error: self.last_error(),
            },
            Ok(Err(msg)) => {
                self.note_error(msg);
                self.down(circuit)
            }
            Err(_) => {
                self.note_error(format!(
                    "Redis did not answer PING within {} ms",
                    self.cfg.timeout.as_millis()
                ));
                self.down(circuit)
            }
        }
    }

    fn down(&self, circuit: CircuitState) -> Health {
        Health {
            up: false,
            latency_ms: None,
            circuit,
            last_error: self.last_error(),
        }
    }

    /// Refuses new calls, drops the connection, and waits (at most `timeoutMs` + 100 ms)
    /// for calls in flight to finish, so that nothing is left running. Idempotent.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.conn.close();
        let deadline = self.cfg.timeout + Duration::from_millis(100);
        let _ = tokio::time::timeout(deadline, async {
            loop {
                let notified = self.drained.notified();
                if self.in_flight.load(Ordering::Acquire) == 0 {
                    return;
                }
                notified.await;
            }
        })
        .await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
