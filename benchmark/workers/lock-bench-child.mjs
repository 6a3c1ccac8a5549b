// One process of benchmark/coherence-locks.mjs: runs timed read-modify-write increments with
// one contender at a time and reports wall time, per-call latencies and event-loop delay.
// Driven over IPC through __test__/support/lock-children.mjs (same protocol as lock-child.mjs).
//   { id, cmd: 'run', contender: 'cache' | 'redlock' | 'local', keys: string[], n, concurrency }
//   { id, cmd: 'read', keys }  -> the in-process contender's counters (to verify none was lost)
//   { id, cmd: 'close' }
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import Redis from 'ioredis'
import Redlock from 'redlock'
import { ConversationCache } from '@povc/agent-core-native'

const { redisUrl } = JSON.parse(process.argv[2] ?? '{}')
// l2TimeoutMs only bounds plain reads and writes; the lock's calls wait as long as the lock.
const cache = new ConversationCache({ redisUrl, maxEntries: 1000 })
const local = new ConversationCache({ maxEntries: 1000 })
const redis = new Redis(redisUrl, { lazyConnect: false, maxRetriesPerRequest: 1 })
// Tuned for throughput on one machine, like our backoff (1 ms doubling to 32 ms, jittered):
// a retry every 1-7 ms, for up to ~10 s.
const redlock = new Redlock([redis], { retryCount: 2500, retryDelay: 4, retryJitter: 3, driftFactor: 0.01 })

/** @param {{ n?: number } | null} cur */
const inc = (cur) => ({ n: (cur?.n ?? 0) + 1 })

/** The peer: redlock's lock (SET NX PX), then GET + SET with ioredis, then unlock. @param {string} key */
async function redlockUpdate(key) {
  const lock = await redlock.lock(`peer:{${key}}:lock`, 5000)
  try {
    const cur = await redis.get(`peer:{${key}}`)
    await redis.set(`peer:{${key}}`, JSON.stringify(inc(cur ? JSON.parse(cur) : null)))
  } finally {
    await lock.unlock().catch(() => {})
  }
}

/** @param {string} contender @returns {(key: string) => Promise<unknown>} */
function updater(contender) {
  if (contender === 'cache') return (key) => cache.update(key, inc)
  if (contender === 'local') return (key) => local.update(key, inc)
  if (contender === 'redlock') return redlockUpdate
  throw new Error(`unknown contender ${contender}`)
}

/** @param {any} m */
async function handle(m) {
  switch (m.cmd) {
    case 'run': {
      const update = updater(m.contender)
      /** @type {number[]} */
      const lat = []
      let left = m.n
      const worker = async () => {
        while (left > 0) {
          left--
          const key = m.keys[Math.floor(Math.random() * m.keys.length)]
          const t0 = performance.now()
          await update(key)
          lat.push(performance.now() - t0)
        }
      }
      const loop = monitorEventLoopDelay({ resolution: 1 })
      loop.enable()
      const t0 = performance.now()
      await Promise.all(Array.from({ length: m.concurrency }, worker))
      const ms = performance.now() - t0
      loop.disable()
      return { ms, lat, loopMaxMs: loop.max / 1e6, loopP99Ms: loop.percentile(99) / 1e6 }
    }
    case 'read': {
      // The in-process contender's counters (the others are read from Redis by the parent).
      const values = []
      for (const key of m.keys) values.push(/** @type {{ n: number } | null} */ (local.peek(key))?.n ?? 0)
      return { values }
    }
    case 'close':
      await Promise.all([cache.close(), local.close()])
      redis.disconnect()
      return { closed: true }
    default:
      throw new Error(`unknown command ${m.cmd}`)
  }
}

process.on('message', (/** @type {any} */ m) => {
  handle(m).then(
    (r) => process.connected && process.send?.({ id: m.id, ...r }, () => m.cmd === 'close' && process.disconnect?.()),
    (e) => process.connected && process.send?.({ id: m.id, error: { code: String(e?.code ?? 'none'), message: String(e?.message ?? e) } }),
  )
})
process.send?.({ type: 'ready', pid: process.pid })
