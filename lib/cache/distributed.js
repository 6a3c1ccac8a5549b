'use strict'
// Coherence across instances (issue 5, LOCK half): update() under a distributed lock with a
// fenced write. The per-key queue of this process stays in front (one update of a key at a
// time here); the lock makes it one at a time across every instance sharing the Redis.
//
//   lock (SET NX PX token; reads value + version in the same round trip)
//   -> updater(current) -> serialize -> save(next)
//   -> fenced write: value + next version, only if the lock is still ours AND the version is
//      still the one read, releasing the lock in the same step -> L1
//   (any other ending releases the lock with a compare-and-delete)
//
// A holder whose lock expired (a slow updater or save) writes nothing: it tries again with
// the newer value, up to lockRetries times, then rejects with ERR_LOCK_LOST. An increment
// is never lost silently and never lands twice. When Redis cannot be asked at all (down,
// circuit open) the update runs with in-process semantics (atomic within this process only).
//
// Distributed single flight of getOrLoad on a cold key (L1 and L2 miss): one round trip
// answers the value, or gives this instance the load lease (SET NX PX loadLeaseMs), or says
// another instance holds it. The lease holder renews it while its loader runs, then fills L2
// (only if nobody wrote the thread since the miss) and frees the lease in one step; the others poll every 5-25 ms
// until the value is there, or until the lease is free (its holder failed, found nothing or
// died: a lease expires by itself) and they take it themselves.
const { performance } = require('node:perf_hooks')

const errors = require('./errors.js')
const { serializeToPayload } = require('../../index.js')

/** What `update` answers when the lock could not be asked for: run the in-process update. */
const IN_PROCESS = Symbol('in-process')

/**
 * The part of a RedisTier the coordinator uses (the native tier has it; a test tier may not).
 * @typedef {object} LockingTier
 * @property {(key: string, ttlMs: number, waitMs: number) => Promise<{ status: 'held' | 'busy' | 'unavailable', token?: string | null, json?: string | null, version: number }>} lock
 * @property {(key: string, token: string) => Promise<boolean>} unlock
 * @property {(key: string, token: string, version: number, json: string | import('../../index').SerializedPayload, forMs: number, ttlSeconds?: number) => Promise<{ status: 'written' | 'lost' | 'conflict' | 'unreachable' | 'unknown', version: number }>} writeFenced
 */

/**
 * @typedef {object} LeasingTier
 * @property {(key: string, ttlMs: number) => Promise<{ status: 'hit' | 'won' | 'held' | 'unavailable', json?: string | null, version: number, token?: string | null, leftMs: number }>} lease
 * @property {(key: string, token: string, version: number, json: string | import('../../index').SerializedPayload, ttlSeconds?: number) => Promise<number>} fillLeased
 * @property {(key: string, token: string) => Promise<boolean>} unlease
 * @property {(key: string, token: string, ttlMs: number) => Promise<boolean>} renewLease
 */

/**
 * A load lease this instance holds, renewed every loadLeaseMs / 3 until filled or given up.
 * @typedef {{ token: string, version: number, renewal: ReturnType<typeof setInterval> }} HeldLease
 */

/**
 * What the cache lends the coordinator.
 * @typedef {object} Port
 * @property {(key: string, json: string | null | undefined) => { value: {}, size: number } | undefined} parse L2 text -> value
 * @property {(key: string) => unknown} peek what L1 holds (undefined: nothing)
 * @property {(key: string) => Promise<unknown>} load the loader's value (null: none / no loader)
 * @property {(key: string, value: {}, size: number, version: number | null) => void} commit a write of `key` landed (at `version`, announced on the bus; null: L2 did not take it): L1 holds it
 * @property {() => boolean} closed
 * @property {(ms: number) => void} l2Latency records one L2 round trip
 * @property {number} loadLeaseMs
 * @property {import('./stats.js').Counters} c
 */

