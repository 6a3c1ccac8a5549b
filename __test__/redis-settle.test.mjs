// How RedisTier's promises settle (src/js/settle.rs): one threadsafe function per JS
// environment settles finished calls in batches. Each call must still get its own answer,
// a pending call must keep Node alive, an idle tier must not, and worker threads (their own
// environments) must work beside the main thread.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { RedisTier } from '@povc/agent-core-native'
import { startRedis } from './support/redis-server.mjs'
import { runChild } from './support/run-child.mjs'

const INDEX = JSON.stringify(fileURLToPath(new URL('../index.js', import.meta.url)))

test('1,000 calls in flight on 200 keys: each settles with its own answer, errors included', async () => {
  const server = await startRedis()
  const t = new RedisTier({ url: server.url, timeoutMs: 5000 })
  try {
    const keys = Array.from({ length: 200 }, (_, i) => `k${i}`)
    await Promise.all(keys.map((k, i) => t.set(k, JSON.stringify({ k, i, pad: 'x'.repeat(i * 37) }))))
    const calls = []
    for (let n = 0; n < 1000; n++) {
      const k = keys[(n * 7) % keys.length]
      if (n % 100 === 99) calls.push(t.get(/** @type {any} */ (n)).then(() => 'resolved', (e) => e.code))
      else if (n % 50 === 0) calls.push(t.get(`absent-${n}`))
      else calls.push(t.get(k).then((v) => (v === null ? null : JSON.parse(v).k)))
    }
    const got = await Promise.all(calls)
    for (let n = 0; n < 1000; n++) {
      const want = n % 100 === 99 ? 'ERR_INVALID_KEY' : n % 50 === 0 ? null : keys[(n * 7) % keys.length]
      assert.equal(got[n], want, `call ${n}`)
    }
  } finally {
    await t.close()
    await server.stop()
  }
})

test('a pending call keeps Node alive until it settles; an idle tier, even unclosed, does not', async () => {
  const server = await startRedis()
  try {
    // Redis frozen: the call can only settle by its 400 ms deadline. Nothing else holds the
    // event loop, so the process would exit first if the pending call did not hold it.
    const warm = new RedisTier({ url: server.url, timeoutMs: 5000 })
    await warm.set('a', '[1]')
    await warm.close()
    await server.kill('SIGSTOP')
    const pending = await runChild(`
      const { RedisTier } = require(${INDEX})
      const t = new RedisTier({ url: ${JSON.stringify(server.url)}, timeoutMs: 400, connectTimeoutMs: 400 })
      t.get('a').then((v) => console.log('settled', v))`, 10_000)
    await server.kill('SIGCONT')
    assert.equal(pending.code, 0, `exit ${pending.code}; stderr: ${pending.stderr}`)
    assert.equal(pending.stdout.trim(), 'settled null')

    // Used, then left idle and never closed: nothing keeps the process alive.
    const idle = await runChild(`
      const { RedisTier } = require(${INDEX})
      const t = new RedisTier({ url: ${JSON.stringify(server.url)} })
      ;(async () => {
        const got = await Promise.all(Array.from({ length: 100 }, () => t.get('a')))
        console.log(got.filter((v) => v === '[1]').length)
      })()`, 10_000)
    assert.equal(idle.code, 0, `exit ${idle.code}; stderr: ${idle.stderr}`)
    assert.equal(idle.stdout.trim(), '100')
  } finally {
    await server.stop()
  }
})

test('worker threads: tiers in workers and on the main thread at once, workers come and go', async () => {
  const server = await startRedis()
  const main = new RedisTier({ url: server.url, timeoutMs: 5000 })
  try {
    await main.set('shared', '{"v":42}')
    const source = `
      const { parentPort, workerData } = require('node:worker_threads')
      const { RedisTier } = require(${INDEX})
      const t = new RedisTier({ url: workerData.url, timeoutMs: 5000 })
      ;(async () => {
        await t.set('w' + workerData.id, JSON.stringify({ id: workerData.id }))
        const got = await Promise.all(Array.from({ length: 200 }, (_, i) => t.get(i % 2 ? 'shared' : 'w' + workerData.id)))
        await t.close()
        parentPort.postMessage(got.map((v) => JSON.parse(v).v ?? JSON.parse(v).id))
      })()`
    /** @param {number} id @returns {Promise<number[]>} */
    const runWorker = (id) =>
      new Promise((resolve, reject) => {
        const w = new Worker(source, { eval: true, workerData: { url: server.url, id } })
        /** @type {number[] | undefined} */
        let msg
        w.on('message', (m) => (msg = m))
        w.on('error', reject)
        w.on('exit', (code) => (code === 0 && msg ? resolve(msg) : reject(new Error(`worker ${id} exit ${code}`))))
      })
    for (let round = 0; round < 2; round++) {
      const [a, b, mainGot] = await Promise.all([
        runWorker(round * 2 + 1),
        runWorker(round * 2 + 2),
        Promise.all(Array.from({ length: 200 }, () => main.get('shared'))),
      ])
      assert.deepEqual(a, Array.from({ length: 200 }, (_, i) => (i % 2 ? 42 : round * 2 + 1)))
      assert.deepEqual(b, Array.from({ length: 200 }, (_, i) => (i % 2 ? 42 : round * 2 + 2)))
      assert.ok(mainGot.every((v) => v === '{"v":42}'))
    }
  } finally {
    await main.close()
    await server.stop()
  }
})
