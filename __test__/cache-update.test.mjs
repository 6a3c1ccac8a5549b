// update(): one at a time per key, save before visibility, the old value kept on failure.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConversationCache } from '@povc/agent-core-native'
import { sleep, withCode } from './cache-helpers.mjs'

test('1,000 concurrent increments of one key lose none', async () => {
  const cache = new ConversationCache()
  /** @param {{ n: number } | null} cur */
  const inc = async (cur) => {
    const n = cur?.n ?? 0
    // Yield between read and write, as a real updater (a DB call) would.
    await sleep(0)
    return { n: n + 1 }
  }
  const results = await Promise.all(Array.from({ length: 1000 }, () => cache.update('counter', inc)))
  assert.deepEqual(cache.peek('counter'), { n: 1000 })
  // Each caller gets the value its own update produced, in call order.
  assert.deepEqual(
    results.map((r) => r.n),
    Array.from({ length: 1000 }, (_, i) => i + 1),
  )
  await cache.close()
})

test('updates of different keys do not wait for each other', async () => {
  const cache = new ConversationCache()
  /** @type {() => void} */
  let release = () => {}
  const slow = cache.update('a', () => new Promise((r) => (release = () => r({ a: 1 }))))
  const t0 = performance.now()
  assert.deepEqual(await cache.update('b', () => ({ b: 1 })), { b: 1 })
  assert.ok(performance.now() - t0 < 1000)
  release()
  assert.deepEqual(await slow, { a: 1 })
  await cache.close()
})

test('save runs before the new value is visible', async () => {
  const cache = new ConversationCache()
  await cache.set('t', { v: 1 })
  /** @type {unknown[]} */
  const seenDuringSave = []
  const next = await cache.update('t', (cur) => ({ v: /** @type {any} */ (cur).v + 1 }), {
    save: async (value) => {
      seenDuringSave.push(cache.peek('t'), await cache.get('t'), value)
      await sleep(5)
      seenDuringSave.push(cache.peek('t'))
    },
  })
  assert.deepEqual(seenDuringSave, [{ v: 1 }, { v: 1 }, { v: 2 }, { v: 1 }])
  assert.deepEqual(next, { v: 2 })
  assert.equal(cache.peek('t'), next)
  await cache.close()
})

test('if save throws, the old value stays and the error reaches the caller', async () => {
  const cache = new ConversationCache()
  const old = { v: 1 }
  await cache.set('t', old)
  const boom = new Error('save failed')
  await assert.rejects(
    cache.update('t', () => ({ v: 2 }), {
      save: async () => {
        throw boom
      },
    }),
    (e) => e === boom,
  )
  assert.equal(cache.peek('t'), old)
  // The queue goes on after a failure.
  assert.deepEqual(await cache.update('t', (cur) => ({ v: /** @type {any} */ (cur).v + 10 })), { v: 11 })
  await cache.close()
})

test('if the updater throws, the old value stays and the error reaches the caller', async () => {
  const cache = new ConversationCache()
  const old = { v: 1 }
  await cache.set('t', old)
  const boom = new TypeError('bad update')
  let saved = false
  await assert.rejects(
    cache.update(
      't',
      () => {
        throw boom
      },
      { save: async () => void (saved = true) },
    ),
    (e) => e === boom,
  )
  assert.equal(saved, false)
  assert.equal(cache.peek('t'), old)
  await cache.close()
})

test('an update whose result cannot be serialized fails before save and keeps the old value', async () => {
  const cache = new ConversationCache()
  const old = { v: 1 }
  await cache.set('t', old)
  let saved = false
  /** @type {any} */
  const cyclic = { v: 2 }
  cyclic.self = cyclic
  await assert.rejects(
    cache.update('t', () => cyclic, { save: async () => void (saved = true) }),
    withCode('ERR_CIRCULAR', TypeError),
  )
  assert.equal(saved, false)
  assert.equal(cache.peek('t'), old)
  await cache.close()
})

test('update reads through options.loader when the key is not cached', async () => {
  const cache = new ConversationCache({ loader: async (id) => ({ id, n: 41 }) })
  const next = await cache.update('t', (cur) => ({ .../** @type {any} */ (cur), n: /** @type {any} */ (cur).n + 1 }))
  assert.deepEqual(next, { id: 't', n: 42 })
  await cache.close()
  const noLoader = new ConversationCache()
  assert.deepEqual(await noLoader.update('t', (cur) => ({ was: cur })), { was: null })
  await noLoader.close()
})

test('set and update of one key apply in call order', async () => {
  const cache = new ConversationCache()
  const slowUpdate = cache.update('t', async () => {
    await sleep(20)
    return { from: 'update' }
  })
  const laterSet = cache.set('t', { from: 'set' })
  await Promise.all([slowUpdate, laterSet])
  assert.deepEqual(cache.peek('t'), { from: 'set' })
  await cache.close()
})

test('update validates its arguments', async () => {
  const cache = new ConversationCache()
  await assert.rejects(cache.update('t', /** @type {any} */ (null)), withCode('ERR_INVALID_ARG', TypeError))
  await assert.rejects(cache.update('t', (c) => c, /** @type {any} */ ({ save: 1 })), withCode('ERR_INVALID_OPTION', TypeError))
  await assert.rejects(cache.update('t', () => null), withCode('ERR_INVALID_ARG', TypeError))
  await cache.close()
})
