// Serialization side by side: JSON.stringify, a Piscina pool running JSON.stringify (the
// seeds' "fix"), yieldable-json, and this addon's serializeAsync (and sync serialize), on
// conversation-shaped values of 10 KB / 100 KB / 1 MB / 10 MB. For each: median total time,
// ratio to JSON.stringify, and the worst and p99 event-loop stall while it runs
// (monitorEventLoopDelay, resolution 1 ms). Then truncation to a prompt budget and 50
// concurrent 1 MB calls. Writes its section of benchmark/RESULTS.md.
//
//   node --expose-gc benchmark/serialize.mjs   (QUICK=1 for a short run that writes nothing)
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { createRequire } from 'node:module'
import Piscina from 'piscina'
import { serialize, serializeAsync } from '../lib/index.mjs'
import { makeConversation } from './conversation.mjs'
import { machine, median, waitForQuiet, writeSection } from './results.mjs'

const require = createRequire(import.meta.url)
const yieldable = require('yieldable-json')
const QUICK = !!process.env.QUICK

const pool = new Piscina({ filename: new URL('./workers/stringify-worker.mjs', import.meta.url).href, maxThreads: 2 })

/** @type {Record<string, (v: unknown) => Promise<unknown>>} */
const peers = {
  'JSON.stringify': async (v) => JSON.stringify(v),
  'piscina (JSON.stringify in a worker)': (v) => pool.run(v),
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

const load = QUICK ? 0 : await waitForQuiet()
const sizes = QUICK ? [10e3, 1e6] : [10e3, 100e3, 1e6, 10e6]
const runs = (/** @type {number} */ size) => (QUICK ? 3 : size <= 100e3 ? 200 : size <= 1e6 ? 30 : 10)
const rows = []
/** @type {Record<number, Record<string, {median:number,worst:number,p99:number}>>} */
const bySize = {}
for (const size of sizes) {
  const value = makeConversation(size)
  const want = JSON.stringify(value)
  bySize[size] = {}
  for (const [name, run] of Object.entries(peers)) {
    const got = await run(value)
    if (got !== want) throw new Error(`${name} produced different text at ${size}`)
    const m = await measure(() => run(value), runs(size))
    bySize[size][name] = m
    const base = bySize[size]['JSON.stringify'].median
    rows.push(`| ${fmtSize(size)} | ${name} | ${m.median.toFixed(3)} | ${(m.median / base).toFixed(2)}x | ${m.worst.toFixed(1)} | ${m.p99.toFixed(1)} |`)
    console.log(rows.at(-1))
  }
  // The machine's own noise floor: the same monitor on an idle loop, for as long as the
  // serializeAsync runs took.
  const idleMs = Math.max(50, bySize[size]['serializeAsync (this addon)'].median * runs(size))
  const idle = await measure(() => new Promise((r) => setTimeout(r, idleMs / runs(size))), runs(size))
  rows.push(`| ${fmtSize(size)} | (idle event loop, same monitor: noise floor) | — | — | ${idle.worst.toFixed(1)} | ${idle.p99.toFixed(1)} |`)
  console.log(rows.at(-1))
}

// Truncation to a prompt budget: cost what it keeps.
const ten = makeConversation(QUICK ? 1e6 : 10e6)
const js10 = await measure(async () => JSON.stringify(ten), QUICK ? 3 : 10)
const cut = await measure(() => serializeAsync(ten, { maxSize: 50_000 }), QUICK ? 3 : 10)
const cutLine = `serializeAsync(${QUICK ? '1' : '10'} MB value, { maxSize: 50_000 }): median ${cut.median.toFixed(3)} ms = ${((cut.median / js10.median) * 100).toFixed(1)}% of JSON.stringify's ${js10.median.toFixed(2)} ms (worst stall ${cut.worst.toFixed(1)} ms)`
console.log(cutLine)

// 50 concurrent 1 MB calls vs 50 sequential JSON.stringify calls.
const fifty = Array.from({ length: 50 }, (_, i) => makeConversation(1e6, i + 2))
const seq = await measure(async () => fifty.map((v) => JSON.stringify(v)), QUICK ? 2 : 5)
const conc = await measure(() => Promise.all(fifty.map((v) => serializeAsync(v))), QUICK ? 2 : 5)
const concLine = `50 concurrent serializeAsync of 1 MB: median ${conc.median.toFixed(1)} ms (${(conc.median / seq.median).toFixed(2)}x of 50 sequential JSON.stringify, ${seq.median.toFixed(1)} ms); worst stall ${conc.worst.toFixed(1)} ms, p99 ${conc.p99.toFixed(1)} ms (JSON.stringify x50: worst ${seq.worst.toFixed(1)} ms)`
console.log(concLine)
await pool.destroy()

function fmtSize(/** @type {number} */ n) {
  return n >= 1e6 ? `${n / 1e6} MB` : `${n / 1e3} KB`
}

if (!QUICK) {
  writeSection(
    'serialize',
    `## Serialization (\`node --expose-gc benchmark/serialize.mjs\`)

${new Date().toISOString().slice(0, 10)}; ${machine()} (waited for load < 1.2; it was ${load.toFixed(2)}).
Conversation-shaped values (chat messages with prose, code, CJK, emoji, tool calls; \`benchmark/conversation.mjs\`).
Before each implementation's measurement the script collects the garbage the previous one left (${typeof (/** @type {any} */ (globalThis).gc) === 'function' ? '`--expose-gc`: on' : '**`--expose-gc` was not given: off**'}), so a collection caused by one peer's allocations is not charged to the next.
Median wall time per call; stall = event-loop delay seen by \`monitorEventLoopDelay({ resolution: 1 })\` while the calls ran (worst = max, and p99).

| size | implementation | median ms | vs JSON.stringify | worst stall ms | p99 stall ms |
|---|---|---|---|---|---|
${rows.join('\n')}

- ${cutLine}
- ${concLine}
`,
  )
}
