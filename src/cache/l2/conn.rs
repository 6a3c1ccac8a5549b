//! Connection management of the tier: one lazily opened, multiplexed connection shared by
//! every call, reopened with exponential backoff when it fails.
//!
//! - Nothing touches the network at construction. The first call opens the connection in a
//!   task of its own; callers wait for it only up to their own deadline, and the attempt
//!   goes on (bounded by `connectTimeoutMs`) so that a slow handshake is not restarted by
//!   every impatient caller.
//! - A failed attempt (refused, auth rejected, handshake timed out) is remembered: calls
//!   within the backoff window fail at once without touching the network. The window
//!   doubles from 50 ms to 500 ms.
//! - A call that finds the connection dropped (server killed, restarted) reports it with
//!   [`Connection::invalidate`]; the next call opens a new one.
//! - `close()` drops the connection: once calls in flight release their clones, the socket
//!   and its driver task go away, so nothing keeps Node alive.
//!
//! On a single server the connection speaks RESP3, so that the bus subscriber can subscribe
//! on it (pub/sub messages arrive as pushes beside the replies): one connection per tier
//! instead of two, and a `ConversationCache`, whose subscriber starts at construction, has
//! it open by its first call. Each opened connection hands its pushes to one receiver,
//! which the subscriber takes ([`Connection::take_pushes`]). Once the subscriber has armed
//! the connection ([`Connection::subscribe_on_open`]), each RESP3 connection is opened with
//! its `SUBSCRIBE` queued before anybody else can send on it: Redis has the subscription in
//! place before it runs any command of this tier on that connection, so nothing the tier
//! reads or writes there can predate a change it will not hear of. A server that refuses `HELLO`
//! (older than Redis 6) gets RESP2 from then on, and the subscriber a connection of its own.
//! Replies are the same either way ([`resp2`]).
//!
//! On a Redis Cluster the "connection" is the redis crate's async cluster connection (it
//! keeps one connection per node, follows MOVED/ASK and refreshes the slot map itself);
//! the state machine above is the same. The bus subscriber opens connections of its own
//! ([`Connection::seeds`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, FutureExt, Shared};
use redis::aio::MultiplexedConnection;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{
    AsyncConnectionConfig, Cmd, ErrorKind, IntoConnectionInfo, Pipeline, ProtocolVersion, PushInfo,
    RedisFuture, RedisResult, Value,
};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use crate::cache::l2::config::L2Config;
use crate::error::{Error, Result};

const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_millis(500);

/// A connection to send commands on (cheap to clone; clones share the socket).
#[derive(Clone)]
pub enum Handle {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Handle {
    pub async fn query(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        cmd.query_async(self).await
    }
}

/// So that scripts (`redis::Script`, EVALSHA with a NOSCRIPT fallback) and pipelines run on
/// whichever connection the tier has. Replies come as RESP2 would give them ([`resp2`]).
impl redis::aio::ConnectionLike for Handle {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Handle::Single(c) => c.req_packed_command(cmd).map(|r| r.map(resp2)).boxed(),
            Handle::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Handle::Single(c) => c
                .req_packed_commands(pipeline, offset, count)
                .map(|r| r.map(|v| v.into_iter().map(resp2).collect()))
                .boxed(),
            Handle::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Handle::Single(c) => c.get_db(),
            Handle::Cluster(c) => c.get_db(),
        }
    }
}

