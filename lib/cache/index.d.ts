// Types of ConversationCache (lib/cache/conversation-cache.js).

/** Where a logger's messages go; the cache never writes to the console itself. */
export interface CacheLogger {
  warn(message: string, meta?: object): void
  error(message: string, meta?: object): void
}

/** Token bucket on loader calls (cache hits are never limited). */
export interface RateLimitOptions {
  /** Loader calls allowed per interval; also the bucket's capacity (the burst). */
  tokensPerInterval: number
  /** `'second'`, `'minute'` or a length in milliseconds. */
  interval: 'second' | 'minute' | number
  /**
   * How long a loader call may wait for a token. A call that would have to wait longer is
   * refused at once with `ERR_RATE_LIMITED` (tokens only come from the refill, at a known
   * rate, so waiting first could not change the answer).
   * @default 1000
   */
  maxWaitMs?: number
}

/** Eviction under memory pressure, measured against V8's heap size limit (not heapTotal). */
export interface MemoryPressureOptions {
  /**
   * Above `heapUsed / heap_size_limit` of this, L1 sheds least-recently-used entries.
   * @default 0.8
   */
  heapUsedRatio?: number
  /**
   * Shedding aims to bring the heap down to this ratio (estimated by the shed entries'
   * JSON sizes, so it errs on shedding more).
   * @default heapUsedRatio - 0.1
   */
  lowWatermarkRatio?: number
  /**
   * How often the cache checks pressure and drops expired entries in the background (on a
   * timer that never keeps the process alive); it also checks after every write. 0: only on writes.
   * @default 1000
   */
  checkIntervalMs?: number
}

export interface ConversationCacheOptions {
  /**
   * L1 entry bound. Alias: `maxSize` (the old API's name; an entry count there too).
   * @default 100
   */
  maxEntries?: number
  /**
   * L1 byte bound, by serialized JSON length. A single value longer than this is not held
   * (counted in `oversized`).
   * @default 52428800 (50 MiB)
   */
  maxBytes?: number
  /**
   * L1 time to live in ms; 0 = entries do not expire. Alias: `ttl`.
   * @default 300000 (5 minutes)
   */
  ttlMs?: number
  /**
   * Redis URL for the L2 tier: `redis://[user[:password]@]host[:port][/db]`, or `rediss://`
   * for TLS. Several hosts, `redis://[user[:password]@]host1:port1,host2:port2,...`, are the
   * seed nodes of a Redis Cluster. Without it (and without `REDIS_URL`) the cache runs
   * L1-only. Nothing connects at construction; Redis being down, slow or refusing is never
   * an error to callers. Every instance sharing the Redis keeps its L1 coherent with the
   * others through an invalidation bus (pub/sub; sharded pub/sub on a cluster).
   * @default process.env.REDIS_URL
   */
  redisUrl?: string
  /**
   * Treat `redisUrl` as a Redis Cluster (async cluster client, sharded pub/sub for the
   * bus). Implied when `redisUrl` lists several hosts; set it for a single seed node.
   * @default false
   */
  redisCluster?: boolean
  /**
   * L2 time to live in seconds. Alias: `redisTtl`.
   * @default 3600
   */
  redisTtlSeconds?: number
  /**
   * Prefix of L2 keys.
   * @default 'agent-core:conv:'
   */
  keyPrefix?: string
  /** The source of truth (a database), used by getOrLoad when no loader is passed to it. null/undefined = not found. */
  loader?: (threadId: string) => unknown | Promise<unknown>
  /** Callers of a loader slower than this reject with `ERR_LOADER_TIMEOUT`; unset = no limit. */
  loaderTimeoutMs?: number
  /**
   * An L2 call slower than this counts as a miss.
   * @default 50
   */
  l2TimeoutMs?: number
  /**
   * Negative caching: a loader's null/undefined is remembered in L1 this long (ms), so a
   * missing thread does not hit the database on every call. 0 = off.
   * @default 0
   */
  negativeTtlMs?: number
  /** Token bucket on loader calls. Unset = no limit. */
  rateLimit?: RateLimitOptions
  /** Eviction under memory pressure; `false` turns it off. */
  memoryPressure?: MemoryPressureOptions | boolean
  /** Receives warnings (memory pressure) and errors (L2 failures). Unset = silent. */
  logger?: CacheLogger
  /**
   * How long update()'s distributed lock lasts, ms. An updater + save that take longer lose
   * the lock: their write is refused (nothing written) and the update tries again with the
   * newer value (see `lockRetries`). Can be set per call too.
   * @default 5000
   */
  lockTtlMs?: number
  /**
   * How long update() waits for a lock another instance holds before rejecting with
   * `ERR_LOCK_TIMEOUT`, ms. Can be set per call too.
   * @default 10000
   */
  lockWaitMs?: number
  /**
   * How many times update() starts over (new lock, newer value, updater and save again) after
   * losing its lock, before rejecting with `ERR_LOCK_LOST`. Can be set per call too.
   * @default 2
   */
  lockRetries?: number
  /**
   * Distributed single flight (with Redis): on a cold key, the instance that takes this
   * lease runs the loader and the others wait for its value in Redis; a lease whose holder
   * died expires after this long, and the next caller loads. A loader slower than this may
   * run once more in another instance.
   * @default 3000
   */
  loadLeaseMs?: number
  /** Old API name of `maxEntries`. */
  maxSize?: number
  /** Old API name of `ttlMs`. */
  ttl?: number
  /** Old API name of `redisTtlSeconds`. */
  redisTtl?: number
}

