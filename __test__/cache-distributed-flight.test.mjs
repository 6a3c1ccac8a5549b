// Distributed single flight of getOrLoad: on a cold key, separate processes sharing a Redis
// run the loader once in total; if the loading process dies, the others still get a value.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { ConversationCache } from '@povc/agent-core-native'
import { startRedis } from './support/redis-server.mjs'
import { startChildren } from './support/lock-children.mjs'
import { sleep } from './cache-helpers.mjs'

/** Loader calls recorded by the children (one line per call, the caller's pid). @param {string} file */
const loaderCalls = (file) => {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number)
  } catch {
    return []
  }
}

/** @param {any[]} replies @param {string} name */
const sum = (replies, name) => replies.reduce((a, r) => a + r.stats[name], 0)

test('4 processes x 50 callers of a cold key: the loader runs once in total', { timeout: 60_000 }, async () => {
  const server = await startRedis()
  const dir = mkdtempSync(path.join(tmpdir(), 'agent-core-flight-'))
  const countFile = path.join(dir, 'loads')
  const kids = await startChildren(4, { redisUrl: server.url })
  try {
    const replies = await Promise.all(
      kids.map((k) => k.call({ cmd: 'load', key: 'cold', callers: 50, loadMs: 500, countFile })),
    )
    const calls = loaderCalls(countFile)
    assert.equal(calls.length, 1, `loader calls: ${calls}`)
    const leader = calls[0]
    for (const r of replies) for (const v of r.values) assert.deepEqual(v, { id: 'cold', by: leader })
    assert.equal(replies.reduce((a, r) => a + r.loads, 0), 1)
    assert.equal(sum(replies, 'loads'), 1)
    // Three processes took the leader's value from Redis; inside each process the other 49
    // callers joined the local flight.
    assert.equal(sum(replies, 'distributedStampedePrevented'), 3)
    assert.equal(sum(replies, 'stampedePrevented'), 4 * 49)
    // The leader's fill released the lease and moved the version by the rule of every change
    // script (max(old + 1, Redis TIME in µs)): a version that follows the clock.
    assert.ok((await server.command('EXISTS', 'agent-core:conv:{cold}:lease')).startsWith(':0'))
    const ver = Number((await server.command('GET', 'agent-core:conv:{cold}:ver')).split('\r\n')[1])
    assert.ok(ver > (Date.now() - 600_000) * 1000 && ver < (Date.now() + 600_000) * 1000, `version ${ver}`)
    // A fresh reader gets it too, without a loader.
    const reader = new ConversationCache({ redisUrl: server.url })
    assert.deepEqual(await reader.get('cold'), { id: 'cold', by: leader })
    await reader.close()
  } finally {
    await Promise.all(kids.map((k) => k.close()))
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('the loading process is killed mid-load (SIGKILL): the others still get a value, loaded once more', { timeout: 60_000 }, async () => {
  const server = await startRedis()
  const dir = mkdtempSync(path.join(tmpdir(), 'agent-core-flight-'))
  const countFile = path.join(dir, 'loads')
  const kids = await startChildren(4, { redisUrl: server.url, loadLeaseMs: 800 })
  try {
    // The loading process tells us when its loader starts; the loads take 3 s, so the kill
    // lands mid-load.
    const firstLoading = Promise.race(kids.map((k) => k.next('loading')))
    const pending = kids.map((k) =>
      k.call({ cmd: 'load', key: 'cold', callers: 50, loadMs: 3000, countFile, announce: true }).then(
        (r) => ({ pid: k.pid, r }),
        (e) => ({ pid: k.pid, error: /** @type {Error} */ (e) }),
      ),
    )
    const { pid: leaderPid } = await firstLoading
    const leader = kids.find((k) => k.pid === leaderPid)
    assert.ok(leader)
    await sleep(100)
    leader.kill('SIGKILL')
    const { signal } = await leader.exited
    assert.equal(signal, 'SIGKILL')
    const t0 = performance.now()
    const results = await Promise.all(pending)
    const waited = performance.now() - t0

    const survivors = results.filter((x) => x.pid !== leaderPid)
    assert.equal(survivors.length, 3)
    const calls = loaderCalls(countFile)
    // The dead leader's call, then exactly one survivor's once its lease ran out.
    assert.equal(calls.length, 2, `loader calls: ${calls}`)
    assert.equal(calls[0], leaderPid)
    const second = calls[1]
    assert.ok(survivors.some((x) => x.pid === second))
    for (const x of survivors) {
      assert.ok(!('error' in x), String(/** @type {any} */ (x).error))
      const r = /** @type {any} */ (x).r
      assert.equal(r.values.length, 50)
      for (const v of r.values) assert.deepEqual(v, { id: 'cold', by: second })
    }
    assert.equal(sum(survivors.map((x) => /** @type {any} */ (x).r), 'distributedStampedePrevented'), 2)
    // Bounded by the dead lease (800 ms) plus one load (3 s), with slack for a busy machine.
    assert.ok(waited < 15_000, `the survivors waited ${Math.round(waited)} ms`)
  } finally {
    await Promise.all(kids.map((k) => k.close().catch(() => {})))
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a cold load whose loader fails releases the lease: another instance loads at once', { timeout: 30_000 }, async () => {
  const server = await startRedis()
  const a = new ConversationCache({ redisUrl: server.url, loadLeaseMs: 60_000 })
  const b = new ConversationCache({ redisUrl: server.url, loadLeaseMs: 60_000 })
  try {
    /** @type {(v: unknown) => void} */
    let fail = () => {}
    const failing = a.getOrLoad('t', () => new Promise((_, reject) => (fail = reject)))
    await sleep(50) // a holds the lease
    let loadsB = 0
    const bLoad = b.getOrLoad('t', async () => {
      loadsB++
      return { from: 'b' }
    })
    await sleep(100)
    assert.equal(loadsB, 0, 'b must wait while a holds the lease')
    const boom = new Error('db down')
    fail(boom)
    await assert.rejects(failing, (e) => e === boom)
    const t0 = performance.now()
    assert.deepEqual(await bLoad, { from: 'b' })
    // Far sooner than the 60 s lease: a gave it up.
    assert.ok(performance.now() - t0 < 5000)
    assert.equal(loadsB, 1)
    assert.equal(b.getStats().distributedStampedePrevented, 0)
  } finally {
    await a.close()
    await b.close()
    await server.stop()
  }
})

test('a load whose result is not stored (a write came meanwhile) still frees the lease', async () => {
  const server = await startRedis()
  const cache = new ConversationCache({ redisUrl: server.url })
  try {
    /** @type {(v: unknown) => void} */
    let finish = () => {}
    const load = cache.getOrLoad('t', () => new Promise((r) => (finish = /** @type {(v: unknown) => void} */ (r))))
    await sleep(50)
    assert.ok((await server.command('EXISTS', 'agent-core:conv:{t}:lease')).startsWith(':1'))
    await cache.invalidate('t') // makes the load's result stale
    finish({ v: 'old' })
    assert.deepEqual(await load, { v: 'old' })
    await sleep(50)
    assert.ok((await server.command('EXISTS', 'agent-core:conv:{t}:lease')).startsWith(':0'))
    assert.ok((await server.command('EXISTS', 'agent-core:conv:{t}')).startsWith(':0'))
  } finally {
    await cache.close()
    await server.stop()
  }
})
