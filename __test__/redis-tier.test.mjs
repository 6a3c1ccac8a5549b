// RedisTier (the native L2) against real redis-server processes the tests start themselves,
// one per fault test: values, one-round-trip getMany, corrupt / foreign / deleted values,
// Redis down at start, killed and restarted, frozen (SIGSTOP), password-protected, close().
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { RedisTier, serializeToPayload } from '@povc/agent-core-native'
import { startRedis } from './support/redis-server.mjs'
import { runChild } from './support/run-child.mjs'

const TIMEOUT_MS = 50
// Scheduling slack on a shared 2-core machine (event loop + tokio + the OS).
const MARGIN_MS = 100

/** @param {string} url @param {Partial<import('@povc/agent-core-native').RedisTierOptions>} [extra] */
const tier = (url, extra = {}) =>
  new RedisTier({ url, timeoutMs: TIMEOUT_MS, breakerFailureThreshold: 3, breakerCooldownMs: 300, ...extra })

/** Runs `fn`, asserts it settled within timeoutMs + margin, returns its value.
 * @template T @param {() => Promise<T>} fn @returns {Promise<T>} */
async function timed(fn) {
  const t0 = performance.now()
  const v = await fn()
  const took = performance.now() - t0
  assert.ok(took <= TIMEOUT_MS + MARGIN_MS, `call took ${took.toFixed(1)} ms`)
  return v
}

/** Repeats set+get until a hit; returns ms until it. @param {RedisTier} t @param {number} limitMs */
async function untilHit(t, limitMs) {
  const t0 = performance.now()
  for (;;) {
    await timed(() => t.set('probe', '{"v":1}'))
    if ((await timed(() => t.get('probe'))) !== null) return performance.now() - t0
    assert.ok(performance.now() - t0 < limitMs, `no hit within ${limitMs} ms: ${JSON.stringify(t.stats())}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms))

test('bad options throw ERR_INVALID_OPTION naming the option, never quoting a password', () => {
  /** @param {any} opts @param {string} name */
  const bad = (opts, name) =>
    assert.throws(() => new RedisTier(opts), (/** @type {any} */ e) => {
      assert.equal(e.code, 'ERR_INVALID_OPTION')
      assert.ok(e instanceof RangeError)
      assert.match(e.message, new RegExp(`\`${name}\``))
      assert.ok(!e.message.includes('hunter2'), e.message)
      return true
    })
  bad(undefined, 'options')
  bad({}, 'url')
  bad({ url: 42 }, 'url')
  bad({ url: 'http://u:hunter2@127.0.0.1/0' }, 'url')
  bad({ url: 'redis://u:hunter2@127.0.0.1:notaport/0' }, 'url')
  bad({ url: 'redis://127.0.0.1:1', ttlSeconds: 0 }, 'ttlSeconds')
  bad({ url: 'redis://127.0.0.1:1', ttlSeconds: '60' }, 'ttlSeconds')
  bad({ url: 'redis://127.0.0.1:1', timeoutMs: 1.5 }, 'timeoutMs')
  bad({ url: 'redis://127.0.0.1:1', keyPrefix: 1 }, 'keyPrefix')
  bad({ url: 'redis://127.0.0.1:1', compression: 'gzip' }, 'compression')
  bad({ url: 'redis://127.0.0.1:1', breakerFailureThreshold: 0 }, 'breakerFailureThreshold')
  const t = new RedisTier({ url: 'redis://alice:hunter2@127.0.0.1:1/2' })
  assert.equal(t.url, 'redis://alice:***@127.0.0.1:1/2')
})