/** Poll interval of a caller waiting for another instance's load: 5-25 ms, jittered. */
const pollMs = () => 5 + Math.random() * 20
/** A caller stops waiting (and loads itself) after this many lease lengths, whatever happens. */
const MAX_WAIT_LEASES = 10

/** @param {number} ms */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

class Distributed {
  #tier
  #port

  /** @param {LockingTier & LeasingTier} tier @param {Port} port */
  constructor(tier, port) {
    this.#tier = tier
    this.#port = port
  }

  /**
   * One update of `key` under the distributed lock, or IN_PROCESS when Redis cannot be asked.
   * @param {string} key
   * @param {(current: unknown) => unknown} updater
   * @param {import('./options.js').UpdateOpts} u
   * @returns {Promise<unknown>}
   */
  async update(key, updater, u) {
    const { c } = this.#port
    for (let attempt = 1; ; attempt++) {
      // Taken before asking: the lock cannot expire before t0 + ttl (conservative).
      const t0 = performance.now()
      const got = await this.#tier.lock(key, u.lockTtlMs, u.lockWaitMs)
      if (got.status === 'unavailable') {
        c.lockUnavailable++
        return IN_PROCESS
      }
      if (got.status === 'busy' || typeof got.token !== 'string') {
        c.lockTimeouts++
        throw errors.lockTimeout(key, u.lockWaitMs)
      }
      const token = got.token
      /** @type {{ done: true, released: boolean, value: unknown } | { done: false, released: false, why: 'lost' | 'conflict' | 'unknown' } | undefined} */
      let r
      try {
        r = await this.#attempt(key, updater, u.save, got.json ?? null, got.version, token, t0 + u.lockTtlMs)
      } finally {
        // The fenced write released the lock when it wrote; otherwise release it here
        // (rejects only when the cache closed meanwhile: the lock then expires by itself).
        if (!r?.released) await this.#tier.unlock(key, token).catch(() => false)
      }
      if (r.done) return r.value
      c.lockLost++
      if (r.why === 'unknown' || attempt > u.lockRetries) throw errors.lockLost(key, r.why, attempt, u.lockTtlMs)
    }
  }

