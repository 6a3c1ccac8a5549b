// Writes one area's section of benchmark/RESULTS.md between its markers, leaving the
// other areas' sections as they are.
import { readFileSync, writeFileSync, existsSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'

const FILE = new URL('./RESULTS.md', import.meta.url)

/** Machine facts for a results header. */
export function machine() {
  return `Node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), load average at start ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' / ')}`
}

/**
 * Replaces the section of `area` (or appends it).
 * @param {string} area
 * @param {string} markdown
 */
export function writeSection(area, markdown) {
  const begin = `<!-- BEGIN ${area} -->`
  const end = `<!-- END ${area} -->`
  let text = existsSync(FILE)
    ? readFileSync(FILE, 'utf8')
    : '# Benchmark results\n\nEach section is written by one script in `benchmark/`; every figure in a section comes from one run of that script, peers included. Ratios are against a peer measured in the same run.\n\n'
  const block = `${begin}\n${markdown.trim()}\n${end}`
  const i = text.indexOf(begin)
  const j = text.indexOf(end)
  text = i >= 0 && j > i ? text.slice(0, i) + block + text.slice(j + end.length) : `${text.trimEnd()}\n\n${block}\n`
  writeFileSync(FILE, text)
}

/** Waits (up to `maxMs`) for the 1-minute load average to drop below `below`. */
export async function waitForQuiet(below = 1.2, maxMs = 300_000) {
  const start = Date.now()
  while (loadavg()[0] > below && Date.now() - start < maxMs) {
    await new Promise((r) => setTimeout(r, 5000))
  }
  return loadavg()[0]
}

/** @param {number[]} xs */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? s[s.length >> 1] : NaN
}
