//! Counters of the Redis tier (lock-free; read with [`Stats::snapshot`]).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Default)]
pub struct Stats {
    pub gets: AtomicU64,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub sets: AtomicU64,
    pub set_failures: AtomicU64,
    pub dels: AtomicU64,
    pub redis_errors: AtomicU64,
    pub timeouts: AtomicU64,
    pub corrupt: AtomicU64,
    pub short_circuited: AtomicU64,
    pub circuit_opened: AtomicU64,
    pub compressed_writes: AtomicU64,
    pub bytes_written: AtomicU64,
    pub bytes_read: AtomicU64,
    pub fills: AtomicU64,
    pub fills_skipped: AtomicU64,
    pub published: AtomicU64,
    pub publish_failures: AtomicU64,
    pub publish_dropped: AtomicU64,
    pub bus_received: AtomicU64,
    pub bus_own: AtomicU64,
    pub bus_resyncs: AtomicU64,
}

/// A consistent-enough copy of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Keys asked for (a `getMany` of n keys counts n).
    pub gets: u64,
    pub hits: u64,
    /// Keys answered with a miss for any reason (absent, corrupt, Redis failing, circuit open).
    pub misses: u64,
    /// Values confirmed written.
    pub sets: u64,
    /// Writes not confirmed (Redis failing, timed out, circuit open).
    pub set_failures: u64,
    /// Keys confirmed deleted.
    pub dels: u64,
    /// Calls that failed because of Redis (errors and timeouts).
    pub redis_errors: u64,
    /// Calls that did not answer within `timeoutMs` (also counted in `redis_errors`).
    pub timeouts: u64,
    /// Values under our keys that were not ours or did not decode.
    pub corrupt: u64,
    /// Calls answered without Redis because the circuit was open.
    pub short_circuited: u64,
    /// Times the circuit opened.
    pub circuit_opened: u64,
    pub compressed_writes: u64,
    /// Envelope bytes sent / received.
    pub bytes_written: u64,
    pub bytes_read: u64,
    /// Loader results written after a miss (conditional on the version seen at the miss).
    pub fills: u64,
    /// Fills not written because the thread changed since the miss.
    pub fills_skipped: u64,
    /// Bus messages published (writes and invalidations).
    pub published: u64,
    /// Announcements Redis did not take at the first attempt (kept and published again; on
    /// a single server the scripts publish, so this stays 0 there).
    pub publish_failures: u64,
    /// Announcements given up because too many were waiting (Redis unreachable for long).
    pub publish_dropped: u64,
    /// Bus messages received from other instances.
    pub bus_received: u64,
    /// This instance's own messages, ignored.
    pub bus_own: u64,
    /// Times the subscriber re-subscribed after losing its connection (the cache then drops
    /// its whole L1: it may have missed messages).
    pub bus_resyncs: u64,
}

impl Stats {
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            gets: self.gets.load(Relaxed),
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            sets: self.sets.load(Relaxed),
            set_failures: self.set_failures.load(Relaxed),
            dels: self.dels.load(Relaxed),
            redis_errors: self.redis_errors.load(Relaxed),
            timeouts: self.timeouts.load(Relaxed),
            corrupt: self.corrupt.load(Relaxed),
            short_circuited: self.short_circuited.load(Relaxed),
            circuit_opened: self.circuit_opened.load(Relaxed),
            compressed_writes: self.compressed_writes.load(Relaxed),
            bytes_written: self.bytes_written.load(Relaxed),
            bytes_read: self.bytes_read.load(Relaxed),
            fills: self.fills.load(Relaxed),
            fills_skipped: self.fills_skipped.load(Relaxed),
            published: self.published.load(Relaxed),
            publish_failures: self.publish_failures.load(Relaxed),
            publish_dropped: self.publish_dropped.load(Relaxed),
            bus_received: self.bus_received.load(Relaxed),
            bus_own: self.bus_own.load(Relaxed),
            bus_resyncs: self.bus_resyncs.load(Relaxed),
        }
    }
}
