// A ConversationCache in a process of its own, driven over stdin/stdout with JSON lines, for
// the multi-process coherence tests and benchmark/coherence.mjs (not a test file itself).
//
//   request:  {"id": 1, "op": "get", "key": "k"}        one per line
//   reply:    {"id": 1, "ok": true, "value": ...}      or {"id": 1, "ok": false, "error": "..."}
//
// ops: open {redisUrl, dbDir?, options?, lib?} (lib 'bento': a BentoCache with memory L1,
// Redis L2 and its Redis bus instead (benchmark/bento-peer.mjs), for benchmark/coherence.mjs:
// get / set / watch / until only) (dbDir: the "database", one JSON file per thread,
// read by the loader and written by update's save), get, getOrLoad, peek, set {value, tags?},
// update {value} (writes the value, saving it to dbDir first), invalidate, invalidateTag {tag},
// stats, until {key, rev, timeoutMs} (polls get(key) until it answers {rev}),
// watch {key, oldRev, timeoutMs, spin?} (polls get(key) until it no longer answers
// {rev: oldRev}; times in ms of the system-wide monotonic clock), waitBus {resyncs, timeoutMs}
// (until the bus is subscribed with at least that many resyncs), now, close.
// stdin closing ends the process (after close()), as does the parent's death.
import { createInterface } from 'node:readline'
import { readFileSync, writeFileSync, renameSync } from 'node:fs'
import path from 'node:path'
import { ConversationCache } from '@povc/agent-core-native'

/** Milliseconds of the monotonic clock, comparable across the processes of one machine. */
const now = () => Number(process.hrtime.bigint()) / 1e6

/** @type {any} */
let cache = null
/** @type {string | null} */
let dbDir = null

const fileOf = (/** @type {string} */ key) => path.join(/** @type {string} */ (dbDir), `${encodeURIComponent(key)}.json`)

/** @param {string} key */
function loadFromDb(key) {
  try {
    return JSON.parse(readFileSync(fileOf(key), 'utf8'))
  } catch {
    return null
  }
}

/** @param {string} key @param {unknown} value */
function saveToDb(key, value) {
  const tmp = `${fileOf(key)}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(value))
  renameSync(tmp, fileOf(key))
}

const c = () => {
  if (cache === null) throw new Error('open first')
  return cache
}

/** @param {number} ms */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const tick = () => new Promise((r) => setImmediate(r))

/** @param {{ key: string, oldRev: number, timeoutMs: number, spin?: boolean }} m */
async function watch({ key, oldRev, timeoutMs, spin }) {
  const deadline = now() + timeoutMs
  let lastOldAt = null
  for (;;) {
    const v = /** @type {any} */ (await c().get(key))
    const t = now()
    if (v?.rev !== oldRev) return { lastOldAt, firstNewAt: t, value: v }
    lastOldAt = t
    if (t > deadline) return { lastOldAt, firstNewAt: null, value: v, timedOut: true }
    await (spin ? tick() : sleep(1))
  }
}

/** @param {{ key: string, rev: number, timeoutMs: number }} m polls get(key) until it answers {rev} */
async function until({ key, rev, timeoutMs }) {
  const deadline = now() + timeoutMs
  for (;;) {
    const v = /** @type {any} */ (await c().get(key))
    if (v?.rev === rev) return v
    if (now() > deadline) throw new Error(`${key} still ${JSON.stringify(v)} after ${timeoutMs} ms, expected rev ${rev}`)
    await sleep(1)
  }
}

/** @param {{ resyncs: number, timeoutMs: number }} m */
async function waitBus({ resyncs, timeoutMs }) {
  const deadline = now() + timeoutMs
  for (;;) {
    const s = c().getStats()
    if (s.busConnected && s.busResyncs >= resyncs) return { at: now(), busResyncs: s.busResyncs }
    if (now() > deadline) throw new Error(`bus not back within ${timeoutMs} ms: ${JSON.stringify(s)}`)
    await sleep(2)
  }
}

/** @param {any} m */
async function handle(m) {
  switch (m.op) {
    case 'open':
      if (m.lib === 'bento') {
        // The benchmark's peer (benchmark/bento-peer.mjs; not type-checked with the tests).
        const peer = new URL('../../benchmark/bento-peer.mjs', import.meta.url).href
        cache = await (await import(peer)).bento(m.redisUrl)
        return { pid: process.pid }
      }
      dbDir = m.dbDir ?? null
      cache = new ConversationCache({
        redisUrl: m.redisUrl,
        ...(dbDir ? { loader: loadFromDb } : {}),
        ...(m.options ?? {}),
      })
      return { pid: process.pid }
    case 'get':
      return await c().get(m.key)
    case 'getOrLoad':
      return await c().getOrLoad(m.key)
    case 'peek':
      return c().peek(m.key) ?? null
    case 'set': {
      await c().set(m.key, m.value, m.tags ? { tags: m.tags } : undefined)
      return { returnedAt: now() }
    }
    case 'update': {
      await c().update(m.key, () => m.value, { save: dbDir ? (/** @type {unknown} */ v) => saveToDb(m.key, v) : undefined })
      return { returnedAt: now() }
    }
    case 'invalidate':
      await c().invalidate(m.key)
      return { returnedAt: now() }
    case 'invalidateTag': {
      const n = await c().invalidateTag(m.tag)
      return { n, returnedAt: now() }
    }
    case 'stats':
      return c().getStats()
    case 'watch':
      return await watch(m)
    case 'until':
      return await until(m)
    case 'waitBus':
      return await waitBus(m)
    case 'now':
      return now()
    case 'close':
      await cache?.close()
      cache = null
      return null
    default:
      throw new Error(`unknown op ${m.op}`)
  }
}

const rl = createInterface({ input: process.stdin })
rl.on('line', (line) => {
  /** @type {any} */
  let m
  try {
    m = JSON.parse(line)
  } catch {
    return
  }
  handle(m).then(
    (value) => process.stdout.write(JSON.stringify({ id: m.id, ok: true, value }) + '\n'),
    (e) => process.stdout.write(JSON.stringify({ id: m.id, ok: false, error: String(e?.stack ?? e) }) + '\n'),
  )
})
rl.on('close', () => {
  cache?.close().finally(() => process.exit(0))
  if (cache === null) process.exit(0)
})
