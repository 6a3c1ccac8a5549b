// ConversationCache with its native Redis tier (L2) against real redis-server processes the
// tests start themselves: tiers, write-through, one-round-trip getMany, a cold start in a
// separate process, REDIS_URL, and Redis down at start / killed / frozen / password-protected.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { ConversationCache, RedisTier } from '@povc/agent-core-native'
import { startRedis } from './support/redis-server.mjs'
import { sleep, conversation, subscribed } from './cache-helpers.mjs'

const L2_TIMEOUT_MS = 50
const MARGIN_MS = 100
const LOADER_MS = 5

/** @param {string} redisUrl @param {Record<string, unknown>} [extra] */
const cacheOn = (redisUrl, extra = {}) => new ConversationCache({ redisUrl, l2TimeoutMs: L2_TIMEOUT_MS, ...extra })

/** MGET / GET calls the server has answered. @param {Awaited<ReturnType<typeof startRedis>>} server @param {string} cmd */
async function calls(server, cmd) {
  const m = new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(await server.command('INFO', 'commandstats'))
  return m ? Number(m[1]) : 0
}

test('tiers: loader fills L1 and L2; a fresh instance gets an L2 hit that warms its L1; writes go through', async () => {
  const server = await startRedis()
  let loads = 0
  const loader = async (/** @type {string} */ id) => { loads++; return { id, messages: ['hello'] } }
  const a = cacheOn(server.url, { loader })
  const b = cacheOn(server.url, { loader })
  try {
    assert.deepEqual(await a.getOrLoad('t1'), { id: 't1', messages: ['hello'] })
    assert.equal(loads, 1)
    await sleep(20) // the L2 write is not awaited by getOrLoad
    assert.ok((await server.command('EXISTS', 'agent-core:conv:{t1}')).startsWith(':1'))
    // b: L1 miss -> L2 hit (no loader), which warms b's L1.
    assert.deepEqual(await b.getOrLoad('t1'), { id: 't1', messages: ['hello'] })
    assert.equal(loads, 1)
    assert.equal(b.getStats().l2Hits, 1)
    assert.deepEqual(b.peek('t1'), { id: 't1', messages: ['hello'] })
    await b.get('t1')
    assert.equal(b.getStats().l1Hits, 1)
    // set and update write through; invalidate deletes from L2.
    const big = conversation(100)
    await a.set('t2', big)
    assert.deepEqual(await b.get('t2'), JSON.parse(JSON.stringify(big)))
    await a.update('t3', (cur) => ({ n: (/** @type {any} */ (cur)?.n ?? 0) + 1 }))
    assert.deepEqual(await b.get('t3'), { n: 1 })
    await a.invalidate('t2')
    assert.ok((await server.command('EXISTS', 'agent-core:conv:{t2}')).startsWith(':0'))
    const c = cacheOn(server.url)
    assert.equal(await c.get('t2'), null)
    await c.close()
    assert.equal(a.getStats().redisErrors, 0)
    const h = await a.health()
    assert.equal(h.l2.state, 'up')
    assert.equal(h.l2.circuit, 'closed')
  } finally {
    await a.close()
    await b.close()
    await server.stop()
  }
})

test('set, a loader fill and update store exactly JSON.stringify(value) in Redis (written from Rust)', async () => {
  const server = await startRedis()
  const value = { messages: [{ role: 'user', content: 'héllo 👋 日本語 "quoted" \n' + 'x'.repeat(9000) }], n: 1e21, d: new Date(0) }
  const c = cacheOn(server.url, { l2TimeoutMs: 5000, loader: async () => value })
  const reader = new RedisTier({ url: server.url, timeoutMs: 5000 })
  try {
    // Subscribed first: L1's byte count is checked below, and what an instance holds before
    // its first subscription is dropped when it comes in (cache-bus.test.mjs).
    await subscribed(c, 5000)
    await c.set('s', value)
    assert.equal((await reader.read('s'))?.json, JSON.stringify(value))
    assert.deepEqual(await c.getOrLoad('l'), value)
    for (let i = 0; i < 50 && (await reader.read('l'))?.json === null; i++) await sleep(10)
    assert.equal((await reader.read('l'))?.json, JSON.stringify(value))
    const next = await c.update('s', (cur) => ({ .../** @type {{}} */ (cur), more: ['ü'] }))
    assert.equal((await reader.read('s'))?.json, JSON.stringify(next))
    // L1's size of an entry is its text's length in UTF-16 units, as with a string.
    assert.equal(c.getStats().bytes, JSON.stringify(next).length + JSON.stringify(value).length)
  } finally {
    await c.close()
    await reader.close()
    await server.stop()
  }
})

