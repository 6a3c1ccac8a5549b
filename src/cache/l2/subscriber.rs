//! The bus subscriber of one instance: a connection of its own, subscribed to `<prefix>bus`,
//! that hands other instances' messages to a sink in batches.
//!
//! - It reconnects by itself (50 ms doubling to 500 ms between failed attempts) and PINGs its
//!   connection every second, so a silently dead one (frozen server, lost peer) is replaced.
//! - After every re-subscription (and after a first subscription that only came after failed
//!   attempts) it delivers [`BusEvent::Resync`] before any message: messages published while
//!   it was not subscribed are lost, so the receiver must treat everything it holds as
//!   suspect. Counted in `bus_resyncs`.
//! - Its own messages (same origin) are dropped here and counted in `bus_own`.
//! - It ends when the tier closes (or is dropped, see [`RedisL2::stop_bus`]), or when the sink
//!   reports that its receiver is gone.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use redis::Msg;
use tokio::sync::watch;

use crate::cache::l2::conn::backoff;
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
}

/// Receives batches of events; returns `false` once nobody listens any more (the subscriber
/// then ends).
pub type Sink = Box<dyn Fn(Vec<BusEvent>) -> bool + Send + Sync>;

const PING_EVERY: Duration = Duration::from_secs(1);
/// Most events handed over in one batch.
const MAX_BATCH: usize = 512;

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
                    if subscribed_before || failures > 0 {
                        Stats::add(&self.stats.bus_resyncs, 1);
                        if !sink(vec![BusEvent::Resync]) {
                            return;
                        }
                    }
                    subscribed_before = true;
                    self.bus_connected.store(true, Ordering::Release);
                    let ended = self.pump(pubsub, &mut stop, &sink).await;
                    self.bus_connected.store(false, Ordering::Release);
                    if let Ended::Stop = ended {
                        return;
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

    async fn open_pubsub(&self) -> redis::RedisResult<redis::aio::PubSub> {
        let mut pubsub = self.conn.client().get_async_pubsub().await?;
        pubsub.subscribe(self.keys.bus_channel()).await?;
        Ok(pubsub)
    }

    /// Hands messages over until the connection is lost or stop is asked.
    async fn pump(
        &self,
        pubsub: redis::aio::PubSub,
        stop: &mut watch::Receiver<bool>,
        sink: &Sink,
    ) -> Ended {
        let (mut ctl, mut stream) = pubsub.split();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                _ = stop.changed() => return Ended::Stop,
                msg = stream.next() => {
                    let Some(msg) = msg else { return Ended::Lost };
                    let mut batch = Vec::new();
                    self.take(&msg, &mut batch);
                    while batch.len() < MAX_BATCH {
                        match stream.next().now_or_never() {
                            Some(Some(m)) => self.take(&m, &mut batch),
                            Some(None) => break,
                            None => break,
                        }
                    }
                    if !batch.is_empty() && !sink(batch) {
                        return Ended::Stop;
                    }
                }
                _ = ping.tick() => {
                    let pong = tokio::time::timeout(
                        self.cfg.connect_timeout,
                        ctl.ping::<redis::Value>(),
                    );
                    if !matches!(pong.await, Ok(Ok(_))) {
                        return Ended::Lost;
                    }
                }
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
