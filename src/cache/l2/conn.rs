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
//! On a Redis Cluster the "connection" is the redis crate's async cluster connection (it
//! keeps one connection per node, follows MOVED/ASK and refreshes the slot map itself);
//! the state machine above is the same. The bus subscriber opens connections of its own
//! ([`Connection::seeds`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, FutureExt, Shared};
use redis::aio::MultiplexedConnection;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{
    AsyncConnectionConfig, Cmd, IntoConnectionInfo, Pipeline, RedisFuture, RedisResult, Value,
};

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
/// whichever connection the tier has.
impl redis::aio::ConnectionLike for Handle {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Handle::Single(c) => c.req_packed_command(cmd),
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
            Handle::Single(c) => c.req_packed_commands(pipeline, offset, count),
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
}

/// What connections are made to.
#[derive(Clone)]
enum Target {
    Single(Box<redis::Client>),
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
                Some(c) => Target::Single(Box::new(c.clone())),
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
                Target::Single(client) => client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map(Handle::Single),
                Target::Cluster(client) => client.get_async_connection().await.map(Handle::Cluster),
            };
            let mut state = lock(&shared.state);
            if matches!(*state, State::Closed) {
                return Err(Arc::from("the Redis tier is closed"));
            }
            match result {
                Ok(h) => {
                    let gen = shared
                        .generation
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                        + 1;
                    *state = State::Ready(h.clone(), gen);
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
}