test('getMany fetches all L1 misses in ONE round trip to Redis', async () => {
  const server = await startRedis()
  const a = cacheOn(server.url)
  const b = cacheOn(server.url)
  try {
    for (let i = 0; i < 20; i++) await a.set(`k${i}`, { i })
    await b.get('k0') // k0 now in b's L1
    const [mget0, get0] = [await calls(server, 'mget'), await calls(server, 'get')]
    const ids = Array.from({ length: 25 }, (_, i) => `k${i}`)
    const got = await b.getMany(ids)
    assert.deepEqual(got, ids.map((_, i) => (i < 20 ? { i } : null)))
    assert.equal((await calls(server, 'mget')) - mget0, 1)
    assert.equal((await calls(server, 'get')) - get0, 0)
    assert.equal(b.getStats().l2Hits, 1 + 19)
  } finally {
    await a.close()
    await b.close()
    await server.stop()
  }
})

test('gets issued in the same tick share one MGET (at most 32 keys each); each answers its own key', async () => {
  const server = await startRedis()
  const a = cacheOn(server.url)
  const b = cacheOn(server.url, { l2TimeoutMs: 5000 })
  try {
    for (let i = 0; i < 70; i++) await a.set(`k${i}`, { i })
    const mget0 = await calls(server, 'mget')
    // 70 gets of different keys (and two of missing ones) in one tick: 72 keys, 3 batches.
    const ids = [...Array.from({ length: 70 }, (_, i) => `k${i}`), 'none-1', 'none-2']
    const got = await Promise.all(ids.map((id) => b.get(id)))
    assert.deepEqual(got, ids.map((_, i) => (i < 70 ? { i } : null)))
    assert.equal((await calls(server, 'mget')) - mget0, 3, '32 + 32 + 8 keys')
    assert.equal(b.getStats().l2Hits, 70)
    assert.deepEqual(b.peek('k5'), { i: 5 }, 'a batched hit warms L1 as a lone one does')
    // A lone get is a read of its own, in the next microtask.
    const mget2 = await calls(server, 'mget')
    assert.deepEqual(await b.get('k69'), { i: 69 }, 'from L1')
    assert.equal((await calls(server, 'mget')) - mget2, 0)
    const d = cacheOn(server.url)
    try {
      assert.deepEqual(await d.get('k69'), { i: 69 })
      assert.equal((await calls(server, 'mget')) - mget2, 1)
    } finally {
      await d.close()
    }
  } finally {
    await a.close()
    await b.close()
    await server.stop()
  }
})

test('a batch whose read fails answers every get in it as a miss, counted once per get, without a caller error', async () => {
  const server = await startRedis()
  const a = cacheOn(server.url)
  try {
    await a.set('k1', { i: 1 })
    await a.set('k2', { i: 2 })
  } finally {
    await a.close()
  }
  /** @type {string[][]} */
  const batches = []
  const tier = new RedisTier({ url: server.url, timeoutMs: 5000 })
  const failing = {
    read: (/** @type {string} */ k) => tier.read(k),
    readMany: (/** @type {string[]} */ keys) => { batches.push(keys); return Promise.reject(new Error('boom')) },
    write: tier.write.bind(tier), fill: tier.fill.bind(tier), del: tier.del.bind(tier),
    invalidateTag: tier.invalidateTag.bind(tier), health: tier.health.bind(tier), close: tier.close.bind(tier),
  }
  const { kL2Tier } = await import('../lib/cache/l2-seam.js')
  const c = new ConversationCache({ [kL2Tier]: failing })
  try {
    assert.deepEqual(await Promise.all([c.get('k1'), c.get('k2'), c.get('k3')]), [null, null, null])
    assert.deepEqual(batches, [['k1', 'k2', 'k3']])
    const s = c.getStats()
    assert.equal(s.redisErrors, 3)
    assert.equal(s.misses, 3)
    assert.deepEqual(await c.get('k1'), { i: 1 }, 'a lone get uses read')
  } finally {
    await c.close()
    await server.stop()
  }
})

