//! Connection management of the tier: one lazily created, self-reconnecting, multiplexed
//! connection (the `redis` crate's `ConnectionManager`) shared by every call.
//!
//! - Nothing touches the network at construction: the manager is created on the first call
//!   (inside the tokio runtime) and connects on first use.
//! - A dropped connection (server killed, restarted) makes the manager reconnect in the
//!   background with exponential backoff; calls meanwhile fail fast or time out as misses.
//! - `close()` drops the manager: once in-flight calls finish, the socket and the driver task
//!   go away, so nothing keeps Node alive.
//!
//! Room to grow: a pub/sub connection (issue 5) is created from the same [`redis::Client`]
//! ([`Connection::client`]); Redis Cluster would add a variant beside `Single` in [`Handle`].

use std::sync::Mutex;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, RedisResult, Value};

use crate::cache::l2::config::L2Config;
use crate::error::{Code, Error, Result};

/// Reconnect backoff: first retry after ~50 ms, doubling, capped at 500 ms, 4 retries per
/// reconnect cycle; a later failing call starts the next cycle.
const RETRY_MIN_DELAY: Duration = Duration::from_millis(50);
const RETRY_MAX_DELAY: Duration = Duration::from_millis(500);
const RETRY_COUNT: usize = 4;

/// A connection to send commands on (cheap to clone; clones share the socket).
#[derive(Clone)]
pub enum Handle {
    Single(ConnectionManager),
}

impl Handle {
    pub async fn query(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            Handle::Single(m) => cmd.query_async(m).await,
        }
    }
}

enum Slot {
    Unopened,
    Open(Handle),
    Closed,
}

pub struct Connection {
    client: redis::Client,
    manager_config: ConnectionManagerConfig,
    slot: Mutex<Slot>,
}

/// rustls needs a process-wide crypto provider for `rediss://`; installing it twice (or
/// after someone else did) is harmless.
fn ensure_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Connection {
    /// Parses the URL; opens nothing.
    pub fn new(cfg: &L2Config) -> Result<Self> {
        ensure_tls_provider();
        let client = redis::Client::open(cfg.url.as_str()).map_err(|e| {
            Error::invalid_option(
                "url",
                format!(
                    "is not a valid Redis URL ({}): {:?}",
                    cfg.redacted_url(),
                    e.kind()
                ),
            )
        })?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(cfg.connect_timeout))
            // Each call has its own deadline (`timeoutMs`), enforced by the tier.
            .set_response_timeout(None)
            .set_min_delay(RETRY_MIN_DELAY)
            .set_max_delay(RETRY_MAX_DELAY)
            .set_number_of_retries(RETRY_COUNT);
        Ok(Connection {
            client,
            manager_config,
            slot: Mutex::new(Slot::Unopened),
        })
    }

    /// The client the connection was made from (for a future subscriber connection).
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// A handle to send on, creating the (lazy) manager on first use. Must run inside the
    /// tokio runtime. `ERR_CLOSED` after [`Connection::close`].
    pub fn handle(&self) -> Result<Handle> {
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        match &*slot {
            Slot::Open(h) => Ok(h.clone()),
            Slot::Closed => Err(Error::new(Code::Closed, "the Redis tier is closed")),
            Slot::Unopened => {
                let manager = self
                    .client
                    .get_connection_manager_lazy(self.manager_config.clone())
                    .map_err(|e| {
                        Error::new(
                            Code::Internal,
                            format!("cannot set up the Redis connection: {:?}", e.kind()),
                        )
                    })?;
                let h = Handle::Single(manager);
                *slot = Slot::Open(h.clone());
                Ok(h)
            }
        }
    }

    /// Drops the shared handle; the socket closes when in-flight calls release theirs.
    pub fn close(&self) {
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        *slot = Slot::Closed;
    }
}
