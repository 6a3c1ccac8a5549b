'use strict'
// The in-process tier: lru-cache (entry bound, byte bound, per-entry TTL, LRU order
// refreshed on get) plus a tag index and the version (in Redis) of each copy held. Values
// are held as the very objects given (no copy); an entry's size is its serialized JSON
// length, computed by the caller.
const { LRUCache } = require('lru-cache')

/**
 * @typedef {object} L1Counters what the tier counts as it drops entries
 * @property {number} evictions entries dropped to stay within maxEntries / maxBytes
 * @property {number} expired entries dropped because their TTL ran out
 * @property {number} oversized values not held because they alone exceed maxBytes
 * @property {number} clearedDueToMemoryPressure entries dropped under memory pressure
 */

class L1 {
  /** @type {LRUCache<string, {}>} */
  #lru
  /** @type {Map<string, Set<string>>} tag -> keys */
  #byTag = new Map()
  /** @type {Map<string, string[]>} key -> tags */
  #tagsOf = new Map()
  /** @type {Map<string, number>} key -> version (in Redis) of the copy held; none = unknown */
  #versions = new Map()
  #underPressure = false
  /** @type {L1Counters} */
  counters = { evictions: 0, expired: 0, oversized: 0, clearedDueToMemoryPressure: 0 }

  /** @param {{ maxEntries: number, maxBytes: number, ttlMs: number }} o */
  constructor({ maxEntries, maxBytes, ttlMs }) {
    this.maxBytes = maxBytes
    this.#lru = new LRUCache({
      max: maxEntries,
      maxSize: maxBytes,
      ttl: ttlMs,
      ttlAutopurge: false,
      updateAgeOnGet: false,
      allowStale: false,
      dispose: (_value, key, reason) => this.#disposed(key, reason),
    })
  }

  /** @param {string} key @param {string} reason */
  #disposed(key, reason) {
    this.#untag(key)
    this.#versions.delete(key)
    if (reason === 'evict') {
      if (this.#underPressure) this.counters.clearedDueToMemoryPressure++
      else this.counters.evictions++
    } else if (reason === 'expire') {
      this.counters.expired++
    }
  }

  /** The held value (LRU order refreshed), or undefined on a miss or an expired entry. */
  get(/** @type {string} */ key) {
    return this.#lru.get(key)
  }

  /** The held value without touching LRU order. */
  peek(/** @type {string} */ key) {
    return this.#lru.peek(key)
  }

  /**
   * Holds `value` under `key`. A value whose size alone exceeds maxBytes is not held (and
   * any older value under the key is dropped, as it is no longer current).
   * @param {string} key @param {{}} value @param {number} size serialized JSON length
   * @param {{ ttlMs?: number, tags?: readonly string[], version?: number | null }} [o]
   *   tags: undefined keeps the key's tags; version: the copy's version in Redis, if known
   * @returns {boolean} whether the value is held
   */
  set(key, value, size, o = {}) {
    const keepTags = o.tags === undefined ? this.#tagsOf.get(key) : o.tags
    if (size > this.maxBytes) {
      this.counters.oversized++
      this.#lru.delete(key)
      return false
    }
    // lru-cache refuses a size of 0; `""` has size 2 anyway, so only odd callers get here.
    this.#lru.set(key, value, o.ttlMs === undefined ? { size: Math.max(1, size) } : { size: Math.max(1, size), ttl: o.ttlMs })
    this.#untag(key)
    this.#versions.delete(key)
    if (!this.#lru.has(key)) return true
    if (keepTags && keepTags.length) this.#tag(key, keepTags)
    if (o.version != null) this.#versions.set(key, o.version)
    return true
  }

  /**
   * Records the version of the copy held under `key`, if it is still `value` (a write's
   * version arrives after the value was put in L1).
   * @param {string} key @param {{}} value @param {number} version
   */
  setVersion(key, value, version) {
    if (this.#lru.peek(key) === value) this.#versions.set(key, version)
  }

  /**
   * Whether L1 holds a copy of `key` and, if so, its version (undefined = not known).
   * @param {string} key @returns {{ held: boolean, version: number | undefined }}
   */
  versionOf(key) {
    return { held: this.#lru.has(key), version: this.#versions.get(key) }
  }

  /** @param {string} key */
  delete(key) {
    return this.#lru.delete(key)
  }

  /** Keys held with `tag`. */
  keysWithTag(/** @type {string} */ tag) {
    const keys = this.#byTag.get(tag)
    return keys ? [...keys] : []
  }

  /** The tags of a held key. */
  tagsOf(/** @type {string} */ key) {
    return this.#tagsOf.get(key) ?? []
  }

  /**
   * Drops least-recently-used entries until their sizes add up to `bytes` or the tier is
   * empty; they count as `clearedDueToMemoryPressure`.
   * @param {number} bytes @returns {{ entries: number, bytes: number }}
   */
  shed(bytes) {
    let entries = 0
    let freed = 0
    this.#underPressure = true
    try {
      while (freed < bytes && this.#lru.size > 0) {
        const before = this.#lru.calculatedSize
        this.#lru.pop()
        freed += before - this.#lru.calculatedSize
        entries++
      }
    } finally {
      this.#underPressure = false
    }
    return { entries, bytes: freed }
  }

  /** Drops expired entries now (they would otherwise go on their next access). */
  purgeStale() {
    this.#lru.purgeStale()
  }

  clear() {
    this.#lru.clear()
    this.#byTag.clear()
    this.#tagsOf.clear()
    this.#versions.clear()
  }

  get entries() {
    return this.#lru.size
  }

  get bytes() {
    return this.#lru.calculatedSize
  }

  /** @param {string} key @param {readonly string[]} tags */
  #tag(key, tags) {
    const uniq = [...new Set(tags)]
    this.#tagsOf.set(key, uniq)
    for (const t of uniq) {
      let keys = this.#byTag.get(t)
      if (!keys) this.#byTag.set(t, (keys = new Set()))
      keys.add(key)
    }
  }

  /** @param {string} key */
  #untag(key) {
    const tags = this.#tagsOf.get(key)
    if (!tags) return
    this.#tagsOf.delete(key)
    for (const t of tags) {
      const keys = this.#byTag.get(t)
      if (!keys) continue
      keys.delete(key)
      if (keys.size === 0) this.#byTag.delete(t)
    }
  }
}

module.exports = { L1 }
