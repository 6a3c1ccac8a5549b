// close(): nothing keeps Node alive afterwards; the cache refuses work once closed.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConversationCache } from '@povc/agent-core-native'
import { withCode } from './cache-helpers.mjs'
import { runChild } from './support/run-child.mjs'

const USE_AND_CLOSE = `
import { ConversationCache } from '@povc/agent-core-native'
const cache = new ConversationCache({
  loaderTimeoutMs: 60000,
  rateLimit: { tokensPerInterval: 1, interval: 'minute', maxWaitMs: 60000 },
  memoryPressure: { checkIntervalMs: 10 },
  negativeTtlMs: 60000,
})
await cache.getOrLoad('a', async () => ({ a: 1 }))
await cache.set('b', { b: 1 }, { ttlMs: 60000 })
await cache.update('b', (v) => ({ ...v, n: 1 }))
await cache.getMany(['a', 'b', 'c'])
const stuck = cache.getOrLoad('stuck', () => new Promise(() => {}))  // waits for a token (60 s)
const never = cache.getOrLoad('never', () => new Promise(() => {}))
cache.getStats(); cache.metrics(); await cache.health()
await cache.close()
const r = await Promise.allSettled([stuck, never])
console.log(r.map((x) => x.reason?.code).join(','))
`

test('a process that uses a cache and closes it exits on its own', async () => {
  const r = await runChild(USE_AND_CLOSE, 10_000, { esm: true })
  assert.equal(r.code, 0, `exit ${r.code}; stderr: ${r.stderr}`)
  assert.equal(r.stdout.trim(), 'ERR_CLOSED,ERR_CLOSED')
  assert.equal(r.stderr, '', 'nothing printed')
})

test('the child check can fail: a process holding a timer does not exit', async () => {
  // The same harness on a script that keeps a timer: it must report the timeout.
  const r = await runChild('setInterval(() => {}, 1000)', 1_500, { esm: true })
  assert.equal(r.code, 'timeout')
})

test('after close(), methods reject with ERR_CLOSED; close() is idempotent', async () => {
  const cache = new ConversationCache()
  await cache.set('a', { a: 1 })
  const p1 = cache.close()
  const p2 = cache.close()
  assert.equal(p1, p2)
  await p1
  const closed = withCode('ERR_CLOSED')
  await assert.rejects(cache.getOrLoad('a', async () => ({})), closed)
  await assert.rejects(cache.get('a'), closed)
  await assert.rejects(cache.set('a', {}), closed)
  await assert.rejects(cache.getMany(['a']), closed)
  await assert.rejects(cache.invalidate('a'), closed)
  await assert.rejects(cache.invalidateTag('x'), closed)
  await assert.rejects(cache.update('a', () => ({})), closed)
  assert.throws(() => cache.peek('a'), closed)
  assert.equal(cache.getStats().entries, 0)
  await cache.close()
})

test('an update queued behind a running one is refused once the cache closes', async () => {
  const cache = new ConversationCache()
  /** @type {() => void} */
  let release = () => {}
  const first = cache.update('t', () => new Promise((r) => (release = () => r({ n: 1 }))))
  const second = cache.update('t', () => ({ n: 2 }))
  await new Promise((r) => setImmediate(r))
  await cache.close()
  release()
  assert.deepEqual(await first, { n: 1 }, 'the running update finishes (its save, if any, has run)')
  await assert.rejects(second, withCode('ERR_CLOSED'))
})
