// update() across instances: the distributed lock and the fenced write, against a private
// redis-server, with separate Node processes as the instances.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConversationCache } from '@povc/agent-core-native'
import { startRedis, freePort } from './support/redis-server.mjs'
import { startChildren } from './support/lock-children.mjs'
import { sleep, withCode } from './cache-helpers.mjs'

/** The JSON inside a small (uncompressed) envelope, from a raw RESP bulk reply. @param {string} resp */
function payloadOf(resp) {
  const body = resp.slice(resp.indexOf('\r\n') + 2, resp.lastIndexOf('\r\n'))
  assert.equal(body.charCodeAt(0), 0xac, `not an envelope: ${JSON.stringify(resp)}`)
  return JSON.parse(Buffer.from(body.slice(4), 'latin1').toString('utf8'))
}

/** @param {string} resp */
const bulk = (resp) => resp.slice(resp.indexOf('\r\n') + 2, resp.lastIndexOf('\r\n'))

/** @param {{ n?: number } | null} cur */
const inc = async (cur) => {
  await sleep(0)
  return { n: (cur?.n ?? 0) + 1 }
}

/** @param {any[]} replies @param {string} name */
const sum = (replies, name) => replies.reduce((a, r) => a + r.stats[name], 0)

/** A thread version as every change script sets it: max(old + 1, Redis TIME in µs). @param {string} v */
function assertClockVersion(v) {
  const n = Number(v)
  const now = Date.now() * 1000
  assert.ok(Number.isSafeInteger(n) && n > now - 600e6 && n < now + 600e6, `version ${v}`)
}

test('4 processes x 250 concurrent increments through update: exactly 1,000 in Redis and in a fresh reader', { timeout: 120_000 }, async () => {
  const server = await startRedis()
  const kids = await startChildren(4, { redisUrl: server.url })
  try {
    const replies = await Promise.all(kids.map((k) => k.call({ cmd: 'inc', key: 'counter', n: 250 })))
    for (const r of replies) {
      assert.equal(r.ok, 250, JSON.stringify(r.rejected))
      assert.deepEqual(r.rejected, {})
    }
    // The four really ran at the same time.
    const lastStart = Math.max(...replies.map((r) => r.startedAt))
    const firstEnd = Math.min(...replies.map((r) => r.endedAt))
    assert.ok(lastStart < firstEnd, `the processes did not overlap (${lastStart} >= ${firstEnd})`)
    // Every update went through the lock (none fell back to in-process semantics).
    assert.equal(sum(replies, 'lockUnavailable'), 0)
    assert.equal(sum(replies, 'lockTimeouts'), 0)

    assert.deepEqual(payloadOf(await server.command('GET', 'agent-core:conv:{counter}')), { n: 1000 })
    // (Versions follow Redis's clock, max(old + 1, TIME in µs), so they no longer count the
    // writes; the value above does.)
    assertClockVersion(bulk(await server.command('GET', 'agent-core:conv:{counter}:ver')))
    // No lock is held: the last write released it (a write leaves a receipt that is a free lock).
    const lock = await server.command('GET', 'agent-core:conv:{counter}:lock')
    assert.ok(lock.startsWith('$-1') || bulk(lock).includes(':w:'), `a lock was left behind: ${lock}`)
    const reader = new ConversationCache({ redisUrl: server.url })
    assert.deepEqual(await reader.get('counter'), { n: 1000 })
    await reader.close()
  } finally {
    await Promise.all(kids.map((k) => k.close()))
    await server.stop()
  }
})

test('a lock shorter than a slow updater: no increment is lost silently or lands twice', { timeout: 120_000 }, async () => {
  const server = await startRedis()
  // Every 3rd updater call of each process sleeps 150 ms under a 60 ms lock: that attempt
  // always loses its lock. Two processes give up at once (lockRetries 0), two retry.
  const kids = await startChildren(4, { redisUrl: server.url, lockTtlMs: 60, lockWaitMs: 60_000 })
  const N = 30
  try {
    const replies = await Promise.all(
      kids.map((k, i) =>
        k.call({ cmd: 'inc', key: 'c', n: N, updater: { slowEvery: 3, slowMs: 150 }, opts: { lockRetries: i < 2 ? 0 : 2 } }),
      ),
    )
    let successes = 0
    for (const [i, r] of replies.entries()) {
      const lost = r.rejected.ERR_LOCK_LOST ?? 0
      assert.deepEqual(Object.keys(r.rejected).filter((c) => c !== 'ERR_LOCK_LOST'), [], JSON.stringify(r.rejected))
      assert.equal(r.ok + lost, N)
      // Calls 3, 6, 9, ... were slow: at least 10 lost locks per process (a fast attempt
      // may lose one too on a loaded machine).
      assert.ok(r.stats.lockLost >= 10, `lockLost ${r.stats.lockLost}`)
      if (i < 2) {
        // No retries: every lost lock is a rejection.
        assert.equal(lost, r.stats.lockLost)
      } else {
        // Retries: most lost attempts were retried with the newer value and succeeded.
        assert.ok(lost < r.stats.lockLost, `rejected ${lost} of ${r.stats.lockLost} lost attempts`)
      }
      successes += r.ok
    }
    assert.ok(successes < 4 * N)
    assert.deepEqual(payloadOf(await server.command('GET', 'agent-core:conv:{c}')), { n: successes })
    assertClockVersion(bulk(await server.command('GET', 'agent-core:conv:{c}:ver')))
  } finally {
    await Promise.all(kids.map((k) => k.close()))
    await server.stop()
  }
})

