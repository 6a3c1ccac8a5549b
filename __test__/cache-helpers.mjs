// Shared by the cache-*.test.mjs files (not a test file itself).
import { createRequire } from 'node:module'
import { makeConversation } from '../benchmark/conversation.mjs'

const require = createRequire(import.meta.url)
/** The internal hook through which an L2 tier is handed to the cache (issue 4 builds the real one). */
export const { kL2Tier } = require('../lib/cache/l2-seam.js')

/** @param {number} ms */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/**
 * Polls `cond` every 2 ms: true once it holds, false if `ms` ran out first.
 * @param {() => boolean} cond @param {number} [ms]
 */
export async function until(cond, ms = 2000) {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) return false
    await sleep(2)
  }
  return true
}

/**
 * Resolves `cache` once its bus subscriber is subscribed and the cache has taken that in
 * (what a cache holds before its first subscription is dropped then); throws if that takes
 * longer than `ms`.
 * @template {{ getStats(): { busConnected: boolean } }} C
 * @param {C} cache @param {number} [ms]
 * @returns {Promise<C>}
 */
export async function subscribed(cache, ms = 2000) {
  if (!(await until(() => cache.getStats().busConnected, ms))) throw new Error(`the bus did not subscribe within ${ms} ms`)
  return cache
}

/**
 * A conversation of about `kb` KB of JSON (chat messages with prose, code, CJK, emoji).
 * @param {number} kb @param {number} [seed]
 */
export const conversation = (kb, seed = 1) => makeConversation(kb * 1024, seed)

/**
 * A matcher for assert.rejects / assert.throws: an error of class `cls` with `code`.
 * @param {string} code @param {Function} [cls]
 */
export function withCode(code, cls = Error) {
  /** @param {unknown} e */
  const matches = (e) => e instanceof cls && /** @type {{ code?: unknown }} */ (e).code === code
  return matches
}

/**
 * An L2 tier written in JS (a Map of JSON text with versions and tags), with call counts,
 * for the seam tests.
 * @param {{ latencyMs?: number, failing?: boolean }} [o]
 */
export function fakeL2({ latencyMs = 0, failing = false } = {}) {
  /** @type {Map<string, string>} */
  const store = new Map()
  /** @type {Map<string, number>} */
  const versions = new Map()
  /** @type {Map<string, Set<string>>} */
  const tagsOf = new Map()
  let clock = 0
  const bump = (/** @type {string} */ k) => {
    versions.set(k, ++clock)
    return clock
  }
  const calls = { read: 0, readMany: 0, write: 0, fill: 0, del: 0, invalidateTag: 0, health: 0, close: 0 }
  /** @type {number[]} */
  const ttls = []
  const maybeFail = async () => {
    if (latencyMs) await sleep(latencyMs)
    if (failing) throw new Error('redis down')
  }
  const readOne = (/** @type {string} */ k) => ({ json: store.get(k) ?? null, version: versions.get(k) ?? null })
  const invalidate = (/** @type {string} */ k) => {
    const existed = store.delete(k)
    tagsOf.delete(k)
    bump(k)
    return existed
  }
  return {
    store,
    versions,
    calls,
    ttls,
    /** @param {string} k */
    async read(k) {
      calls.read++
      await maybeFail()
      return readOne(k)
    },
    /** @param {string[]} ks */
    async readMany(ks) {
      calls.readMany++
      await maybeFail()
      return ks.map(readOne)
    },
    /** @param {string} k @param {string} json @param {number | null} [ttl] @param {string[] | null} [tags] */
    async write(k, json, ttl, tags) {
      calls.write++
      await maybeFail()
      store.set(k, json)
      if (tags) tagsOf.set(k, new Set(tags))
      ttls.push(ttl ?? -1)
      return bump(k)
    },
    /** @param {string} k @param {string} json @param {number | null} seen @param {number | null} [ttl] */
    async fill(k, json, seen, ttl) {
      calls.fill++
      await maybeFail()
      if ((versions.get(k) ?? null) !== seen) return { outcome: /** @type {const} */ ('skipped') }
      store.set(k, json)
      ttls.push(ttl ?? -1)
      return { outcome: /** @type {const} */ ('written'), version: bump(k) }
    },
    /** @param {string[]} ks */
    async del(ks) {
      calls.del++
      await maybeFail()
      let n = 0
      for (const k of ks) if (invalidate(k)) n++
      return n
    },
    /** @param {string} tag */
    async invalidateTag(tag) {
      calls.invalidateTag++
      await maybeFail()
      const ids = [...tagsOf].filter(([, tags]) => tags.has(tag)).map(([k]) => k)
      for (const k of ids) invalidate(k)
      return ids
    },
    async health() {
      calls.health++
      return /** @type {const} */ ({ state: 'up', latencyMs: 0.2, circuit: 'closed' })
    },
    async close() {
      calls.close++
    },
  }
}
