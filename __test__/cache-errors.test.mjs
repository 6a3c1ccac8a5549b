// Bad input: keys, options, values with no JSON form.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConversationCache } from '@povc/agent-core-native'
import { withCode } from './cache-helpers.mjs'

const BAD_KEYS = ['', 42, null, undefined, {}, ['a'], 'x'.repeat(1025), 'é'.repeat(513), '😀'.repeat(257)]

test('threadIds that are empty, not strings or over 1,024 UTF-8 bytes: TypeError ERR_INVALID_KEY', async () => {
  const cache = new ConversationCache()
  const loader = async () => ({})
  for (const k of BAD_KEYS) {
    const key = /** @type {any} */ (k)
    const isKeyError = withCode('ERR_INVALID_KEY', TypeError)
    await assert.rejects(cache.getOrLoad(key, loader), isKeyError, `getOrLoad ${String(k).slice(0, 10)}`)
    await assert.rejects(cache.get(key), isKeyError)
    await assert.rejects(cache.set(key, { v: 1 }), isKeyError)
    await assert.rejects(cache.getMany(['ok', key]), isKeyError)
    await assert.rejects(cache.invalidate(key), isKeyError)
    await assert.rejects(cache.update(key, () => ({})), isKeyError)
    assert.throws(() => cache.peek(key), isKeyError)
  }
  // The limits themselves are fine: 1,024 bytes, in 1-, 2- and 4-byte characters.
  for (const k of ['x'.repeat(1024), 'é'.repeat(512), '😀'.repeat(256), 'a']) {
    await cache.set(k, { ok: true })
    assert.deepEqual(cache.peek(k), { ok: true })
  }
  assert.equal(cache.getStats().loads, 0)
  await cache.close()
})

test('a loader result with a cycle or a BigInt: every caller gets the serializer error, nothing is cached', async () => {
  const cache = new ConversationCache()
  /** @type {any} */
  const cyclic = { messages: [] }
  cyclic.messages.push(cyclic)
  const settled = await Promise.allSettled(Array.from({ length: 5 }, () => cache.getOrLoad('c', async () => cyclic)))
  for (const r of settled) {
    assert.equal(r.status, 'rejected')
    const e = /** @type {any} */ (r).reason
    assert.ok(withCode('ERR_CIRCULAR', TypeError)(e), String(e))
  }
  await assert.rejects(cache.getOrLoad('b', async () => ({ tokens: 10n })), withCode('ERR_BIGINT', TypeError))
  assert.equal(cache.peek('c'), undefined)
  assert.equal(cache.peek('b'), undefined)
  assert.equal(cache.getStats().entries, 0)
  // The next call retries.
  assert.deepEqual(await cache.getOrLoad('c', async () => ({ fine: 1 })), { fine: 1 })
  await cache.close()
})

