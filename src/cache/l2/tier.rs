//! [`RedisL2`]: the tier, and the machinery every operation goes through: the circuit
//! breaker and a per-call deadline. The operations are in `reads.rs`, `writes.rs`,
//! `tags.rs` and `bus.rs`.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::{Cmd, RedisResult, Value};
use tokio::sync::{watch, Notify};

use crate::cache::breaker::{Admit, Breaker, CircuitState, Clock, SystemClock, Transition};
use crate::cache::l2::config::L2Config;
use crate::cache::l2::conn::{ConnectFailure, Connection, Handle};
use crate::cache::l2::keys::Keys;
use crate::cache::l2::stats::{Stats, StatsSnapshot};
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
    /// Redis failed or did not answer in time (counted, fed to the breaker). The command
    /// may have run.
    Redis,
    /// The connection could not be opened (counted, fed to the breaker): the command was
    /// never sent.
    Unsent,
    /// Redis answered with an error about the data (e.g. WRONGTYPE: the key holds a
    /// foreign value). Redis itself is healthy.
    Reply,
    /// EVALSHA of a script the server does not hold (run it with EVAL). Redis is healthy.
    NoScript,
}

pub struct RedisL2 {
    pub(super) cfg: L2Config,
    pub(super) conn: Connection,
    breaker: Mutex<Breaker>,
    clock: Arc<dyn Clock>,
    pub(super) stats: Stats,
    secrets: Vec<String>,
    last_error: Mutex<Option<String>>,
    closed: AtomicBool,
    in_flight: AtomicUsize,
    drained: Notify,
    pub(super) keys: Keys,
    /// This instance's id on the invalidation bus (its own messages are ignored).
    pub(super) origin: String,
    /// `true` ends the bus subscriber.
    pub(super) bus_stop: watch::Sender<bool>,
    pub(super) bus_started: AtomicBool,
    pub(super) bus_connected: AtomicBool,
    /// Cluster announcements Redis did not take yet (see `bus.rs`).
    pub(super) republish: Mutex<std::collections::VecDeque<crate::cache::l2::message::Message>>,
    pub(super) republish_wake: Notify,
}

/// Counts a call in flight until dropped (so `close` can wait for them).
pub(super) struct InFlight<'a>(&'a RedisL2);

impl<'a> InFlight<'a> {
    pub(super) fn new(t: &'a RedisL2) -> Self {
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
            secrets: secrets_for(&cfg),
            keys: Keys::new(cfg.key_prefix.clone()),
            origin: format!("{:016x}", fastrand::u64(..)),
            bus_stop: watch::Sender::new(false),
            bus_started: AtomicBool::new(false),
            bus_connected: AtomicBool::new(false),
            republish: Mutex::new(std::collections::VecDeque::new()),
            republish_wake: Notify::new(),
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

    /// The key names of this tier's prefix.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// This instance's id on the invalidation bus.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.is_closed() {
            Err(Error::new(Code::Closed, "the Redis tier is closed"))
        } else {
            Ok(())
        }
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

    /// Sends one command behind the breaker (see [`RedisL2::exec`]).
    pub(super) async fn call(&self, cmd: &Cmd) -> std::result::Result<Value, Failure> {
        self.exec(|mut h| async move { h.query(cmd).await }).await
    }

    /// Runs `op` (one command, a script, a pipeline) on the connection behind the breaker.
    /// The deadline (`timeoutMs`) covers opening the connection as well as the round trips.
    pub(super) async fn exec<F, Fut>(&self, op: F) -> std::result::Result<Value, Failure>
    where
        F: FnOnce(Handle) -> Fut,
        Fut: Future<Output = RedisResult<Value>>,
    {
        self.exec_within(op, self.cfg.timeout).await
    }

    /// [`RedisL2::exec`] with a deadline of its own (the lock's calls wait as long as the
    /// lock lasts rather than `timeoutMs`).
    pub(crate) async fn exec_within<F, Fut>(
        &self,
        op: F,
        timeout: Duration,
    ) -> std::result::Result<Value, Failure>
    where
        F: FnOnce(Handle) -> Fut,
        Fut: Future<Output = RedisResult<Value>>,
    {
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
            let (handle, gen) = self.conn.handle().await.map_err(Attempt::Connect)?;
            generation = Some(gen);
            op(handle).await.map_err(|e| Attempt::Query(e, gen))
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
                Err(Failure::Unsent)
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
            let (mut h, _) = self.conn.handle().await.map_err(|f| f.reason())?;
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
        self.stop_bus();
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

/// The secrets of the URL and of each of its hosts' URLs (a URL listing several hosts does
/// not parse as one URL), longest first.
fn secrets_for(cfg: &L2Config) -> Vec<String> {
    let mut out = secrets_of(&cfg.url);
    for seed in &cfg.seeds {
        out.extend(secrets_of(seed));
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
