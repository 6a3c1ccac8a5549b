'use strict'
// The seam where the L2 (Redis) tier plugs into ConversationCache. Issue 4 builds it
// natively; this file only names the interface and the hook. Until then the cache runs
// L1-only: `this.#l2` is null unless a tier is passed under `kL2Tier` (tests use this with a
// tier written in JS to exercise the L1 <-> L2 paths).

/**
 * @typedef {object} L2Tier
 * @property {(key: string) => Promise<string | null>} get JSON text, or null on miss / timeout / error
 * @property {(keys: string[]) => Promise<(string | null)[]>} getMany one round trip
 * @property {(key: string, json: string, ttlSeconds?: number) => Promise<boolean>} set false when it failed
 * @property {(keys: string[]) => Promise<number>} del how many keys existed
 * @property {() => Promise<{ state: 'up' | 'down', latencyMs?: number, circuit: string }>} health
 * @property {() => Promise<void>} close
 */

/** Options key under which a ready L2 tier may be handed to the constructor (internal). */
const kL2Tier = Symbol('agent-core-native.l2Tier')

module.exports = { kL2Tier }
