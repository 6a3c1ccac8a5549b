// Serialization side by side: JSON.stringify, a Piscina pool running JSON.stringify (the
// seeds' "fix"), yieldable-json, and this addon's serializeAsync (and sync serialize), on
// conversation-shaped values of 10 KB / 100 KB / 1 MB / 10 MB. For each: median total time,
// ratio to JSON.stringify, and the worst and p99 event-loop stall while it runs
// (monitorEventLoopDelay, resolution 1 ms). Then truncation to a prompt budget and 50
// concurrent 1 MB calls. Writes its section of benchmark/RESULTS.md.
//
//   node --expose-gc benchmark/serialize.mjs   (QUICK=1 for a short run that writes nothing)
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import Piscina from 'piscina'
import { serialize, serializeAsync } from '../lib/index.mjs'
import { makeConversation } from './conversation.mjs'
import { machine, median, waitForQuiet, writeSection } from './results.mjs'

const require = createRequire(import.meta.url)
const yieldable = require('yieldable-json')
const QUICK = !!process.env.QUICK

/** @type {Piscina | null} created only in the child that measures it */
let pool = null
const piscina = () => (pool ??= new Piscina({ filename: new URL('./workers/stringify-worker.mjs', import.meta.url).href, maxThreads: 2 }))

/** @type {Record<string, (v: unknown) => Promise<unknown>>} */
const peers = {
  'JSON.stringify': async (v) => JSON.stringify(v),
  'piscina (JSON.stringify in a worker)': (v) => piscina().run(v),
  'yieldable-json': (v) =>
    new Promise((resolve, reject) => yieldable.stringifyAsync(v, (/** @type {any} */ err, /** @type {string} */ s) => (err ? reject(err) : resolve(s)))),
  'serialize (sync, this addon)': async (v) => serialize(v).serialized,
  'serializeAsync (this addon)': async (v) => (await serializeAsync(v)).serialized,
}

/**
 * Runs `fn` `n` times; returns median wall time and the loop stalls seen while it ran.
 * @param {() => Promise<unknown>} fn @param {number} n
 */
async function measure(fn, n) {
  await fn() // warm-up
  await settle()
  const times = []
  const h = monitorEventLoopDelay({ resolution: 1 })
  h.enable()
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    await fn()
    times.push(performance.now() - t)
    await new Promise((r) => setTimeout(r, 2)) // let the monitor take a sample between runs
  }
  h.disable()
  return { median: median(times), worst: h.max / 1e6, p99: h.percentile(99) / 1e6 }
}

/**
 * Collects the garbage the previous measurement left (when run with --expose-gc, as
 * `npm run bench:serialize` does), so that each peer's figures include the collections its
 * own allocations cause and not its predecessor's.
 */
async function settle() {
  const gc = /** @type {any} */ (globalThis).gc
  if (typeof gc === 'function') gc()
  await new Promise((r) => setTimeout(r, 20))
}

const runs = (/** @type {number} */ size) => (QUICK ? 3 : size <= 100e3 ? 200 : size <= 1e6 ? 30 : 10)

// Child mode: one implementation on one size, in a process of its own, so that no
// implementation runs in a heap (external strings, garbage, V8's collector state) or beside
// threads (Piscina's workers collecting their clones) that another one left behind.
// Prints the measurement as JSON.
if (process.argv[2] === 'child') {
  const [, , , what, sizeArg] = process.argv
  const size = Number(sizeArg)
  /** @type {unknown} */
  let out
  if (what === 'idle') {
    const ms = Number(process.argv[5])
    out = await measure(() => new Promise((r) => setTimeout(r, ms / runs(size))), runs(size))
  } else if (what === 'cut') {
    const ten = makeConversation(size)
    const js = await measure(async () => JSON.stringify(ten), QUICK ? 3 : 10)
    await settle()
    const cut = await measure(() => serializeAsync(ten, { maxSize: 50_000 }), QUICK ? 3 : 10)
    out = { js, cut }
  } else if (what === 'fifty') {
    const fifty = Array.from({ length: 50 }, (_, i) => makeConversation(1e6, i + 2))
    const seq = await measure(async () => fifty.map((v) => JSON.stringify(v)), QUICK ? 2 : 5)
    await settle()
    const conc = await measure(() => Promise.all(fifty.map((v) => serializeAsync(v))), QUICK ? 2 : 5)
    out = { seq, conc }
  } else {
    const run = peers[what]
    const value = makeConversation(size)
    const got = await run(value)
    if (got !== JSON.stringify(value)) throw new Error(`${what} produced different text at ${size}`)
    await settle()
    out = await measure(() => run(value), runs(size))
  }
  await pool?.destroy()
  process.stdout.write(JSON.stringify(out))
  process.exit(0)
}

