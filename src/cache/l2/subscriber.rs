//! The bus subscriber of one instance: a subscription to `<prefix>bus` that hands other
//! instances' messages to a sink in batches.
//!
//! - Single server: `SUBSCRIBE` on the tier's own RESP3 connection (the messages arrive as
//!   pushes beside the replies to the tier's commands; see `conn.rs`). The subscriber arms
//!   that connection when it starts, so that each opening queues the `SUBSCRIBE` ahead of
//!   every command of the tier: a subscription made so is *ordered* (nothing the tier read or
//!   wrote on it can predate a change it misses). Losing the
//!   subscription means that connection is gone or stuck: the subscriber marks it broken, so
//!   the next call and the next subscription open a new one. A server without `HELLO` (older
//!   than Redis 6) gets a RESP2 pub/sub connection of its own, as the subscriber used to.
//! - Redis Cluster: sharded pub/sub. The channel's slot lives on one node; the subscriber
//!   asks a seed node with `SSUBSCRIBE` on a RESP3 connection and follows the `MOVED`
//!   answer to the owner. If the slot moves or the node goes away, the server ends the
//!   subscription (`sunsubscribe`) or the connection drops: the subscriber starts over.
//!
//! - It reconnects by itself (50 ms doubling to 500 ms between failed attempts) and PINGs its
//!   connection every second, so a silently dead one (frozen server, lost peer) is replaced.
//! - It also drives the second attempts of announcements Redis did not take (`bus.rs`).
//! - After every re-subscription (and after a first subscription that only came after failed
//!   attempts) it delivers [`BusEvent::Resync`] before any message: messages published while
//!   it was not subscribed are lost, so the receiver must treat everything it holds as
//!   suspect. Counted in `bus_resyncs`. A first subscription at the first attempt delivers
//!   [`BusEvent::Subscribed`] instead: only what the receiver took in before it is suspect,
//!   and, if the subscription is ordered, not even that.
//! - Its own messages (same origin) are dropped here and counted in `bus_own`.
//! - It ends when the tier closes (or is dropped, see [`RedisL2::stop_bus`]), or when the sink
//!   reports that its receiver is gone.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use redis::{
    AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, ErrorKind, Msg, PushKind, RedisError,
    RedisResult, Value,
};
use tokio::sync::mpsc::unbounded_channel;
use tokio::sync::watch;

use crate::cache::l2::conn::{backoff, resp3_client, Connection, Handle, Pushes};
use crate::cache::l2::message::Message;
use crate::cache::l2::stats::Stats;
use crate::cache::l2::tier::{InFlight, RedisL2};
use crate::error::{Code, Error, Result};

/// What the subscriber hands over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusEvent {
    /// Another instance changed `key`; its version is now `version`.
    Changed { key: String, version: u64 },
    /// Messages may have been missed: drop everything held.
    Resync,
    /// The first subscription is in place, at the first attempt: from now on no change is
    /// missed (delivered instead of [`BusEvent::Resync`] when it needed no retry).
    /// `ordered`: the `SUBSCRIBE` went ahead of every command the tier sent on its connection
    /// (single server, RESP3), so nothing the receiver read or wrote through the tier missed
    /// a change. Otherwise (its own connection, a cluster) whatever the receiver took in
    /// before it could have missed one.
    Subscribed { ordered: bool },
}

/// Receives batches of events; returns `false` once nobody listens any more (the subscriber
/// then ends).
pub type Sink = Box<dyn Fn(Vec<BusEvent>) -> bool + Send + Sync>;

const PING_EVERY: Duration = Duration::from_secs(1);
/// Most events handed over in one batch.
const MAX_BATCH: usize = 512;

/// A live subscription.
enum Sub {
    /// Single server: RESP2 pub/sub connection.
    Plain {
        ctl: PubSubSink,
        stream: PubSubStream,
    },
    /// RESP3: the tier's own connection (`shared`: its generation), or, on a cluster, a
    /// connection to the node that owns the channel's slot.
    Push {
        con: MultiplexedConnection,
        pushes: Pushes,
        shared: Option<u64>,
        /// Subscribed by the `SUBSCRIBE` queued as the tier's connection opened.
        ordered: bool,
    },
}

impl Sub {
    /// The next message; `None` once the subscription is lost.
    async fn next(&mut self) -> Option<Msg> {
        match self {
            Sub::Plain { stream, .. } => stream.next().await,
            Sub::Push { pushes, .. } => loop {
                let push = pushes.recv().await?;
                match push.kind {
                    PushKind::SMessage | PushKind::Message => {
                        if let Some(m) = Msg::from_push_info(push) {
                            return Some(m);
                        }
                    }
                    // The connection dropped, or the server ended the subscription (the
                    // slot moved to another node).
                    PushKind::Disconnection | PushKind::SUnsubscribe | PushKind::Unsubscribe => {
                        return None
                    }
                    _ => {}
                }
            },
        }
    }

