// Hostile input never crashes Node: each case gets a coded error or a defined result.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { serialize, serializeAsync } from '@povc/agent-core-native'
import { makeConversation } from '../benchmark/conversation.mjs'

/** Asserts the sync call throws and the async one rejects with `expected`. */
async function bothFail(/** @type {unknown} */ value, /** @type {any} */ expected, /** @type {any} */ opts = undefined) {
  assert.throws(() => serialize(value, opts), expected)
  await assert.rejects(serializeAsync(value, opts), expected)
}

test('circular structures: direct, deep, through arrays', async () => {
  /** @type {any} */ const direct = { a: 1 }
  direct.self = direct
  /** @type {any} */ const deep = { l1: { l2: { l3: [{ l4: {} }] } } }
  deep.l1.l2.l3[0].l4.back = deep.l1
  /** @type {any[]} */ const arr = [1, 2]
  arr.push({ arr })
  for (const v of [direct, deep, arr, { wrap: deep }]) {
    await bothFail(v, { name: 'TypeError', code: 'ERR_CIRCULAR', message: /circular/ })
  }
  // Shared (non-circular) references are fine.
  const shared = { x: 1 }
  assert.equal(serialize([shared, shared]).serialized, '[{"x":1},{"x":1}]')
})

test('BigInt anywhere is ERR_BIGINT; top-level undefined/function/symbol is ERR_NOT_SERIALIZABLE', async () => {
  await bothFail(10n, { name: 'TypeError', code: 'ERR_BIGINT' })
  await bothFail({ a: [1, { b: 2n }] }, { name: 'TypeError', code: 'ERR_BIGINT', message: /\$\.a\[1\]\.b/ })
  await bothFail(Object(3n), { name: 'TypeError', code: 'ERR_BIGINT' })
  for (const v of [undefined, () => 1, Symbol('s')]) {
    await bothFail(v, { name: 'TypeError', code: 'ERR_NOT_SERIALIZABLE' })
  }
})

test('100,000 levels of nesting is a RangeError ERR_DEPTH, not a crash', async () => {
  /** @type {any} */ let arr = 1
  /** @type {any} */ let obj = 1
  for (let i = 0; i < 100_000; i++) {
    arr = [arr]
    obj = { o: obj }
  }
  await bothFail(arr, { name: 'RangeError', code: 'ERR_DEPTH' })
  await bothFail(obj, { name: 'RangeError', code: 'ERR_DEPTH' })
  // JSON.stringify itself gives up on this too.
  assert.throws(() => JSON.stringify(arr), RangeError)
  /** @type {any} */ let ok = 1
  for (let i = 0; i < 1000; i++) ok = [ok]
  assert.equal(serialize(ok).serialized, JSON.stringify(ok))
})

test('a throwing getter or toJSON: that very error reaches the caller', async () => {
  const boom = new Error('boom')
  const getter = { a: 1, get b() { throw boom } }
  assert.throws(() => serialize(getter), (e) => e === boom)
  await assert.rejects(serializeAsync(getter), (e) => e === boom)
  const custom = new SyntaxError('from toJSON')
  const tj = { list: [1, { toJSON() { throw custom } }] }
  assert.throws(() => serialize(tj), (e) => e === custom)
  await assert.rejects(serializeAsync(tj), (e) => e === custom)
  // A thrown non-Error value too.
  const weird = { get x() { throw 42 } }
  assert.throws(() => serialize(weird), (e) => e === 42)
  await assert.rejects(serializeAsync(weird), (e) => e === 42)
  // Getters deep in a large value (thrown in a later step of the async walk).
  const big = makeConversation(3_000_000)
  Object.defineProperty(big.messages[big.messages.length - 1], 'late', { enumerable: true, get() { throw boom } })
  await assert.rejects(serializeAsync(big), (e) => e === boom)
})

test('proxies run their traps like JSON.stringify does', async () => {
  /** @type {string[]} */ const log = []
  const p = new Proxy({ a: 1, b: { c: [1, 2] } }, {
    get(t, k, r) { log.push(`get ${String(k)}`); return Reflect.get(t, k, r) },
    ownKeys(t) { log.push('ownKeys'); return Reflect.ownKeys(t) },
  })
  assert.equal(serialize(p).serialized, JSON.stringify(p))
  assert.ok(log.includes('ownKeys') && log.includes('get a'))
  assert.equal(serialize(new Proxy([1, [2]], {})).serialized, '[1,[2]]')
  const trapErr = new Error('ownKeys trap')
  const bad = new Proxy({}, { ownKeys() { throw trapErr } })
  assert.throws(() => serialize({ bad }), (e) => e === trapErr)
  await assert.rejects(serializeAsync({ bad }), (e) => e === trapErr)
  const revocable = Proxy.revocable({}, {})
  revocable.revoke()
  assert.throws(() => JSON.stringify(revocable.proxy), TypeError)
  await bothFail(revocable.proxy, TypeError)
})

