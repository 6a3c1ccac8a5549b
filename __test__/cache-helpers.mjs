// Shared by the cache-*.test.mjs files (not a test file itself).
import { createRequire } from 'node:module'
import { makeConversation } from '../benchmark/conversation.mjs'

const require = createRequire(import.meta.url)
/** The internal hook through which an L2 tier is handed to the cache (issue 4 builds the real one). */
export const { kL2Tier } = require('../lib/cache/l2-seam.js')

/** @param {number} ms */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

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
 * An L2 tier written in JS (a Map of JSON text), with call counts, for the seam tests.
 * @param {{ latencyMs?: number, failing?: boolean }} [o]
 */
export function fakeL2({ latencyMs = 0, failing = false } = {}) {
  /** @type {Map<string, string>} */
  const store = new Map()
  const calls = { get: 0, getMany: 0, set: 0, del: 0, health: 0, close: 0 }
  /** @type {number[]} */
  const ttls = []
  const maybeFail = async () => {
    if (latencyMs) await sleep(latencyMs)
    if (failing) throw new Error('redis down')
  }
  return {
    store,
    calls,
    ttls,
    /** @param {string} k */
    async get(k) {
      calls.get++
      await maybeFail()
      return store.get(k) ?? null
    },
    /** @param {string[]} ks */
    async getMany(ks) {
      calls.getMany++
      await maybeFail()
      return ks.map((k) => store.get(k) ?? null)
    },
    /** @param {string} k @param {string} json @param {number} [ttl] */
    async set(k, json, ttl) {
      calls.set++
      await maybeFail()
      store.set(k, json)
      ttls.push(ttl ?? -1)
      return true
    },
    /** @param {string[]} ks */
    async del(ks) {
      calls.del++
      await maybeFail()
      let n = 0
      for (const k of ks) if (store.delete(k)) n++
      return n
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
