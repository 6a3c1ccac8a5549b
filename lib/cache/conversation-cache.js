'use strict'
// ConversationCache: L1 (in-process, here) -> L2 (Redis: the native RedisTier, through the
// seam in l2-seam.js; none without a URL) -> loader. The hot path (key check, L1 lookup with LRU and TTL, hit
// counting, latency sample) is plain JS: an L1 hit resolves the very object stored.
// Native code does what the figures put there: sizes (the serializer) and the latency
// histograms / Prometheus text (CacheMetrics, fed in batches).
const { performance } = require('node:perf_hooks')

const errors = require('./errors.js')
const { isValidKey } = require('./key.js')
const { normalizeOptions, setOptions, updateOptions } = require('./options.js')
const { L1 } = require('./l1.js')
const { SingleFlight } = require('./single-flight.js')
const { KeyedQueue } = require('./update-queue.js')
const { TokenBucket } = require('./rate-limiter.js')
const { MemoryPressure, readHeap } = require('./memory-pressure.js')
const { Latency } = require('./latency.js')
// The native serializer: exactly JSON.stringify's text, whose length is an entry's size and
// which L2 stores; rejects cycles / BigInts with TypeError ERR_CIRCULAR / ERR_BIGINT, and
// never stalls the event loop on a big value. With the native Redis tier the text stays in
// Rust (serializeToPayload) and is written to Redis without ever becoming a JS string.
const { serializeAsync, serializeToPayload, RedisTier } = require('../../index.js')
const { newCounters, toStats, toFamilies } = require('./stats.js')
const { kL2Tier, createL2 } = require('./l2-seam.js')
const { Floors, subscribe } = require('./bus.js')
const { ReadBatcher } = require('./read-batch.js')
const { createDistributed, IN_PROCESS } = require('./distributed.js')

/** What L1 holds for "the loader found nothing" (negative caching); answered as null. */
const NONE = Object.freeze({})
/** L1 size of a negative entry: the length of `null`. */
const NONE_SIZE = 4
const HOUSEKEEPING_MS = 1000

/** @typedef {import('./single-flight.js').Flight} Flight */
/** @typedef {(threadId: string) => unknown} Loader */

