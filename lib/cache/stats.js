'use strict'
// getStats() and metrics(): the same counters, as an object and as Prometheus families.
// Every lookup (getOrLoad, get, each key of getMany) ends as exactly one of l1Hits, l2Hits
// or misses; callers that joined a load under way also count in stampedePrevented.

/**
 * @typedef {object} Counters
 * @property {number} l1Hits
 * @property {number} l2Hits
 * @property {number} misses
 * @property {number} stampedePrevented
 * @property {number} distributedStampedePrevented cold loads taken from another instance's load (its lease) instead of running the loader here
 * @property {number} redisErrors
 * @property {number} loads loader calls
 * @property {number} loaderErrors loader calls that threw or rejected (timeouts included)
 * @property {number} loaderTimeouts
 * @property {number} invalidations keys dropped by invalidate / invalidateTag
 * @property {number} busMessages other instances' changes received over the bus
 * @property {number} busInvalidations L1 entries those changes dropped
 * @property {number} busResyncs times the whole L1 was dropped after the bus re-subscribed (or first
 *   subscribed, on a connection of its own, after L1 had taken something in)
 * @property {number} lockLost update attempts whose lock expired (or whose thread was written meanwhile) before the write
 * @property {number} lockTimeouts updates refused because another instance held the lock for all of lockWaitMs
 * @property {number} lockUnavailable updates run with in-process semantics because Redis could not be asked for the lock
 */

/** @returns {Counters} */
function newCounters() {
  return {
    l1Hits: 0,
    l2Hits: 0,
    misses: 0,
    stampedePrevented: 0,
    distributedStampedePrevented: 0,
    redisErrors: 0,
    loads: 0,
    loaderErrors: 0,
    loaderTimeouts: 0,
    invalidations: 0,
    busMessages: 0,
    busInvalidations: 0,
    busResyncs: 0,
    lockLost: 0,
    lockTimeouts: 0,
    lockUnavailable: 0,
  }
}

/**
 * @typedef {object} Sources
 * @property {Counters} c
 * @property {import('./l1.js').L1['counters']} dropped what L1 dropped, by reason
 * @property {{ entries: number, bytes: number, maxEntries: number, maxBytes: number }} size
 * @property {number} rateLimited loader calls refused by the rate limiter
 * @property {import('./l2-seam.js').L2TierStats | null} l2 the native tier's own counters (null: none)
 * @property {boolean} busConnected whether the bus subscriber is subscribed now
 * @property {ReturnType<import('./latency.js').Latency['summaries']>} latency per tier, ms
 */

/** @param {number} part @param {number} whole */
const ratio = (part, whole) => (whole === 0 ? 0 : part / whole)

/** @param {Sources} s */
function toStats({ c, dropped, size, rateLimited, latency, l2, busConnected }) {
  const lookups = c.l1Hits + c.l2Hits + c.misses
  return {
    l1Hits: c.l1Hits,
    l2Hits: c.l2Hits,
    misses: c.misses,
    l1HitRate: ratio(c.l1Hits, lookups),
    l2HitRate: ratio(c.l2Hits, lookups),
    overallHitRate: ratio(c.l1Hits + c.l2Hits, lookups),
    avgL1Latency: latency.l1.mean,
    avgL2Latency: latency.l2.mean,
    avgLoaderLatency: latency.loader.mean,
    latency,
    stampedePrevented: c.stampedePrevented,
    distributedStampedePrevented: c.distributedStampedePrevented,
    redisErrors: c.redisErrors + (l2?.redisErrors ?? 0),
    l2Timeouts: l2?.timeouts ?? 0,
    l2Corrupt: l2?.corrupt ?? 0,
    l2ShortCircuited: l2?.shortCircuited ?? 0,
    l2CircuitOpened: l2?.circuitOpened ?? 0,
    l2Circuit: l2?.circuit ?? 'disabled',
    evictions: dropped.evictions,
    expired: dropped.expired,
    oversized: dropped.oversized,
    clearedDueToMemoryPressure: dropped.clearedDueToMemoryPressure,
    loads: c.loads,
    loaderErrors: c.loaderErrors,
    loaderTimeouts: c.loaderTimeouts,
    rateLimited,
    invalidations: c.invalidations,
    busMessages: c.busMessages,
    busInvalidations: c.busInvalidations,
    busResyncs: c.busResyncs,
    busConnected,
    lockLost: c.lockLost,
    lockTimeouts: c.lockTimeouts,
    lockUnavailable: c.lockUnavailable,
    entries: size.entries,
    bytes: size.bytes,
    maxEntries: size.maxEntries,
    maxBytes: size.maxBytes,
  }
}

const P = 'agent_core_cache_'

/**
 * @param {string} name @param {'counter' | 'gauge'} type @param {string} help
 * @param {Array<[Record<string, string>, number]>} samples
 * @returns {import('../../index').MetricFamily}
 */
function family(name, type, help, samples) {
  return {
    name: P + name,
    type,
    help,
    samples: samples.map(([labels, value]) => ({
      labels: Object.entries(labels).map(([n, v]) => ({ name: n, value: v })),
      value,
    })),
  }
}

