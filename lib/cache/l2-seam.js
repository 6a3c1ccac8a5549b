'use strict'
// The seam where the L2 (Redis) tier plugs into ConversationCache: the native RedisTier
// (src/js/redis_tier.rs) when a Redis URL is configured (`redisUrl`, else REDIS_URL), none
// otherwise (L1 only). Tests may hand in a tier of their own under `kL2Tier`.

/**
 * @typedef {object} L2Tier
 * @property {(key: string) => Promise<string | null>} get JSON text, or null on miss / timeout / error
 * @property {(keys: string[]) => Promise<(string | null)[]>} getMany one round trip
 * @property {(key: string, json: string, ttlSeconds?: number) => Promise<boolean>} set false when it failed
 * @property {(keys: string[]) => Promise<number>} del how many keys existed
 * @property {() => Promise<{ state: 'up' | 'down', latencyMs?: number, circuit: string, lastError?: string }>} health
 * @property {() => Promise<void>} close
 * @property {() => L2TierStats} [stats] a tier that counts its own Redis failures (the native one)
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
 * @param {{ redisUrl: string | null, keyPrefix: string, redisTtlSeconds: number, l2TimeoutMs: number }} o
 * @returns {L2Tier | null}
 */
function createL2(o) {
  if (!o.redisUrl) return null
  const { RedisTier } = require('../../index.js')
  return new RedisTier({
    url: o.redisUrl,
    keyPrefix: o.keyPrefix,
    ttlSeconds: o.redisTtlSeconds,
    timeoutMs: o.l2TimeoutMs,
  })
}

module.exports = { kL2Tier, createL2 }
