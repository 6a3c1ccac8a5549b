// Zipf-distributed ranks for the workloads (benchmark/coldstart.mjs, examples/demo-cache.mjs).

/**
 * A sampler of ranks 0..n-1 with P(k) proportional to 1 / (k + 1)^s (rank 0 the most
 * popular), by inverse CDF with a binary search.
 * @param {number} n @param {number} s @param {() => number} random uniform in [0, 1)
 * @returns {() => number}
 */
export function zipf(n, s, random) {
  const cdf = new Float64Array(n)
  let sum = 0
  for (let k = 1; k <= n; k++) cdf[k - 1] = sum += 1 / k ** s
  for (let k = 0; k < n; k++) cdf[k] /= sum
  return () => {
    const u = random()
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (cdf[mid] < u) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}