    /// Whether the connection answers a PING within `limit`.
    async fn ping(&mut self, limit: Duration) -> bool {
        let pong = async {
            match self {
                Sub::Plain { ctl, .. } => ctl.ping::<Value>().await,
                Sub::Push { con, .. } => redis::cmd("PING").query_async::<Value>(con).await,
            }
        };
        matches!(tokio::time::timeout(limit, pong).await, Ok(Ok(_)))
    }
}

/// What woke the pump up.
enum Step {
    Stop,
    Message(Option<Msg>),
    /// The PING tick (which also retries announcements Redis did not take).
    Tick,
    /// An announcement was queued for another attempt.
    Republish,
}

/// How a subscription ended.
enum Ended {
    /// Stop asked (close) or the sink is gone: the subscriber ends.
    Stop,
    /// The connection was lost: subscribe again.
    Lost,
}

impl RedisL2 {
    /// The subscriber, to be spawned on the tokio runtime by the caller. Fails if one was
    /// already started or the tier is closed.
    pub fn bus_subscriber(
        self: &Arc<Self>,
        sink: Sink,
    ) -> Result<impl std::future::Future<Output = ()> + Send + 'static> {
        self.check_open()?;
        if self.bus_started.swap(true, Ordering::AcqRel) {
            return Err(Error::new(
                Code::InvalidArgument,
                "this tier's bus subscriber is already running",
            ));
        }
        self.conn.subscribe_on_open(self.keys.bus_channel());
        let tier = self.clone();
        let stop = self.bus_stop.subscribe();
        Ok(async move { tier.run_bus(stop, sink).await })
    }

    /// Whether the subscriber is subscribed right now.
    pub fn bus_connected(&self) -> bool {
        self.bus_connected.load(Ordering::Acquire)
    }

    /// Ends the subscriber (idempotent; `close` does it too).
    pub fn stop_bus(&self) {
        self.bus_stop.send_replace(true);
    }

    async fn run_bus(&self, mut stop: watch::Receiver<bool>, sink: Sink) {
        let _in_flight = InFlight::new(self);
        // Once the subscriber is gone, connections opened later subscribe to nothing (their
        // messages would pile up unread).
        let _disarm = Disarm(&self.conn);
        let mut failures = 0u32;
        let mut subscribed_before = false;
        loop {
            if *stop.borrow() || self.is_closed() {
                return;
            }
            let attempt = tokio::time::timeout(self.cfg.connect_timeout, self.open_pubsub());
            let opened = tokio::select! {
                _ = stop.changed() => return,
                r = attempt => r,
            };
            match opened {
                Ok(Ok(pubsub)) => {
                    let (shared, ordered) = match &pubsub {
                        Sub::Push {
                            shared, ordered, ..
                        } => (*shared, *ordered),
                        Sub::Plain { .. } => (None, false),
                    };
                    // Told before `bus_connected` turns true, so that a receiver that sees it
                    // true has the event queued ahead of any message.
                    let event = if subscribed_before || failures > 0 {
                        Stats::add(&self.stats.bus_resyncs, 1);
                        BusEvent::Resync
                    } else {
                        BusEvent::Subscribed { ordered }
                    };
                    if !sink(vec![event]) {
                        return;
                    }
                    subscribed_before = true;
                    self.bus_connected.store(true, Ordering::Release);
                    let ended = self.pump(pubsub, &mut stop, &sink).await;
                    self.bus_connected.store(false, Ordering::Release);
                    if let Ended::Stop = ended {
                        return;
                    }
                    // The tier's connection dropped or stopped answering: calls open a new one.
                    if let Some(gen) = shared {
                        self.conn.invalidate(gen);
                    }
                    // Lost: the first retry waits the shortest backoff.
                    failures = 1;
                }
                _ => failures = failures.saturating_add(1),
            }
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(backoff(failures)) => {}
            }
        }
    }

    async fn open_pubsub(&self) -> RedisResult<Sub> {
        if self.conn.is_cluster() {
            return self.open_shard().await;
        }
        if self.conn.speaks_resp3() {
            if let Some(sub) = self.open_shared().await? {
                return Ok(sub);
            }
        }
        let Some(client) = self.conn.seeds().first() else {
            return Err(no_seed());
        };
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(self.keys.bus_channel()).await?;
        let (ctl, stream) = pubsub.split();
        Ok(Sub::Plain { ctl, stream })
    }

    /// `SUBSCRIBE` on the tier's own connection (opening it if needed). `None` if the server
    /// turned out not to speak RESP3.
    async fn open_shared(&self) -> RedisResult<Option<Sub>> {
        let (handle, gen) = self.conn.handle().await.map_err(|f| {
            RedisError::from((ErrorKind::Io, "cannot connect to Redis", f.reason()))
        })?;
        let Handle::Single(mut con) = handle else {
            return Err(no_seed());
        };
        let Some(opened) = self.conn.take_pushes(gen) else {
            if !self.conn.speaks_resp3() {
                return Ok(None);
            }
            // Its pushes went to an earlier subscription, now lost: use a new connection.
            self.conn.invalidate(gen);
            return Err(RedisError::from((
                ErrorKind::Io,
                "the connection's subscription was lost",
            )));
        };
        let ordered = opened.subscribing.is_some();
        let subscribed = match opened.subscribing {
            Some(reply) => reply.await,
            None => con.subscribe(self.keys.bus_channel()).await,
        };
        if let Err(e) = subscribed {
            self.conn.invalidate(gen);
            return Err(e);
        }
        Ok(Some(Sub::Push {
            con,
            pushes: opened.pushes,
            shared: Some(gen),
            ordered,
        }))
    }

    /// `SSUBSCRIBE` on the node that owns the bus channel: asks each seed in turn and
    /// follows its `MOVED` answer (at most a few hops).
    async fn open_shard(&self) -> RedisResult<Sub> {
        let mut last = no_seed();
        for seed in self.conn.seeds() {
            let mut info = seed.get_connection_info().clone();
            for _hop in 0..3 {
                match self.try_shard(info.clone()).await {
                    Ok(sub) => return Ok(sub),
                    Err(e) => match e
                        .redirect_node()
                        .and_then(|(addr, _)| moved_to(&info, addr))
                    {
                        Some(next) => info = next,
                        None => {
                            last = e;
                            break;
                        }
                    },
                }
            }
        }
        Err(last)
    }

    async fn try_shard(&self, info: ConnectionInfo) -> RedisResult<Sub> {
        let client = resp3_client(info)?;
        let (tx, pushes) = unbounded_channel();
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.cfg.connect_timeout))
            .set_response_timeout(Some(self.cfg.connect_timeout))
            .set_push_sender(tx);
        let mut con = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        // One channel: one confirmation, which the connection takes as the reply.
        redis::cmd("SSUBSCRIBE")
            .arg(self.keys.bus_channel())
            .exec_async(&mut con)
            .await?;
        Ok(Sub::Push {
            con,
            pushes,
            shared: None,
            ordered: false,
        })
    }

    /// Hands messages over until the connection is lost or stop is asked.
    async fn pump(&self, mut sub: Sub, stop: &mut watch::Receiver<bool>, sink: &Sink) -> Ended {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            let step = tokio::select! {
                _ = stop.changed() => Step::Stop,
                m = sub.next() => Step::Message(m),
                _ = ping.tick() => Step::Tick,
                _ = self.republish_wake.notified() => Step::Republish,
            };
            match step {
                Step::Stop => return Ended::Stop,
                Step::Message(None) => return Ended::Lost,
                Step::Message(Some(msg)) => {
                    let mut batch = Vec::new();
                    self.take(&msg, &mut batch);
                    let mut lost = false;
                    while batch.len() < MAX_BATCH {
                        match sub.next().now_or_never() {
                            Some(Some(m)) => self.take(&m, &mut batch),
                            Some(None) => {
                                lost = true;
                                break;
                            }
                            None => break,
                        }
                    }
                    if !batch.is_empty() && !sink(batch) {
                        return Ended::Stop;
                    }
                    if lost {
                        return Ended::Lost;
                    }
                }
                Step::Tick => {
                    if !sub.ping(self.cfg.connect_timeout).await {
                        return Ended::Lost;
                    }
                    self.flush_republish().await;
                }
                Step::Republish => self.flush_republish().await,
            }
        }
    }

    /// Adds `msg` to the batch if it is another instance's message of ours.
    fn take(&self, msg: &Msg, batch: &mut Vec<BusEvent>) {
        let Some(m) = Message::decode(msg.get_payload_bytes()) else {
            return;
        };
        if m.origin == self.origin {
            Stats::add(&self.stats.bus_own, 1);
            return;
        }
        Stats::add(&self.stats.bus_received, 1);
        batch.push(BusEvent::Changed {
            key: m.key,
            version: m.version,
        });
    }
}

/// Ends [`Connection::subscribe_on_open`] when dropped.
struct Disarm<'a>(&'a Connection);

impl Drop for Disarm<'_> {
    fn drop(&mut self) {
        self.0.stop_subscribing_on_open();
    }
}

fn no_seed() -> RedisError {
    RedisError::from((ErrorKind::Io, "no Redis node to subscribe on"))
}

/// `info` pointed at `addr` (`host:port`, as in a MOVED answer), keeping TLS settings.
fn moved_to(info: &ConnectionInfo, addr: &str) -> Option<ConnectionInfo> {
    let (host, port) = addr.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let to = match info.addr() {
        ConnectionAddr::TcpTls {
            insecure,
            tls_params,
            ..
        } => ConnectionAddr::TcpTls {
            host,
            port,
            insecure: *insecure,
            tls_params: tls_params.clone(),
        },
        _ => ConnectionAddr::Tcp(host, port),
    };
    Some(info.clone().set_addr(to))
}