test('set / get / getMany / del round trip under the prefix, with TTL', async () => {
  const server = await startRedis()
  const t = tier(server.url)
  try {
    assert.equal(await t.get('t1'), null)
    assert.equal(await t.set('t1', '{"messages":["héllo 👋"]}'), true)
    assert.equal(await t.set('t2', '[2]', 120), true)
    assert.equal(await t.get('t1'), '{"messages":["héllo 👋"]}')
    assert.deepEqual(await t.getMany(['t2', 'nope', 't1']), ['[2]', null, '{"messages":["héllo 👋"]}'])
    assert.deepEqual(await t.getMany([]), [])
    const ttl1 = Number((await server.command('TTL', 'agent-core:conv:{t1}')).slice(1))
    const ttl2 = Number((await server.command('TTL', 'agent-core:conv:{t2}')).slice(1))
    assert.ok(ttl1 > 3590 && ttl1 <= 3600, `ttl ${ttl1}`)
    assert.ok(ttl2 > 110 && ttl2 <= 120, `ttl ${ttl2}`)
    const big = JSON.stringify({ messages: Array.from({ length: 2000 }, (_, i) => ({ role: 'user', content: `message ${i} `.repeat(40) })) })
    assert.ok(big.length > 1_000_000)
    assert.equal(await t.set('big', big), true)
    assert.equal(await t.get('big'), big)
    assert.equal(await t.del(['t1', 't2', 'nope']), 2)
    assert.equal(await t.get('t1'), null)
    const s = t.stats()
    assert.equal(s.sets, 3)
    assert.equal(s.hits, 4)
    assert.equal(s.dels, 2)
    assert.equal(s.redisErrors, 0)
    assert.equal(s.connected, true)
    const h = await t.health()
    assert.equal(h.state, 'up')
    assert.equal(h.circuit, 'closed')
    assert.ok(typeof h.latencyMs === 'number' && h.latencyMs < TIMEOUT_MS)
  } finally {
    await t.close()
    await server.stop()
  }
})

test('a SerializedPayload is written as its UTF-8 text (no JS string in between), exactly', async () => {
  const server = await startRedis()
  const t = tier(server.url, { timeoutMs: 5000 })
  try {
    const value = { messages: ['héllo 👋', 'Straße', '日本語', 'lone \ud800 surrogate', 'x'.repeat(70_000)], n: -0.1 }
    const payload = await serializeToPayload(value)
    const want = JSON.stringify(value)
    assert.equal(payload.length, want.length)
    assert.equal(await t.set('p', payload), true)
    assert.equal(await t.get('p'), want)
    assert.equal(typeof (await t.write('p2', payload)), 'number')
    assert.equal((await t.read('p2'))?.json, want)
    // Over 4 KB, the payload's bytes are compressed (lz4, the default) like a string's.
    const stored = Number((await server.command('STRLEN', 'agent-core:conv:{p}')).slice(1))
    assert.ok(stored > 0 && stored < payload.bytes / 10, `${stored} bytes stored for ${payload.bytes}`)
    const any = /** @type {any} */ (t)
    await assert.rejects(any.set('k', 5), { code: 'ERR_INVALID_ARG', message: /string or a SerializedPayload, got a number/ })
    await assert.rejects(any.write('k', new Date()), { code: 'ERR_INVALID_ARG', message: /string or a SerializedPayload, got an object/ })
  } finally {
    await t.close()
    await server.stop()
  }
})

