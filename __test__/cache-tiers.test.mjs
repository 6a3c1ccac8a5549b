// The tiers and the methods: L1 hits resolve the stored object itself; get/peek/set/getMany/
// invalidate/invalidateTag; and the L2 seam (a JS stand-in for the Redis tier of issue 4).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConversationCache } from '@povc/agent-core-native'
import { fakeL2, kL2Tier, conversation, sleep, withCode } from './cache-helpers.mjs'

/** @param {ReturnType<typeof fakeL2>} l2 @param {object} [o] */
const withL2 = (l2, o = {}) => new ConversationCache(/** @type {any} */ ({ ...o, [kL2Tier]: l2 }))

test('an L1 hit resolves the very object stored, no copy', async () => {
  const cache = new ConversationCache()
  const v = conversation(10)
  assert.equal(await cache.getOrLoad('t', async () => v), v)
  assert.equal(await cache.getOrLoad('t', async () => ({ other: true })), v)
  assert.equal(await cache.get('t'), v)
  assert.equal(cache.peek('t'), v)
  const w = { w: 1 }
  await cache.set('w', w)
  assert.equal(cache.peek('w'), w)
  assert.deepEqual(await cache.getMany(['w', 'none', 't']), [w, null, v])
  assert.equal((await cache.getMany(['t']))[0], v)
  await cache.close()
})

test('get and peek never load; misses are null / undefined', async () => {
  const cache = new ConversationCache({ loader: async () => ({ loaded: true }) })
  assert.equal(await cache.get('x'), null)
  assert.equal(cache.peek('x'), undefined)
  const s = cache.getStats()
  assert.equal(s.loads, 0)
  assert.equal(s.misses, 1, 'get counts; peek does not')
  await cache.close()
})

test('invalidate drops a thread', async () => {
  const cache = new ConversationCache()
  await cache.set('a', { a: 1 })
  await cache.set('b', { b: 1 })
  await cache.invalidate('a')
  await cache.invalidate('never-there')
  assert.equal(cache.peek('a'), undefined)
  assert.deepEqual(cache.peek('b'), { b: 1 })
  assert.equal(cache.getStats().invalidations, 1)
  await cache.close()
})

test('invalidateTag drops every thread with the tag and says how many', async () => {
  const cache = new ConversationCache()
  await cache.set('t1', { n: 1 }, { tags: ['user:1', 'org:1'] })
  await cache.set('t2', { n: 2 }, { tags: ['user:1'] })
  await cache.set('t3', { n: 3 }, { tags: ['user:2', 'org:1'] })
  await cache.set('t4', { n: 4 })
  assert.equal(await cache.invalidateTag('user:1'), 2)
  assert.equal(cache.peek('t1'), undefined)
  assert.equal(cache.peek('t2'), undefined)
  assert.deepEqual(cache.peek('t3'), { n: 3 })
  assert.equal(await cache.invalidateTag('user:1'), 0)
  // t1 is gone, so org:1 now covers t3 only.
  assert.equal(await cache.invalidateTag('org:1'), 1)
  assert.deepEqual(cache.peek('t4'), { n: 4 })
  await cache.close()
})

test('tags: a set without tags keeps them, [] clears them, an evicted entry leaves its tags', async () => {
  const cache = new ConversationCache({ maxEntries: 2 })
  await cache.set('a', { v: 1 }, { tags: ['x'] })
  await cache.set('a', { v: 2 })
  await cache.update('a', () => ({ v: 3 }))
  assert.equal(await cache.invalidateTag('x'), 1, 'tags survive set without tags and update')
  await cache.set('b', { v: 1 }, { tags: ['y'] })
  await cache.set('b', { v: 2 }, { tags: [] })
  assert.equal(await cache.invalidateTag('y'), 0)
  await cache.set('c', { v: 1 }, { tags: ['z'] })
  await cache.set('d', { v: 1 })
  await cache.set('e', { v: 1 }) // evicts c
  assert.equal(cache.peek('c'), undefined)
  assert.equal(await cache.invalidateTag('z'), 0)
  await cache.close()
})

test('set rejects null and values with no JSON form, and keeps the old value', async () => {
  const cache = new ConversationCache()
  const old = { v: 1 }
  await cache.set('t', old)
  await assert.rejects(cache.set('t', null), withCode('ERR_INVALID_ARG', TypeError))
  await assert.rejects(cache.set('t', { n: 1n }), withCode('ERR_BIGINT', TypeError))
  assert.equal(cache.peek('t'), old)
  await cache.close()
})

test('L2 seam: an L1 miss reads L2 before the loader, and an L2 hit warms L1', async () => {
  const l2 = fakeL2()
  const cache = withL2(l2)
  l2.store.set('t', JSON.stringify({ from: 'l2' }))
  let loads = 0
  const loader = async () => (loads++, { from: 'db' })
  const first = await cache.getOrLoad('t', loader)
  assert.deepEqual(first, { from: 'l2' })
  assert.equal(loads, 0)
  assert.equal(await cache.getOrLoad('t', loader), first, 'then an L1 hit on the parsed object')
  assert.equal(l2.calls.read, 1)
  const s = cache.getStats()
  assert.equal(s.l2Hits, 1)
  assert.equal(s.l1Hits, 1)
  assert.equal(s.latency.l2.count, 1)
  await cache.close()
  assert.equal(l2.calls.close, 1, 'close() closes L2')
})

