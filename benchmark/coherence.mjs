// Coherence lag: the time from a write RETURNING in one process to the old value
// disappearing in another (the reader's get() no longer answers it), across separate node
// processes sharing one Redis, for ConversationCache (its invalidation bus) and, in the same
// run, BentoCache (memory L1 + Redis L2 + its Redis bus), on a single redis-server and on a
// Redis Cluster of 3 masters, both started by this script on loopback.
//   node benchmark/coherence.mjs      (needs a release build)
// Writes the `coherence` section of benchmark/RESULTS.md. (Lock throughput of update() is
// measured by the LOCK half of issue 5 in a section of its own, `coherence-locks`.)
//
// Per round: the writer sets {rev: n}; each reader polls until it serves rev n (so it holds
// it in L1); the readers start polling get() (2 processes: one reader spinning on
// setImmediate; 4 processes: three readers polling every ~1 ms, so that four pollers do not
// starve two cores); the writer sets {rev: n + 1} and notes when set() returned; each reader
// notes when get() first answered something else. Lag = that moment - the write's return,
// on the machine-wide monotonic clock (negative: gone before the writer's call returned).
// The first rounds are a warm-up, not counted.
import { startRedis } from '../__test__/support/redis-server.mjs'
import { startCluster } from '../__test__/support/redis-cluster.mjs'
import { spawnCaches, stopAll } from '../__test__/support/children.mjs'
import { machine, writeSection, waitForQuiet, median } from './results.mjs'

const ROUNDS = { 2: 200, 4: 100 }
const KEYS = 3
/** Rounds run first and not counted (connections opened, BentoCache's bus subscribed). */
const WARMUP = 5

/** @param {number} ms */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** @param {number[]} xs @param {number} q */
function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]
}

/**
 * @param {string} redisUrl @param {'ours' | 'bento'} lib @param {2 | 4} n
 * @returns {Promise<{ lags: number[], stuck: number, other: number }>}
 */
async function measure(redisUrl, lib, n) {
  const procs = await spawnCaches(n, lib === 'bento' ? { redisUrl, lib } : { redisUrl })
  try {
    if (lib === 'ours') await Promise.all(procs.map((p) => p.call('waitBus', { resyncs: 0, timeoutMs: 10_000 })))
    const [writer, ...readers] = procs
    const spin = n === 2
    /** @type {number[]} */
    const lags = []
    let stuck = 0
    let other = 0
    for (let r = 0; r < WARMUP + ROUNDS[n]; r++) {
      const key = `bench-${r % KEYS}`
      await writer.call('set', { key, value: { rev: 2 * r } })
      await Promise.all(readers.map((p) => p.call('until', { key, rev: 2 * r, timeoutMs: 5000 })))
      const watching = readers.map((p) => p.call('watch', { key, oldRev: 2 * r, timeoutMs: 5000, spin }))
      await sleep(5)
      const { returnedAt } = await writer.call('set', { key, value: { rev: 2 * r + 1 } })
      for (const [i, w] of (await Promise.all(watching)).entries()) {
        if (r < WARMUP) continue
        if (w.timedOut) {
          stuck++ // still the old value 5 s after the write
          let why = ''
          if (lib === 'ours') {
            const ws = await writer.call('stats')
            const rs = await readers[i].call('stats')
            why = `; writer redisErrors ${ws.redisErrors} l2Timeouts ${ws.l2Timeouts}; reader busMessages ${rs.busMessages} busResyncs ${rs.busResyncs} busConnected ${rs.busConnected}`
          }
          console.error(`${lib}/${n} round ${r}: old value still served 5 s after the write${why}`)
        }
        else if (w.value?.rev !== 2 * r + 1) other++ // something else than the new value (e.g. null)
        else lags.push(w.firstNewAt - returnedAt)
      }
    }
    return { lags, stuck, other }
  } finally {
    await stopAll(procs)
  }
}

/** @param {string} label @param {string} lib @param {number} n @param {{ lags: number[], stuck: number, other: number }} m */
function row(label, lib, n, { lags, stuck, other }) {
  const f = (/** @type {number} */ x) => x.toFixed(2)
  const before = lags.filter((x) => x <= 0).length
  return `| ${label} | ${lib} | ${n} (${n === 2 ? '1 reader, spinning' : '3 readers, ~1 ms polls'}) | ${lags.length} | **${f(median(lags))}** | **${f(quantile(lags, 0.99))}** | ${f(Math.max(...lags))} | ${before} | ${stuck} | ${other} |`
}

async function main() {
  const load = await waitForQuiet(1.2)
  const lines = [
    '## Coherence lag across processes (`benchmark/coherence.mjs`)',
    '',
    `Command: \`node benchmark/coherence.mjs\` (release build). ${machine()}; load average when measuring started: ${load.toFixed(2)}; ${new Date().toISOString().slice(0, 10)}. Redis started by the script on loopback: one redis-server, and a cluster of 3 masters (no replicas). Every cache in a node process of its own (\`__test__/support/cache-child.mjs\`).`,
    '',
    'Lag = time from a write (`set`) returning in the writer to the first `get()` in a reader that no longer answers the old value, in ms (machine-wide monotonic clock; negative = the old value was gone before the writer\'s call returned). Peer in the same run: BentoCache 1.x (memory L1 + Redis L2 + its Redis pub/sub bus). The 4-process rows poll every ~1 ms, which adds up to ~1 ms.',
    '',
    '| Redis | cache | processes | samples | median | p99 | max | <= 0 | old value still served 5 s later | answered neither (e.g. null) |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ]
  /** @type {Record<string, { median: number, p99: number }>} */
  const figures = {}
  for (const [label, start] of /** @type {const} */ ([
    ['single server', startRedis],
    ['cluster, 3 masters', startCluster],
  ])) {
    const backend = await start()
    try {
      for (const n of /** @type {const} */ ([2, 4])) {
        for (const lib of /** @type {const} */ (['ours', 'bento'])) {
          const m = await measure(backend.url, lib, n)
          figures[`${label}|${lib}|${n}`] = { median: median(m.lags), p99: quantile(m.lags, 0.99) }
          const line = row(label, lib === 'ours' ? 'ConversationCache' : 'BentoCache', n, m)
          console.log(line)
          lines.push(line)
        }
      }
    } finally {
      await backend.stop()
    }
  }
  const ratios = []
  for (const label of ['single server', 'cluster, 3 masters']) {
    for (const n of [2, 4]) {
      const o = figures[`${label}|ours|${n}`]
      const b = figures[`${label}|bento|${n}`]
      ratios.push(`${label}, ${n} processes: median ${(o.median / b.median).toFixed(2)}x, p99 ${(o.p99 / b.p99).toFixed(2)}x`)
    }
  }
  lines.push(
    '',
    `ConversationCache / BentoCache, same run (below 1 = ConversationCache's old value disappears sooner): ${ratios.join('; ')}.`,
    '',
    'The multi-process tests (`__test__/cache-coherence*.test.mjs`) assert that no reader serves the old value more than **50 ms** after the write returned (the issue\'s target), against both a single server and the cluster.',
  )
  lines.push('', 'Lock throughput of `update()` (the distributed lock) is in its own section, `coherence-locks`, written by the LOCK half of issue 5.')
  writeSection('coherence', lines.join('\n'))
  console.log(lines.slice(-5).join('\n'))
}

await main()
