// Lock throughput of ConversationCache#update across processes (issue 5, LOCK half):
// read-modify-write increments under the distributed lock, on one hot key and spread over
// 100 keys, from 1 process and from 4 processes sharing one private redis-server.
// Peers in the same run: redlock (npm, v4) + ioredis GET/SET doing the same increment, and
// ConversationCache without Redis (in-process update only: the ceiling, 1 process).
//   node benchmark/coherence-locks.mjs      (needs a release build; --quick: smoke run, writes nothing)
// Writes the `coherence-locks` section of benchmark/RESULTS.md.
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { ConversationCache } from '@povc/agent-core-native'
import { startRedis } from '../__test__/support/redis-server.mjs'
import { startChildren } from '../__test__/support/lock-children.mjs'
import { machine, writeSection, waitForQuiet, median } from './results.mjs'

const CHILD = fileURLToPath(new URL('./workers/lock-bench-child.mjs', import.meta.url))
// `--quick`: a smoke run (few updates, one round) that writes nothing.
const QUICK = process.argv.includes('--quick')
const ROUNDS = QUICK ? 1 : 3
const CONCURRENCY = 16 // updates in flight per process
const OPS = QUICK ? { 1: 200, 4: 100 } : { 1: 2000, 4: 800 } // updates per process and run
const SCENARIOS = [
  { name: 'one hot key', keys: 1, procs: 1 },
  { name: 'one hot key', keys: 1, procs: 4 },
  { name: '100 keys', keys: 100, procs: 1 },
  { name: '100 keys', keys: 100, procs: 4 },
]
const CONTENDERS = ['cache', 'redlock', 'local']
const LABEL = {
  cache: 'ConversationCache#update (distributed lock + fenced write)',
  redlock: 'redlock 4 + ioredis GET/SET',
  local: 'ConversationCache#update without Redis (in-process only)',
}

/** @param {number[]} xs @param {number} q */
function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN
}

/** The value of a small envelope from a raw RESP reply (uncompressed: < 4 KiB). @param {string} resp */
function counterOf(resp) {
  if (resp.startsWith('$-1')) return 0
  const body = resp.slice(resp.indexOf('\r\n') + 2, resp.lastIndexOf('\r\n'))
  const json = body.charCodeAt(0) === 0xac ? body.slice(4) : body
  return JSON.parse(json).n
}

