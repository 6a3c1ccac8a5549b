// Memory pressure against V8's heap size limit, tested by lowering the threshold (never by
// exhausting the heap).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import v8 from 'node:v8'
import { createRequire } from 'node:module'
import { ConversationCache } from '@povc/agent-core-native'
import { conversation, sleep } from './cache-helpers.mjs'

const require = createRequire(import.meta.url)
const { bytesToShed, MemoryPressure, WRITE_CHECK_MS, WRITE_CHECK_BYTES } = require('../lib/cache/memory-pressure.js')

const heapRatio = () => {
  const h = v8.getHeapStatistics()
  return h.used_heap_size / h.heap_size_limit
}

test('the ratio is taken against heap_size_limit, not heapTotal', () => {
  const mp = new MemoryPressure({ heapUsedRatio: 0.8, lowWatermarkRatio: 0.7 })
  const r = mp.ratio()
  const h = v8.getHeapStatistics()
  const vsTotal = h.used_heap_size / h.total_heap_size
  assert.ok(Math.abs(r - h.used_heap_size / h.heap_size_limit) < 0.01, `${r}`)
  // In this small test process heapUsed/heapTotal is far higher than heapUsed/limit.
  assert.ok(vsTotal > r * 5, `heapUsed/heapTotal ${vsTotal} vs heapUsed/limit ${r}`)
  assert.equal(mp.check().shed, 0, 'a healthy test process is not under pressure')
})

test('bytesToShed: nothing below the threshold, down to the low watermark above it', () => {
  const t = { heapUsedRatio: 0.8, lowWatermarkRatio: 0.7 }
  assert.equal(bytesToShed({ used: 799, limit: 1000 }, t), 0)
  assert.equal(bytesToShed({ used: 800, limit: 1000 }, t), 100)
  assert.equal(bytesToShed({ used: 950, limit: 1000 }, t), 250)
})

test('under pressure (a lowered threshold) L1 sheds LRU entries, counts them and warns through the logger only', async () => {
  /** @type {Array<[string, any]>} */
  const warnings = []
  const origWarn = console.warn
  const origError = console.error
  const origLog = console.log
  let consoleCalls = 0
  console.warn = console.error = console.log = () => void consoleCalls++
  try {
    const ratio = heapRatio()
    // Above the current ratio, so the first entries fit; the test then lowers nothing else.
    const cache = new ConversationCache({
      maxEntries: 1000,
      memoryPressure: { heapUsedRatio: ratio / 4, lowWatermarkRatio: ratio / 8, checkIntervalMs: 0 },
      logger: { warn: (m, meta) => warnings.push([m, meta]), error: () => {} },
    })
    for (let i = 0; i < 20; i++) await cache.set(`t${i}`, conversation(20, i + 1))
    const s = cache.getStats()
    assert.ok(s.clearedDueToMemoryPressure > 0, 'entries were shed')
    assert.equal(s.evictions, 0, 'shedding is not counted as a capacity eviction')
    assert.ok(s.entries < 20)
    assert.equal(warnings.length, 1, 'one warning per pressure episode')
    const [msg, meta] = warnings[0]
    assert.match(msg, /memory pressure/)
    assert.ok(meta.heapSizeLimit === v8.getHeapStatistics().heap_size_limit)
    assert.ok(meta.evictedEntries >= 1)
    assert.equal((await cache.health()).l1.underMemoryPressure, true)
    await cache.close()
  } finally {
    console.warn = origWarn
    console.error = origError
    console.log = origLog
  }
  assert.equal(consoleCalls, 0, 'nothing printed to the console')
})

test('shedding stops at the low watermark: only as many LRU entries as needed go', () => {
  // A heap reading we control: 1 MB over the low watermark, entries of 100 KB each.
  const { L1 } = require('../lib/cache/l1.js')
  const l1 = new L1({ maxEntries: 100, maxBytes: 50 * 1024 * 1024, ttlMs: 0 })
  for (let i = 0; i < 30; i++) l1.set(`t${i}`, { i }, 100_000)
  const limit = 100_000_000
  const shed = bytesToShed({ used: 81_000_000, limit }, { heapUsedRatio: 0.8, lowWatermarkRatio: 0.8 })
  const freed = l1.shed(shed)
  assert.equal(freed.entries, 10)
  assert.equal(l1.entries, 20)
  assert.equal(l1.counters.clearedDueToMemoryPressure, 10)
  assert.equal(l1.peek('t9'), undefined, 'the least recently used went first')
  assert.deepEqual(l1.peek('t10'), { i: 10 })
})

test('the periodic check (an unref()ed timer) relieves pressure that arises without writes', async () => {
  const before = heapRatio()
  const cache = new ConversationCache({ memoryPressure: { heapUsedRatio: before * 3, checkIntervalMs: 10 } })
  for (let i = 0; i < 5; i++) await cache.set(`t${i}`, { i })
  await sleep(30)
  assert.equal(cache.getStats().entries, 5, 'no pressure yet')
  // Ballast held by the test (about 80 MB) pushes the heap over the lowered threshold.
  const ballast = Array.from({ length: 100 }, (_, i) => new Array(100_000).fill(i + 0.5))
  assert.ok(heapRatio() > before * 3, `precondition: heap ratio ${heapRatio()} over ${before * 3}`)
  await sleep(200)
  const s = cache.getStats()
  assert.equal(s.clearedDueToMemoryPressure, 5)
  assert.equal(s.entries, 0)
  assert.equal(ballast.length, 100)
  await cache.close()
})

test('writes read the heap at most once a millisecond, sooner after a megabyte, always under pressure', () => {
  let reads = 0
  let clock = 1000
  const mp = new MemoryPressure({ heapUsedRatio: 0.8, lowWatermarkRatio: 0.7 }, () => (reads++, { used: 1, limit: 100 }), () => clock)
  const due = (/** @type {number} */ bytes) => {
    if (!mp.dueAfterWrite(bytes)) return false
    mp.check()
    return true
  }
  assert.equal(due(100), true, 'the first write reads the heap')
  for (let i = 0; i < 50; i++) assert.equal(due(1000), false, 'a burst of small writes within the millisecond does not')
  assert.equal(reads, 1)
  assert.equal(due(WRITE_CHECK_BYTES), true, 'a megabyte written since the last reading does')
  clock += WRITE_CHECK_MS
  assert.equal(due(10), true, 'so does the first write a millisecond later')
  mp.underPressure = true
  assert.equal(due(10), true, 'under pressure every write does')
  assert.equal(due(10), true)
  assert.equal(reads, 5)
})
