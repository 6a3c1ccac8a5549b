// Values read from Redis come back as JS strings built from Rust buffers that are used again
// (src/buffer_pool.rs): a short text's buffer as soon as V8 has copied it, an external
// string's when V8 collects the string. A reused buffer keeps what it held before and is
// not zeroed, so any mistake in its length would show up as another value's characters.
// These tests read values of every size class and encoding in mixed order, many at once,
// with garbage collections in between, and compare each answer with what was written.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { RedisTier } from '@povc/agent-core-native'
import { startRedis } from './support/redis-server.mjs'

setFlagsFromString('--expose-gc')
const gc = /** @type {() => void} */ (runInNewContext('gc'))

/**
 * A JSON text of about `chars` characters whose characters come from `alphabet`, unique to
 * `seed` all along (so that a stale tail of another value cannot match).
 * @param {number} chars @param {string} alphabet @param {number} seed
 */
function text(chars, alphabet, seed) {
  const units = Array.from(alphabet)
  let s = ''
  for (let i = 0; s.length < chars; i++) s += units[(i * 7 + seed) % units.length] + (seed + i).toString(36)
  return JSON.stringify({ seed, s })
}

const ALPHABETS = {
  ascii: 'abcdefghijklmnopqrstuvwxyz',
  latin1: 'aéüßçñøå\u00ff',
  utf16: 'aé€日本語😀👋ж\u0100',
}
// Around every size class of the pool (32 KB, 256 KB, 1 MB, 4 MB of buffer) and the
// external-string threshold (32 Ki units), in characters.
const SIZES = [10, 3_000, 10_000, 16_000, 17_000, 33_000, 100_000, 130_000, 300_000, 600_000, 2_100_000]

test('values of every size and encoding read back exactly, many in flight, across garbage collections', async () => {
  const server = await startRedis()
  const t = new RedisTier({ url: server.url, timeoutMs: 10_000 })
  try {
    /** @type {Map<string, string>} */
    const want = new Map()
    let seed = 0
    for (const [name, alphabet] of Object.entries(ALPHABETS)) {
      for (const size of SIZES) {
        // Two values per size and encoding: a reused buffer meets a different text.
        for (let copy = 0; copy < 2; copy++) {
          const key = `${name}-${size}-${copy}`
          const json = text(size, alphabet, ++seed)
          want.set(key, json)
          await t.set(key, json)
        }
      }
    }
    const keys = [...want.keys()]
    for (let round = 0; round < 6; round++) {
      // A different order each round, all keys in flight at once, each read twice.
      const order = keys.map((k, i) => [k, (i * (round * 13 + 5)) % 97]).sort((a, b) => Number(a[1]) - Number(b[1])).map(([k]) => String(k))
      const got = await Promise.all([...order, ...order.slice().reverse()].map((k) => t.get(k).then((v) => [k, v])))
      for (const [k, v] of got) {
        const expected = want.get(String(k))
        if (v !== expected) {
          const a = String(v), b = String(expected)
          let at = 0
          while (at < a.length && a[at] === b[at]) at++
          assert.fail(`round ${round}, ${k}: got ${String(v).length} units, want ${String(expected).length}; first difference at ${at}`)
        }
      }
      // External strings die here and give their buffers back before the next round.
      got.length = 0
      gc()
      await new Promise((r) => setImmediate(r))
    }
    // getMany goes through the same conversion.
    const many = await t.getMany(keys)
    assert.deepEqual(many, keys.map((k) => want.get(k)))
  } finally {
    await t.close()
    await server.stop()
  }
})
