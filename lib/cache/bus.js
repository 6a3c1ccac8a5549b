'use strict'
// The cache's side of the invalidation bus (the subscriber itself is native: RedisTier
// #subscribe). Other instances' changes arrive as (key, version): the cache drops its copy
// of a key unless that copy is at least as new (a late message never evicts a newer value),
// and remembers the highest version announced per key for a while (`Floors`), so that an
// L2 read that was already under way cannot put an older copy back. A `resync` (the
// subscriber re-subscribed: messages may have been missed) drops the whole L1. So does
// `subscribed` (the first subscription is in place) if L1 already held something: a change
// made elsewhere before the subscription was in place never reached this instance. Not when
// the subscription is `ordered` (one RESP3 connection whose SUBSCRIBE went ahead of all the
// cache's commands): then nothing the cache read or wrote through Redis predates it.
const { LRUCache } = require('lru-cache')

/** Keys whose announced version is remembered, and for how long (ms): far longer than an
 * L2 read can take, which is all a floor has to outlive. */
const FLOOR_KEYS = 10_000
const FLOOR_TTL_MS = 60_000

/** The highest version announced per key, recently. */
class Floors {
  /**
   * Created on the first announcement: an LRUCache of FLOOR_KEYS entries with TTLs allocates
   * its arrays up front (~0.4 MB and ~0.8 ms here), which an instance that never hears of
   * another instance's change (a cold start's first reads) should not pay for.
   * @type {LRUCache<string, number> | null}
   */
  #lru = null

  /** @param {string} key @param {number} version */
  raise(key, version) {
    const lru = (this.#lru ??= new LRUCache({ max: FLOOR_KEYS, ttl: FLOOR_TTL_MS, ttlAutopurge: false }))
    const f = lru.get(key)
    if (f === undefined || f < version) lru.set(key, version)
  }

  /**
   * Whether a copy of `key` read at `version` (null: the key had none) may be held: not if
   * a newer version was announced since.
   * @param {string} key @param {number | null} version
   */
  admits(key, version) {
    const f = this.#lru?.peek(key)
    return f === undefined || (version !== null && version >= f)
  }

  clear() {
    this.#lru = null
  }
}

/**
 * @typedef {{ kind: 'changed' | 'resync' | 'subscribed', key?: string, version?: number, ordered?: boolean }} BusEvent
 * @typedef {{ changed(key: string, version: number): void, resync(): void, subscribed(ordered: boolean): void }} BusHandlers
 */

/**
 * Subscribes `tier` to the bus, if it has one, delivering to whatever `handlers()` returns
 * at the time (undefined once the cache is gone: events are then ignored). The handlers
 * are looked up through a function so that the subscription does not keep the cache alive.
 * @param {import('./l2-seam.js').L2Tier | null} tier
 * @param {() => BusHandlers | undefined} handlers
 * @returns {boolean} whether a subscription was started
 */
function subscribe(tier, handlers) {
  if (tier === null || typeof tier.subscribe !== 'function') return false
  tier.subscribe((/** @type {BusEvent[]} */ events) => {
    const h = handlers()
    if (h === undefined) return
    for (const e of events) {
      try {
        if (e.kind === 'resync') h.resync()
        else if (e.kind === 'subscribed') h.subscribed(e.ordered === true)
        else h.changed(/** @type {string} */ (e.key), /** @type {number} */ (e.version))
      } catch {
        // Never throw into the native subscriber; a handler bug must not stop the bus.
      }
    }
  })
  return true
}

module.exports = { Floors, subscribe }
