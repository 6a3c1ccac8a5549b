//! The invalidation bus: publishing (here) and the subscriber of each instance (below).
//!
//! Every change of a thread is announced on `<prefix>bus` (PUBLISH on a single server,
//! from inside the change's script; SPUBLISH on a cluster, right after it) with the thread's
//! new version (see `message.rs`).

use crate::cache::l2::message::{Kind, Message};
use crate::cache::l2::stats::Stats;
use crate::cache::l2::tier::RedisL2;

impl RedisL2 {
    /// Announces that `key` changed to `version` (for changes made by scripts other than the
    /// tier's own, e.g. update's fenced write: call it once that write is confirmed).
    /// `true` when Redis took the message; never an error (the bus is best effort: an
    /// instance that misses messages drops its whole L1 when it re-subscribes).
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
}