/// A RESP3 reply as RESP2 gives it, so that the tier reads replies one way whatever the
/// connection speaks: a script's `true` is 1 and its `false` nil, maps are flat arrays,
/// sets arrays, doubles and verbatim strings bulk strings. Replies that are the same in both
/// (bulk strings, integers, nil, arrays of those) pass through without a copy.
pub fn resp2(v: Value) -> Value {
    match v {
        Value::Boolean(true) => Value::Int(1),
        Value::Boolean(false) => Value::Nil,
        Value::Array(items) if items.iter().all(is_resp2) => Value::Array(items),
        Value::Array(items) | Value::Set(items) => {
            Value::Array(items.into_iter().map(resp2).collect())
        }
        Value::Map(pairs) => Value::Array(
            pairs
                .into_iter()
                .flat_map(|(k, v)| [resp2(k), resp2(v)])
                .collect(),
        ),
        Value::Double(d) => Value::BulkString(d.to_string().into_bytes()),
        Value::VerbatimString { text, .. } => Value::BulkString(text.into_bytes()),
        Value::BigNumber(n) => Value::BulkString(n),
        other => other,
    }
}

fn is_resp2(v: &Value) -> bool {
    matches!(
        v,
        Value::Nil
            | Value::Int(_)
            | Value::BulkString(_)
            | Value::SimpleString(_)
            | Value::Okay
            | Value::ServerError(_)
    )
}

/// The pushes of one connection: pub/sub messages, and a disconnection notice when it drops.
pub type Pushes = UnboundedReceiver<PushInfo>;

/// The reply to a `SUBSCRIBE` already sent.
pub type Subscribing = BoxFuture<'static, RedisResult<()>>;

/// What an opened RESP3 connection leaves for the bus subscriber.
pub struct Opened {
    pub pushes: Pushes,
    /// The `SUBSCRIBE` queued on the connection before it was handed out (armed with
    /// [`Connection::subscribe_on_open`]); `None`: nothing was queued.
    pub subscribing: Option<Subscribing>,
}

/// Why no handle could be had.
#[derive(Debug, Clone)]
pub enum ConnectFailure {
    /// The tier is closed.
    Closed,
    /// The last attempt failed and the backoff window has not run out.
    Backoff(Arc<str>),
    /// This attempt failed (the driver's message, not yet redacted).
    Failed(Arc<str>),
}

impl ConnectFailure {
    /// Why, in words (the driver's message is not yet redacted).
    pub fn reason(&self) -> String {
        match self {
            ConnectFailure::Closed => "the Redis tier is closed".to_string(),
            ConnectFailure::Backoff(m) | ConnectFailure::Failed(m) => m.to_string(),
        }
    }
}

type Opening = Shared<BoxFuture<'static, std::result::Result<(Handle, u64), Arc<str>>>>;

enum State {
    Idle {
        retry_at: Option<Instant>,
        failures: u32,
        last: Option<Arc<str>>,
    },
    Opening(Opening),
    Ready(Handle, u64),
    Closed,
}

struct ConnInner {
    state: Mutex<State>,
    generation: std::sync::atomic::AtomicU64,
    /// The pushes of the connection of that generation, until the bus subscriber takes them
    /// (RESP3 connections only).
    pushes: Mutex<Option<(u64, Opened)>>,
    /// The bus channel to subscribe to as each RESP3 connection opens (set by the subscriber).
    subscribe_on_open: Mutex<Option<Vec<u8>>>,
    /// Single server: connections speak RESP3 (`false` once the server refused `HELLO`).
    resp3: AtomicBool,
}

/// What connections are made to.
#[derive(Clone)]
enum Target {
    /// The same server as RESP3 and as RESP2 (for servers without `HELLO`).
    Single {
        resp3: Box<redis::Client>,
        resp2: Box<redis::Client>,
    },
    Cluster(Box<ClusterClient>),
}

pub struct Connection {
    target: Target,
    /// A client per host of the URL (one for a single server).
    seeds: Vec<redis::Client>,
    config: AsyncConnectionConfig,
    shared: Arc<ConnInner>,
}

/// rustls needs a process-wide crypto provider for `rediss://`; installing it twice (or
/// after someone else did) is harmless.
fn ensure_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client for one server URL. It skips redis-rs's `CLIENT SETINFO` on connect: without a
/// password or database to select, that was a round trip of its own before the first command
/// (a cold start's first read waited for it).
fn client(url: &str) -> RedisResult<redis::Client> {
    let info = url.into_connection_info()?;
    let settings = info.redis_settings().clone().set_skip_set_lib_name();
    redis::Client::open(info.set_redis_settings(settings))
}

