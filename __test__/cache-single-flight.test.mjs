// Single flight: one loader call per cold key, shared errors, null not cached, stuck
// loaders, loaderTimeoutMs.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConversationCache } from '@povc/agent-core-native'
import { sleep, withCode, conversation } from './cache-helpers.mjs'

test('1,000 concurrent getOrLoad on a cold key run the loader once and all get the value', async () => {
  const cache = new ConversationCache()
  const value = conversation(10)
  let calls = 0
  const loader = async () => {
    calls++
    await sleep(20)
    return value
  }
  const results = await Promise.all(Array.from({ length: 1000 }, () => cache.getOrLoad('cold', loader)))
  assert.equal(calls, 1)
  assert.equal(results.length, 1000)
  for (const r of results) assert.equal(r, value)
  const s = cache.getStats()
  assert.equal(s.stampedePrevented, 999)
  assert.equal(s.misses, 1000)
  assert.equal(s.loads, 1)
  // ... and the next call is an L1 hit on the very object.
  assert.equal(await cache.getOrLoad('cold', loader), value)
  assert.equal(calls, 1)
  assert.equal(cache.getStats().l1Hits, 1)
  await cache.close()
})

test('a throwing loader rejects every waiter with that error, caches nothing, and the next call retries', async () => {
  const cache = new ConversationCache()
  const boom = new Error('db down')
  let calls = 0
  const failing = async () => {
    calls++
    await sleep(5)
    throw boom
  }
  const settled = await Promise.allSettled(Array.from({ length: 50 }, () => cache.getOrLoad('k', failing)))
  assert.equal(calls, 1)
  for (const r of settled) {
    assert.equal(r.status, 'rejected')
    assert.equal(/** @type {PromiseRejectedResult} */ (r).reason, boom)
  }
  assert.equal(cache.peek('k'), undefined)
  assert.equal(cache.getStats().entries, 0)
  assert.equal(cache.getStats().loaderErrors, 1)
  const v = { ok: true }
  assert.equal(await cache.getOrLoad('k', async () => v), v)
  assert.equal(cache.peek('k'), v)
  await cache.close()
})

test('a loader that throws synchronously rejects (never throws from getOrLoad)', async () => {
  const cache = new ConversationCache()
  const boom = new Error('sync')
  const p = cache.getOrLoad('k', () => {
    throw boom
  })
  assert.ok(p instanceof Promise)
  await assert.rejects(p, (e) => e === boom)
  await cache.close()
})

test('a loader returning null or undefined caches nothing; negativeTtlMs caches the absence', async () => {
  const cache = new ConversationCache()
  let calls = 0
  const nothing = async () => {
    calls++
    return null
  }
  assert.equal(await cache.getOrLoad('missing', nothing), null)
  assert.equal(await cache.getOrLoad('missing', async () => undefined), null)
  assert.equal(await cache.getOrLoad('missing', nothing), null)
  assert.equal(calls, 2)
  assert.equal(cache.peek('missing'), undefined)
  assert.equal(cache.getStats().entries, 0)
  await cache.close()

  const neg = new ConversationCache({ negativeTtlMs: 200 })
  calls = 0
  assert.equal(await neg.getOrLoad('missing', nothing), null)
  assert.equal(await neg.getOrLoad('missing', nothing), null)
  assert.equal(calls, 1, 'the absence is remembered')
  assert.equal(neg.peek('missing'), null)
  assert.equal(await neg.get('missing'), null)
  await sleep(260)
  assert.equal(await neg.getOrLoad('missing', nothing), null)
  assert.equal(calls, 2, 'and forgotten after negativeTtlMs')
  await neg.close()
})

