'use strict'
// Latency samples, batched. The hot path writes a sample into a Float64Array (a few ns);
// a full batch, or a read of the stats, hands the samples to the native HDR histograms in
// one call (~15 ns per sample there), so no hit pays for a native call.
const { CacheMetrics } = require('../../index.js')

const TIERS = Object.freeze(['l1', 'l2', 'loader'])
const BATCH = 1024

/** Samples of one tier waiting to be handed over. */
class SampleBuffer {
  #buf = new Float64Array(BATCH)
  #n = 0
  #tier
  #native

  /** @param {number} tier @param {InstanceType<typeof CacheMetrics>} native */
  constructor(tier, native) {
    this.#tier = tier
    this.#native = native
  }

  /** Adds one sample, in milliseconds. */
  add(/** @type {number} */ ms) {
    const n = this.#n
    this.#buf[n] = ms
    if (n + 1 === BATCH) this.flush(BATCH)
    else this.#n = n + 1
  }

  flush(n = this.#n) {
    if (n > 0) this.#native.record(this.#tier, this.#buf, n)
    this.#n = 0
  }
}

class Latency {
  #native = new CacheMetrics([...TIERS])
  l1 = new SampleBuffer(0, this.#native)
  l2 = new SampleBuffer(1, this.#native)
  loader = new SampleBuffer(2, this.#native)

  flush() {
    this.l1.flush()
    this.l2.flush()
    this.loader.flush()
  }

  /** Per tier: count, mean and percentiles in ms. */
  summaries() {
    this.flush()
    /** @type {Record<string, { count: number, mean: number, p50: number, p95: number, p99: number, max: number }>} */
    const out = {}
    TIERS.forEach((name, i) => {
      const s = this.#native.summary(i)
      out[name] = { count: s.count, mean: s.mean, p50: s.p50, p95: s.p95, p99: s.p99, max: s.max }
    })
    return out
  }

  /**
   * Prometheus text of `families` followed by the latency summary per tier.
   * @param {import('../../index').MetricFamily[]} families
   */
  prometheus(families) {
    this.flush()
    return this.#native.prometheus(
      families,
      'agent_core_cache_latency_seconds',
      'Latency of answered lookups by the tier that answered (l1, l2) and of loader calls (loader).',
      'tier',
    )
  }
}

module.exports = { Latency, TIERS }