test('L2 seam: a full miss loads once and fills L1 and L2 with the serialized JSON', async () => {
  const l2 = fakeL2({ latencyMs: 5 })
  const cache = withL2(l2, { redisTtlSeconds: 120 })
  const v = conversation(3)
  let loads = 0
  const all = await Promise.all(Array.from({ length: 20 }, () => cache.getOrLoad('t', async () => (loads++, v))))
  assert.ok(all.every((r) => r === v))
  assert.equal(loads, 1)
  assert.equal(l2.calls.read, 1, 'one L2 read for the whole stampede')
  await sleep(10)
  assert.equal(l2.store.get('t'), JSON.stringify(v))
  assert.deepEqual(l2.ttls, [120])
  await cache.set('u', { u: 1 }, { ttlMs: 1500 })
  assert.deepEqual(l2.ttls, [120, 2], 'a per-entry ttlMs goes to L2 in whole seconds')
  await cache.close()
})

test('L2 seam: get, getMany in one round trip, invalidate and invalidateTag reach L2', async () => {
  const l2 = fakeL2()
  const cache = withL2(l2)
  l2.store.set('b', JSON.stringify({ b: 1 }))
  l2.store.set('c', JSON.stringify({ c: 1 }))
  l2.store.set('bad', '{not json')
  await cache.set('a', { a: 1 }, { tags: ['g'] })
  assert.deepEqual(await cache.getMany(['a', 'b', 'c', 'none', 'bad']), [{ a: 1 }, { b: 1 }, { c: 1 }, null, null])
  assert.equal(l2.calls.readMany, 1)
  assert.deepEqual(cache.peek('b'), { b: 1 }, 'getMany warms L1')
  assert.equal(await cache.get('none'), null)
  assert.deepEqual(await cache.get('c'), { c: 1 })
  await cache.invalidate('b')
  assert.equal(l2.store.has('b'), false)
  assert.equal(await cache.invalidateTag('g'), 1)
  assert.equal(l2.store.has('a'), false)
  const s = cache.getStats()
  assert.equal(s.l2Hits, 2)
  await cache.close()
})

test('L2 seam: a failing L2 is counted, never surfaces, and the loader answers', async () => {
  const l2 = fakeL2({ failing: true })
  /** @type {string[]} */
  const logged = []
  const cache = withL2(l2, { logger: { warn: () => {}, error: (/** @type {string} */ m) => logged.push(m) } })
  const v = { v: 1 }
  assert.equal(await cache.getOrLoad('t', async () => v), v)
  assert.equal(await cache.get('x'), null)
  assert.deepEqual(await cache.getMany(['y']), [null])
  await cache.invalidate('t')
  await sleep(5)
  assert.ok(cache.getStats().redisErrors >= 4)
  assert.ok(logged.length >= 4)
  await cache.close()
})

test('health reports L1 and L2 disabled when there is no L2', async () => {
  const cache = new ConversationCache()
  await cache.set('a', { a: 1 })
  const h = await cache.health()
  assert.equal(h.l1.state, 'up')
  assert.equal(h.l1.entries, 1)
  assert.equal(h.l1.bytes, 7)
  assert.ok(h.l1.heapUsedRatio > 0 && h.l1.heapUsedRatio < 1)
  assert.deepEqual(h.l2, { state: 'disabled', circuit: 'n/a' })
  const l2 = fakeL2()
  const withTier = withL2(l2)
  assert.deepEqual((await withTier.health()).l2, { state: 'up', latencyMs: 0.2, circuit: 'closed' })
  await withTier.close()
  await cache.close()
  assert.equal((await cache.health()).l1.state, 'closed')
})

test('redisUrl pointing nowhere: constructs, answers from L1, L2 reported down', async () => {
  const a = new ConversationCache({ redisUrl: 'redis://127.0.0.1:1' })
  await a.set('t', { t: 1 })
  assert.deepEqual(await a.get('t'), { t: 1 })
  assert.equal((await a.health()).l2.state, 'down')
  await a.close()
})

test('the package exports ConversationCache and the native CacheMetrics from both module systems', async () => {
  const { createRequire } = await import('node:module')
  const cjs = createRequire(import.meta.url)('@povc/agent-core-native')
  const esm = await import('@povc/agent-core-native')
  assert.equal(esm.ConversationCache, cjs.ConversationCache)
  assert.equal(typeof esm.ConversationCache, 'function')
  assert.equal(esm.CacheMetrics, cjs.CacheMetrics)
  const m = new esm.CacheMetrics(['a'])
  m.record(0, new Float64Array([1, 2, 3]), 2)
  assert.equal(m.summary(0).count, 2)
})
