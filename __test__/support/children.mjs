// Drives ConversationCaches in separate node processes (support/cache-child.mjs) for the
// multi-process tests and the coherence benchmark (not a test file itself).
//
//   const procs = await spawnCaches(4, { redisUrl, dbDir })
//   await procs[0].call('set', { key: 'k', value: { rev: 1 } })
//   await stopAll(procs)
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const CHILD = fileURLToPath(new URL('./cache-child.mjs', import.meta.url))
const CALL_TIMEOUT_MS = 30_000

/**
 * @typedef {object} CacheProcess
 * @property {number} pid
 * @property {(op: string, args?: Record<string, unknown>) => Promise<any>} call
 * @property {() => Promise<void>} stop close the cache, end the process, wait for its exit
 */

/**
 * @param {{ redisUrl: string, dbDir?: string, options?: Record<string, unknown>, lib?: 'bento' }} open
 * @returns {Promise<CacheProcess>}
 */
export async function spawnCache(open) {
  const child = spawn(process.execPath, [CHILD], { stdio: ['pipe', 'pipe', 'inherit'] })
  const stdin = /** @type {import('node:stream').Writable} */ (child.stdin)
  const exited = new Promise((resolve) => child.once('exit', resolve))
  /** @type {Map<number, { resolve: (v: any) => void, reject: (e: Error) => void, timer: NodeJS.Timeout }>} */
  const pending = new Map()
  let seq = 0
  createInterface({ input: /** @type {import('node:stream').Readable} */ (child.stdout) }).on('line', (line) => {
    const r = JSON.parse(line)
    const p = pending.get(r.id)
    if (!p) return
    pending.delete(r.id)
    clearTimeout(p.timer)
    if (r.ok) p.resolve(r.value)
    else p.reject(new Error(`child ${child.pid}: ${r.error}`))
  })
  child.once('exit', (code, signal) => {
    for (const p of pending.values()) {
      clearTimeout(p.timer)
      p.reject(new Error(`child ${child.pid} exited (${code ?? signal})`))
    }
    pending.clear()
  })
  /** @type {CacheProcess['call']} */
  const call = (op, args = {}) =>
    new Promise((resolve, reject) => {
      const id = ++seq
      const timer = setTimeout(() => {
        pending.delete(id)
        reject(new Error(`child ${child.pid}: ${op} took over ${CALL_TIMEOUT_MS} ms`))
      }, CALL_TIMEOUT_MS)
      pending.set(id, { resolve, reject, timer })
      stdin.write(JSON.stringify({ id, op, ...args }) + '\n')
    })
  await call('open', open)
  return {
    pid: /** @type {number} */ (child.pid),
    call,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        await call('close').catch(() => {})
        stdin.end()
        const t = setTimeout(() => child.kill('SIGKILL'), 5000)
        await exited
        clearTimeout(t)
      }
    },
  }
}

/**
 * @param {number} n @param {Parameters<typeof spawnCache>[0]} open
 * @returns {Promise<CacheProcess[]>}
 */
export async function spawnCaches(n, open) {
  return Promise.all(Array.from({ length: n }, () => spawnCache(open)))
}

/** @param {CacheProcess[]} procs */
export async function stopAll(procs) {
  await Promise.all(procs.map((p) => p.stop()))
}
