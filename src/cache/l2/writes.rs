//! Writes: each change of a thread is one script that also moves its version (and, on a
//! single server, publishes the bus message), see `scripts.rs`.

use futures_util::future::join_all;
use redis::Value;

use crate::cache::l2::bus::UNKNOWN_VERSION;
use crate::cache::l2::envelope;
use crate::cache::l2::message::{Kind, Message};
use crate::cache::l2::reads::parse_version;
use crate::cache::l2::scripts::{FILL_SCRIPT, INVALIDATE_SCRIPT, WRITE_SCRIPT};
use crate::cache::l2::stats::Stats;
use crate::cache::l2::tier::{Failure, RedisL2};
use crate::error::Result;

/// What a write does with the thread's tags.
#[derive(Debug, Clone, Copy)]
pub enum Tags<'a> {
    /// Keep the tags the thread has (they live as long as its value).
    Keep,
    /// Replace them (an empty slice removes them). The tags' sets learn the thread first.
    Replace(&'a [String]),
}

/// How a fill went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// Written, at this version.
    Written(u64),
    /// Not written: the thread changed since the miss (its version moved on).
    Skipped,
    /// Not written: Redis failed, timed out, or the circuit is open.
    Failed,
}

/// What an invalidation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalidated {
    /// A value was there and is gone.
    pub existed: bool,
    pub version: u64,
}

impl RedisL2 {
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

    /// The channel a script publishes on: the bus on a single server; none on a cluster,
    /// where the tier publishes after the script ([`RedisL2::after_change`]).
    pub(crate) fn script_channel(&self) -> Vec<u8> {
        if self.conn.is_cluster() {
            Vec::new()
        } else {
            self.keys.bus_channel()
        }
    }

    /// After a script changed `key` to `version`: counts the message, and announces it when
    /// the script could not (cluster).
    pub(crate) async fn after_change(&self, key: &str, version: u64, kind: Kind) {
        if self.conn.is_cluster() {
            self.announce(key, version, kind).await;
        } else {
            Stats::add(&self.stats.published, 1);
        }
    }

    /// After a change script failed without an answer (it may have run: Redis timed out or
    /// the connection dropped): on a cluster, where the script does not publish, announces
    /// the key with [`UNKNOWN_VERSION`] so that other instances drop their copy.
    async fn after_unknown(
        &self,
        key: &str,
        reply: &std::result::Result<Value, Failure>,
        kind: Kind,
    ) {
        if matches!(reply, Err(Failure::Redis)) {
            self.after_maybe_changed(key, kind).await;
        }
    }

    /// After a change of `key` that may or may not have been applied (no answer): on a
    /// cluster, announces [`UNKNOWN_VERSION`] so that other instances drop their copy (on a
    /// single server the script announced it if it ran).
    pub(crate) async fn after_maybe_changed(&self, key: &str, kind: Kind) {
        if self.conn.is_cluster() {
            self.announce(key, UNKNOWN_VERSION, kind).await;
        }
    }