test('update reads what Redis holds under the lock, not a stale L1 copy of another instance', async () => {
  const server = await startRedis()
  const a = new ConversationCache({ redisUrl: server.url })
  const b = new ConversationCache({ redisUrl: server.url })
  try {
    await a.update('t', inc)
    assert.deepEqual(await b.get('t'), { n: 1 }) // b's L1 now holds n: 1
    await a.update('t', inc) // n: 2 in Redis; b's L1 still says 1
    assert.deepEqual(await b.update('t', inc), { n: 3 })
    assert.deepEqual(b.peek('t'), { n: 3 })
    assert.deepEqual(payloadOf(await server.command('GET', 'agent-core:conv:{t}')), { n: 3 })
  } finally {
    await a.close()
    await b.close()
    await server.stop()
  }
})

test('a failing updater or save releases the lock and writes nothing', async () => {
  const server = await startRedis()
  const cache = new ConversationCache({ redisUrl: server.url })
  try {
    await cache.update('t', () => ({ v: 1 }))
    const ver1 = bulk(await server.command('GET', 'agent-core:conv:{t}:ver'))
    assertClockVersion(ver1)
    const boom = new Error('updater failed')
    await assert.rejects(cache.update('t', () => { throw boom }), (e) => e === boom)
    const saveErr = new Error('save failed')
    await assert.rejects(
      cache.update('t', () => ({ v: 2 }), { save: () => Promise.reject(saveErr) }),
      (e) => e === saveErr,
    )
    assert.ok((await server.command('EXISTS', 'agent-core:conv:{t}:lock')).startsWith(':0'))
    assert.deepEqual(payloadOf(await server.command('GET', 'agent-core:conv:{t}')), { v: 1 })
    assert.equal(bulk(await server.command('GET', 'agent-core:conv:{t}:ver')), ver1, 'the version did not move')
    assert.deepEqual(cache.peek('t'), { v: 1 })
  } finally {
    await cache.close()
    await server.stop()
  }
})

test('a lock held elsewhere for all of lockWaitMs rejects with ERR_LOCK_TIMEOUT; the updater never runs', async () => {
  const server = await startRedis()
  const cache = new ConversationCache({ redisUrl: server.url })
  try {
    await server.command('SET', 'agent-core:conv:{t}:lock', 'someone-else', 'PX', '5000')
    let ran = false
    const t0 = performance.now()
    await assert.rejects(
      cache.update('t', () => { ran = true; return { v: 1 } }, { lockWaitMs: 150 }),
      withCode('ERR_LOCK_TIMEOUT'),
    )
    assert.ok(performance.now() - t0 >= 140)
    assert.equal(ran, false)
    assert.equal(cache.getStats().lockTimeouts, 1)
    assert.match(cache.metrics(), /agent_core_cache_lock_timeouts_total\{tier="l2"\} 1/)
    // The other holder's lock is untouched; once it is gone the update goes through.
    assert.equal(bulk(await server.command('GET', 'agent-core:conv:{t}:lock')), 'someone-else')
    await server.command('DEL', 'agent-core:conv:{t}:lock')
    assert.deepEqual(await cache.update('t', () => ({ v: 1 })), { v: 1 })
  } finally {
    await cache.close()
    await server.stop()
  }
})

test('with Redis unreachable, update keeps in-process semantics (atomic within the process)', async () => {
  const port = await freePort()
  const cache = new ConversationCache({ redisUrl: `redis://127.0.0.1:${port}/0` })
  const results = await Promise.all(Array.from({ length: 200 }, () => cache.update('c', inc)))
  assert.deepEqual(cache.peek('c'), { n: 200 })
  assert.deepEqual(results.map((r) => /** @type {any} */ (r).n), Array.from({ length: 200 }, (_, i) => i + 1))
  const s = cache.getStats()
  assert.equal(s.lockUnavailable, 200)
  assert.equal(s.lockLost, 0)
  await cache.close()
})

test('lock options are validated', async () => {
  assert.throws(() => new ConversationCache({ lockTtlMs: 0 }), withCode('ERR_INVALID_OPTION', RangeError))
  assert.throws(() => new ConversationCache({ lockWaitMs: /** @type {any} */ ('1') }), withCode('ERR_INVALID_OPTION', TypeError))
  assert.throws(() => new ConversationCache({ lockRetries: 1.5 }), withCode('ERR_INVALID_OPTION', RangeError))
  const cache = new ConversationCache()
  await assert.rejects(cache.update('t', inc, { lockTtlMs: -1 }), withCode('ERR_INVALID_OPTION', RangeError))
  await assert.rejects(cache.update('t', inc, /** @type {any} */ ({ lockTtl: 5 })), withCode('ERR_INVALID_OPTION'))
  assert.deepEqual(await cache.update('t', inc, { lockTtlMs: 100, lockWaitMs: 0, lockRetries: 0 }), { n: 1 })
  await cache.close()
})