/** Latency of one tier in milliseconds (0 when nothing was recorded). */
export interface TierLatency {
  count: number
  mean: number
  p50: number
  p95: number
  p99: number
  max: number
}

/**
 * Counters since the cache was made. Every lookup (getOrLoad, get, each key of getMany)
 * counts as exactly one of `l1Hits`, `l2Hits`, `misses`.
 */
export interface CacheStats {
  l1Hits: number
  l2Hits: number
  /** Lookups no tier answered (the loader ran, was joined, or there was none). */
  misses: number
  /** l1Hits / lookups. */
  l1HitRate: number
  /** l2Hits / lookups (so overallHitRate = l1HitRate + l2HitRate). */
  l2HitRate: number
  /** (l1Hits + l2Hits) / lookups. */
  overallHitRate: number
  /** Mean time of an L1 hit, ms. */
  avgL1Latency: number
  /** Mean time of an L2 round trip, ms. */
  avgL2Latency: number
  /** Mean time of a loader call, ms. */
  avgLoaderLatency: number
  /** Percentiles per tier (HDR histograms, 3 significant digits), ms. */
  latency: { l1: TierLatency; l2: TierLatency; loader: TierLatency }
  /** Callers that joined a load already under way instead of starting one. */
  stampedePrevented: number
  /**
   * Cold loads (flights of getOrLoad that missed L1 and L2) that waited for another
   * instance holding the load lease and took its value from Redis instead of running the
   * loader here. Its callers count as `l2Hits`; callers that joined locally also count in
   * `stampedePrevented`.
   */
  distributedStampedePrevented: number
  /** Failed L2 (Redis) calls, timeouts included. Redis failing is never an error to callers. */
  redisErrors: number
  /** L2 calls slower than `l2TimeoutMs` (answered as misses; also in `redisErrors`). */
  l2Timeouts: number
  /** Values under our L2 keys that were not ours or did not decode (answered as misses). */
  l2Corrupt: number
  /** L2 calls skipped because the circuit breaker was open. */
  l2ShortCircuited: number
  /** Times the L2 circuit breaker opened. */
  l2CircuitOpened: number
  /** The L2 circuit breaker now; `'disabled'` without L2. */
  l2Circuit: 'closed' | 'open' | 'half-open' | 'disabled'

