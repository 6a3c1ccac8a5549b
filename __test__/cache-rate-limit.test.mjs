// Rate limit: a token bucket on loader calls only.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConversationCache } from '@povc/agent-core-native'
import { withCode } from './cache-helpers.mjs'

test('excess loader calls wait for a token; beyond maxWaitMs they reject with ERR_RATE_LIMITED', async () => {
  // 5 tokens per 100 ms: a burst of 5, then one every 20 ms; waits of up to 50 ms allowed.
  const cache = new ConversationCache({ rateLimit: { tokensPerInterval: 5, interval: 100, maxWaitMs: 50 } })
  let loads = 0
  const loader = async (/** @type {string} */ id) => (loads++, { id })
  const t0 = performance.now()
  const settled = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => cache.getOrLoad(`k${i}`, loader)))
  const took = performance.now() - t0
  const ok = settled.filter((r) => r.status === 'fulfilled').length
  const limited = settled.filter((r) => r.status === 'rejected')
  // 5 at once, then the ones whose token comes within 50 ms (at 20, 40 ms): 7 served.
  assert.equal(ok, 7)
  assert.equal(loads, 7)
  assert.equal(limited.length, 5)
  for (const r of limited) {
    const e = /** @type {any} */ (r).reason
    assert.equal(e.code, 'ERR_RATE_LIMITED')
    assert.match(e.message, /maxWaitMs/)
  }
  assert.ok(took >= 35, `the waiting calls waited (${took} ms)`)
  assert.equal(cache.getStats().rateLimited, 5)
  await cache.close()
})

test('hits are never limited', async () => {
  const cache = new ConversationCache({ rateLimit: { tokensPerInterval: 1, interval: 'minute', maxWaitMs: 0 } })
  const v = { v: 1 }
  assert.equal(await cache.getOrLoad('t', async () => v), v)
  await assert.rejects(cache.getOrLoad('other', async () => v), withCode('ERR_RATE_LIMITED'))
  for (let i = 0; i < 1000; i++) assert.equal(await cache.getOrLoad('t', async () => v), v)
  assert.equal(await cache.get('t'), v)
  await cache.close()
})

test('a stampede takes one token: joined callers do not call the loader', async () => {
  const cache = new ConversationCache({ rateLimit: { tokensPerInterval: 1, interval: 'second', maxWaitMs: 0 } })
  const all = await Promise.all(Array.from({ length: 100 }, () => cache.getOrLoad('t', async () => ({ v: 1 }))))
  assert.equal(all.length, 100)
  assert.equal(cache.getStats().rateLimited, 0)
  await cache.close()
})

test('close() rejects calls waiting for a token with ERR_CLOSED', async () => {
  const cache = new ConversationCache({ rateLimit: { tokensPerInterval: 1, interval: 'second', maxWaitMs: 5000 } })
  await cache.getOrLoad('a', async () => ({}))
  const waiting = cache.getOrLoad('b', async () => ({}))
  await cache.close()
  await assert.rejects(waiting, withCode('ERR_CLOSED'))
})