/** @param {Sources} s */
function toFamilies({ c, dropped, size, rateLimited, l2: l2Stats, busConnected }) {
  const l1 = { tier: 'l1' }
  const l2 = { tier: 'l2' }
  const s = { l2: l2Stats }
  return [
    family('hits_total', 'counter', 'Lookups answered by a tier.', [
      [l1, c.l1Hits],
      [l2, c.l2Hits],
    ]),
    family('misses_total', 'counter', 'Lookups that no tier answered (the loader ran or was joined).', [
      [{ tier: 'loader' }, c.misses],
    ]),
    family('stampede_prevented_total', 'counter', 'Callers that joined a load already under way.', [
      [{ tier: 'loader' }, c.stampedePrevented],
    ]),
    family(
      'distributed_stampede_prevented_total',
      'counter',
      'Cold loads taken from another instance that held the load lease, instead of running the loader here.',
      [[{ tier: 'loader' }, c.distributedStampedePrevented]],
    ),
    family('loads_total', 'counter', 'Loader calls.', [[{ tier: 'loader' }, c.loads]]),
    family('loader_errors_total', 'counter', 'Loader calls that failed (timeouts included).', [
      [{ tier: 'loader' }, c.loaderErrors],
    ]),
    family('loader_timeouts_total', 'counter', 'Loader calls that outlived loaderTimeoutMs.', [
      [{ tier: 'loader' }, c.loaderTimeouts],
    ]),
    family('rate_limited_total', 'counter', 'Loader calls refused by the rate limiter.', [
      [{ tier: 'loader' }, rateLimited],
    ]),
    family('redis_errors_total', 'counter', 'Failed L2 (Redis) calls (timeouts included).', [
      [l2, c.redisErrors + (s.l2?.redisErrors ?? 0)],
    ]),
    family('redis_timeouts_total', 'counter', 'L2 calls slower than l2TimeoutMs (answered as misses).', [
      [l2, s.l2?.timeouts ?? 0],
    ]),
    family('redis_corrupt_total', 'counter', 'Values under our L2 keys that were not ours or did not decode.', [
      [l2, s.l2?.corrupt ?? 0],
    ]),
    family('redis_short_circuited_total', 'counter', 'L2 calls skipped because the circuit breaker was open.', [
      [l2, s.l2?.shortCircuited ?? 0],
    ]),
    family('redis_circuit_opened_total', 'counter', 'Times the L2 circuit breaker opened.', [
      [l2, s.l2?.circuitOpened ?? 0],
    ]),
    family(
      'redis_circuit_state',
      'gauge',
      'L2 circuit breaker state: 1 for the current one (all 0 without L2).',
      ['closed', 'open', 'half-open'].map((st) => [{ tier: 'l2', state: st }, s.l2?.circuit === st ? 1 : 0]),
    ),
    family('lock_lost_total', 'counter', 'Update attempts whose distributed lock expired (or whose thread was written meanwhile) before the write.', [
      [l2, c.lockLost],
    ]),
    family('lock_timeouts_total', 'counter', 'Updates refused because another instance held the lock for all of lockWaitMs.', [
      [l2, c.lockTimeouts],
    ]),
    family('lock_unavailable_total', 'counter', 'Updates run with in-process semantics because Redis could not be asked for the lock.', [
      [l2, c.lockUnavailable],
    ]),
    family('evictions_total', 'counter', 'Entries dropped from L1, by reason.', [
      [{ tier: 'l1', reason: 'capacity' }, dropped.evictions],
      [{ tier: 'l1', reason: 'memory_pressure' }, dropped.clearedDueToMemoryPressure],
      [{ tier: 'l1', reason: 'expired' }, dropped.expired],
    ]),
    family('oversized_total', 'counter', 'Values not held in L1 because they alone exceed maxBytes.', [
      [l1, dropped.oversized],
    ]),
    family('invalidations_total', 'counter', 'Keys dropped by invalidate / invalidateTag.', [
      [l1, c.invalidations],
    ]),
    family('bus_messages_total', 'counter', "Other instances' changes received over the invalidation bus.", [
      [l1, c.busMessages],
    ]),
    family('bus_invalidations_total', 'counter', 'L1 entries dropped because another instance changed them.', [
      [l1, c.busInvalidations],
    ]),
    family('bus_resyncs_total', 'counter', 'Times L1 was emptied because the bus re-subscribed, or first subscribed on a connection of its own after L1 had taken something in (messages may have been missed).', [
      [l1, c.busResyncs],
    ]),
    family('bus_connected', 'gauge', 'Whether the invalidation-bus subscriber is subscribed (0 without L2).', [
      [l2, busConnected ? 1 : 0],
    ]),
    family('entries', 'gauge', 'Entries held.', [[l1, size.entries]]),
    family('bytes', 'gauge', 'Serialized JSON length of the entries held.', [[l1, size.bytes]]),
    family('max_entries', 'gauge', 'Entry bound (maxEntries).', [[l1, size.maxEntries]]),
    family('max_bytes', 'gauge', 'Byte bound (maxBytes).', [[l1, size.maxBytes]]),
  ]
}

module.exports = { newCounters, toStats, toFamilies }
