// A ConversationCache in a process of its own, driven over IPC by the lock / distributed
// single-flight tests (not a test file itself; started through lock-children.mjs).
//
//   fork('lock-child.mjs', [JSON.stringify(cacheOptions)])  -> sends { type: 'ready' }
//   send { id, cmd: 'inc', key, n, updater?: { slowEvery, slowMs }, opts? }  (n concurrent update() increments)
//   send { id, cmd: 'load', key, callers, loadMs, countFile }               (callers concurrent getOrLoad)
//   send { id, cmd: 'get', key } / { id, cmd: 'stats' } / { id, cmd: 'close' } (then it exits)
// Each reply is { id, ...result } or { id, error: { code, message } }.
import { appendFileSync } from 'node:fs'
import { ConversationCache } from '@povc/agent-core-native'

const options = JSON.parse(process.argv[2] ?? '{}')
const cache = new ConversationCache(options)

/** @param {number} ms */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** @param {unknown} e */
const codeOf = (e) => String(/** @type {{ code?: unknown }} */ (e)?.code ?? 'none')

/** An increment; every `slowEvery`-th call of this process (if set) outlasts the lock. */
let calls = 0
/** @param {{ slowEvery?: number, slowMs?: number }} [u] */
function incrementer(u = {}) {
  /** @param {{ n?: number } | null} cur */
  return async (cur) => {
    calls++
    const slow = u.slowEvery && calls % u.slowEvery === 0
    // Yield between read and write as a real updater (a DB call) would.
    await sleep(slow ? (u.slowMs ?? 0) : 0)
    return { n: (cur?.n ?? 0) + 1 }
  }
}

/** @param {any} m */
async function handle(m) {
  switch (m.cmd) {
    case 'inc': {
      const startedAt = Date.now()
      const inc = incrementer(m.updater)
      const settled = await Promise.allSettled(
        Array.from({ length: m.n }, () => cache.update(m.key, inc, m.opts)),
      )
      /** @type {Record<string, number>} */
      const rejected = {}
      let ok = 0
      for (const s of settled) {
        if (s.status === 'fulfilled') ok++
        else rejected[codeOf(s.reason)] = (rejected[codeOf(s.reason)] ?? 0) + 1
      }
      return { ok, rejected, startedAt, endedAt: Date.now(), stats: cache.getStats() }
    }
    case 'load': {
      let loads = 0
      /** @param {string} id */
      const loader = async (id) => {
        loads++
        appendFileSync(m.countFile, `${process.pid}\n`)
        if (m.announce) process.send?.({ type: 'loading', pid: process.pid })
        await sleep(m.loadMs)
        return { id, by: process.pid }
      }
      const settled = await Promise.allSettled(Array.from({ length: m.callers }, () => cache.getOrLoad(m.key, loader)))
      const values = settled.map((s) => (s.status === 'fulfilled' ? s.value : { error: codeOf(s.reason) }))
      return { values, loads, stats: cache.getStats() }
    }
    case 'get':
      return { value: await cache.get(m.key) }
    case 'stats':
      return { stats: cache.getStats() }
    case 'close':
      await cache.close()
      return { closed: true }
    default:
      throw new Error(`unknown command ${m.cmd}`)
  }
}

process.on('message', (/** @type {any} */ m) => {
  handle(m).then(
    (r) => {
      if (!process.connected) return
      // After close, let go of the channel: nothing else keeps this process alive.
      process.send?.({ id: m.id, ...r }, () => m.cmd === 'close' && process.disconnect?.())
    },
    (e) => process.connected && process.send?.({ id: m.id, error: { code: codeOf(e), message: String(e?.message ?? e) } }),
  )
})
process.send?.({ type: 'ready', pid: process.pid })