/// A client for `info`'s server that speaks RESP3 (pushes: pub/sub beside the replies).
pub(super) fn resp3_client(info: redis::ConnectionInfo) -> RedisResult<redis::Client> {
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    redis::Client::open(info.set_redis_settings(settings))
}

/// Opens a single-server connection: RESP3 with its pushes unless the server has refused
/// `HELLO` before (or refuses it now: then RESP2, remembered in `resp3`). A RESP3 connection
/// has `SUBSCRIBE subscribe_to` queued before it is returned, if given.
async fn open_single(
    resp3: &redis::Client,
    resp2: &redis::Client,
    config: &AsyncConnectionConfig,
    use_resp3: &AtomicBool,
    subscribe_to: Option<Vec<u8>>,
) -> RedisResult<(Handle, Option<Opened>)> {
    if use_resp3.load(Ordering::Relaxed) {
        let (tx, pushes) = unbounded_channel();
        let with_pushes = config.clone().set_push_sender(tx);
        match resp3
            .get_multiplexed_async_connection_with_config(&with_pushes)
            .await
        {
            Ok(c) => {
                let subscribing = match subscribe_to {
                    Some(channel) => Some(queue_subscribe(&c, channel).await),
                    None => None,
                };
                let opened = Opened {
                    pushes,
                    subscribing,
                };
                return Ok((Handle::Single(c), Some(opened)));
            }
            Err(e) if refuses_hello(&e) => use_resp3.store(false, Ordering::Relaxed),
            Err(e) => return Err(e),
        }
    }
    let c = resp2
        .get_multiplexed_async_connection_with_config(config)
        .await?;
    Ok((Handle::Single(c), None))
}

/// Sends `SUBSCRIBE channel` on `con` and returns the wait for its reply. When this returns,
/// the command is in the connection's queue, ahead of anything sent on it afterwards: the
/// redis crate queues a request when its future is first polled (an empty queue of a new
/// connection takes it at once), and writes requests in queue order.
async fn queue_subscribe(con: &MultiplexedConnection, channel: Vec<u8>) -> Subscribing {
    let mut c = con.clone();
    let mut reply: Subscribing = async move { c.subscribe(channel).await }.boxed();
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(reply.as_mut().poll(cx))).await;
    match first {
        std::task::Poll::Ready(r) => futures_util::future::ready(r).boxed(),
        std::task::Poll::Pending => reply,
    }
}

/// Whether the handshake failed because the server does not take `HELLO`: older than Redis 6
/// (which the redis crate recognises), or the command renamed away or denied by an ACL.
fn refuses_hello(e: &redis::RedisError) -> bool {
    if e.kind() == ErrorKind::RESP3NotSupported {
        return true;
    }
    let detail = e.detail().unwrap_or_default().to_ascii_lowercase();
    let code = e.code().unwrap_or_default();
    detail.contains("hello") && (detail.starts_with("unknown command") || code == "NOPERM")
}

/// The wait after `failures` failed attempts: 50 ms doubling to 500 ms.
pub(super) fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(8);
    (BACKOFF_MIN * 2u32.pow(exp)).min(BACKOFF_MAX)
}

