// Truncation keeps valid JSON, stays within maxSize, and keeps the document's beginning.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { serialize, serializeAsync } from '@povc/agent-core-native'
import { anyValue } from './support/values.mjs'
import { makeConversation } from '../benchmark/conversation.mjs'

const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31)

/**
 * True when `cut` (parsed from a truncated text) is what truncation may make of `full`:
 * containers keep a prefix of their members, every member but the last unchanged, the last
 * possibly cut itself; strings keep a prefix; other values are equal.
 * @param {unknown} cut @param {unknown} full @returns {boolean}
 */
function isBeginningOf(cut, full) {
  if (typeof cut === 'string' && typeof full === 'string') return full.startsWith(cut)
  if (Array.isArray(cut) && Array.isArray(full)) {
    if (cut.length > full.length) return false
    return cut.every((v, i) => (i < cut.length - 1 ? util.isDeepStrictEqual(v, full[i]) : isBeginningOf(v, full[i])))
  }
  if (cut && full && typeof cut === 'object' && typeof full === 'object' && !Array.isArray(cut) && !Array.isArray(full)) {
    const ck = Object.keys(cut)
    const fk = Object.keys(full)
    if (ck.length > fk.length || ck.some((k, i) => k !== fk[i])) return false
    return ck.every((k, i) =>
      i < ck.length - 1
        ? util.isDeepStrictEqual(/** @type {any} */ (cut)[k], /** @type {any} */ (full)[k])
        : isBeginningOf(/** @type {any} */ (cut)[k], /** @type {any} */ (full)[k]),
    )
  }
  return Object.is(cut, full) || util.isDeepStrictEqual(cut, full)
}
import util from 'node:util'

test(`truncated text is valid JSON within maxSize keeping the beginning (seed ${seed})`, async () => {
  let cuts = 0
  await fc.assert(
    fc.asyncProperty(anyValue, fc.nat({ max: 400 }), fc.constantFrom(0, 2), async (value, n, indent) => {
      let full
      try {
        full = JSON.stringify(value, null, indent)
      } catch {
        return
      }
      if (full === undefined) return
      const maxSize = Math.max(2, Math.min(n, full.length + 5))
      const opts = { maxSize, truncate: true, pretty: indent }
      let r
      try {
        r = serialize(value, opts)
      } catch (e) {
        // Only a top-level scalar can fail to fit: a number/boolean/null longer than maxSize.
        assert.equal(/** @type {any} */ (e).code, 'ERR_INVALID_OPTION')
        assert.ok(typeof JSON.parse(full) !== 'object' || JSON.parse(full) === null)
        assert.ok(full.length > maxSize)
        return
      }
      assert.ok(r.serialized.length <= maxSize, `${r.serialized.length} > ${maxSize}`)
      assert.equal(r.truncated, full.length > maxSize)
      if (!r.truncated) assert.equal(r.serialized, full)
      else cuts++
      const parsed = JSON.parse(r.serialized)
      assert.ok(isBeginningOf(parsed, JSON.parse(full)), `${r.serialized} is not a beginning of ${full}`)
      const a = await serializeAsync(value, opts)
      assert.equal(a.serialized, r.serialized)
      assert.equal(a.truncated, r.truncated)
    }),
    { seed, numRuns: 3000 },
  )
  assert.ok(cuts > 500, `only ${cuts} runs actually truncated`)
})

test('a huge tool result squeezed into a prompt budget', async () => {
  const big = makeConversation(2_000_000)
  const full = JSON.stringify(big)
  for (const maxSize of [50_000, 4_096, 100]) {
    const r = await serializeAsync(big, { maxSize })
    assert.equal(r.truncated, true)
    assert.ok(r.serialized.length <= maxSize)
    assert.ok(r.serialized.length >= maxSize - 2000, `kept only ${r.serialized.length} of ${maxSize}`)
    assert.ok(isBeginningOf(JSON.parse(r.serialized), JSON.parse(full)))
  }
})

test('without truncate an oversized value is a RangeError ERR_MAX_SIZE', async () => {
  const v = { text: 'x'.repeat(100) }
  assert.throws(() => serialize(v, { maxSize: 50, truncate: false }), { name: 'RangeError', code: 'ERR_MAX_SIZE' })
  await assert.rejects(serializeAsync(v, { maxSize: 50, truncate: false }), { name: 'RangeError', code: 'ERR_MAX_SIZE' })
  const big = makeConversation(3_000_000)
  await assert.rejects(serializeAsync(big, { maxSize: 1000, truncate: false }), { code: 'ERR_MAX_SIZE' })
  const exact = JSON.stringify(v)
  assert.equal(serialize(v, { maxSize: exact.length, truncate: false }).serialized, exact)
})

test('maxSize too small to hold any JSON is ERR_INVALID_OPTION', async () => {
  assert.throws(() => serialize({ a: 1 }, { maxSize: 1 }), { name: 'RangeError', code: 'ERR_INVALID_OPTION' })
  assert.throws(() => serialize(123456, { maxSize: 3 }), { name: 'RangeError', code: 'ERR_INVALID_OPTION' })
  assert.equal(serialize({ a: 1 }, { maxSize: 2 }).serialized, '{}')
  assert.equal(serialize('hello', { maxSize: 4 }).serialized, '"he"')
})

test('countTokens counts the tokens of the serialized (and cut) text exactly', async () => {
  const { TokenEstimator } = await import('@povc/agent-core-native')
  const big = makeConversation(1_000_000)
  const small = { messages: [{ role: 'user', content: 'Grüße 你好 👋 <|endoftext|> 12345678' }] }
  for (const v of [small, big]) {
    for (const [opt, enc] of /** @type {const} */ ([[true, 'cl100k_base'], ['o200k_base', 'o200k_base'], ['p50k_base', 'p50k_base'], ['r50k_base', 'r50k_base']])) {
      const s = serialize(v, { countTokens: opt })
      assert.equal(s.tokens, TokenEstimator.estimate(s.serialized, enc), `sync ${enc}`)
      const a = await serializeAsync(v, { countTokens: opt })
      assert.equal(a.tokens, s.tokens, `async ${enc}`)
    }
  }
  const cut = await serializeAsync(big, { maxSize: 5000, countTokens: true })
  assert.equal(cut.tokens, TokenEstimator.estimate(cut.serialized))
  assert.equal(serialize(small).tokens, undefined)
  assert.equal(serialize(small, { countTokens: false }).tokens, undefined)
  assert.throws(() => serialize(small, { countTokens: /** @type {any} */ ('gpt2') }), { name: 'RangeError', code: 'ERR_INVALID_OPTION', message: /countTokens/ })
})