test('invalid options: ERR_INVALID_OPTION naming the option', () => {
  /** @type {Array<[object, string, Function]>} */
  const cases = [
    [{ maxEntries: 0 }, 'maxEntries', RangeError],
    [{ maxEntries: 1.5 }, 'maxEntries', RangeError],
    [{ maxEntries: '10' }, 'maxEntries', TypeError],
    [{ maxSize: -1 }, 'maxSize', RangeError],
    [{ maxSize: 5, maxEntries: 5 }, 'maxSize', RangeError],
    [{ maxBytes: Infinity }, 'maxBytes', RangeError],
    [{ ttlMs: -1 }, 'ttlMs', RangeError],
    [{ ttl: NaN }, 'ttl', RangeError],
    [{ redisTtl: 0 }, 'redisTtl', RangeError],
    [{ redisTtlSeconds: 'x' }, 'redisTtlSeconds', TypeError],
    [{ redisUrl: 'http://cache:6379' }, 'redisUrl', RangeError],
    [{ redisUrl: 'not a url' }, 'redisUrl', RangeError],
    [{ redisUrl: 5 }, 'redisUrl', TypeError],
    [{ keyPrefix: 1 }, 'keyPrefix', TypeError],
    [{ loader: 'db' }, 'loader', TypeError],
    [{ loaderTimeoutMs: 0 }, 'loaderTimeoutMs', RangeError],
    [{ l2TimeoutMs: -5 }, 'l2TimeoutMs', RangeError],
    [{ rateLimit: 5 }, 'rateLimit', TypeError],
    [{ rateLimit: { tokensPerInterval: 0, interval: 'second' } }, 'rateLimit.tokensPerInterval', RangeError],
    [{ rateLimit: { tokensPerInterval: 1, interval: 'hour' } }, 'rateLimit.interval', RangeError],
    [{ rateLimit: { tokensPerInterval: 1, interval: 'second', maxWaitMs: -1 } }, 'rateLimit.maxWaitMs', RangeError],
    [{ rateLimit: { tokensPerInterval: 1, interval: 'second', burst: 1 } }, 'rateLimit.burst', RangeError],
    [{ memoryPressure: { heapUsedRatio: 1.5 } }, 'memoryPressure.heapUsedRatio', RangeError],
    [{ memoryPressure: { heapUsedRatio: 0 } }, 'memoryPressure.heapUsedRatio', RangeError],
    [{ memoryPressure: { heapUsedRatio: 0.5, lowWatermarkRatio: 0.6 } }, 'memoryPressure.lowWatermarkRatio', RangeError],
    [{ logger: console.log }, 'logger', TypeError],
    [{ logger: { warn() {} } }, 'logger', TypeError],
    [{ maxEntires: 10 }, 'maxEntires', RangeError],
  ]
  for (const [opts, name, cls] of cases) {
    /** @param {any} e */
    const namesIt = (e) => withCode('ERR_INVALID_OPTION', cls)(e) && e.message.includes(`\`${name}\``)
    assert.throws(() => new ConversationCache(/** @type {any} */ (opts)), namesIt, `${JSON.stringify(opts)} -> ${name}`)
  }
  assert.throws(() => new ConversationCache(/** @type {any} */ (5)), withCode('ERR_INVALID_OPTION', TypeError))
})

test('a redisUrl with a password never appears in the error', () => {
  try {
    new ConversationCache({ redisUrl: 'http://user:s3cr3t@host:6379' })
    assert.fail('should throw')
  } catch (e) {
    assert.equal(/** @type {any} */ (e).code, 'ERR_INVALID_OPTION')
    assert.ok(!String(/** @type {any} */ (e).message).includes('s3cr3t'))
  }
})

test('the old API names are accepted as aliases', async () => {
  const cache = new ConversationCache({ maxSize: 2, ttl: 60_000, redisTtl: 10 })
  for (const k of ['a', 'b', 'c']) await cache.set(k, { k })
  const s = cache.getStats()
  assert.equal(s.maxEntries, 2)
  assert.equal(s.entries, 2)
  await cache.close()
})

test('set / getMany / invalidateTag argument errors', async () => {
  const cache = new ConversationCache()
  await assert.rejects(cache.set('t', {}, /** @type {any} */ ({ tags: 'a' })), withCode('ERR_INVALID_OPTION', TypeError))
  await assert.rejects(cache.set('t', {}, /** @type {any} */ ({ tags: [''] })), withCode('ERR_INVALID_OPTION', TypeError))
  await assert.rejects(cache.set('t', {}, { ttlMs: -1 }), withCode('ERR_INVALID_OPTION', RangeError))
  await assert.rejects(cache.set('t', {}, /** @type {any} */ ({ ttl: 5 })), withCode('ERR_INVALID_OPTION'))
  await assert.rejects(cache.getMany(/** @type {any} */ ('t')), withCode('ERR_INVALID_ARG', TypeError))
  await assert.rejects(cache.invalidateTag(/** @type {any} */ ('')), withCode('ERR_INVALID_ARG', TypeError))
  assert.equal(cache.peek('t'), undefined)
  await cache.close()
})