test('cold start: a brand-new instance in a SEPARATE process gets an L2 hit without calling its loader', async () => {
  const server = await startRedis()
  const a = cacheOn(server.url)
  try {
    const value = conversation(50)
    await a.set('thread-cold', value)
    const entry = fileURLToPath(new URL('../lib/index.js', import.meta.url))
    const script = `
      const { ConversationCache } = require(${JSON.stringify(entry)})
      let loaderCalls = 0
      const cache = new ConversationCache({ redisUrl: ${JSON.stringify(server.url)}, loader: async () => { loaderCalls++; return null } })
      cache.getOrLoad('thread-cold').then(async (v) => {
        const s = cache.getStats()
        await cache.close()
        process.stdout.write(JSON.stringify({ v, loaderCalls, l2Hits: s.l2Hits, misses: s.misses }))
      })`
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    const code = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('child did not exit within 15 s')) }, 15_000)
      child.on('exit', (c) => { clearTimeout(timer); resolve(c) })
    })
    assert.equal(code, 0)
    const r = JSON.parse(out)
    assert.equal(r.loaderCalls, 0)
    assert.equal(r.l2Hits, 1)
    assert.equal(r.misses, 0)
    assert.deepEqual(r.v, JSON.parse(JSON.stringify(value)))
  } finally {
    await a.close()
    await server.stop()
  }
})

test('REDIS_URL is honoured when redisUrl is not given', async () => {
  const server = await startRedis()
  const saved = process.env.REDIS_URL
  process.env.REDIS_URL = server.url
  const a = new ConversationCache()
  const b = new ConversationCache()
  try {
    await a.set('env', { from: 'env' })
    assert.deepEqual(await b.get('env'), { from: 'env' })
    assert.equal(b.getStats().l2Hits, 1)
  } finally {
    if (saved === undefined) delete process.env.REDIS_URL
    else process.env.REDIS_URL = saved
    await a.close()
    await b.close()
    await server.stop()
  }
})

test('Redis down at start: L1 + loader answer, then L2 is used once Redis appears', async () => {
  const server = await startRedis({ start: false })
  const loader = async (/** @type {string} */ id) => { await sleep(LOADER_MS); return { id } }
  const a = cacheOn(server.url, { loader })
  try {
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now()
      assert.deepEqual(await a.getOrLoad(`d${i}`), { id: `d${i}` })
      assert.ok(performance.now() - t0 < L2_TIMEOUT_MS + LOADER_MS + MARGIN_MS)
    }
    assert.equal((await a.health()).l2.state, 'down')
    assert.ok(a.getStats().redisErrors >= 1)
    await server.restart()
    const t0 = performance.now()
    for (;;) {
      await a.set('late', { ok: true })
      const fresh = cacheOn(server.url)
      const v = await fresh.get('late')
      await fresh.close()
      if (v !== null) break
      assert.ok(performance.now() - t0 < 3000, 'L2 not used within 3 s of Redis appearing')
      await sleep(50)
    }
    assert.ok(performance.now() - t0 < 2000, `L2 used ${(performance.now() - t0).toFixed(0)} ms after Redis appeared`)
    assert.equal((await a.health()).l2.state, 'up')
  } finally {
    await a.close()
    await server.stop()
  }
})

test('1,000 concurrent getOrLoad across 200 keys during a kill and restart: zero rejections; hits resume within 2 s', async () => {
  const server = await startRedis()
  const loader = async (/** @type {string} */ id) => { await sleep(LOADER_MS); return { id, at: Date.now() } }
  const a = cacheOn(server.url, { loader, ttlMs: 1 })
  try {
    const wave = () => Promise.allSettled(Array.from({ length: 1000 }, (_, i) => a.getOrLoad(`k${i % 200}`)))
    const first = wave()
    await sleep(5)
    await server.kill('SIGKILL')
    const second = wave()
    await sleep(30)
    const restarted = server.restart()
    const third = wave()
    const all = [...(await first), ...(await second), ...(await third)]
    await restarted
    const rejected = all.filter((r) => r.status === 'rejected')
    assert.equal(rejected.length, 0, String(/** @type {PromiseRejectedResult} */ (rejected[0])?.reason))
    assert.equal(all.length, 3000)
    assert.ok(a.getStats().redisErrors > 0, 'the kill was seen by the tier')
    // L2 hits resume: a fresh instance finds what `a` writes.
    const t0 = performance.now()
    for (;;) {
      await a.set('resume', { ok: 1 })
      const fresh = cacheOn(server.url)
      const v = await fresh.get('resume')
      await fresh.close()
      if (v !== null) break
      assert.ok(performance.now() - t0 < 3000, 'no L2 hit within 3 s of the restart')
      await sleep(50)
    }
    assert.ok(performance.now() - t0 < 2000, `L2 hits resumed ${(performance.now() - t0).toFixed(0)} ms after the restart`)
  } finally {
    await a.close()
    await server.stop()
  }
})

