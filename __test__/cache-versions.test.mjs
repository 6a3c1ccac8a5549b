// Versions in Redis: every change moves a thread's version, reads return it with the value,
// and a loader's fill after a miss never overwrites a newer write (the loading instance then
// lets go of what it loaded); tags recorded in Redis. Against a redis-server AND a Redis
// Cluster of 3 masters, both started here.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConversationCache, RedisTier } from '@povc/agent-core-native'
import { startRedis } from './support/redis-server.mjs'
import { startCluster } from './support/redis-cluster.mjs'
import { sleep, withCode } from './cache-helpers.mjs'

/** @typedef {{ url: string, stop(): Promise<void>, getRaw(key: string): Promise<string> }} Backend */

const backends = {
  'single server': async () => {
    const s = await startRedis()
    return { url: s.url, stop: () => s.stop(), getRaw: (/** @type {string} */ k) => s.command('GET', k) }
  },
  'cluster of 3 masters': async () => {
    const c = await startCluster()
    // GET through any node: a node that does not own the key answers -MOVED.
    const getRaw = async (/** @type {string} */ k) => {
      for (const n of c.nodes) {
        const r = await n.command('GET', k)
        if (!r.startsWith('-MOVED')) return r
      }
      throw new Error('no node owns ' + k)
    }
    return { url: c.url, stop: () => c.stop(), getRaw }
  },
}

for (const [label, start] of Object.entries(backends)) {
  versionTests(label, start)
}

/** @param {string} label @param {() => Promise<Backend>} start */
function versionTests(label, start) {
  test(`[${label}] RedisTier: write / del move the version; read returns value and version; fill is conditional`, async () => {
    const server = await start()
    const t = new RedisTier({ url: server.url })
    try {
      assert.deepEqual(await t.read('a'), { json: null, version: null })
      const v1 = /** @type {number} */ (await t.write('a', '{"n":1}'))
      const v2 = /** @type {number} */ (await t.write('a', '{"n":2}'))
      assert.ok(Number.isSafeInteger(v1) && v2 > v1, `${v1} ${v2}`)
      assert.deepEqual(await t.read('a'), { json: '{"n":2}', version: v2 })
      assert.equal(await server.getRaw('agent-core:conv:{a}:ver'), `$${String(v2).length}\r\n${v2}\r\n`)
      assert.deepEqual(await t.readMany(['a', 'b']), [{ json: '{"n":2}', version: v2 }, { json: null, version: null }])

      // A fill from a miss that saw no version: written; a second one from the same miss: skipped.
      const f1 = await t.fill('b', '"loaded"', null)
      assert.equal(f1.outcome, 'written')
      assert.equal((await t.fill('b', '"late"', null)).outcome, 'skipped')
      // A fill from a miss that saw v2 after a newer write: skipped, the write stays.
      assert.equal((await t.fill('a', '"stale"', v1)).outcome, 'skipped')
      assert.equal(await t.get('a'), '{"n":2}')

      assert.equal(await t.del(['a', 'b', 'none']), 2)
      const after = await t.read('a')
      assert.equal(after?.json, null)
      assert.ok(/** @type {number} */ (after?.version) > v2)

      await assert.rejects(t.fill('a', '1', -1), withCode('ERR_INVALID_ARG', Error))
      await assert.rejects(t.fill('a', '1', 1.5), withCode('ERR_INVALID_ARG', Error))
      await assert.rejects(t.write('a', '1', null, /** @type {any} */ (['ok', ''])), withCode('ERR_INVALID_ARG', Error))
      await assert.rejects(t.publish('a', 1, /** @type {any} */ ('x')), withCode('ERR_INVALID_ARG', Error))
      assert.equal(t.stats().fills, 1)
      assert.equal(t.stats().fillsSkipped, 2)
      assert.equal(t.stats().redisErrors, 0)
    } finally {
      await t.close()
      await server.stop()
    }
  })

  test(`[${label}] a slow load never overwrites a write made meanwhile by another instance, and is not kept in L1`, async () => {
    const server = await start()
    const a = new ConversationCache({ redisUrl: server.url })
    const b = new ConversationCache({ redisUrl: server.url })
    try {
      /** @type {(v: unknown) => void} */
      let release = () => {}
      const gate = new Promise((r) => (release = r))
      const loading = a.getOrLoad('k', async () => {
        await gate
        return { from: 'db, before the write' }
      })
      await sleep(30) // a's miss has read L2 (no version) and its loader is running
      await b.set('k', { from: 'b' })
      release(undefined)
      // a's callers still get what the loader returned...
      assert.deepEqual(await loading, { from: 'db, before the write' })
      // ...but the fill is skipped in Redis, and a lets go of its copy.
      const deadline = Date.now() + 2000
      while (a.peek('k') !== undefined && Date.now() < deadline) await sleep(5)
      assert.equal(a.peek('k'), undefined)
      assert.deepEqual(await a.get('k'), { from: 'b' })
      const c = new ConversationCache({ redisUrl: server.url })
      assert.deepEqual(await c.get('k'), { from: 'b' })
      await c.close()
      assert.equal(a.getStats().redisErrors, 0)
    } finally {
      await a.close()
      await b.close()
      await server.stop()
    }
  })

  test(`[${label}] tags are recorded in Redis: invalidateTag reaches threads another instance tagged`, async () => {
    const server = await start()
    const a = new ConversationCache({ redisUrl: server.url })
    const b = new ConversationCache({ redisUrl: server.url })
    try {
      await a.set('t1', { n: 1 }, { tags: ['user:1'] })
      await a.set('t2', { n: 2 }, { tags: ['user:1', 'org:1'] })
      await a.set('t3', { n: 3 }, { tags: ['user:2'] })
      await b.set('t4', { n: 4 }, { tags: ['user:1'] })
      // b never held t1/t2 itself: Redis knows their tags.
      assert.equal(await b.invalidateTag('user:1'), 3)
      for (const id of ['t1', 't2', 't4']) assert.equal(await b.get(id), null, id)
      assert.deepEqual(await b.get('t3'), { n: 3 })
      assert.equal(await b.invalidateTag('user:1'), 0)
      assert.equal(await b.invalidateTag('org:1'), 0, 't2 lost its tags with its value')
    } finally {
      await a.close()
      await b.close()
      await server.stop()
    }
  })
}