  /**
   * @param {string} key @param {(current: unknown) => unknown} updater
   * @param {((v: unknown) => unknown) | undefined} save
   * @param {string | null} json the value read with the lock @param {number} version
   * @param {string} token @param {number} expiresAt performance.now() time the lock surely lasts to
   * @returns {Promise<{ done: true, released: boolean, value: unknown } | { done: false, released: false, why: 'lost' | 'conflict' | 'unknown' }>}
   */
  async #attempt(key, updater, save, json, version, token, expiresAt) {
    const p = this.#port
    const current = await this.#current(key, json)
    const next = await updater(current)
    if (next === null || next === undefined) {
      throw errors.invalidArg('the updater must return the new value; use invalidate() to remove a thread')
    }
    // The text stays in Rust and goes to Redis from there (never a JS string).
    const payload = await serializeToPayload(next)
    if (save) await save(next)
    if (p.closed()) return { done: true, released: false, value: next }
    const forMs = Math.max(0, Math.floor(expiresAt - performance.now()))
    const w = await this.#tier.writeFenced(key, token, version, payload, forMs)
    switch (w.status) {
      case 'written':
        p.commit(key, /** @type {{}} */ (next), payload.length, w.version > 0 ? w.version : null)
        return { done: true, released: true, value: next }
      case 'unreachable':
        // Redis went away after the lock was taken: as in-process semantics, the value is
        // this instance's (L1) and L2 keeps the old one (counted in redisErrors by the tier).
        p.c.lockUnavailable++
        p.commit(key, /** @type {{}} */ (next), payload.length, null)
        return { done: true, released: false, value: next }
      default:
        return { done: false, released: false, why: w.status }
    }
  }

  /**
   * The current value of `key` for the updater: what Redis held under the lock; if nothing,
   * L1's copy (written while Redis was away), else the loader's.
   * @param {string} key @param {string | null} json
   */
  async #current(key, json) {
    const hit = this.#port.parse(key, json)
    if (hit !== undefined) return hit.value
    const held = this.#port.peek(key)
    if (held !== undefined && held !== null) return held
    return this.#port.load(key)
  }

  /**
   * The miss path of a flight across instances: the value from Redis (after waiting while
   * another instance loads it), or the lease to load it (then fill with `fill`), or neither
   * (Redis unavailable: load without a lease).
   * @param {string} key @param {import('./single-flight.js').Flight} f
   * @returns {Promise<{ hit?: { value: {}, size: number }, version?: number | null, lease?: HeldLease }>}
   */
  async coldRead(key, f) {
    const p = this.#port
    const giveUpAt = performance.now() + MAX_WAIT_LEASES * p.loadLeaseMs
    let waited = false
    for (;;) {
      const t0 = performance.now()
      const r = await this.#tier.lease(key, p.loadLeaseMs).catch(() => null)
      if (!waited) p.l2Latency(performance.now() - t0)
      if (r === null || r.status === 'unavailable') return {}
      if (r.status === 'hit') {
        const hit = p.parse(key, r.json)
        if (hit !== undefined && waited) p.c.distributedStampedePrevented++
        return hit === undefined ? {} : { hit, version: r.version > 0 ? r.version : null }
      }
      if (r.status === 'won') return typeof r.token === 'string' ? { lease: this.#held(key, r.token, r.version) } : {}
      // Held by another instance: wait for its value (or for its lease to go).
      if (f.settled || performance.now() >= giveUpAt) return {}
      waited = true
      await sleep(Math.min(pollMs(), Math.max(1, r.leftMs)))
    }
  }

  /**
   * Starts renewing a lease just won: a live leader keeps it however long its loader takes,
   * a dead one loses it within loadLeaseMs.
   * @param {string} key @param {string} token @param {number} version @returns {HeldLease}
   */
  #held(key, token, version) {
    const ms = this.#port.loadLeaseMs
    const renewal = setInterval(() => {
      if (this.#port.closed()) clearInterval(renewal)
      else this.#tier.renewLease(key, token, ms).catch(() => false)
    }, Math.max(1, Math.floor(ms / 3)))
    renewal.unref()
    return { token, version, renewal }
  }

  /**
   * The lease holder's fill (only if nobody wrote the thread since the miss), announced on
   * the bus and releasing the lease in the same step. Resolves the version written, or null
   * (skipped: the thread changed since the miss; or not confirmed: the tier counts that).
   * @param {string} key @param {string | import('../../index').SerializedPayload} json @param {number | undefined} ttlSeconds @param {HeldLease} lease
   * @returns {Promise<number | null>}
   */
  async fill(key, json, ttlSeconds, lease) {
    clearInterval(lease.renewal)
    const version = await this.#tier.fillLeased(key, lease.token, lease.version, json, ttlSeconds)
    return version > 0 ? version : null
  }

  /** Gives a lease up (the load failed, found nothing, or its result is not to be stored). @param {string} key @param {HeldLease} lease */
  unlease(key, lease) {
    clearInterval(lease.renewal)
    this.#tier.unlease(key, lease.token).catch(() => false)
  }
}

/**
 * The coordinator for a cache, or null when its L2 tier has no lock (none, or a test tier).
 * @param {unknown} tier @param {Port} port
 */
function createDistributed(tier, port) {
  const t = /** @type {Partial<LockingTier & LeasingTier> | null} */ (tier)
  const methods = ['lock', 'unlock', 'writeFenced', 'lease', 'fillLeased', 'unlease', 'renewLease']
  if (!t || methods.some((m) => typeof (/** @type {Record<string, unknown>} */ (t))[m] !== 'function')) return null
  return new Distributed(/** @type {LockingTier & LeasingTier} */ (t), port)
}

module.exports = { createDistributed, IN_PROCESS }
