// Bounds: maxEntries, maxBytes (by serialized JSON length), oversized values, TTL per cache
// and per entry, LRU order refreshed on hit.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConversationCache } from '@povc/agent-core-native'
import { sleep, conversation } from './cache-helpers.mjs'

/**
 * Sum of JSON.stringify(v).length over the values the cache holds for `keys`.
 * @param {ConversationCache} cache @param {string[]} keys
 */
function heldJsonLength(cache, keys) {
  let sum = 0
  for (const k of keys) {
    const v = cache.peek(k)
    if (v !== undefined) sum += JSON.stringify(v).length
  }
  return sum
}

test('never more than maxEntries entries; least recently used go first', async () => {
  const cache = new ConversationCache({ maxEntries: 10 })
  const keys = Array.from({ length: 25 }, (_, i) => `t${i}`)
  for (const k of keys) {
    await cache.set(k, { k })
    assert.ok(cache.getStats().entries <= 10)
  }
  const s = cache.getStats()
  assert.equal(s.entries, 10)
  assert.equal(s.evictions, 15)
  assert.deepEqual(
    keys.filter((k) => cache.peek(k) !== undefined),
    keys.slice(15),
  )
  await cache.close()
})

test('bytes tracks the serialized size of what is held, never above maxBytes', async () => {
  const maxBytes = 200 * 1024
  const cache = new ConversationCache({ maxEntries: 1000, maxBytes })
  const keys = []
  for (let i = 0; i < 60; i++) {
    const k = `t${i}`
    keys.push(k)
    // Between 1 and 30 KB each, multi-byte text included.
    const v = conversation(1 + ((i * 7) % 30), i + 1)
    if (i % 2) await cache.set(k, v)
    else await cache.getOrLoad(k, async () => v)
    const s = cache.getStats()
    assert.ok(s.bytes <= maxBytes, `bytes ${s.bytes} > maxBytes`)
    const held = heldJsonLength(cache, keys)
    assert.ok(Math.abs(s.bytes - held) <= held * 0.1, `bytes ${s.bytes} vs held JSON ${held}`)
  }
  const s = cache.getStats()
  assert.ok(s.evictions > 0, 'the byte bound evicted')
  assert.ok(s.entries < 60)
  await cache.close()
})

test('a single value larger than maxBytes is not held, and counted', async () => {
  const cache = new ConversationCache({ maxBytes: 10 * 1024 })
  const small = conversation(2)
  await cache.set('small', small)
  const big = conversation(20)
  let calls = 0
  const got = await cache.getOrLoad('big', async () => {
    calls++
    return big
  })
  assert.equal(got, big, 'the caller still gets the value')
  assert.equal(cache.peek('big'), undefined)
  assert.equal(cache.peek('small'), small, 'an oversized value does not flush the others')
  await cache.set('big', big)
  assert.equal(cache.peek('big'), undefined)
  const s = cache.getStats()
  assert.equal(s.oversized, 2)
  assert.equal(s.entries, 1)
  // An oversized write over a held value drops the (now outdated) old one.
  await cache.set('small', conversation(20))
  assert.equal(cache.peek('small'), undefined)
  await cache.close()
})

test('entries expire after ttlMs', async () => {
  const cache = new ConversationCache({ ttlMs: 200 })
  const v = { v: 1 }
  await cache.set('t', v)
  assert.equal(await cache.get('t'), v)
  await sleep(260)
  assert.equal(cache.peek('t'), undefined)
  assert.equal(await cache.get('t'), null)
  let calls = 0
  await cache.getOrLoad('t', async () => (calls++, v))
  assert.equal(calls, 1, 'an expired entry is loaded again')
  const s = cache.getStats()
  assert.ok(s.expired >= 1)
  await cache.close()
})

test('a per-entry ttlMs overrides the cache TTL, and 0 means no expiry', async () => {
  // Margins of 200+ ms either side, so a slow machine cannot flip an answer.
  const cache = new ConversationCache({ ttlMs: 400 })
  await cache.set('short', { v: 1 }, { ttlMs: 20 })
  await cache.set('long', { v: 2 }, { ttlMs: 60_000 })
  await cache.set('forever', { v: 3 }, { ttlMs: 0 })
  await cache.set('default', { v: 4 })
  await sleep(100)
  assert.equal(cache.peek('short'), undefined)
  assert.deepEqual(cache.peek('default'), { v: 4 })
  await sleep(400)
  assert.equal(cache.peek('default'), undefined)
  assert.deepEqual(cache.peek('long'), { v: 2 })
  assert.deepEqual(cache.peek('forever'), { v: 3 })
  await cache.close()
})

test('expired entries stop counting in entries and bytes', async () => {
  const cache = new ConversationCache({ ttlMs: 20 })
  await cache.set('a', conversation(5))
  assert.ok(cache.getStats().bytes > 5000)
  await sleep(40)
  const s = cache.getStats()
  assert.equal(s.entries, 0)
  assert.equal(s.bytes, 0)
  await cache.close()
})

test('a hit refreshes LRU order (peek does not)', async () => {
  const cache = new ConversationCache({ maxEntries: 3 })
  for (const k of ['a', 'b', 'c']) await cache.set(k, { k })
  await cache.getOrLoad('a', async () => ({ k: 'reloaded' })) // a becomes most recent
  cache.peek('b') // b stays least recent
  await cache.set('d', { k: 'd' })
  assert.equal(cache.peek('b'), undefined, 'b was least recently used')
  assert.deepEqual(cache.peek('a'), { k: 'a' })
  await cache.get('c')
  await cache.set('e', { k: 'e' })
  assert.equal(cache.peek('a'), undefined)
  assert.deepEqual(cache.peek('c'), { k: 'c' })
  await cache.close()
})

test('defaults: 100 entries, 50 MiB, no REDIS_URL needed', async () => {
  const cache = new ConversationCache()
  for (let i = 0; i < 150; i++) await cache.set(`t${i}`, { i })
  const s = cache.getStats()
  assert.equal(s.entries, 100)
  assert.equal(s.maxEntries, 100)
  assert.equal(s.maxBytes, 50 * 1024 * 1024)
  await cache.close()
})