test('a loader that never settles does not block other keys', async () => {
  const cache = new ConversationCache()
  const stuck = cache.getOrLoad('stuck', () => new Promise(() => {}))
  let stuckSettled = false
  stuck.then(
    () => (stuckSettled = true),
    () => (stuckSettled = true),
  )
  const v = { id: 'other' }
  const t0 = performance.now()
  assert.equal(await cache.getOrLoad('other', async () => v), v)
  assert.ok(performance.now() - t0 < 1000)
  assert.equal(await cache.get('other'), v)
  assert.equal(stuckSettled, false)
  // close() rejects the stuck flight's callers, so nothing is left hanging.
  await cache.close()
  await assert.rejects(stuck, withCode('ERR_CLOSED'))
})

test('loaderTimeoutMs rejects every waiter with ERR_LOADER_TIMEOUT; a later result is not cached', async () => {
  const cache = new ConversationCache({ loaderTimeoutMs: 30 })
  let calls = 0
  const slow = async () => {
    calls++
    await sleep(300)
    return { late: true }
  }
  const t0 = performance.now()
  const settled = await Promise.allSettled(Array.from({ length: 10 }, () => cache.getOrLoad('slow', slow)))
  const took = performance.now() - t0
  assert.equal(calls, 1)
  for (const r of settled) {
    assert.equal(r.status, 'rejected')
    const e = /** @type {any} */ (r).reason
    assert.equal(e.code, 'ERR_LOADER_TIMEOUT')
    assert.ok(e instanceof Error)
    assert.match(e.message, /loaderTimeoutMs/)
  }
  // Rejected at the deadline, well before the loader itself ends (300 ms).
  assert.ok(took >= 25 && took < 250, `rejected after ${took} ms`)
  await sleep(300)
  assert.equal(cache.peek('slow'), undefined, 'the late result is not cached')
  const s = cache.getStats()
  assert.equal(s.loaderTimeouts, 1)
  assert.equal(s.loaderErrors, 1)
  // The next call tries again.
  const fast = { fast: true }
  assert.equal(await cache.getOrLoad('slow', async () => fast), fast)
  await cache.close()
})

test('loaderTimeoutMs times the loader only: a loader on time is not failed by the serialization after it', async () => {
  const cache = new ConversationCache({ loaderTimeoutMs: 1 })
  // About 3 MB: serializing it takes several event-loop turns, far longer than 1 ms.
  const big = conversation(3 * 1024)
  const got = await cache.getOrLoad('big', () => big)
  assert.equal(got, big)
  assert.equal(cache.peek('big'), big)
  const s = cache.getStats()
  assert.equal(s.loaderTimeouts, 0)
  assert.equal(s.loaderErrors, 0)
  await cache.close()
})

test('invalidate during a load: the callers get the loaded value but it is not cached', async () => {
  const cache = new ConversationCache()
  /** @type {(v: unknown) => void} */
  let release = () => {}
  const first = cache.getOrLoad('k', () => new Promise((/** @type {(v: unknown) => void} */ r) => (release = r)))
  await sleep(1)
  await cache.invalidate('k')
  const fresh = { v: 2 }
  const second = cache.getOrLoad('k', async () => fresh)
  const old = { v: 1 }
  release(old)
  assert.equal(await first, old)
  assert.equal(await second, fresh, 'a call after invalidate starts a new load')
  assert.equal(cache.peek('k'), fresh)
  await cache.close()
})

test('getOrLoad uses options.loader when none is passed, and needs one of them', async () => {
  const seen = /** @type {string[]} */ ([])
  const cache = new ConversationCache({
    loader: async (id) => {
      seen.push(id)
      return { id }
    },
  })
  assert.deepEqual(await cache.getOrLoad('a'), { id: 'a' })
  assert.deepEqual(seen, ['a'])
  await cache.close()
  const bare = new ConversationCache()
  await assert.rejects(bare.getOrLoad('a'), withCode('ERR_INVALID_ARG', TypeError))
  await assert.rejects(bare.getOrLoad('a', /** @type {any} */ ('not a function')), withCode('ERR_INVALID_ARG', TypeError))
  await bare.close()
})
