// getStats() fields and metrics() as Prometheus text (checked with a parser).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import parsePrometheusTextFormat from 'parse-prometheus-text-format'
import { ConversationCache } from '@povc/agent-core-native'
import { sleep } from './cache-helpers.mjs'

const SPEC_FIELDS = [
  'l1Hits', 'l2Hits', 'misses', 'l1HitRate', 'l2HitRate', 'overallHitRate', 'avgL1Latency', 'avgL2Latency',
  'stampedePrevented', 'redisErrors', 'evictions', 'clearedDueToMemoryPressure', 'entries', 'bytes',
]

/** Some traffic: 3 loads (one slow), 6 L1 hits, 1 stampede join, 1 get miss. */
async function traffic() {
  const cache = new ConversationCache({ maxEntries: 2 })
  await cache.getOrLoad('a', async () => ({ a: 1 }))
  await Promise.all([
    cache.getOrLoad('b', async () => (await sleep(20), { b: 1 })),
    cache.getOrLoad('b', async () => ({ never: true })),
  ])
  for (let i = 0; i < 3; i++) await cache.getOrLoad('a', async () => ({}))
  for (let i = 0; i < 3; i++) await cache.get('b')
  await cache.get('none')
  await cache.getOrLoad('c', async () => ({ c: 1 })) // evicts a
  return cache
}

test('getStats has every SPEC field with consistent values', async () => {
  const cache = await traffic()
  const s = cache.getStats()
  for (const f of SPEC_FIELDS) assert.equal(typeof (/** @type {any} */ (s)[f]), 'number', f)
  assert.equal(s.l1Hits, 6)
  assert.equal(s.l2Hits, 0)
  assert.equal(s.misses, 5) // a, b (x2: one joined), none, c
  assert.equal(s.stampedePrevented, 1)
  assert.equal(s.l1HitRate, 6 / 11)
  assert.equal(s.l2HitRate, 0)
  assert.equal(s.overallHitRate, 6 / 11)
  assert.equal(s.evictions, 1)
  assert.equal(s.entries, 2)
  assert.equal(s.bytes, JSON.stringify({ b: 1 }).length + JSON.stringify({ c: 1 }).length)
  assert.equal(s.redisErrors, 0)
  assert.equal(s.clearedDueToMemoryPressure, 0)
  // Latency per tier, in ms: 6 L1 samples, 3 loader samples of which one took >= 20 ms.
  assert.equal(s.latency.l1.count, 6)
  assert.ok(s.avgL1Latency > 0 && s.avgL1Latency < 5, `${s.avgL1Latency}`)
  assert.ok(s.latency.l1.p50 <= s.latency.l1.p95 && s.latency.l1.p95 <= s.latency.l1.p99)
  assert.equal(s.latency.loader.count, 3)
  assert.ok(s.latency.loader.max >= 19, `${s.latency.loader.max}`)
  assert.ok(s.latency.loader.p99 >= 19)
  assert.equal(s.latency.l2.count, 0)
  assert.equal(s.avgL2Latency, 0)
  await cache.close()
})

test('latency percentiles come from all samples, across batches', async () => {
  const cache = new ConversationCache()
  await cache.set('t', { t: 1 })
  // More than one batch of samples (1,024) before the stats are read.
  for (let i = 0; i < 5000; i++) await cache.getOrLoad('t', async () => ({}))
  const s = cache.getStats()
  assert.equal(s.latency.l1.count, 5000)
  assert.equal(s.l1Hits, 5000)
  await cache.close()
})

test('metrics() is valid Prometheus text with agent_core_cache_* names and a tier label', async () => {
  const cache = await traffic()
  const text = cache.metrics()
  const families = parsePrometheusTextFormat(text)
  assert.ok(families.length >= 10)
  /** @type {Record<string, import('parse-prometheus-text-format').PromFamily>} */
  const byName = {}
  for (const f of families) {
    assert.match(f.name, /^agent_core_cache_[a-z_]+$/)
    assert.ok(['COUNTER', 'GAUGE', 'SUMMARY'].includes(f.type), `${f.name}: ${f.type}`)
    assert.ok(f.help.length > 0, `${f.name} has help`)
    // (The parser folds the series of a summary into one and drops their labels, so the
    // latency summary's labels are checked on the text below.)
    if (f.type !== 'SUMMARY') {
      for (const m of f.metrics) assert.ok(m.labels && typeof m.labels.tier === 'string', `${f.name} has a tier label`)
    }
    byName[f.name] = f
  }
  // Every sample line has the exposition format's shape.
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue
    assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)+\} (NaN|[+-]Inf|-?\d+(\.\d+)?(e[+-]?\d+)?)$/, line)
  }
  const value = (/** @type {string} */ name, /** @type {Record<string, string>} */ labels) => {
    const f = byName[name]
    assert.ok(f, `family ${name}`)
    const m = f.metrics.find((/** @type {import('parse-prometheus-text-format').PromSample} */ x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v))
    assert.ok(m, `${name} ${JSON.stringify(labels)}`)
    return Number(m.value)
  }
  assert.equal(value('agent_core_cache_hits_total', { tier: 'l1' }), 6)
  assert.equal(value('agent_core_cache_hits_total', { tier: 'l2' }), 0)
  assert.equal(value('agent_core_cache_misses_total', {}), 5)
  assert.equal(value('agent_core_cache_stampede_prevented_total', {}), 1)
  assert.equal(value('agent_core_cache_evictions_total', { reason: 'capacity' }), 1)
  assert.equal(value('agent_core_cache_entries', { tier: 'l1' }), 2)
  assert.equal(value('agent_core_cache_bytes', { tier: 'l1' }), 14)
  assert.equal(byName.agent_core_cache_latency_seconds.type, 'SUMMARY')
  /** @type {Record<string, number>} */
  const lat = {}
  for (const m of text.matchAll(/^agent_core_cache_latency_seconds(_sum|_count)?\{tier="(\w+)"(?:,quantile="([\d.]+)")?\} (\S+)$/gm)) {
    lat[`${m[2]} ${m[3] ?? m[1]}`] = Number(m[4])
  }
  for (const tier of ['l1', 'l2', 'loader']) {
    for (const k of ['0.5', '0.95', '0.99', '_sum', '_count']) assert.ok(`${tier} ${k}` in lat, `latency ${tier} ${k}`)
  }
  assert.equal(lat['l1 _count'], 6)
  assert.equal(lat['loader _count'], 3)
  assert.ok(lat['loader 0.99'] >= 0.019 && lat['loader 0.99'] < 10, 'in seconds, not ms')
  assert.ok(lat['l1 0.5'] > 0 && lat['l1 0.5'] <= lat['l1 0.99'])
  assert.equal(lat['l2 _count'], 0)
  assert.ok(Number.isNaN(lat['l2 0.5']), 'a quantile of no samples is NaN')
  await cache.close()
})

test('metrics() and getStats() still answer after close()', async () => {
  const cache = await traffic()
  await cache.close()
  assert.equal(cache.getStats().l1Hits, 6)
  assert.ok(parsePrometheusTextFormat(cache.metrics()).length > 0)
})
