// Starts ConversationCache processes (lock-child.mjs) and talks to them over IPC; used by the
// multi-process lock / single-flight tests and benchmark/coherence-locks.mjs.
//
//   const kids = await startChildren(4, { redisUrl, l2TimeoutMs: 1000 })
//   const replies = await Promise.all(kids.map((k) => k.call({ cmd: 'inc', key: 'c', n: 250 })))
//   await Promise.all(kids.map((k) => k.close()))   // each child exits by itself
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const CHILD = fileURLToPath(new URL('./lock-child.mjs', import.meta.url))

/**
 * @typedef {object} Child
 * @property {number} pid
 * @property {(msg: Record<string, unknown>, timeoutMs?: number) => Promise<any>} call
 *   sends a command; resolves its reply (rejects on an error reply, a dead child or the timeout)
 * @property {(type: string) => Promise<any>} next resolves the next unsolicited message of `type`
 * @property {(signal?: NodeJS.Signals) => void} kill
 * @property {Promise<{ code: number | null, signal: NodeJS.Signals | null }>} exited
 * @property {() => Promise<void>} close closes the cache and waits (<= 10 s) for the process to exit by itself
 */

/**
 * @param {Record<string, unknown>} cacheOptions passed to each child's ConversationCache
 * @param {string} [script] the child script (default lock-child.mjs; it must speak the same IPC)
 * @returns {Promise<Child>}
 */
export async function startChild(cacheOptions, script = CHILD) {
  const proc = fork(script, [JSON.stringify(cacheOptions)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  /** @type {Map<number, { resolve: (v: any) => void, reject: (e: Error) => void }>} */
  const pending = new Map()
  /** @type {Map<string, Array<(m: any) => void>>} */
  const listeners = new Map()
  let seq = 0
  const exited = new Promise((resolve) => {
    proc.once('exit', (code, signal) => {
      for (const p of pending.values()) p.reject(new Error(`child ${proc.pid} exited (${code ?? signal})`))
      pending.clear()
      resolve({ code, signal })
    })
  })
  proc.on('message', (/** @type {any} */ m) => {
    if (m.id !== undefined) {
      const p = pending.get(m.id)
      pending.delete(m.id)
      if (!p) return
      if (m.error) p.reject(Object.assign(new Error(m.error.message), { code: m.error.code }))
      else p.resolve(m)
      return
    }
    const waiting = listeners.get(m.type)
    if (waiting?.length) waiting.shift()?.(m)
  })
  /** @param {string} type */
  const next = (type) =>
    new Promise((resolve) => {
      const arr = listeners.get(type) ?? []
      arr.push(resolve)
      listeners.set(type, arr)
    })
  const ready = next('ready')
  const startTimer = setTimeout(() => proc.kill('SIGKILL'), 20_000)
  await Promise.race([ready, exited.then(() => { throw new Error('a child exited before it was ready') })])
  clearTimeout(startTimer)
  /** @type {Child} */
  const child = {
    pid: /** @type {number} */ (proc.pid),
    call(msg, timeoutMs = 60_000) {
      const id = ++seq
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id)
          reject(new Error(`child ${proc.pid}: no reply to ${msg.cmd} within ${timeoutMs} ms`))
        }, timeoutMs)
        const done = (/** @type {() => void} */ f) => {
          clearTimeout(timer)
          f()
        }
        pending.set(id, { resolve: (v) => done(() => resolve(v)), reject: (e) => done(() => reject(e)) })
        proc.send({ id, ...msg })
      })
    },
    next,
    kill(signal = 'SIGKILL') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal)
    },
    exited,
    async close() {
      if (proc.exitCode !== null || proc.signalCode !== null) return
      await child.call({ cmd: 'close' }).catch(() => {})
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000)
      const { code, signal } = await exited
      clearTimeout(timer)
      if (code !== 0) throw new Error(`child ${proc.pid} did not exit by itself after close (${code ?? signal})`)
    },
  }
  return child
}

/**
 * @param {number} n @param {Record<string, unknown>} cacheOptions @param {string} [script]
 * @returns {Promise<Child[]>}
 */
export function startChildren(n, cacheOptions, script) {
  return Promise.all(Array.from({ length: n }, () => startChild(cacheOptions, script)))
}