test('a value mutated while serializeAsync reads it: no crash, valid JSON, each part as it was read', async () => {
  const v = makeConversation(8_000_000)
  const before = JSON.stringify(v)
  const p = serializeAsync(v)
  // Runs between the read steps.
  await new Promise((r) => setImmediate(r))
  const n = v.messages.length
  v.messages.length = Math.floor(n / 2) // shrink the array being read
  v.messages.push({ id: 'late', role: 'user', content: 'added while reading' })
  delete (/** @type {any} */ (v)).title
  const r = await p
  const parsed = JSON.parse(r.serialized) // always valid JSON
  assert.equal(r.truncated, false)
  assert.ok(Array.isArray(parsed.messages))
  // It is the value as each part was read: not the old text in full, but a mix that parses.
  assert.notEqual(r.serialized.length, 0)
  assert.ok(r.serialized.length <= before.length + 100)
})

test('a 100 MB string is serialized exactly (and cut cheaply)', async () => {
  const s = 'a'.repeat(50_000_000) + 'é"\n'.repeat(1000) + 'z'.repeat(50_000_000)
  const want = JSON.stringify(s)
  const r = await serializeAsync({ s })
  assert.equal(r.serialized.length, want.length + 6)
  assert.equal(r.serialized, `{"s":${want}}`)
  const cut = await serializeAsync({ s }, { maxSize: 1000 })
  assert.equal(cut.serialized.length, 1000)
  assert.equal(JSON.parse(cut.serialized).s, 'a'.repeat(1000 - 8))
})

test('invalid options are RangeError ERR_INVALID_OPTION naming the option', async () => {
  const cases = [
    [{ maxSize: -1 }, /maxSize/],
    [{ maxSize: 0 }, /maxSize/],
    [{ maxSize: NaN }, /maxSize/],
    [{ maxSize: 1.5 }, /maxSize/],
    [{ maxSize: Infinity }, /maxSize/],
    [{ maxSize: '10' }, /maxSize.*"10"/],
    [{ pretty: -3 }, /pretty/],
    [{ pretty: 'x' }, /pretty/],
    [{ pretty: NaN }, /pretty/],
    [{ truncate: 'yes' }, /truncate/],
    ['not an object', /options/],
  ]
  for (const [opts, message] of cases) {
    await bothFail({ a: 1 }, { name: 'RangeError', code: 'ERR_INVALID_OPTION', message }, opts)
  }
  // undefined / null options are the defaults.
  assert.equal(serialize({ a: 1 }, undefined).serialized, '{"a":1}')
  assert.equal(serialize({ a: 1 }, /** @type {any} */ (null)).serialized, '{"a":1}')
})

test('50 concurrent serializeAsync calls of 1 MB values are all exact', async () => {
  const values = Array.from({ length: 50 }, (_, i) => makeConversation(1_000_000, i + 1))
  const results = await Promise.all(values.map((v) => serializeAsync(v)))
  results.forEach((r, i) => assert.equal(r.serialized, JSON.stringify(values[i])))
})

test('render threads settle promises themselves: results exact, and a process exits on its own once they settle', () => {
  // Large values are finished by a render thread that settles the promise through a
  // threadsafe function (no libuv worker waits for it). Small, medium (read in one step,
  // rendered whole off the main thread) and large (rendered while read) values, to a string
  // and to a payload, with token counts; then nothing may keep the process alive.
  const script = `
    import { serializeAsync, serializeToPayload } from '@povc/agent-core-native'
    import { makeConversation } from ${JSON.stringify(new URL('../benchmark/conversation.mjs', import.meta.url).href)}
    const values = [1e3, 150e3, 2e6].map((n, i) => makeConversation(n, i + 7))
    const rs = await Promise.all(values.flatMap((v) => [serializeAsync(v), serializeAsync(v, { countTokens: 'cl100k_base' }), serializeToPayload(v)]))
    values.forEach((v, i) => {
      const want = JSON.stringify(v)
      if (rs[3 * i].serialized !== want || rs[3 * i + 1].serialized !== want) throw new Error('text differs at ' + i)
      if (!(rs[3 * i + 1].tokens > 0)) throw new Error('no token count at ' + i)
      if (rs[3 * i + 2].text() !== want) throw new Error('payload differs at ' + i)
    })
    console.log('ok')
  `
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000, cwd: new URL('..', import.meta.url) })
  assert.equal(r.stderr, '')
  assert.equal(r.status, 0, 'the process exits on its own with status 0 (not killed by the timeout)')
  assert.equal(r.stdout.trim(), 'ok')
})

test('without external strings (older runtimes) the text is copied and still exact', () => {
  const script = `
    const { serializeAsync } = require(${JSON.stringify(new URL('../lib/index.js', import.meta.url).pathname)});
    const { makeConversation } = require(${JSON.stringify(new URL('./support/conversation.cjs', import.meta.url).pathname)});
    const v = makeConversation(2_000_000);
    serializeAsync(v).then((r) => { process.stdout.write(r.serialized === JSON.stringify(v) ? 'same' : 'different'); });
  `
  for (const env of [{ AGENT_CORE_NATIVE_NO_EXTERNAL_STRINGS: '1' }, {}]) {
    const r = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 })
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, 'same')
  }
})

test('a burst of calls in one turn shares one budget: later calls wait for the next turns and stay exact', async () => {
  const big = makeConversation(300_000)
  /** @type {unknown[]} */
  const values = []
  for (let i = 0; i < 40; i++) values.push(big, false, 'text', 42, null, [i], { i })
  const pending = values.map((v) => serializeAsync(v)) // all started in this one turn
  const results = await Promise.all(pending)
  results.forEach((r, i) => assert.equal(r.serialized, JSON.stringify(values[i])))
})