  /** Entries dropped to stay within maxEntries / maxBytes. */
  evictions: number
  /** Entries dropped because their TTL ran out. */
  expired: number
  /** Values not held because they alone exceed maxBytes. */
  oversized: number
  /** Entries dropped under memory pressure. */
  clearedDueToMemoryPressure: number
  /** Loader calls. */
  loads: number
  /** Loader calls that threw, rejected or timed out. */
  loaderErrors: number
  loaderTimeouts: number
  /** Loader calls refused by the rate limiter. */
  rateLimited: number
  /** Keys dropped by invalidate / invalidateTag. */
  invalidations: number
  /** Other instances' changes received over the invalidation bus (Redis pub/sub). */
  busMessages: number
  /** L1 entries dropped because another instance changed them (a message older than the
   * copy held drops nothing). */
  busInvalidations: number
  /** Times L1 was emptied because the bus subscriber re-subscribed after losing its
   * connection (messages may have been missed meanwhile), or subscribed for the first time
   * after L1 had already taken something in, on a subscription of its own (a server without
   * RESP3, a cluster; on a single RESP3 server the first subscription goes ahead of every
   * command and drops nothing). */
  busResyncs: number
  /** Whether the bus subscriber is subscribed now, and this cache has taken that in
   * (false without Redis). */
  busConnected: boolean
  /** update() attempts whose distributed lock expired (or whose thread was written by a writer without the lock) before the write; each was retried or rejected with ERR_LOCK_LOST, nothing of it written. */
  lockLost: number
  /** update() calls rejected with ERR_LOCK_TIMEOUT (another instance held the lock for all of lockWaitMs). */
  lockTimeouts: number
  /** update() calls that ran with in-process semantics because Redis could not be asked for the lock (down, circuit open). */
  lockUnavailable: number
  /** Entries L1 holds now. */
  entries: number
  /** Sum of the serialized JSON lengths of the entries L1 holds now. */
  bytes: number
  maxEntries: number
  maxBytes: number
}

export interface CacheHealth {
  l1: {
    state: 'up' | 'closed'
    entries: number
    bytes: number
    maxEntries: number
    maxBytes: number
    /** heapUsed / V8's heap size limit, now. */
    heapUsedRatio: number
    underMemoryPressure: boolean
  }
  /** `disabled` while the cache runs L1-only. */
  /** `lastError`: the last L2 failure, with no URL or password in it. */
  l2: { state: 'up' | 'down' | 'disabled'; latencyMs?: number; circuit: string; lastError?: string }
}

export interface SetOptions {
  /** Tags for invalidateTag(); omitted keeps the thread's current tags, [] clears them. */
  tags?: string[]
  /** Time to live of this entry in ms (0 = no expiry); also its L2 TTL, rounded up to seconds. */
  ttlMs?: number
}

export interface UpdateOptions {
  /**
   * Persists the new value; runs before the value becomes visible. If it throws, the old value
   * stays. Under the distributed lock it may run once per attempt: an attempt that lost its
   * lock after `save` is retried with the newer value (and saves again).
   */
  save?: (value: any) => unknown | Promise<unknown>
  /** This call's lock duration, ms (default: the cache's `lockTtlMs`). */
  lockTtlMs?: number
  /** This call's wait for the lock, ms (default: the cache's `lockWaitMs`). */
  lockWaitMs?: number
  /** This call's retries after a lost lock (default: the cache's `lockRetries`). */
  lockRetries?: number
}

/**
 * A conversation cache: L1 in process (bounded by entries and bytes, LRU, TTL), L2 in
 * Redis (the native RedisTier, when `redisUrl` / `REDIS_URL` is set), and a loader, with single flight per key.
 *
 * Errors (all with a `code`): `ERR_INVALID_KEY` (TypeError: threadId empty, not a string or
 * over 1,024 UTF-8 bytes), `ERR_INVALID_OPTION` (TypeError/RangeError naming the option),
 * `ERR_INVALID_ARG` (TypeError), `ERR_LOADER_TIMEOUT`, `ERR_RATE_LIMITED`, `ERR_LOCK_LOST`,
 * `ERR_LOCK_TIMEOUT`, `ERR_CLOSED`,
 * and the serializer's `ERR_CIRCULAR` / `ERR_BIGINT` for values with no JSON form.
 */
