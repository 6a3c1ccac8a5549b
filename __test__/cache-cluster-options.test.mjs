// Redis Cluster options: a redisUrl listing several hosts (or redisCluster: true) selects the
// cluster client; bad forms are refused naming the option, never echoing a password.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConversationCache, RedisTier } from '@povc/agent-core-native'
import { withCode } from './cache-helpers.mjs'

test('a redisUrl with several hosts is a cluster: accepted, nothing connects, shown redacted', async () => {
  const cache = new ConversationCache({ redisUrl: 'redis://u:hunter2@127.0.0.1:1,127.0.0.1:2', l2TimeoutMs: 20 })
  await cache.set('k', { v: 1 })
  assert.deepEqual(await cache.get('k'), { v: 1 }, 'L1 answers while the cluster is unreachable')
  const h = await cache.health()
  assert.equal(h.l2.state, 'down')
  assert.ok(!JSON.stringify(h).includes('hunter2'))
  await cache.close()
  const t = new RedisTier({ url: 'redis://u:hunter2@127.0.0.1:1,127.0.0.1:2/0' })
  assert.equal(t.url, 'redis://u:***@127.0.0.1:1,127.0.0.1:2/0')
  await t.close()
  const one = new ConversationCache({ redisUrl: 'redis://127.0.0.1:1', redisCluster: true })
  await one.close()
})

test('bad cluster options: ERR_INVALID_OPTION naming the option, no password in the message', () => {
  const bad = [
    [{ redisUrl: 'redis://u:hunter2@h:1,,h:2' }, 'redisUrl', RangeError],
    [{ redisUrl: 'redis://u:hunter2@h:1,h:notaport' }, 'redisUrl', RangeError],
    [{ redisUrl: 'redis://u:hunter2@h:1,h:2', redisCluster: false }, 'redisCluster', RangeError],
    [{ redisUrl: 'redis://h:1', redisCluster: 'yes' }, 'redisCluster', TypeError],
  ]
  for (const [options, name, cls] of bad) {
    assert.throws(
      () => new ConversationCache(/** @type {any} */ (options)),
      (/** @type {any} */ e) => {
        assert.ok(withCode('ERR_INVALID_OPTION', /** @type {Function} */ (cls))(e), `${e}`)
        assert.ok(e.message.includes(name), e.message)
        assert.ok(!e.message.includes('hunter2'), e.message)
        return true
      },
    )
  }
  assert.throws(() => new RedisTier({ url: 'redis://u:hunter2@h:1,h:2/3' }), (/** @type {any} */ e) => {
    assert.equal(e.code, 'ERR_INVALID_OPTION')
    assert.match(e.message, /database 0 only/)
    assert.ok(!e.message.includes('hunter2'))
    return true
  })
})
