// The threads the addon starts beside the event loop: serializeAsync's render threads and the
// Redis tier's tokio workers are each half the cores (1 to 4), so that with the event loop
// they do not outnumber the cores (src/background.rs `beside_event_loop`). Counted by name in
// /proc in a child process that has used both.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { startRedis } from './support/redis-server.mjs'
import { runChild } from './support/run-child.mjs'

const INDEX = JSON.stringify(fileURLToPath(new URL('../index.js', import.meta.url)))

test('render threads and tokio workers: half the cores each, 1 to 4', { skip: process.platform !== 'linux' && 'counts threads in /proc' }, async () => {
  const server = await startRedis()
  try {
    // Without TOKIO_WORKER_THREADS (which overrides the tokio count).
    const env = { ...process.env }
    delete env.TOKIO_WORKER_THREADS
    const r = await runChild(
      `const { RedisTier, serializeAsync } = require(${INDEX})
      const fs = require('node:fs')
      const t = new RedisTier({ url: ${JSON.stringify(server.url)}, timeoutMs: 5000 })
      const big = { items: Array.from({ length: 20000 }, (_, i) => ({ i, s: 'x'.repeat(20) })) }
      Promise.all([t.get('a'), ...Array.from({ length: 8 }, () => serializeAsync(big))]).then(async () => {
        const names = fs.readdirSync('/proc/self/task').map((id) => fs.readFileSync('/proc/self/task/' + id + '/comm', 'utf8').trim())
        console.log(JSON.stringify({
          tokio: names.filter((n) => n.startsWith('tokio-rt')).length,
          render: names.filter((n) => n.startsWith('acn-render')).length,
        }))
        await t.close()
      })`,
      10_000,
      { env },
    )
    assert.equal(r.code, 0, `exit ${r.code}; stderr: ${r.stderr}`)
    const { tokio, render } = JSON.parse(r.stdout)
    // Rust counts the cores this process may use (affinity, cgroup quota): at most what Node counts.
    const most = Math.min(4, Math.max(1, Math.floor(availableParallelism() / 2)))
    for (const [what, n] of [['tokio workers', tokio], ['render threads', render]]) {
      assert.ok(n >= 1 && n <= most, `${n} ${what}; expected 1..${most}`)
      if (availableParallelism() === 2) assert.equal(n, 1, what)
    }
  } finally {
    await server.stop()
  }
})
