// Measurements of benchmark/tokens.mjs that need a fresh process holding only this addon:
//   first-use ENC now|later|async   first-use stall of an encoding (JSON { stall })
//   rss                              RSS growth per table and for all four (JSON { rssMB, perTable })
//   single-core                      1 MB throughput (run it under `taskset -c 0`)
//   stall                            event-loop stall of estimateAsync on 10 MB (needs --expose-gc)
import { createRequire } from 'node:module'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { Worker } from 'node:worker_threads'
import { corpusText, asciiText } from '../__test__/fixtures/corpus.mjs'
import { median, times } from './timing.mjs'

const require = createRequire(import.meta.url)
const [mode, ...args] = process.argv.slice(2)
const rssBefore = process.memoryUsage().rss
const { TokenEstimator } = require('@povc/agent-core-native')
const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms))
const print = (/** @type {unknown} */ v) => process.stdout.write(JSON.stringify(v))

if (mode === 'first-use') {
  const [enc, when] = args
  if (when === 'later') await sleep(1500)
  if (when === 'async') {
    await sleep(200) // let start-up work settle before watching the loop
    const h = monitorEventLoopDelay({ resolution: 1 })
    h.enable()
    await TokenEstimator.estimateAsync('hello world', enc)
    await sleep(20)
    h.disable()
    print({ stall: h.max / 1e6 })
  } else {
    const t = performance.now()
    TokenEstimator.estimate('hello world', enc)
    print({ stall: performance.now() - t })
  }
} else if (mode === 'rss') {
  // Run with AGENT_CORE_NATIVE_PRELOAD_ENCODINGS=none: loads the tables one by one.
  /** @type {Record<string, number>} */
  const perTable = {}
  let prev = process.memoryUsage().rss
  for (const e of ['cl100k_base', 'o200k_base', 'p50k_base', 'r50k_base']) {
    TokenEstimator.estimate('x', e)
    const now = process.memoryUsage().rss
    perTable[e] = (now - prev) / 1e6
    prev = now
  }
  print({ rssMB: (process.memoryUsage().rss - rssBefore) / 1e6, perTable })
} else if (mode === 'single-core') {
  const text = corpusText(1 << 20, undefined, { longRuns: false })
  const mb = Buffer.byteLength(text) / 1e6
  /** @type {Record<string, number>} */
  const out = {}
  for (const enc of ['cl100k_base', 'o200k_base']) {
    TokenEstimator.estimate(text, enc)
    out[enc] = mb / (median(times(7, () => TokenEstimator.estimate(text, enc))) / 1000)
  }
  print(out)
} else if (mode === 'stall') {
  const gc = /** @type {() => void} */ (globalThis.gc)
  // Times every setImmediate callback: the addon's JS driver takes `setImmediate` when it is
  // first compiled (on the first long estimateAsync, below), so each step of the sliced read
  // runs in one of these callbacks. This measures the addon's own main-thread work per
  // event-loop turn, apart from the machine's scheduling noise that the monitor also sees.
  let longestStep = 0
  let steps = 0
  /** @type {number[]} */
  let stepTimes = []
  const original = globalThis.setImmediate
  globalThis.setImmediate = /** @type {any} */ ((/** @type {(...a: any[]) => void} */ f, /** @type {any[]} */ ...a) =>
    original(() => {
      const t = performance.now()
      try {
        f(...a)
      } finally {
        const d = performance.now() - t
        longestStep = Math.max(longestStep, d)
        stepTimes.push(d)
        steps++
      }
    }))
  await sleep(500)
  /** @param {() => Promise<unknown>} f */
  const watch = async (f) => {
    const h = monitorEventLoopDelay({ resolution: 1 })
    h.enable()
    await f()
    await sleep(5)
    h.disable()
    return { max: h.max / 1e6, p99: h.percentile(99) / 1e6 }
  }
  const RUNS = 5
  const rows = []
  for (const [label, make] of /** @type {[string, () => string][]} */ ([
    ['10 MB mixed (two-byte string)', () => corpusText(10e6, 77, { longRuns: false })],
    ['10 MB ASCII (one-byte string)', () => asciiText(10e6)],
  ])) {
    const big = make()
    TokenEstimator.estimate('warm', 'cl100k_base')
    /** @type {number[]} */
    const worst = []
    /** @type {number[]} */
    const idleWorst = []
    let p99 = 0
    let wall = 0
    let call = 0
    longestStep = 0
    steps = 0
    stepTimes = []
    /** @type {number[]} */
    const busyWorst = []
    for (let run = 0; run < RUNS; run++) {
      gc()
      await sleep(50)
      const t = performance.now()
      const m = await watch(async () => {
        const p = TokenEstimator.estimateAsync(big)
        call = Math.max(call, performance.now() - t)
        await p
      })
      const ms = performance.now() - t
      wall = Math.max(wall, ms)
      worst.push(m.max)
      p99 = Math.max(p99, m.p99)
      // The same monitor over an idle loop for as long: the machine's own noise, right now.
      idleWorst.push((await watch(() => sleep(ms))).max)
      // And while a plain worker_thread spins for as long (any off-main-thread work; its
      // start-up is main-thread work too).
      const spin = `const end = Date.now() + ${Math.round(ms)}; while (Date.now() < end) {}`
      busyWorst.push((await watch(() => new Promise((r) => new Worker(spin, { eval: true }).on('exit', r)))).max)
    }
    stepTimes.sort((a, b) => a - b)
    const stepP99 = stepTimes[Math.floor(stepTimes.length * 0.99)] ?? 0
    const syncMs = median(times(3, () => TokenEstimator.estimate(big)))
    rows.push({ label, worst, idleWorst, busyWorst, p99, wall, syncMs, call, longestStep, stepP99, steps: steps / RUNS })
  }
  print({ rows })
} else {
  console.error('usage: node benchmark/tokens-child.mjs first-use|rss|single-core|stall ...')
  process.exit(2)
}
