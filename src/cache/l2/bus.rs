//! The invalidation bus: publishing (here) and the subscriber of each instance
//! (`subscriber.rs`).
//!
//! Every change of a thread is announced on `<prefix>bus` with the thread's new version
//! (see `message.rs`): on a single server by PUBLISH from inside the change's script (no
//! change without its message); on a cluster by SPUBLISH right after it (the channel lives
//! in another slot). A cluster announcement that fails (Redis slow or failing at that
//! moment) is kept and published again, on every subscriber tick (1 s) and as soon as
//! something new is queued, until Redis takes it: the message carries the version, so a late
//! one is harmless. A change whose outcome is unknown (the script timed out: it may have run)
//! is announced with version 0, "drop whatever you hold".

use crate::cache::l2::message::{Kind, Message};
use crate::cache::l2::stats::Stats;
use crate::cache::l2::tier::{lock, RedisL2};

/// Announcements kept for another attempt, at most (the oldest are dropped, counted).
const MAX_REPUBLISH: usize = 10_000;

/// The version of an announcement whose change may or may not have happened.
pub const UNKNOWN_VERSION: u64 = 0;

impl RedisL2 {
    /// Announces that `key` changed to `version` (for changes made by scripts other than the
    /// tier's own, e.g. update's fenced write: call it once that write is confirmed).
    /// `true` when Redis took the message; never an error (an instance that misses messages
    /// drops its whole L1 when it re-subscribes). One attempt: see [`RedisL2::announce`].
    pub async fn publish(&self, key: &str, version: u64, kind: Kind) -> bool {
        if self.check_open().is_err() || self.keys.check(key).is_err() {
            return false;
        }
        let msg = Message {
            key: key.to_string(),
            version,
            origin: self.origin.clone(),
            kind,
        };
        self.send(&msg).await
    }

    async fn send(&self, msg: &Message) -> bool {
        let verb = if self.conn.is_cluster() {
            "SPUBLISH"
        } else {
            "PUBLISH"
        };
        let mut cmd = redis::cmd(verb);
        cmd.arg(self.keys.bus_channel()).arg(msg.encode());
        let ok = self.call(&cmd).await.is_ok();
        if ok {
            Stats::add(&self.stats.published, 1);
        }
        ok
    }

    /// [`RedisL2::publish`], and if Redis does not take it, again later until it does.
    pub async fn announce(&self, key: &str, version: u64, kind: Kind) {
        if self.publish(key, version, kind).await || self.is_closed() {
            return;
        }
        Stats::add(&self.stats.publish_failures, 1);
        let mut q = lock(&self.republish);
        if q.len() >= MAX_REPUBLISH {
            q.pop_front();
            Stats::add(&self.stats.publish_dropped, 1);
        }
        q.push_back(Message {
            key: key.to_string(),
            version,
            origin: self.origin.clone(),
            kind,
        });
        drop(q);
        self.republish_wake.notify_one();
    }

    /// Publishes the announcements kept for another attempt, in order, stopping at the first
    /// that Redis does not take (it stays first in line).
    pub(super) async fn flush_republish(&self) {
        loop {
            let Some(msg) = lock(&self.republish).front().cloned() else {
                return;
            };
            if self.is_closed() || !self.send(&msg).await {
                return;
            }
            let mut q = lock(&self.republish);
            if q.front() == Some(&msg) {
                q.pop_front();
            }
        }
    }
}