test('getMany is ONE round trip (one MGET, no GET) on the server', async () => {
  const server = await startRedis()
  const t = tier(server.url)
  try {
    for (let i = 0; i < 30; i++) await t.set(`k${i}`, `{"i":${i}}`)
    /** @param {string} cmd */
    const calls = async (cmd) => {
      const m = new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(await server.command('INFO', 'commandstats'))
      return m ? Number(m[1]) : 0
    }
    const [mget0, get0] = [await calls('mget'), await calls('get')]
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`)
    const got = await t.getMany(keys)
    assert.equal(got.filter((v) => v !== null).length, 30)
    assert.equal(got[7], '{"i":7}')
    assert.equal((await calls('mget')) - mget0, 1)
    assert.equal((await calls('get')) - get0, 0)
  } finally {
    await t.close()
    await server.stop()
  }
})

test('foreign, corrupt and deleted-behind-our-back values are misses; corrupt ones are counted', async () => {
  const server = await startRedis()
  const t = tier(server.url)
  try {
    await server.command('SET', 'agent-core:conv:{plain}', '{"not":"ours"}')
    await server.command('SET', 'agent-core:conv:{v9}', '\xAC\x43\x09\x00{}')
    await server.command('RPUSH', 'agent-core:conv:{list}', 'x')
    assert.equal(await t.get('plain'), null)
    assert.equal(await t.get('v9'), null)
    // Reads are MGETs of value and version, which answer nil for a key of another type (the
    // list): a plain miss, not "corrupt"; the next write replaces it.
    assert.equal(await t.get('list'), null)
    assert.equal(t.stats().corrupt, 2)
    assert.deepEqual(await t.getMany(['plain', 'absent']), [null, null])
    assert.equal(t.stats().corrupt, 3)
    assert.equal(t.stats().redisErrors, 0)
    assert.equal(await t.set('gone', '[1]'), true)
    await server.command('DEL', 'agent-core:conv:{gone}')
    assert.equal(await t.get('gone'), null)
    assert.equal(t.stats().corrupt, 3)
    assert.equal(await t.set('list', '[2]'), true)
    assert.equal(await t.get('list'), '[2]')
  } finally {
    await t.close()
    await server.stop()
  }
})

test('bad arguments reject with coded errors; calls after close reject with ERR_CLOSED', async () => {
  const t = tier('redis://127.0.0.1:1/0')
  const any = /** @type {any} */ (t)
  await assert.rejects(any.get(5), { code: 'ERR_INVALID_KEY', name: 'TypeError' })
  await assert.rejects(t.get(''), { code: 'ERR_INVALID_KEY' })
  await assert.rejects(any.getMany('k'), { code: 'ERR_INVALID_ARG' })
  await assert.rejects(any.getMany(['a', 1]), { code: 'ERR_INVALID_KEY' })
  await assert.rejects(any.set('k', { a: 1 }), { code: 'ERR_INVALID_ARG' })
  await assert.rejects(t.set('k', '1', 0), { code: 'ERR_INVALID_OPTION', name: 'RangeError' })
  await t.close()
  await t.close()
  await assert.rejects(t.get('k'), { code: 'ERR_CLOSED' })
  assert.equal((await t.health()).state, 'down')
})

test('Redis down at start: misses in time, then L2 works once Redis appears on that port', async () => {
  const server = await startRedis({ start: false })
  const t = tier(server.url)
  try {
    for (let i = 0; i < 10; i++) {
      assert.equal(await timed(() => t.get(`k${i}`)), null)
      assert.equal(await timed(() => t.set(`k${i}`, '1')), false)
    }
    assert.ok(t.stats().redisErrors >= 3, JSON.stringify(t.stats()))
    assert.equal((await t.health()).state, 'down')
    await server.restart()
    const ms = await untilHit(t, 3000)
    assert.ok(ms < 2000, `first hit ${ms} ms after Redis appeared`)
    assert.equal((await t.health()).state, 'up')
  } finally {
    await t.close()
    await server.stop()
  }
})

test('killed mid-run and restarted on the same port: no caller error, hits resume within 2 s', async () => {
  const server = await startRedis()
  const t = tier(server.url, { breakerCooldownMs: 1000 })
  try {
    assert.equal(await t.set('a', '[1]'), true)
    await server.kill('SIGKILL')
    const calls = []
    for (let i = 0; i < 50; i++) calls.push(t.get('a'), t.set('a', '[2]'), t.getMany(['a', 'b']), t.del(['c']))
    const settled = await Promise.allSettled(calls)
    assert.deepEqual(settled.filter((r) => r.status === 'rejected'), [])
    assert.ok(t.stats().redisErrors >= 1)
    await server.restart()
    const ms = await untilHit(t, 4000)
    assert.ok(ms < 2000, `hits resumed ${ms} ms after the restart`)
  } finally {
    await t.close()
    await server.stop()
  }
})

test('frozen with SIGSTOP: every call answers in time; breaker opens, probes half-open, closes after SIGCONT', async () => {
  const server = await startRedis()
  const t = tier(server.url)
  try {
    assert.equal(await t.set('f', '[1]'), true)
    await server.kill('SIGSTOP')
    for (let i = 0; i < 3; i++) assert.equal(await timed(() => t.get('f')), null)
    assert.equal(t.stats().timeouts, 3)
    let h = await timed(() => t.health())
    assert.equal(h.state, 'down')
    assert.equal(h.circuit, 'open')
    // Open: answered without Redis, all of a burst in time.
    const burst = await timed(() => Promise.all(Array.from({ length: 100 }, (_, i) => t.get(`x${i}`))))
    assert.ok(burst.every((v) => v === null))
    assert.ok(t.stats().shortCircuited >= 100)
    await sleep(320)
    assert.equal((await t.health()).circuit, 'half-open')
    assert.equal(await timed(() => t.get('f')), null) // the probe times out
    assert.equal(t.stats().circuit, 'open')
    await server.kill('SIGCONT')
    await sleep(320)
    assert.equal(t.stats().circuit, 'half-open')
    assert.equal(await timed(() => t.get('f')), '[1]') // the probe succeeds
    h = await t.health()
    assert.equal(h.circuit, 'closed')
    assert.equal(h.state, 'up')
    assert.ok(t.stats().circuitOpened >= 2)
  } finally {
    await t.close()
    await server.stop()
  }
})

test('password-protected server: no password or full URL in errors, health(), stats() or url', async () => {
  const password = 'S3cr3t-Pa55w0rd'
  const server = await startRedis({ user: 'alice', password })
  const good = tier(server.url)
  const wrongPw = 'Wr0ng-Pa55w0rd'
  const badUrl = `redis://alice:${wrongPw}@127.0.0.1:${server.port}/0`
  const bad = tier(badUrl)
  try {
    assert.equal(await good.set('p', '1'), true)
    assert.equal(await good.get('p'), '1')
    assert.equal(await bad.get('p'), null)
    assert.equal(await bad.set('p', '2'), false)
    const h = await bad.health()
    assert.equal(h.state, 'down')
    assert.ok(h.lastError, 'health() says why it is down')
    let thrown = ''
    try {
      new RedisTier({ url: badUrl, ttlSeconds: -1 })
    } catch (e) {
      thrown = String(/** @type {Error} */ (e).message)
    }
    const seen = JSON.stringify({ h, stats: bad.stats(), url: bad.url, goodUrl: good.url, thrown })
    for (const secret of [password, wrongPw, badUrl, server.url]) {
      assert.ok(!seen.includes(secret), `leaked ${secret} in ${seen}`)
    }
    assert.match(seen, /redis:\/\/alice:\*\*\*@127\.0\.0\.1/)
  } finally {
    await good.close()
    await bad.close()
    await server.stop()
  }
})

test('close() releases everything: a child process exits on its own', async () => {
  const server = await startRedis()
  try {
    const script = `
      const { RedisTier } = require(${JSON.stringify(fileURLToPath(new URL('../index.js', import.meta.url)))})
      const t = new RedisTier({ url: ${JSON.stringify(server.url)} })
      const down = new RedisTier({ url: 'redis://127.0.0.1:1/0' })
      ;(async () => {
        await t.set('c', '[1]')
        if (await t.get('c') !== '[1]') process.exit(3)
        await down.get('x')
        await t.close(); await down.close()
        console.log('closed')
      })()`
    const r = await runChild(script, 10_000)
    assert.equal(r.code, 0, `exit ${r.code} (10 s limit); stderr: ${r.stderr}`)
    assert.equal(r.stdout.trim(), 'closed')
    const clients = /connected_clients:(\d+)/.exec(await server.command('INFO', 'clients'))
    assert.equal(clients?.[1], '1') // only the INFO connection itself
  } finally {
    await server.stop()
  }
})