    /// Counts a fill Redis applied (`Some(len)` envelope bytes) or skipped (`None`).
    pub(crate) fn count_fill(&self, written: Option<u64>) {
        match written {
            Some(len) => {
                Stats::add(&self.stats.fills, 1);
                Stats::add(&self.stats.bytes_written, len);
            }
            None => Stats::add(&self.stats.fills_skipped, 1),
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

    /// Stores `payload` (UTF-8 JSON bytes) under `key`, moving its version, and announces it
    /// on the bus. The new version when Redis confirmed the write; `None` when it was not
    /// confirmed (failing, timed out, circuit open, or the tags could not be recorded).
    pub async fn write(
        &self,
        key: &str,
        payload: &[u8],
        ttl_seconds: Option<u64>,
        tags: Tags<'_>,
    ) -> Result<Option<u64>> {
        self.check_open()?;
        let k = self.keys.thread(key)?;
        let ttl = self.ttl_for(ttl_seconds);
        if let Tags::Replace(tags) = tags {
            if !self.add_to_tags(key, tags, ttl).await? {
                Stats::add(&self.stats.set_failures, 1);
                return Ok(None);
            }
        }
        let env = envelope::encode(payload, self.cfg.compression);
        let compressed = env.is_compressed();
        let len = env.len() as u64;
        let mut inv = WRITE_SCRIPT.prepare_invoke();
        inv.key(&k.value)
            .key(&k.version)
            .key(&k.tags)
            .arg(&env)
            .arg(ttl)
            .arg(self.script_channel())
            .arg(Message::head(key, &self.origin, Kind::Write));
        match tags {
            Tags::Keep => {
                inv.arg("k");
            }
            Tags::Replace(tags) => {
                inv.arg("r");
                for t in tags {
                    inv.arg(t.as_str());
                }
            }
        }
        let reply = self.run_script(inv, self.cfg.timeout).await;
        match reply.as_ref().ok().and_then(parse_version) {
            Some(version) => {
                self.count_write(len, compressed);
                self.after_change(key, version, Kind::Write).await;
                Ok(Some(version))
            }
            None => {
                Stats::add(&self.stats.set_failures, 1);
                self.after_unknown(key, &reply, Kind::Write).await;
                Ok(None)
            }
        }
    }

    /// [`RedisL2::write`] keeping the thread's tags; `true` when confirmed.
    pub async fn set(&self, key: &str, payload: &[u8], ttl_seconds: Option<u64>) -> Result<bool> {
        Ok(self
            .write(key, payload, ttl_seconds, Tags::Keep)
            .await?
            .is_some())
    }

    /// Stores a loader's result after a miss, only if the thread's version is still the one
    /// the miss saw (`None`: it had none), so that a slow load never overwrites a newer
    /// write. Not announced: the truth did not change.
    pub async fn fill(
        &self,
        key: &str,
        payload: &[u8],
        seen_version: Option<u64>,
        ttl_seconds: Option<u64>,
    ) -> Result<Fill> {
        self.check_open()?;
        let k = self.keys.thread(key)?;
        let env = envelope::encode(payload, self.cfg.compression);
        let len = env.len() as u64;
        let mut inv = FILL_SCRIPT.prepare_invoke();
        inv.key(&k.value)
            .key(&k.version)
            .arg(&env)
            .arg(self.ttl_for(ttl_seconds))
            .arg(seen_version.map(|v| v.to_string()).unwrap_or_default());
        let reply = self.run_script(inv, self.cfg.timeout).await;
        Ok(match reply {
            Ok(Value::Nil) => {
                self.count_fill(None);
                Fill::Skipped
            }
            Ok(v) => match parse_version(&v) {
                Some(version) => {
                    self.count_fill(Some(len));
                    Fill::Written(version)
                }
                None => Fill::Failed,
            },
            Err(_) => Fill::Failed,
        })
    }

    /// Deletes a thread's value (and tags), moving its version, and announces it. With
    /// `only_with_tag`, a thread that no longer has that tag is left alone (`Ok(None)`).
    /// `Ok(None)` too when Redis could not be reached.
    pub async fn invalidate(
        &self,
        key: &str,
        only_with_tag: Option<&str>,
    ) -> Result<Option<Invalidated>> {
        self.check_open()?;
        let k = self.keys.thread(key)?;
        let mut inv = INVALIDATE_SCRIPT.prepare_invoke();
        inv.key(&k.value)
            .key(&k.version)
            .key(&k.tags)
            .arg(self.cfg.ttl_seconds.max(1))
            .arg(self.script_channel())
            .arg(Message::head(key, &self.origin, Kind::Invalidate))
            .arg(only_with_tag.unwrap_or(""));
        let reply = self.run_script(inv, self.cfg.timeout).await;
        let Ok(Value::Array(items)) = &reply else {
            self.after_unknown(key, &reply, Kind::Invalidate).await;
            return Ok(None);
        };
        let existed = matches!(items.first(), Some(Value::Int(1)));
        let Some(version) = items.get(1).and_then(parse_version) else {
            return Ok(None);
        };
        if existed {
            Stats::add(&self.stats.dels, 1);
        }
        self.after_change(key, version, Kind::Invalidate).await;
        Ok(Some(Invalidated { existed, version }))
    }

    /// Invalidates `keys` (each announced on the bus); the number of values Redis removed
    /// (0 when not reached). All keys are checked before anything is sent.
    pub async fn del<S: AsRef<str>>(&self, keys: &[S]) -> Result<u64> {
        self.check_open()?;
        for k in keys {
            self.keys.check(k.as_ref())?;
        }
        let done = join_all(keys.iter().map(|k| self.invalidate(k.as_ref(), None))).await;
        let mut n = 0;
        for r in done {
            if matches!(r?, Some(Invalidated { existed: true, .. })) {
                n += 1;
            }
        }
        Ok(n)
    }
}