/** Runs this script in child mode; returns what it printed. @param {string[]} args */
function child(...args) {
  const flags = typeof (/** @type {any} */ (globalThis).gc) === 'function' ? ['--expose-gc'] : []
  const r = spawnSync(process.execPath, [...flags, fileURLToPath(import.meta.url), 'child', ...args], {
    encoding: 'utf8',
    env: process.env,
    maxBuffer: 1 << 20,
  })
  if (r.status !== 0) throw new Error(`child ${args.join(' ')} failed: ${r.stderr}`)
  return JSON.parse(r.stdout)
}

const PROCESSES = 3
const load = QUICK ? 0 : await waitForQuiet()
const sizes = QUICK ? [10e3, 1e6] : [10e3, 100e3, 1e6, 10e6]
const rows = []
/** @type {Record<number, Record<string, {median:number,worst:number,p99:number}>>} */
const bySize = {}
for (const size of sizes) {
  bySize[size] = {}
  for (const name of Object.keys(peers)) {
    // Three processes per row: the median of their medians (time varies more between
    // processes than within one on this VM), and the worst of their stalls.
    const ms = Array.from({ length: QUICK ? 1 : PROCESSES }, () => child(name, String(size)))
    const m = { median: median(ms.map((x) => x.median)), worst: Math.max(...ms.map((x) => x.worst)), p99: Math.max(...ms.map((x) => x.p99)) }
    bySize[size][name] = m
    const base = bySize[size]['JSON.stringify'].median
    rows.push(`| ${fmtSize(size)} | ${name} | ${m.median.toFixed(3)} | ${(m.median / base).toFixed(2)}x | ${m.worst.toFixed(1)} | ${m.p99.toFixed(1)} |`)
    console.log(rows.at(-1))
  }
  // The machine's own noise floor: the same monitor on an idle loop, for as long as the
  // serializeAsync runs took.
  const idleMs = Math.max(50, bySize[size]['serializeAsync (this addon)'].median * runs(size))
  const idle = child('idle', String(size), String(idleMs))
  rows.push(`| ${fmtSize(size)} | (idle event loop, same monitor: noise floor) | — | — | ${idle.worst.toFixed(1)} | ${idle.p99.toFixed(1)} |`)
  console.log(rows.at(-1))
}

// Truncation to a prompt budget: cost what it keeps.
const { js: js10, cut } = child('cut', String(QUICK ? 1e6 : 10e6))
const cutLine = `serializeAsync(${QUICK ? '1' : '10'} MB value, { maxSize: 50_000 }): median ${cut.median.toFixed(3)} ms = ${((cut.median / js10.median) * 100).toFixed(1)}% of JSON.stringify's ${js10.median.toFixed(2)} ms (worst stall ${cut.worst.toFixed(1)} ms)`
console.log(cutLine)

// 50 concurrent 1 MB calls vs 50 sequential JSON.stringify calls.
const { seq, conc } = child('fifty', '1000000')
const concLine = `50 concurrent serializeAsync of 1 MB: median ${conc.median.toFixed(1)} ms (${(conc.median / seq.median).toFixed(2)}x of 50 sequential JSON.stringify, ${seq.median.toFixed(1)} ms); worst stall ${conc.worst.toFixed(1)} ms, p99 ${conc.p99.toFixed(1)} ms (JSON.stringify x50: worst ${seq.worst.toFixed(1)} ms)`
console.log(concLine)

function fmtSize(/** @type {number} */ n) {
  return n >= 1e6 ? `${n / 1e6} MB` : `${n / 1e3} KB`
}

if (!QUICK) {
  writeSection(
    'serialize',
    `## Serialization (\`node --expose-gc benchmark/serialize.mjs\`)

${new Date().toISOString().slice(0, 10)}; ${machine()} (waited for load < 1.2; it was ${load.toFixed(2)}).
Conversation-shaped values (chat messages with prose, code, CJK, emoji, tool calls; \`benchmark/conversation.mjs\`).
Each implementation is measured on each size in processes of its own (the script runs itself per row, three times: median time is the median of the three processes' medians, worst and p99 stall the worst of the three), so that none runs in a heap, or beside threads, that another one left behind; in each, the heap is collected after the warm-up call (${typeof (/** @type {any} */ (globalThis).gc) === 'function' ? '`--expose-gc`: on' : '**`--expose-gc` was not given: off**'}).
Median wall time per call; stall = event-loop delay seen by \`monitorEventLoopDelay({ resolution: 1 })\` while the calls ran (worst = max, and p99).

| size | implementation | median ms | vs JSON.stringify | worst stall ms | p99 stall ms |
|---|---|---|---|---|---|
${rows.join('\n')}

- ${cutLine}
- ${concLine}
`,
  )
}
