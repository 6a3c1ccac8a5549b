'use strict'
// L2 reads issued in the same tick go to Redis together: one `readMany` (one MGET, one round
// trip, one native call and one promise settled for all of them) instead of one `read` each,
// as node-redis and ioredis's `enableAutoPipelining` do for commands. A lone read is sent as
// a plain `read`, one microtask later than it would have been.
//
// Nothing else changes for the caller: each read gets its own promise, with what `read`
// would have given it (`readMany` has the same per-key answers: the value and version, or
// null when L2 failed or holds nothing usable). Many reads in flight at once (50 gets on
// different keys, a request fan-out) are where it pays: at 50 in flight the batches hold
// most of them, because the promises of a settled batch resume their callers in one
// microtask run, and those callers' next reads land in the next batch.
//
// Used by `get` (and by `getOrLoad` on a tier without the distributed load lease; with the
// native tier, getOrLoad's miss is a lease script per key, not batched).

/** Most keys in one batch (a larger set waits for the next; values may be large). */
const MAX_BATCH = 32

/**
 * @typedef {import('./l2-seam.js').L2Read} L2Read
 * @typedef {{ key: string, resolve: (r: L2Read | null) => void, reject: (e: unknown) => void }} Waiter
 */

class ReadBatcher {
  /** @type {Pick<import('./l2-seam.js').L2Tier, 'read' | 'readMany'>} */
  #tier
  /** @type {Waiter[] | null} the batch being filled (sent at the end of this tick) */
  #open = null

  /** @param {Pick<import('./l2-seam.js').L2Tier, 'read' | 'readMany'>} tier */
  constructor(tier) {
    this.#tier = tier
  }

  /**
   * What `tier.read(key)` would give, read together with the other reads of this tick.
   * @param {string} key
   * @returns {Promise<L2Read | null>}
   */
  read(key) {
    let batch = this.#open
    if (batch === null) {
      const b = /** @type {Waiter[]} */ ([])
      batch = this.#open = b
      queueMicrotask(() => this.#send(b))
    }
    const into = batch
    const p = new Promise((/** @type {Waiter['resolve']} */ resolve, reject) => {
      into.push({ key, resolve, reject })
    })
    if (into.length >= MAX_BATCH) this.#send(into)
    return p
  }

  /** @param {Waiter[]} batch */
  #send(batch) {
    if (this.#open === batch) this.#open = null
    if (batch.length === 0) return
    const waiters = batch.splice(0)
    if (waiters.length === 1) {
      const w = waiters[0]
      call(() => this.#tier.read(w.key)).then(w.resolve, w.reject)
      return
    }
    call(() => this.#tier.readMany(waiters.map((w) => w.key))).then(
      (reads) => {
        for (let i = 0; i < waiters.length; i++) waiters[i].resolve(reads[i] ?? null)
      },
      (e) => {
        for (const w of waiters) w.reject(e)
      },
    )
  }
}

/**
 * `fn()`, with a synchronous throw turned into a rejection.
 * @template T @param {() => Promise<T>} fn @returns {Promise<T>}
 */
function call(fn) {
  try {
    return fn()
  } catch (e) {
    return Promise.reject(e)
  }
}

module.exports = { ReadBatcher, MAX_BATCH }