test('frozen Redis (SIGSTOP): calls answer within l2TimeoutMs + loader time; breaker state in health() and metrics()', async () => {
  const server = await startRedis()
  const loader = async (/** @type {string} */ id) => { await sleep(LOADER_MS); return { id } }
  const a = cacheOn(server.url, { loader, ttlMs: 1 })
  try {
    await a.set('warm', { w: 1 })
    await server.kill('SIGSTOP')
    for (let i = 0; i < 12; i++) {
      const t0 = performance.now()
      assert.deepEqual(await a.getOrLoad(`f${i}`), { id: `f${i}` })
      const took = performance.now() - t0
      assert.ok(took <= L2_TIMEOUT_MS + LOADER_MS + MARGIN_MS, `getOrLoad took ${took.toFixed(1)} ms`)
    }
    const s = a.getStats()
    assert.ok(s.l2Timeouts >= 5, JSON.stringify(s))
    assert.equal(s.l2Circuit, 'open')
    assert.ok(s.l2ShortCircuited >= 1)
    const h = await a.health()
    assert.equal(h.l2.state, 'down')
    assert.equal(h.l2.circuit, 'open')
    assert.match(a.metrics(), /agent_core_cache_redis_circuit_state\{tier="l2",state="open"\} 1/)
    await sleep(1050) // default cool-down 1 s
    assert.equal(a.getStats().l2Circuit, 'half-open')
    assert.match(a.metrics(), /agent_core_cache_redis_circuit_state\{tier="l2",state="half-open"\} 1/)
    await server.kill('SIGCONT')
    await sleep(20)
    assert.deepEqual(await a.get('warm'), { w: 1 }) // the probe succeeds: an L2 hit
    assert.equal(a.getStats().l2Circuit, 'closed')
    assert.equal((await a.health()).l2.circuit, 'closed')
    assert.match(a.metrics(), /agent_core_cache_redis_circuit_state\{tier="l2",state="closed"\} 1/)
  } finally {
    await server.kill('SIGCONT')
    await a.close()
    await server.stop()
  }
})

test('password-protected Redis: no password or full URL in errors, logs, health() or metrics()', async () => {
  const password = 'Sup3r-S3cret-pw'
  const server = await startRedis({ user: 'bob', password })
  const wrong = 'N0t-The-Pa55word'
  const badUrl = `redis://bob:${wrong}@127.0.0.1:${server.port}/0`
  /** @type {string[]} */
  const logged = []
  const logger = { warn: (/** @type {string} */ m, /** @type {object} */ meta) => logged.push(m + JSON.stringify(meta ?? {})), error: (/** @type {string} */ m, /** @type {object} */ meta) => logged.push(m + JSON.stringify(meta ?? {})) }
  const good = cacheOn(server.url, { logger })
  const bad = cacheOn(badUrl, { logger, loader: async () => ({ fallback: true }) })
  try {
    await good.set('p', { ok: 1 })
    const reader = cacheOn(server.url)
    assert.deepEqual(await reader.get('p'), { ok: 1 })
    await reader.close()
    assert.deepEqual(await bad.getOrLoad('p'), { fallback: true })
    await bad.set('q', { q: 1 })
    let thrown = ''
    try {
      new ConversationCache({ redisUrl: badUrl, maxEntries: -1 })
    } catch (e) {
      thrown = String(/** @type {Error} */ (e).message)
    }
    const h = await bad.health()
    assert.equal(h.l2.state, 'down')
    const seen = JSON.stringify({ h, hg: await good.health(), stats: bad.getStats(), m: bad.metrics(), mg: good.metrics(), logged, thrown })
    for (const secret of [password, wrong, badUrl, server.url]) {
      assert.ok(!seen.includes(secret), `leaked ${secret}`)
    }
    assert.ok(bad.getStats().redisErrors >= 1)
  } finally {
    await good.close()
    await bad.close()
    await server.stop()
  }
})