impl Connection {
    /// Parses the URL; opens nothing.
    pub fn new(cfg: &L2Config) -> Result<Self> {
        ensure_tls_provider();
        let invalid = |e: redis::RedisError| {
            Error::invalid_option(
                "url",
                format!(
                    "is not a valid Redis URL ({}): {:?}",
                    cfg.redacted_url(),
                    e.kind()
                ),
            )
        };
        let seeds = cfg
            .seeds
            .iter()
            .map(|s| client(s))
            .collect::<RedisResult<Vec<_>>>()
            .map_err(invalid)?;
        let target = if cfg.cluster {
            let cluster = ClusterClient::builder(cfg.seeds.iter().map(String::as_str))
                .connection_timeout(cfg.connect_timeout)
                // Each call has its own deadline (`timeoutMs`), enforced by the tier; a
                // failing node is not retried for long within it.
                .response_timeout(cfg.connect_timeout)
                .retries(2)
                .build()
                .map_err(invalid)?;
            Target::Cluster(Box::new(cluster))
        } else {
            match seeds.first() {
                Some(c) => Target::Single {
                    resp3: Box::new(
                        resp3_client(c.get_connection_info().clone()).map_err(invalid)?,
                    ),
                    resp2: Box::new(c.clone()),
                },
                None => return Err(Error::invalid_option("url", "has no host")),
            }
        };
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(cfg.connect_timeout))
            // Each call has its own deadline (`timeoutMs`), enforced by the tier.
            .set_response_timeout(None);
        Ok(Connection {
            target,
            seeds,
            config,
            shared: Arc::new(ConnInner {
                state: Mutex::new(State::Idle {
                    retry_at: None,
                    failures: 0,
                    last: None,
                }),
                generation: std::sync::atomic::AtomicU64::new(0),
                pushes: Mutex::new(None),
                subscribe_on_open: Mutex::new(None),
                resp3: AtomicBool::new(true),
            }),
        })
    }

    /// A client per host of the URL (the bus subscriber connects through them).
    pub fn seeds(&self) -> &[redis::Client] {
        &self.seeds
    }

    /// A handle to send on and its generation (for [`Connection::invalidate`]), opening the
    /// connection if needed. Must run inside the tokio runtime.
    pub async fn handle(&self) -> std::result::Result<(Handle, u64), ConnectFailure> {
        let opening = {
            let mut state = lock(&self.shared.state);
            match &*state {
                State::Ready(h, gen) => return Ok((h.clone(), *gen)),
                State::Closed => return Err(ConnectFailure::Closed),
                State::Opening(f) => f.clone(),
                State::Idle {
                    retry_at: Some(at),
                    last,
                    ..
                } if Instant::now() < *at => {
                    return Err(ConnectFailure::Backoff(
                        last.clone().unwrap_or_else(|| Arc::from("reconnecting")),
                    ));
                }
                State::Idle { failures, .. } => {
                    let f = self.start_opening(*failures);
                    *state = State::Opening(f.clone());
                    f
                }
            }
        };
        opening.await.map_err(ConnectFailure::Failed)
    }

    /// Spawns one connection attempt; it records its own outcome in the state.
    fn start_opening(&self, failures: u32) -> Opening {
        let target = self.target.clone();
        let config = self.config.clone();
        let shared = self.shared.clone();
        let task = tokio::spawn(async move {
            let result = match target {
                Target::Single { resp3, resp2 } => {
                    let subscribe_to = lock(&shared.subscribe_on_open).clone();
                    open_single(&resp3, &resp2, &config, &shared.resp3, subscribe_to).await
                }
                Target::Cluster(client) => client
                    .get_async_connection()
                    .await
                    .map(|c| (Handle::Cluster(c), None)),
            };
            let mut state = lock(&shared.state);
            if matches!(*state, State::Closed) {
                return Err(Arc::from("the Redis tier is closed"));
            }
            match result {
                Ok((h, pushes)) => {
                    let gen = shared.generation.fetch_add(1, Ordering::Relaxed) + 1;
                    *state = State::Ready(h.clone(), gen);
                    *lock(&shared.pushes) = pushes.map(|p| (gen, p));
                    Ok((h, gen))
                }
                Err(e) => {
                    let msg: Arc<str> = Arc::from(format!("cannot connect to Redis: {e}"));
                    let failures = failures.saturating_add(1);
                    *state = State::Idle {
                        retry_at: Some(Instant::now() + backoff(failures)),
                        failures,
                        last: Some(msg.clone()),
                    };
                    Err(msg)
                }
            }
        });
        async move {
            match task.await {
                Ok(r) => r,
                Err(_) => Err(Arc::from("the connection task was cancelled")),
            }
        }
        .boxed()
        .shared()
    }

    /// From now on, each RESP3 connection is opened with a `SUBSCRIBE` to `channel` queued
    /// before any other command (see the module docs); its reply comes with the pushes
    /// ([`Connection::take_pushes`]). RESP2 and cluster connections ignore it. Call before the
    /// connection is first opened for the first one to be covered.
    pub fn subscribe_on_open(&self, channel: Vec<u8>) {
        *lock(&self.shared.subscribe_on_open) = Some(channel);
    }

    /// Undoes [`Connection::subscribe_on_open`] (the bus subscriber ended).
    pub fn stop_subscribing_on_open(&self) {
        lock(&self.shared.subscribe_on_open).take();
    }

    /// The pushes of the connection of generation `gen`, if it speaks RESP3 and nobody took
    /// them yet (the bus subscriber subscribes on that connection).
    pub fn take_pushes(&self, gen: u64) -> Option<Opened> {
        let mut slot = lock(&self.shared.pushes);
        match slot.take() {
            Some((g, p)) if g == gen => Some(p),
            other => {
                *slot = other;
                None
            }
        }
    }

    /// Whether single-server connections speak RESP3 (the server took `HELLO`, or has not
    /// been asked yet).
    pub fn speaks_resp3(&self) -> bool {
        !self.is_cluster() && self.shared.resp3.load(Ordering::Relaxed)
    }

    /// Reports that the connection of generation `gen` is broken: the next call reopens.
    pub fn invalidate(&self, gen: u64) {
        let mut state = lock(&self.shared.state);
        if matches!(&*state, State::Ready(_, g) if *g == gen) {
            *state = State::Idle {
                retry_at: None,
                failures: 0,
                last: None,
            };
        }
    }

    /// Drops the connection; calls in flight keep their clones until they finish.
    pub fn close(&self) {
        *lock(&self.shared.state) = State::Closed;
        lock(&self.shared.pushes).take();
    }

    /// Whether this is a Redis Cluster (sharded pub/sub; no publishing from scripts).
    pub fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    pub fn is_connected(&self) -> bool {
        matches!(*lock(&self.shared.state), State::Ready(..))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::from_millis(50));
        assert_eq!(backoff(2), Duration::from_millis(100));
        assert_eq!(backoff(4), Duration::from_millis(400));
        assert_eq!(backoff(5), Duration::from_millis(500));
        assert_eq!(backoff(100), Duration::from_millis(500));
    }

    #[test]
    fn resp3_replies_read_as_resp2() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        // What scripts return: `true` / `false`, and inside tables.
        assert_eq!(resp2(Value::Boolean(true)), Value::Int(1));
        assert_eq!(resp2(Value::Boolean(false)), Value::Nil);
        assert_eq!(
            resp2(Value::Array(vec![
                Value::Int(2),
                Value::Boolean(false),
                bulk("7")
            ])),
            Value::Array(vec![Value::Int(2), Value::Nil, bulk("7")])
        );
        assert_eq!(
            resp2(Value::Map(vec![(bulk("a"), Value::Double(1.5))])),
            Value::Array(vec![bulk("a"), bulk("1.5")])
        );
        assert_eq!(
            resp2(Value::Set(vec![Value::Boolean(true)])),
            Value::Array(vec![Value::Int(1)])
        );
        assert_eq!(
            resp2(Value::VerbatimString {
                format: redis::VerbatimFormat::Text,
                text: "x".into()
            }),
            bulk("x")
        );
        // The same in both: passed through.
        let mget = Value::Array(vec![bulk("v"), Value::Nil, Value::Int(3)]);
        assert_eq!(resp2(mget.clone()), mget);
        assert_eq!(resp2(Value::Okay), Value::Okay);
    }
}