class ConversationCache {
  #o
  #l1
  /** @type {import('./l2-seam.js').L2Tier | null} */
  #l2
  /** @type {ReadBatcher | null} L2 reads of one tick sent together (null: L1 only) */
  #reads = null
  #flights = new SingleFlight()
  #writes = new KeyedQueue()
  /** @type {ReturnType<typeof createDistributed>} update's distributed lock (null: no Redis) */
  #dist
  /** @type {TokenBucket | null} */
  #limiter
  /** @type {MemoryPressure | null} */
  #pressure
  #latency = new Latency()
  #c = newCounters()
  /** Bumped by every write; a read from L2 warms L1 only if no write happened meanwhile. */
  #writeSeq = 0
  /** Highest versions other instances announced recently (bus.js). */
  #floors = new Floors()
  /** @type {import('./bus.js').BusHandlers} */
  #busHandlers = {
    changed: (key, version) => this.#remoteChange(key, version),
    resync: () => this.#resync(),
    subscribed: (ordered) => this.#subscribed(ordered),
  }
  /** The bus subscriber was started and this cache has not yet heard that it is subscribed. */
  #busPending = false
  /** Moves when the first subscription comes in (see #subscribed). */
  #busEpoch = 0
  /** @type {Set<Promise<void>>} L2 writes under way (close() waits for them) */
  #l2Writes = new Set()
  /** @type {ReturnType<typeof setInterval> | null} */
  #housekeeping = null
  #closed = false
  /** @type {Promise<void> | null} */
  #closing = null

  /** @param {Record<string | symbol, unknown>} [options] */
  constructor(options) {
    this.#o = normalizeOptions(options)
    // The Redis tier and its bus subscriber first: the subscriber opens the tier's
    // connection at once, so it is on its way while the rest is set up (a get made right
    // after construction waits less for it).
    this.#l2 = /** @type {any} */ (options?.[kL2Tier]) ?? createL2(this.#o)
    if (this.#l2 !== null) this.#reads = new ReadBatcher(this.#l2)
    // Other instances' changes (the subscription holds the cache only weakly; events reach
    // it only after this constructor has returned).
    const self = new WeakRef(this)
    this.#busPending = subscribe(this.#l2, () => self.deref()?.#busHandlers)
    this.#l1 = new L1(this.#o)
    this.#dist = createDistributed(this.#l2, this.#port())
    this.#limiter = this.#o.rateLimit ? new TokenBucket(this.#o.rateLimit) : null
    const mp = this.#o.memoryPressure
    this.#pressure = mp ? new MemoryPressure(mp) : null
    const every = mp ? mp.checkIntervalMs : HOUSEKEEPING_MS
    if (every > 0) {
      // Drops expired entries and checks memory pressure. The timer does not keep the
      // process alive, and holds the cache only weakly, so a cache that is dropped without
      // close() can still be collected.
      const ref = new WeakRef(this)
      const timer = setInterval(() => {
        const cache = ref.deref()
        if (cache === undefined) clearInterval(timer)
        else cache.#housekeep()
      }, every)
      timer.unref()
      this.#housekeeping = timer
    }
  }

  /**
   * The value of `threadId`: from L1, else L2, else the loader (one call per key at a time).
   * @param {string} threadId
   * @param {Loader} [loader] defaults to options.loader
   * @returns {Promise<unknown>}
   */
  getOrLoad(threadId, loader) {
    const t0 = performance.now()
    if (!isValidKey(threadId)) return Promise.reject(errors.invalidKey(threadId))
    if (this.#closed) return Promise.reject(errors.closed())
    const load = loader ?? this.#o.loader
    if (typeof load !== 'function') {
      return Promise.reject(errors.invalidArg('getOrLoad needs a loader: pass one, or set options.loader'))
    }
    const v = this.#l1.get(threadId)
    if (v !== undefined) {
      this.#c.l1Hits++
      this.#latency.l1.add(performance.now() - t0)
      return Promise.resolve(v === NONE ? null : v)
    }
    return this.#join(threadId, load)
  }

  /**
   * The value of `threadId` from L1, else L2; null when neither holds it. Never loads.
   * @param {string} threadId
   * @returns {Promise<unknown>}
   */
  get(threadId) {
    const t0 = performance.now()
    if (!isValidKey(threadId)) return Promise.reject(errors.invalidKey(threadId))
    if (this.#closed) return Promise.reject(errors.closed())
    const v = this.#l1.get(threadId)
    if (v !== undefined) {
      this.#c.l1Hits++
      this.#latency.l1.add(performance.now() - t0)
      return Promise.resolve(v === NONE ? null : v)
    }
    if (this.#l2 === null) {
      this.#c.misses++
      return Promise.resolve(null)
    }
    return this.#getFromL2(threadId)
  }

  /**
   * The value L1 holds for `threadId` (null for a cached "not found"), else undefined.
   * Synchronous; neither refreshes LRU order nor counts in the stats.
   * @param {string} threadId
   */
  peek(threadId) {
    if (!isValidKey(threadId)) throw errors.invalidKey(threadId)
    if (this.#closed) throw errors.closed()
    const v = this.#l1.peek(threadId)
    return v === NONE ? null : v
  }

  /**
   * The values of many threads, in order (null where none holds it); L2 is asked once for
   * all the keys L1 does not hold.
   * @param {string[]} threadIds
   * @returns {Promise<unknown[]>}
   */
  getMany(threadIds) {
    if (!Array.isArray(threadIds)) return Promise.reject(errors.invalidArg('getMany expects an array of threadIds'))
    for (const k of threadIds) if (!isValidKey(k)) return Promise.reject(errors.invalidKey(k))
    if (this.#closed) return Promise.reject(errors.closed())
    const out = new Array(threadIds.length).fill(null)
    /** @type {number[]} */
    const missing = []
    for (let i = 0; i < threadIds.length; i++) {
      const t0 = performance.now()
      const v = this.#l1.get(threadIds[i])
      if (v === undefined) {
        missing.push(i)
        continue
      }
      this.#c.l1Hits++
      this.#latency.l1.add(performance.now() - t0)
      out[i] = v === NONE ? null : v
    }
    if (missing.length === 0) return Promise.resolve(out)
    if (this.#l2 === null) {
      this.#c.misses += missing.length
      return Promise.resolve(out)
    }
    return this.#getManyFromL2(threadIds, out, missing)
  }

  /**
   * Stores `value` (written after any update or set of the same key called before).
   * @param {string} threadId
   * @param {unknown} value
   * @param {{ tags?: string[], ttlMs?: number }} [opts]
   * @returns {Promise<void>}
   */
  async set(threadId, value, opts) {
    if (!isValidKey(threadId)) throw errors.invalidKey(threadId)
    if (this.#closed) throw errors.closed()
    if (value === null || value === undefined) {
      throw errors.invalidArg('set() needs a value; use invalidate() to remove a thread')
    }
    const o = setOptions(opts)
    await this.#writes.run(threadId, async () => {
      const { size, json } = await this.#encode(value)
      if (this.#closed) throw errors.closed()
      this.#wrote(threadId)
      this.#hold(threadId, value, size, o)
      await this.#writeL2(threadId, value, json, o.ttlMs, o.tags)
    })
  }

  /**
   * Drops `threadId` from L1 and L2. A load under way for it is not cached when it ends.
   * @param {string} threadId
   * @returns {Promise<void>}
   */
  async invalidate(threadId) {
    if (!isValidKey(threadId)) throw errors.invalidKey(threadId)
    if (this.#closed) throw errors.closed()
    this.#wrote(threadId)
    if (this.#l1.delete(threadId)) this.#c.invalidations++
    await this.#deleteL2([threadId])
  }

  /**
   * Drops every thread stored with `tag` (by set(..., { tags })); resolves to how many.
   * @param {string} tag
   * @returns {Promise<number>}
   */
  async invalidateTag(tag) {
    if (typeof tag !== 'string' || tag.length === 0) throw errors.invalidArg('invalidateTag expects a non-empty string')
    if (this.#closed) throw errors.closed()
    const local = this.#l1.keysWithTag(tag)
    for (const k of local) this.#drop(k)
    // Redis knows the threads other instances tagged; it invalidates them there (and,
    // through the bus, in every other instance). Own messages are ignored: drop here too.
    const keys = new Set(await this.#invalidateTagL2(tag))
    for (const k of keys) this.#drop(k)
    // Threads tagged here that Redis did not list (their tag was not recorded there).
    const rest = local.filter((k) => !keys.has(k))
    for (const k of rest) keys.add(k)
    await this.#deleteL2(rest)
    this.#c.invalidations += keys.size
    return keys.size
  }

  /**
   * Applies `updater` to the current value, one update of a key at a time (in call order in
   * this process; across processes under a distributed lock when Redis is there).
   * `save` runs before the new value becomes visible; if the updater or save throws, the old
   * value stays and the error reaches the caller.
   * @param {string} threadId
   * @param {(current: unknown) => unknown} updater
   * @param {{ save?: (value: unknown) => unknown, lockTtlMs?: number, lockWaitMs?: number, lockRetries?: number }} [opts]
   * @returns {Promise<unknown>}
   */
  update(threadId, updater, opts) {
    if (!isValidKey(threadId)) return Promise.reject(errors.invalidKey(threadId))
    if (typeof updater !== 'function') return Promise.reject(errors.invalidArg('update expects an updater function'))
    let u
    try {
      u = updateOptions(opts, this.#o)
    } catch (e) {
      return Promise.reject(e)
    }
    if (this.#closed) return Promise.reject(errors.closed())
    return this.#writes.run(threadId, () => this.#update(threadId, updater, u))
  }

  /** Counters, hit rates and latency percentiles (ms) per tier. */
  getStats() {
    this.#l1.purgeStale()
    return toStats(this.#sources())
  }

  /** Prometheus text exposition of getStats(), names `agent_core_cache_*`, label `tier`. */
  metrics() {
    this.#l1.purgeStale()
    return this.#latency.prometheus(toFamilies(this.#sources()))
  }

  /** The state of each tier. */
  async health() {
    const heap = readHeap()
    const l1 = {
      state: this.#closed ? 'closed' : 'up',
      entries: this.#l1.entries,
      bytes: this.#l1.bytes,
      maxEntries: this.#o.maxEntries,
      maxBytes: this.#o.maxBytes,
      heapUsedRatio: heap.used / heap.limit,
      underMemoryPressure: this.#pressure?.underPressure ?? false,
    }
    /** @type {{ state: 'up' | 'down' | 'disabled', latencyMs?: number, circuit: string }} */
    let l2 = { state: 'disabled', circuit: 'n/a' }
    if (this.#l2 !== null && !this.#closed) {
      try {
        l2 = await this.#l2.health()
      } catch (e) {
        this.#c.redisErrors++
        l2 = { state: 'down', circuit: 'unknown' }
      }
    }
    return { l1, l2 }
  }

  /**
   * Ends the cache: pending loads and rate-limit waits reject with ERR_CLOSED, L1 is
   * emptied, timers are cleared and L2 is closed. Afterwards nothing keeps the process alive.
   * Idempotent. getStats() and metrics() still answer afterwards.
   * @returns {Promise<void>}
   */
  close() {
    if (this.#closing === null) this.#closing = this.#shutdown()
    return this.#closing
  }

  async #shutdown() {
    this.#closed = true
    if (this.#housekeeping) clearInterval(this.#housekeeping)
    this.#housekeeping = null
    // The error (a stack capture) is only built when someone is waiting to receive it; a
    // call waiting for a rate-limit token is always inside a flight (#fill).
    if (this.#flights.size > 0) {
      const err = errors.closed()
      this.#flights.abortAll(err)
      this.#limiter?.close(err)
    }
    this.#l1.clear()
    this.#floors.clear()
    this.#latency.flush()
    await Promise.allSettled([...this.#l2Writes])
    if (this.#l2 !== null) await this.#l2.close()
  }

  // ---- misses: single flight over L2 and the loader ----

  /** @param {string} key @param {Loader} load */
  #join(key, load) {
    const f = this.#flights.get(key)
    if (f !== undefined) {
      f.waiters++
      this.#c.stampedePrevented++
      return f.promise
    }
    return this.#flights.start(key, (fl) => this.#fill(key, load, fl), (fl) => this.#settled(fl)).promise
  }

  /** Counts a settled flight: every caller of it, as an L2 hit or a miss. */
  #settled(/** @type {Flight} */ f) {
    if (f.source === 'l2') this.#c.l2Hits += 1 + f.waiters
    else this.#c.misses += 1 + f.waiters
  }

  /** @param {string} key @param {Loader} load @param {Flight} f */
  async #fill(key, load, f) {
    /** @type {{ version: number | null } | undefined} what L2 said at the miss (undefined: not asked / failed) */
    let miss
    /** @type {import('./distributed.js').HeldLease | undefined} this instance's load lease (distributed single flight) */
    let lease
    if (this.#l2 !== null) {
      const epoch = this.#busEpoch
      const r = this.#dist !== null ? await this.#dist.coldRead(key, f) : await this.#readL2(key)
      if (r?.hit !== undefined) {
        const { hit, version } = r
        f.source = 'l2'
        if (!f.stale && epoch === this.#busEpoch && !this.#closed) this.#holdRead(key, hit, version ?? null)
        return hit.value
      }
      if (this.#dist !== null) lease = /** @type {{ lease?: import('./distributed.js').HeldLease }} */ (r).lease
      else miss = /** @type {{ version: number | null } | undefined} */ (r)
    }
    try {
      if (this.#limiter !== null) await this.#limiter.take()
      if (f.settled) return null // closed while waiting for a token
      const value = await this.#runLoader(key, load, f)
      if (value === null || value === undefined) {
        const ttlMs = this.#o.negativeTtlMs
        if (ttlMs > 0 && !f.stale && !this.#closed) this.#l1.set(key, NONE, NONE_SIZE, { ttlMs, tags: [] })
        return null
      }
      // A value that cannot be serialized rejects here (ERR_CIRCULAR / ERR_BIGINT): every
      // caller gets that error and nothing is cached.
      const { size, json } = await this.#encode(value)
      if (!f.stale && !f.settled && !this.#closed) {
        this.#hold(key, value, size)
        // Only when L2 answered the miss (or gave this instance the load lease): the fill is
        // conditional on the version seen then, so that a slow load never overwrites a
        // newer write made meanwhile by anyone.
        if (lease !== undefined) {
          this.#fillLeased(key, value, json, lease)
          lease = undefined // the fill releases it
        } else if (miss !== undefined) this.#fillL2(key, value, json, miss.version)
      }
      return value
    } finally {
      if (lease !== undefined) this.#dist?.unlease(key, lease)
    }
  }

  /** @param {string} key @param {Loader} load @param {Flight} f @returns {Promise<unknown>} */
  #runLoader(key, load, f) {
    this.#c.loads++
    const t0 = performance.now()
    let timedOut = false
    /** @type {Promise<unknown>} */
    let p
    try {
      p = Promise.resolve(load(key))
    } catch (e) {
      p = Promise.reject(e)
    }
    p = p.then(
      (v) => {
        this.#latency.loader.add(performance.now() - t0)
        return v
      },
      (e) => {
        this.#latency.loader.add(performance.now() - t0)
        if (!timedOut) this.#c.loaderErrors++
        throw e
      },
    )
    const ms = this.#o.loaderTimeoutMs
    if (ms === 0) return p
    return new Promise((resolve, reject) => {
      // Cleared when the loader settles (or the flight is aborted by close()): it keeps the
      // process alive at most loaderTimeoutMs, so that a caller awaiting a stuck loader gets
      // its error. It times the loader only, not the serialization after it.
      const timer = setTimeout(() => {
        timedOut = true
        this.#c.loaderTimeouts++
        this.#c.loaderErrors++
        reject(errors.loaderTimeout(key, ms))
      }, ms)
      f.timer = timer
      p.then(
        (v) => {
          clearTimeout(timer)
          resolve(v)
        },
        (e) => {
          clearTimeout(timer)
          reject(e)
        },
      )
    })
  }

  // ---- writes ----

  /** @param {string} key @param {(current: unknown) => unknown} updater @param {import('./options.js').UpdateOpts} u */
  async #update(key, updater, u) {
    if (this.#closed) throw errors.closed()
    if (this.#dist !== null) {
      const r = await this.#dist.update(key, updater, u)
      if (r !== IN_PROCESS) return r
    }
    return this.#applyUpdate(key, updater, u.save)
  }

  /** In-process update (no Redis, or Redis not answering for the lock). @param {string} key @param {(current: unknown) => unknown} updater @param {((v: unknown) => unknown) | undefined} save */
  async #applyUpdate(key, updater, save) {
    const current = await (this.#o.loader ? this.getOrLoad(key) : this.get(key))
    const next = await updater(current)
    if (next === null || next === undefined) {
      throw errors.invalidArg('the updater must return the new value; use invalidate() to remove a thread')
    }
    const { size, json } = await this.#encode(next)
    if (save) await save(next)
    if (this.#closed) return next
    this.#wrote(key)
    this.#hold(key, next, size)
    await this.#writeL2(key, next, json)
    return next
  }

  /**
   * `value`'s JSON for L1 (its length is the entry's size) and for L2: kept in Rust as UTF-8
   * when L2 is the native tier (written to Redis from there), else the text.
   * @param {unknown} value
   * @returns {Promise<{ size: number, json: string | import('../../index').SerializedPayload }>}
   */
  async #encode(value) {
    if (this.#l2 instanceof RedisTier) {
      const payload = await serializeToPayload(value)
      return { size: payload.length, json: payload }
    }
    const { serialized } = await serializeAsync(value)
    return { size: serialized.length, json: serialized }
  }

  /** A write of `key` happened: loads and L2 reads under way must not cache what they find. */
  #wrote(/** @type {string} */ key) {
    this.#writeSeq++
    this.#flights.forget(key)
  }

  /**
   * Puts a value in L1 and relieves memory pressure if there is any.
   * @param {string} key @param {{}} value @param {number} size
   * @param {{ ttlMs?: number, tags?: string[], version?: number | null }} [o]
   */
  #hold(key, value, size, o) {
    this.#l1.set(key, value, size, o)
    const mp = this.#pressure
    if (mp !== null && mp.dueAfterWrite(size)) this.#relieve(mp)
  }

  /**
   * Puts a value read from L2 in L1 with its version.
   * @param {string} key @param {{ value: {}, size: number }} hit @param {number | null} version
   */
  #holdRead(key, hit, version) {
    // Not if another instance announced a newer version while the read was under way.
    if (this.#floors.admits(key, version)) this.#hold(key, hit.value, hit.size, { version })
  }

  /**
   * Another instance changed `key` to `version`: drop our copy unless it is at least as new
   * (a late message never evicts a newer value); loads under way for it are not cached.
   * Version 0: a change that may or may not have happened (its script timed out): drop.
   * @param {string} key @param {number} version
   */
  #remoteChange(key, version) {
    if (this.#closed) return
    this.#c.busMessages++
    const held = this.#l1.versionOf(key)
    if (version > 0) {
      this.#floors.raise(key, version)
      if (held.held && held.version !== undefined && held.version >= version) return
    }
    this.#flights.forget(key)
    if (held.held && this.#l1.delete(key)) this.#c.busInvalidations++
  }

  /** The bus re-subscribed after a lost connection: whatever L1 holds may be stale. */
  #resync() {
    if (this.#closed) return
    this.#busPending = false
    this.#c.busResyncs++
    this.#writeSeq++ // L2 reads under way do not warm L1
    this.#flights.forgetAll()
    this.#l1.clear()
  }

  /**
   * The first subscription is in place. A change another instance made before it never
   * reached this one: what L1 took in until now may be stale, so it goes (counted as a
   * resync), and reads under way do not warm L1. An instance that held nothing yet loses
   * nothing.
   *
   * `ordered` (a single server speaking RESP3, the usual case): the SUBSCRIBE went ahead of
   * every command of this cache on its one connection, so every read and write there ran
   * with the subscription already in place, and nothing goes. What L1 holds otherwise came
   * from this cache's own writes or its loader, as it does after the subscription.
   * @param {boolean} ordered
   */
  #subscribed(ordered) {
    if (this.#closed || !this.#busPending) return
    this.#busPending = false
    if (ordered) return
    // Reads under way do not warm L1. Loads under way go on: their fill is conditional on
    // the version their miss saw, and a fill that does not land lets go of the L1 copy.
    this.#writeSeq++
    this.#busEpoch++
    if (this.#l1.entries > 0) {
      this.#c.busResyncs++
      this.#l1.clear()
    }
  }

  /** Drops `key` from L1 as a write would (loads under way for it are not cached). */
  #drop(/** @type {string} */ key) {
    this.#wrote(key)
    this.#l1.delete(key)
  }

  #housekeep() {
    this.#l1.purgeStale()
    if (this.#pressure !== null) this.#relieve(this.#pressure)
  }

  /** @param {MemoryPressure} mp */
  #relieve(mp) {
    const { shed, heap } = mp.check()
    if (shed === 0) {
      mp.underPressure = false
      return
    }
    const freed = this.#l1.shed(shed)
    if (!mp.underPressure) {
      mp.underPressure = true
      this.#log('warn', 'ConversationCache: memory pressure, evicted least-recently-used entries', {
        heapUsed: heap.used,
        heapSizeLimit: heap.limit,
        heapUsedRatio: heap.used / heap.limit,
        evictedEntries: freed.entries,
        evictedBytes: freed.bytes,
        entriesLeft: this.#l1.entries,
      })
    }
  }

  // ---- L2, through the seam ----

  /**
   * Value and version of `key` in L2; undefined when L2 failed (then nothing is known).
   * @param {string} key
   * @returns {Promise<{ hit: { value: {}, size: number } | undefined, version: number | null } | undefined>}
   */
  async #readL2(key) {
    const t0 = performance.now()
    let r
    try {
      r = await /** @type {ReadBatcher} */ (this.#reads).read(key)
    } catch (e) {
      this.#readFailed(e)
      return undefined
    }
    this.#latency.l2.add(performance.now() - t0)
    if (r === null) return undefined
    return { hit: this.#parseL2(key, r.json), version: r.version }
  }

  /** @param {string} key @param {string | null | undefined} json */
  #parseL2(key, json) {
    if (typeof json !== 'string') return undefined
    try {
      const value = JSON.parse(json)
      if (value === null || value === undefined) return undefined
      return { value, size: json.length }
    } catch {
      // A corrupt or foreign value under the key is a miss, never a crash.
      this.#log('warn', 'ConversationCache: L2 held a value that is not JSON; treated as a miss', { threadId: key })
      return undefined
    }
  }

  /** @param {unknown} e what an L2 read threw (counted and logged; the read is a miss) */
  #readFailed(e) {
    this.#c.redisErrors++
    this.#log('error', 'ConversationCache: L2 read failed', { error: String(e) })
  }

  /**
   * `get` after an L1 miss: #readL2 inlined as one promise reaction, on the path of every L2
   * hit (two nested async functions cost measurably more at 50 gets in flight).
   * @param {string} key
   * @returns {Promise<unknown>}
   */
  #getFromL2(key) {
    const seq = this.#writeSeq
    const t0 = performance.now()
    // The batcher never throws: a failed read is a rejection, handled below.
    return /** @type {ReadBatcher} */ (this.#reads).read(key).then(
      (r) => {
        this.#latency.l2.add(performance.now() - t0)
        const hit = r === null ? undefined : this.#parseL2(key, r.json)
        if (hit === undefined) {
          this.#c.misses++
          return null
        }
        this.#c.l2Hits++
        if (seq === this.#writeSeq && !this.#closed) this.#holdRead(key, hit, /** @type {import('./l2-seam.js').L2Read} */ (r).version)
        return hit.value
      },
      (e) => {
        this.#readFailed(e)
        this.#c.misses++
        return null
      },
    )
  }

  /** @param {string[]} keys @param {unknown[]} out @param {number[]} missing */
  async #getManyFromL2(keys, out, missing) {
    const l2 = /** @type {import('./l2-seam.js').L2Tier} */ (this.#l2)
    const seq = this.#writeSeq
    const t0 = performance.now()
    /** @type {({ json: string | null, version: number | null } | null)[]} */
    let reads = []
    try {
      reads = await l2.readMany(missing.map((i) => keys[i]))
      this.#latency.l2.add(performance.now() - t0)
    } catch (e) {
      this.#readFailed(e)
    }
    missing.forEach((i, j) => {
      const r = reads[j]
      const hit = this.#parseL2(keys[i], r?.json)
      if (hit === undefined) {
        this.#c.misses++
        return
      }
      this.#c.l2Hits++
      out[i] = hit.value
      if (seq === this.#writeSeq && !this.#closed) this.#holdRead(keys[i], hit, r?.version ?? null)
    })
    return out
  }

  /** @param {number} [ttlMs] */
  #ttlSeconds(ttlMs) {
    return ttlMs ? Math.max(1, Math.ceil(ttlMs / 1000)) : this.#o.redisTtlSeconds
  }

  /**
   * Writes `json` (the serialized `value`) to L2, which moves the thread's version and
   * announces it; the L1 copy, if still `value`, learns its version.
   * @param {string} key @param {{}} value @param {string | import('../../index').SerializedPayload} json @param {number} [ttlMs]
   * @param {string[]} [tags] undefined keeps the thread's tags in L2
   */
  #writeL2(key, value, json, ttlMs, tags) {
    const l2 = this.#l2
    if (l2 === null) return Promise.resolve()
    return this.#trackL2(
      l2.write(key, json, this.#ttlSeconds(ttlMs), tags ?? null).then((version) => {
        if (version === null) return this.#failedL2Write()
        this.#floors.raise(key, version)
        this.#l1.setVersion(key, value, version)
      }),
      'write',
    )
  }

  /**
   * Stores a loader's result in L2 if the thread has not changed since the miss (which saw
   * `seenVersion`). If it has, the value just loaded may be stale: L1 lets go of it.
   * @param {string} key @param {{}} value @param {string | import('../../index').SerializedPayload} json @param {number | null} seenVersion
   */
  #fillL2(key, value, json, seenVersion) {
    const l2 = /** @type {import('./l2-seam.js').L2Tier} */ (this.#l2)
    this.#trackL2(
      l2.fill(key, json, seenVersion, this.#o.redisTtlSeconds).then((r) => {
        if (r.outcome === 'failed') this.#failedL2Write()
        else this.#filled(key, value, r.outcome === 'written' ? /** @type {number} */ (r.version) : null)
      }),
      'fill',
    )
  }

  /**
   * The load-lease holder's fill (distributed single flight): stored, announced and the
   * lease released in one step, only if the thread has not changed since the miss.
   * @param {string} key @param {{}} value @param {string | import('../../index').SerializedPayload} json
   * @param {import('./distributed.js').HeldLease} lease
   */
  #fillLeased(key, value, json, lease) {
    const dist = /** @type {NonNullable<typeof this.#dist>} */ (this.#dist)
    this.#trackL2(
      dist.fill(key, json, this.#o.redisTtlSeconds, lease).then((version) => this.#filled(key, value, version)),
      'fill',
    )
  }

  /**
   * A fill of `value` landed at `version`; null: it did not (the thread changed since the
   * miss, or Redis did not confirm), so the value just loaded may be stale: L1 lets go of it.
   * @param {string} key @param {{}} value @param {number | null} version
   */
  #filled(key, value, version) {
    if (version !== null) this.#l1.setVersion(key, value, version)
    else if (this.#l1.peek(key) === value) this.#l1.delete(key)
  }

  /** A write L2 did not confirm: counted, unless the tier counts its own failures. */
  #failedL2Write() {
    if (typeof this.#l2?.stats !== 'function') this.#c.redisErrors++
  }

  /**
   * Counts and logs a rejected L2 write; close() waits for the writes under way.
   * @param {Promise<void>} p @param {string} what
   */
  #trackL2(p, what) {
    const tracked = p.catch((e) => {
      this.#c.redisErrors++
      this.#log('error', `ConversationCache: L2 ${what} failed`, { error: String(e) })
    })
    this.#l2Writes.add(tracked)
    tracked.then(() => this.#l2Writes.delete(tracked))
    return tracked
  }

  /** Thread ids Redis invalidated for `tag` (none without L2 or when it failed). @param {string} tag */
  async #invalidateTagL2(tag) {
    if (this.#l2 === null) return []
    try {
      return (await this.#l2.invalidateTag(tag)) ?? []
    } catch (e) {
      this.#c.redisErrors++
      this.#log('error', 'ConversationCache: L2 tag invalidation failed', { error: String(e) })
      return []
    }
  }

  /** @param {string[]} keys */
  async #deleteL2(keys) {
    if (this.#l2 === null || keys.length === 0) return
    try {
      await this.#l2.del(keys)
    } catch (e) {
      this.#c.redisErrors++
      this.#log('error', 'ConversationCache: L2 delete failed', { error: String(e) })
    }
  }

  // ---- misc ----

  /** @returns {import('./distributed.js').Port} what the coordinator of distributed.js may use */
  #port() {
    return {
      parse: (key, json) => this.#parseL2(key, json),
      peek: (key) => {
        const v = this.#l1.peek(key)
        return v === NONE ? null : v
      },
      load: async (key) => {
        const load = this.#o.loader
        if (!load) return null
        this.#c.loads++
        try {
          return (await load(key)) ?? null
        } catch (e) {
          this.#c.loaderErrors++
          throw e
        }
      },
      commit: (key, value, size, version) => {
        this.#wrote(key)
        if (version === null) return this.#hold(key, value, size)
        // The fenced write announced `version` to the others; L1 holds it with that version,
        // unless a newer one was announced meanwhile (then the copy is already stale).
        if (this.#floors.admits(key, version)) this.#hold(key, value, size, { version })
        else this.#l1.delete(key)
        this.#floors.raise(key, version)
      },
      closed: () => this.#closed,
      l2Latency: (ms) => this.#latency.l2.add(ms),
      loadLeaseMs: this.#o.loadLeaseMs,
      c: this.#c,
    }
  }

  #sources() {
    return {
      c: this.#c,
      dropped: this.#l1.counters,
      size: { entries: this.#l1.entries, bytes: this.#l1.bytes, maxEntries: this.#o.maxEntries, maxBytes: this.#o.maxBytes },
      rateLimited: this.#limiter?.refused ?? 0,
      l2: this.#l2?.stats?.() ?? null,
      // Subscribed, and this cache has taken the news in (see #subscribed).
      busConnected: !this.#busPending && this.#l2?.busConnected === true,
      latency: this.#latency.summaries(),
    }
  }

  /** Through the user's logger only; a throwing logger does not break the cache. */
  #log(/** @type {'warn' | 'error'} */ level, /** @type {string} */ msg, /** @type {object} */ meta) {
    const logger = this.#o.logger
    if (logger === null) return
    try {
      logger[level](msg, meta)
    } catch {}
  }
}

module.exports = { ConversationCache }