async function main() {
  const server = await startRedis()
  const kids = await startChildren(4, { redisUrl: server.url }, CHILD)
  const loadAtStart = machine()
  // Warm-up: connections, scripts, JIT.
  for (const c of CONTENDERS) {
    await Promise.all(kids.map((k, i) => k.call({ cmd: 'run', contender: c, keys: [`warm-${i}`], n: 200, concurrency: 4 })))
  }
  const quietLoad = QUICK ? 0 : await waitForQuiet()
  const started = new Date().toISOString()
  /** @type {Map<string, { opsPerSec: number[], lat: number[], loopMax: number[] }>} */
  const results = new Map()
  let run = 0
  for (let round = 0; round < ROUNDS; round++) {
    for (const sc of SCENARIOS) {
      // Contenders take turns, in a rotated order each round.
      const order = CONTENDERS.map((_, i) => CONTENDERS[(i + round) % CONTENDERS.length])
      for (const contender of order) {
        if (contender === 'local' && sc.procs > 1) continue // no shared state to lock without Redis
        run++
        const keys = Array.from({ length: sc.keys }, (_, i) => `r${run}-k${i}`)
        const n = OPS[/** @type {1 | 4} */ (sc.procs)]
        const procs = kids.slice(0, sc.procs)
        const t0 = performance.now()
        const replies = await Promise.all(procs.map((k) => k.call({ cmd: 'run', contender, keys, n, concurrency: CONCURRENCY }, 300_000)))
        const wall = performance.now() - t0
        // Verify: every increment landed exactly once.
        let total = 0
        if (contender === 'local') {
          total = (await procs[0].call({ cmd: 'read', keys })).values.reduce((a, b) => a + b, 0)
        } else {
          for (const key of keys) {
            const raw = await server.command('GET', contender === 'cache' ? `agent-core:conv:{${key}}` : `peer:{${key}}`)
            total += counterOf(raw)
          }
        }
        const expected = n * sc.procs
        if (total !== expected) throw new Error(`${contender} ${sc.name} x${sc.procs}: counters sum to ${total}, expected ${expected}`)
        const id = `${sc.name}|${sc.procs}|${contender}`
        const r = results.get(id) ?? { opsPerSec: [], lat: [], loopMax: [] }
        r.opsPerSec.push(expected / (wall / 1000))
        for (const x of replies) r.lat.push(...x.lat)
        r.loopMax.push(Math.max(...replies.map((x) => x.loopMaxMs)))
        results.set(id, r)
      }
    }
  }
  const loadAtEnd = (await import('node:os')).loadavg()[0]
  await Promise.all(kids.map((k) => k.close()))
  await server.stop()

  const nproc = execFileSync('nproc').toString().trim()
  const lines = [
    '## Lock throughput of update across processes (`benchmark/coherence-locks.mjs`)',
    '',
    `Command: \`node benchmark/coherence-locks.mjs\` (release build). ${loadAtStart}; nproc ${nproc}; 1-minute load when measuring started ${quietLoad.toFixed(2)}, at the end ${loadAtEnd.toFixed(2)}; ${started}.`,
    `One private redis-server (loopback) started by the script; 4 child processes (each: one ConversationCache with that Redis, one without, one ioredis client + redlock). Each run: every process makes ${OPS[1]} (1 process) or ${OPS[4]} (4 processes) read-modify-write increments of a counter, ${CONCURRENCY} in flight per process, key picked at random from the scenario's keys; the sum of the counters is checked after every run (all exact). ${ROUNDS} rounds, contenders alternating in rotated order; ops/s is the median of the rounds (wall time of the whole run), latency percentiles are over every call of all rounds (ms, from call to resolve, including the wait in the process's own per-key queue).`,
    'redlock settings: retryDelay 4 ms, retryJitter 3 ms, retryCount 2500, driftFactor 0.01 (tuned for throughput on one machine); its update is lock (SET NX PX script) + GET + SET + unlock: no fencing, no version. Ours: a lock script that also reads value + version, then a fenced write script that also releases the lock (2 round trips; a third, the release, only when the write did not happen); inside a process, the per-key queue lets one update per key at a time go for the lock.',
    '',
    '| keys | processes | contender | ops/s | p50 ms | p99 ms | max event-loop delay ms (median of rounds) |',
    '|---|---|---|---:|---:|---:|---:|',
  ]
  for (const sc of SCENARIOS) {
    for (const c of CONTENDERS) {
      const r = results.get(`${sc.name}|${sc.procs}|${c}`)
      if (!r) continue
      lines.push(
        `| ${sc.name} | ${sc.procs} | ${LABEL[/** @type {keyof typeof LABEL} */ (c)]} | ${Math.round(median(r.opsPerSec))} | ${quantile(r.lat, 0.5).toFixed(3)} | ${quantile(r.lat, 0.99).toFixed(3)} | ${median(r.loopMax).toFixed(1)} |`,
      )
    }
  }
  lines.push('')
  for (const sc of SCENARIOS) {
    const ours = results.get(`${sc.name}|${sc.procs}|cache`)
    const peer = results.get(`${sc.name}|${sc.procs}|redlock`)
    if (ours && peer) {
      lines.push(`- ${sc.name}, ${sc.procs} process(es): ConversationCache / redlock throughput = **${(median(ours.opsPerSec) / median(peer.opsPerSec)).toFixed(2)}x**.`)
    }
  }
  const text = lines.join('\n')
  if (!QUICK) writeSection('coherence-locks', text)
  console.log(text)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
