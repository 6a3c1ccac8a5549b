// serialize / serializeAsync produce exactly JSON.stringify(value, null, indent):
// property-based, at least 10,000 generated values per run (sync and async on each).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { serialize, serializeAsync } from '@povc/agent-core-native'
import { anyValue, anyIndent } from './support/values.mjs'

const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31)
const numRuns = Number(process.env.FC_RUNS ?? 10_000)

test(`parity with JSON.stringify on ${numRuns} generated values (seed ${seed}; rerun with FC_SEED=${seed})`, async () => {
  let checked = 0
  let skipped = 0
  await fc.assert(
    fc.asyncProperty(anyValue, anyIndent, async (value, [pretty, space]) => {
      const opts = pretty === undefined ? undefined : { pretty }
      let want
      try {
        want = JSON.stringify(value, null, space)
      } catch (e) {
        // A toJSON / getter that throws (e.g. an inherited Date#toJSON on a non-Date):
        // the very same kind of error must reach our caller.
        const err = /** @type {Error} */ (e)
        const same = { name: err.name, message: err.message }
        assert.throws(() => serialize(value, opts), same)
        await assert.rejects(serializeAsync(value, opts), same)
        skipped++
        return
      }
      if (want === undefined) {
        // JSON.stringify gives undefined for these; we throw a coded TypeError instead.
        assert.throws(() => serialize(value, opts), { name: 'TypeError', code: 'ERR_NOT_SERIALIZABLE' })
        await assert.rejects(serializeAsync(value, opts), { name: 'TypeError', code: 'ERR_NOT_SERIALIZABLE' })
        skipped++
        return
      }
      const sync = serialize(value, opts)
      assert.equal(sync.serialized, want)
      assert.equal(sync.truncated, false)
      assert.equal(sync.bytes, Buffer.byteLength(want, 'utf8'))
      const async_ = await serializeAsync(value, opts)
      assert.equal(async_.serialized, want)
      assert.equal(async_.bytes, sync.bytes)
      checked++
    }),
    { seed, numRuns, verbose: 1 },
  )
  assert.ok(checked >= numRuns * 0.9, `only ${checked} of ${numRuns} values had a JSON form (${skipped} had none)`)
})

test('fixed cases JSON.stringify has rules about', () => {
  const cases = [
    { b: 1, a: 2, 2: 'x', 1: 'y', '-1': 'z', '01': 'w' },
    [undefined, () => 1, Symbol('x'), null, NaN, Infinity, -0],
    { u: undefined, f() {}, s: Symbol('x'), n: null },
    [new Number(3), new String('s'), new Boolean(false), Object(Symbol('q'))],
    [new Date(0), new Date(NaN), new Map([[1, 2]]), new Set([1]), /re/g, new Error('e')],
    '\ud800\udc00\ud800x\udc00\u2028"\\/\b\f\n\r\t\u0001',
    [1e21, 1e-7, 5e-7, 0.000001, 123e-20, -1e-324, 2 ** 64],
    new Proxy({ a: 1, b: [2] }, {}),
    new Proxy([1, 2, 3], {}),
    Object.assign([1, 2], { extra: 'ignored' }),
    { toJSON: (/** @type {string} */ k) => k },
    [{ toJSON: (/** @type {string} */ k) => k }, { toJSON: (/** @type {string} */ k) => k }],
    { key: { toJSON: (/** @type {string} */ k) => k } },
  ]
  for (const v of cases) {
    for (const space of [undefined, 2, 10]) {
      const want = JSON.stringify(v, null, space)
      assert.equal(serialize(v, { pretty: space ?? false }).serialized, want, `${want}`)
    }
  }
  // BigInt with a toJSON on its prototype serializes like JSON.stringify does.
  // @ts-ignore - deliberately extending the prototype for this case
  BigInt.prototype.toJSON = function () {
    return `${this}n`
  }
  try {
    assert.equal(serialize({ n: 10n }).serialized, JSON.stringify({ n: 10n }))
  } finally {
    // @ts-ignore
    delete BigInt.prototype.toJSON
  }
})

test('serializeToPayload keeps the same text in Rust as UTF-8 (length, bytes, text)', async () => {
  const { serializeToPayload } = await import('@povc/agent-core-native')
  const { makeConversation } = await import('../benchmark/conversation.mjs')
  for (const v of [{ a: 'é😀\ud800' }, [1, 'x'], makeConversation(50_000), makeConversation(3_000_000)]) {
    const want = JSON.stringify(v)
    const p = await serializeToPayload(v)
    assert.equal(p.length, want.length)
    assert.equal(p.bytes, Buffer.byteLength(want)) // lone surrogates are escaped: valid UTF-8
    assert.equal(p.truncated, false)
    assert.equal(p.text(), want)
  }
  const cut = await serializeToPayload(makeConversation(1_000_000), { maxSize: 1000 })
  assert.equal(cut.truncated, true)
  assert.ok(cut.length <= 1000)
  JSON.parse(cut.text())
  await assert.rejects(serializeToPayload({ n: 1n }), { code: 'ERR_BIGINT' })
  await assert.rejects(serializeToPayload(1, { maxSize: -1 }), { code: 'ERR_INVALID_OPTION' })
})
