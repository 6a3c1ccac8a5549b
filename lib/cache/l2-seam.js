'use strict'
// The seam where the L2 (Redis) tier plugs into ConversationCache: the native RedisTier
// (src/js/redis_tier.rs) when a Redis URL is configured (`redisUrl`, else REDIS_URL), none
// otherwise (L1 only). Tests may hand in a tier of their own under `kL2Tier`.

/**
 * @typedef {object} L2Read what L2 holds for a thread
 * @property {string | null} json the value (JSON text); null when absent / corrupt
 * @property {number | null} version the thread's version; null when it has none
 */

/**
 * The L2 tier as the cache uses it. Every change of a thread moves its version (increasing
 * integers) and is announced to the other instances; reads return the version with the value.
 * @typedef {object} L2Tier
 * @property {(key: string) => Promise<L2Read | null>} read null: L2 failed (nothing known)
 * @property {(keys: string[]) => Promise<(L2Read | null)[]>} readMany one round trip
 * @property {(key: string, json: string | import('../../index').SerializedPayload, ttlSeconds?: number | null, tags?: string[] | null) => Promise<number | null>} write
 *   the new version; null when not confirmed. tags null keeps the thread's tags
 * @property {(key: string, json: string | import('../../index').SerializedPayload, seenVersion: number | null, ttlSeconds?: number | null) => Promise<{ outcome: 'written' | 'skipped' | 'failed', version?: number | null }>} fill
 *   a loader's result, written only if the version is still the one seen at the miss
 * @property {(keys: string[]) => Promise<number>} del invalidates; how many values existed
 * @property {(tag: string) => Promise<string[] | null>} invalidateTag ids of the threads invalidated
 * @property {() => Promise<{ state: 'up' | 'down', latencyMs?: number, circuit: string, lastError?: string }>} health
 * @property {() => Promise<void>} close
 * @property {() => L2TierStats} [stats] a tier that counts its own Redis failures (the native one)
 * @property {(onEvents: (events: import('./bus.js').BusEvent[]) => void) => void} [subscribe]
 *   starts the invalidation-bus subscriber (other instances' changes; 'subscribed' once the
 *   first subscription is in place; 'resync' after a lost connection)
 * @property {boolean} [busConnected] whether that subscriber is subscribed now
 */

/**
 * @typedef {object} L2TierStats
 * @property {number} redisErrors
 * @property {number} timeouts
 * @property {number} corrupt
 * @property {number} shortCircuited
 * @property {number} circuitOpened
 * @property {string} circuit
 */

/** Options key under which a ready L2 tier may be handed to the constructor (internal). */
const kL2Tier = Symbol('agent-core-native.l2Tier')

/**
 * The L2 tier for normalized cache options: the native RedisTier when a URL is set. Opens no
 * connection (it opens on first use); an unreachable Redis never makes this throw.
 * @param {{ redisUrl: string | null, redisCluster: boolean, keyPrefix: string, redisTtlSeconds: number, l2TimeoutMs: number }} o
 * @returns {L2Tier | null}
 */
function createL2(o) {
  if (!o.redisUrl) return null
  const { RedisTier } = require('../../index.js')
  return new RedisTier({
    url: o.redisUrl,
    cluster: o.redisCluster,
    keyPrefix: o.keyPrefix,
    ttlSeconds: o.redisTtlSeconds,
    timeoutMs: o.l2TimeoutMs,
  })
}

module.exports = { kL2Tier, createL2 }