export declare class ConversationCache {
  /** @throws {TypeError | RangeError} `ERR_INVALID_OPTION` naming the option. */
  constructor(options?: ConversationCacheOptions)
  /**
   * The value of `threadId`: from L1 (the very object stored), else L2, else the loader.
   * Concurrent calls for one key share one load; a loader's error reaches every one of them
   * and nothing is cached; null/undefined from the loader is returned as null and not cached
   * (unless `negativeTtlMs`). A loader result that cannot be serialized rejects (ERR_CIRCULAR / ERR_BIGINT).
   * `loader` defaults to `options.loader`; with neither, the call rejects with ERR_INVALID_ARG.
   * A caller that joins a load under way shares that load (its own loader is not called).
   * With Redis, a cold key is loaded once across all instances: one takes a load lease
   * (`loadLeaseMs`) and runs the loader, the others wait for its value in Redis (polling
   * every 5-25 ms) and load themselves only if the lease ends without a value (the holder
   * failed, found nothing or died).
   */
  getOrLoad<T = any>(threadId: string, loader?: (threadId: string) => T | null | undefined | Promise<T | null | undefined>): Promise<T | null>
  /** The value from L1, else L2; null when neither holds it. Never loads. */
  get<T = any>(threadId: string): Promise<T | null>
  /**
   * The value L1 holds (null for a cached "not found"), else undefined. Synchronous; neither
   * refreshes LRU order nor counts in the stats.
   */
  peek<T = any>(threadId: string): T | null | undefined
  /**
   * Stores a value (in call order with update() of the same key), in L1 and L2; every other
   * instance sharing the Redis drops its copy. `tags` are recorded in Redis too, so that
   * invalidateTag() in any instance reaches the thread. Rejects ERR_CIRCULAR / ERR_BIGINT for
   * values with no JSON form.
   */
  set(threadId: string, value: unknown, opts?: SetOptions): Promise<void>
  /** Values in order, null where none holds it; one L2 round trip for the L1 misses. */
  getMany<T = any>(threadIds: string[]): Promise<(T | null)[]>
  /**
   * Drops a thread from L1, L2 and every other instance's L1; a load under way for it is not
   * cached. The hook for changes made outside the cache (a database trigger, another service).
   */
  invalidate(threadId: string): Promise<void>
  /**
   * Drops every thread that has `tag` (set by set(..., { tags })) from L2 and from every
   * instance's L1, whichever instance tagged it; resolves to how many threads it removed.
   */
  invalidateTag(tag: string): Promise<number>
  /**
   * Read-modify-write of one thread, one at a time per key in this process and, with Redis,
   * across every instance sharing it: a distributed lock (token, expiry `lockTtlMs`, released
   * only by its owner) with a fenced write, so an updater whose lock expired never overwrites
   * a newer value: it starts over with that value (`lockRetries`), then rejects with
   * `ERR_LOCK_LOST`; a lock held elsewhere for all of `lockWaitMs` rejects with
   * `ERR_LOCK_TIMEOUT`. `current` is what Redis holds (else L1's copy, else the loader's
   * value, else null). Without Redis, or with Redis not answering, the update is atomic within
   * this process only (`current` is what getOrLoad with options.loader, or get, would give;
   * counted in `lockUnavailable`). The updater should return a new object rather than change
   * `current` in place. `save` runs before the new value becomes visible.
   */
  update<T = any>(threadId: string, updater: (current: T | null) => T | Promise<T>, opts?: UpdateOptions): Promise<T>
  getStats(): CacheStats
  /** Prometheus text exposition (0.0.4): `agent_core_cache_*` families with a `tier` label. */
  metrics(): string
  health(): Promise<CacheHealth>
  /** Rejects pending loads with ERR_CLOSED, empties L1, clears timers; the process can exit afterwards. Idempotent. */
  close(): Promise<void>
}
