// Small timing helpers shared by the benchmark scripts.

/** @param {number[]} a */
export function median(a) {
  const s = [...a].sort((x, y) => x - y)
  return s[Math.floor(s.length / 2)]
}

/** Wall times (ms) of `n` calls of `f`. @param {number} n @param {() => unknown} f */
export function times(n, f) {
  const out = []
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    f()
    out.push(performance.now() - t)
  }
  return out
}
