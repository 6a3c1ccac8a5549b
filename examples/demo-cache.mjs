// Demo, cache part: an agent service answering requests for chat threads whose popularity
// follows a Zipf law (a few hot threads, a long tail), on the embedded default (L1 only,
// no Redis). A "database" with a few ms of latency is the loader; one request in ten
// appends a message (update + save). Prints hit rates, latency percentiles and memory.
//
//   node examples/demo-cache.mjs
import { ConversationCache } from '../lib/index.mjs'
import { makeConversation, rng } from '../benchmark/conversation.mjs'
import { zipf } from '../benchmark/zipf.mjs'

const THREADS = 2000
const REQUESTS = 20_000
const CONCURRENCY = 50
const ZIPF_S = 1.1

/** Thread ids drawn from a Zipf distribution over `n` ranks. */
function zipfThreads(n = THREADS, s = ZIPF_S, random = rng(42)) {
  const rank = zipf(n, s, random)
  return () => `thread-${rank()}`
}

// The "database": threads of 5 to 60 KB, 2-5 ms per read, 1 ms per write.
const sizes = [5, 10, 20, 40, 60]
const templates = sizes.map((kb, i) => makeConversation(kb * 1024, i + 1))
/** @type {Map<string, any>} */
const written = new Map()
let dbReads = 0
let dbWrites = 0
const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms))
const db = {
  async read(/** @type {string} */ id) {
    dbReads++
    await sleep(2 + (dbReads % 4))
    const saved = written.get(id)
    if (saved) return structuredClone(saved)
    const n = Number(id.slice(7))
    return { ...structuredClone(templates[n % templates.length]), threadId: id }
  },
  async write(/** @type {string} */ id, /** @type {unknown} */ value) {
    dbWrites++
    await sleep(1)
    written.set(id, value)
  },
}

const cache = new ConversationCache({
  maxEntries: 200,
  maxBytes: 8 * 1024 * 1024,
  ttlMs: 5 * 60_000,
  loader: (id) => db.read(id),
  loaderTimeoutMs: 2000,
  logger: { warn: (m, meta) => console.warn('[cache warn]', m, meta), error: (m, meta) => console.error('[cache error]', m, meta) },
})

const next = zipfThreads()
/** @type {{ hit: number[], miss: number[], update: number[] }} */
const latency = { hit: [], miss: [], update: [] }
const heapBefore = process.memoryUsage()
let issued = 0
let appended = 0
/** @type {Map<string, number>} appends per thread, to check that none was lost */
const appendsOf = new Map()

async function worker() {
  while (issued < REQUESTS) {
    const i = issued++
    const id = next()
    const t0 = performance.now()
    if (i % 10 === 9) {
      await cache.update(
        id,
        (conv) => ({
          .../** @type {any} */ (conv),
          messages: [.../** @type {any} */ (conv).messages, { id: `m${i}`, role: 'user', content: `follow-up ${i}` }],
        }),
        { save: (v) => db.write(id, v) },
      )
      appended++
      appendsOf.set(id, (appendsOf.get(id) ?? 0) + 1)
      latency.update.push(performance.now() - t0)
    } else {
      const wasHeld = cache.peek(id) !== undefined
      await cache.getOrLoad(id)
      latency[wasHeld ? 'hit' : 'miss'].push(performance.now() - t0)
    }
  }
}

const t0 = performance.now()
await Promise.all(Array.from({ length: CONCURRENCY }, worker))
const wall = performance.now() - t0

const pct = (/** @type {number[]} */ xs, /** @type {number} */ p) => {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]
}
const ms = (/** @type {number} */ x) => (x < 1 ? `${(x * 1000).toFixed(1)} us` : `${x.toFixed(2)} ms`)
const mb = (/** @type {number} */ b) => `${(b / 1024 / 1024).toFixed(1)} MB`
const s = cache.getStats()
const heapAfter = process.memoryUsage()
// Every appended message must be in the database: each update saw the one before it.
let lost = 0
for (const [id, n] of appendsOf) {
  const saved = written.get(id)
  const base = templates[Number(id.slice(7)) % templates.length].messages.length
  lost += n - ((saved?.messages.length ?? base) - base)
}

console.log(`\nPart 2: ConversationCache — ${REQUESTS} requests over ${THREADS} threads (Zipf s=${ZIPF_S}), ${CONCURRENCY} at a time, L1 only`)
console.log(`  (L1 holds at most ${s.maxEntries} threads / ${mb(s.maxBytes)}; the database answers in 2-5 ms; 1 request in 10 appends a message)\n`)
console.log(`  requests            ${REQUESTS} in ${(wall / 1000).toFixed(2)} s (${Math.round(REQUESTS / (wall / 1000))} req/s)`)
console.log(`  hit rate            L1 ${(s.l1HitRate * 100).toFixed(1)}%   L2 ${(s.l2HitRate * 100).toFixed(1)}% (disabled)   overall ${(s.overallHitRate * 100).toFixed(1)}%`)
console.log(`  database reads      ${dbReads} (of ${REQUESTS} requests; ${s.stampedePrevented} callers joined a read already under way)`)
console.log(`  database writes     ${dbWrites} (${appended} messages appended to ${appendsOf.size} threads; lost: ${lost})`)
console.log('\n  latency (ms)              p50        p95        p99     count')
for (const [name, xs] of /** @type {[string, number[]][]} */ ([
  ['request, L1 hit', latency.hit],
  ['request, miss (DB)', latency.miss],
  ['request, update+save', latency.update],
])) {
  console.log(`  ${name.padEnd(22)} ${ms(pct(xs, 50)).padStart(10)} ${ms(pct(xs, 95)).padStart(10)} ${ms(pct(xs, 99)).padStart(10)} ${String(xs.length).padStart(9)}`)
}
for (const tier of /** @type {const} */ (['l1', 'loader'])) {
  const l = s.latency[tier]
  console.log(`  ${`cache ${tier} (getStats)`.padEnd(22)} ${ms(l.p50).padStart(10)} ${ms(l.p95).padStart(10)} ${ms(l.p99).padStart(10)} ${String(l.count).padStart(9)}`)
}
console.log('\n  memory')
console.log(`  L1 holds            ${s.entries} threads, ${mb(s.bytes)} of JSON (bound ${mb(s.maxBytes)}); ${s.evictions} evicted by the bounds, ${s.clearedDueToMemoryPressure} under memory pressure`)
console.log(`  process heap        ${mb(heapBefore.heapUsed)} before -> ${mb(heapAfter.heapUsed)} after (the fake database's saved copies included); rss ${mb(heapAfter.rss)}`)
const h = await cache.health()
console.log(`  heap / V8 limit     ${(h.l1.heapUsedRatio * 100).toFixed(1)}% (pressure threshold 80%)`)
console.log('\n  metrics() excerpt (Prometheus):')
for (const line of cache.metrics().split('\n')) {
  if (/^agent_core_cache_(hits_total|misses_total|latency_seconds\{tier="l1",quantile="0.99"\}|bytes)/.test(line)) console.log(`    ${line}`)
}
await cache.close()
