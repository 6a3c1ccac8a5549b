// `npm run demo`: an agent service's day, on the embedded default (no Redis needed).
//
// Part 1 — serialization. An agent serializes conversations of growing size (to store
// them, to log them, to send them to a model) while other requests wait on the same event
// loop. A 1 ms ticker stands in for those requests: its worst delay is the stall they feel.
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { serializeAsync } from '../lib/index.mjs'
import { makeConversation } from '../benchmark/conversation.mjs'

/** Runs `fn` `n` times; returns the median total time and the worst loop stall. */
async function run(/** @type {() => unknown} */ fn, /** @type {number} */ n) {
  const h = monitorEventLoopDelay({ resolution: 1 })
  const times = []
  await fn()
  h.enable()
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    await fn()
    times.push(performance.now() - t)
    await new Promise((r) => setTimeout(r, 2))
  }
  h.disable()
  times.sort((a, b) => a - b)
  return { ms: times[times.length >> 1], stall: h.max / 1e6 }
}

const pad = (/** @type {string} */ s, /** @type {number} */ n) => s.padStart(n)
console.log('Part 1: serializing conversations while other requests wait on the event loop\n')
console.log(`${pad('conversation', 13)} | ${pad('JSON.stringify', 15)} ${pad('worst stall', 12)} | ${pad('serializeAsync', 15)} ${pad('worst stall', 12)} | ${pad('same text', 9)}`)
console.log('-'.repeat(92))
for (const [label, bytes, n] of /** @type {[string, number, number][]} */ ([
  ['10 KB', 10e3, 200],
  ['100 KB', 100e3, 100],
  ['1 MB', 1e6, 20],
  ['10 MB', 10e6, 5],
])) {
  const conv = makeConversation(bytes)
  const js = await run(() => JSON.stringify(conv), n)
  const ours = await run(() => serializeAsync(conv), n)
  const same = (await serializeAsync(conv)).serialized === JSON.stringify(conv)
  console.log(
    `${pad(label, 13)} | ${pad(js.ms.toFixed(2) + ' ms', 15)} ${pad(js.stall.toFixed(1) + ' ms', 12)} | ${pad(ours.ms.toFixed(2) + ' ms', 15)} ${pad(ours.stall.toFixed(1) + ' ms', 12)} | ${pad(same ? 'yes' : 'NO', 9)}`,
  )
}

// Squeezing a huge tool result into a prompt budget.
const huge = makeConversation(10e6)
let t = performance.now()
const full = JSON.stringify(huge).slice(0, 50_000) // the naive way: not even valid JSON
const naive = performance.now() - t
t = performance.now()
const cut = await serializeAsync(huge, { maxSize: 50_000 })
const ours = performance.now() - t
let valid = true
try {
  JSON.parse(cut.serialized)
} catch {
  valid = false
}
console.log(
  `\nPrompt budget: a 10 MB tool result cut to 50,000 characters: JSON.stringify + slice ${naive.toFixed(1)} ms (invalid JSON: ${full.length} chars), serializeAsync({ maxSize }) ${ours.toFixed(2)} ms (valid JSON: ${valid}, ${cut.serialized.length} chars)`,
)

// Part 2 — the conversation cache (L1 only here; with REDIS_URL set, L2 too).
await import('./demo-cache.mjs')
