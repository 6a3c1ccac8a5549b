// TokenEstimator: exact counts against two independent JS implementations of OpenAI's
// tokenizers (gpt-tokenizer and js-tiktoken) on a generated mixed corpus of over 1 MB,
// chat overhead against gpt-tokenizer's encodeChat, the model table, errors, lone
// surrogates, and a 100 MB string.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TokenEstimator } from '@povc/agent-core-native'
import * as cl100k from 'gpt-tokenizer/encoding/cl100k_base'
import * as o200k from 'gpt-tokenizer/encoding/o200k_base'
import * as p50k from 'gpt-tokenizer/encoding/p50k_base'
import * as r50k from 'gpt-tokenizer/encoding/r50k_base'
import { getEncoding } from 'js-tiktoken'
import { corpusPieces } from './fixtures/corpus.mjs'

/** @typedef {import('@povc/agent-core-native').Encoding} Encoding */
/** @typedef {import('@povc/agent-core-native').ChatMessage} ChatMessage */

/** @type {Encoding[]} */
const ENCODINGS = ['cl100k_base', 'o200k_base', 'p50k_base', 'r50k_base']
const GPT_TOKENIZER = { cl100k_base: cl100k, o200k_base: o200k, p50k_base: p50k, r50k_base: r50k }
// Special-token text counts as ordinary text (tiktoken's encode_ordinary); gpt-tokenizer
// would otherwise throw on it, js-tiktoken too.
const ORDINARY = { disallowedSpecial: new Set() }
/** @param {Encoding} enc @param {string} s */
const peerCount = (enc, s) => GPT_TOKENIZER[enc].countTokens(s, ORDINARY)
const jsTiktoken = Object.fromEntries(ENCODINGS.map((e) => [e, getEncoding(e)]))
/** @param {Encoding} enc @param {string} s */
const jsTiktokenCount = (enc, s) => jsTiktoken[enc].encode(s, [], []).length

const MIN_BYTES = 1 << 20
const pieces = corpusPieces(MIN_BYTES + 64 * 1024)
const corpus = pieces.map((p) => p.text).join('')

/**
 * Consecutive pieces grouped into chunks of about 2, 5 and 10 KB, in turn.
 * @param {{ kind: string, text: string }[]} pieces
 */
function chunks(pieces) {
  const sizes = [2048, 5120, 10240]
  /** @type {{ text: string, kinds: Set<string> }[]} */
  const out = []
  let cur = { text: '', kinds: new Set(/** @type {string[]} */ ([])) }
  for (const p of pieces) {
    cur.text += p.text
    cur.kinds.add(p.kind)
    if (Buffer.byteLength(cur.text) >= sizes[out.length % sizes.length]) {
      out.push(cur)
      cur = { text: '', kinds: new Set() }
    }
  }
  if (cur.text) out.push(cur)
  return out
}
const CHUNKS = chunks(pieces)
// js-tiktoken's merge step is quadratic in a pre-token's length (1,500 spaces take it ~2 s,
// and it runs at ~0.25 MB/s on typical text), so it checks a separate 256 KB corpus of
// typical text, per chunk; gpt-tokenizer checks everything above.
const TYPICAL = corpusPieces(256 * 1024, 0x7e57, { longRuns: false })
const TYPICAL_CHUNKS = chunks(TYPICAL)

/** @param {string} s */
const excerpt = (s) => JSON.stringify(s.length > 160 ? s.slice(0, 160) + '…' : s)

test('the corpus is over 1 MB and has every kind of text', () => {
  assert.ok(Buffer.byteLength(corpus) >= MIN_BYTES, `${Buffer.byteLength(corpus)} bytes`)
  const kinds = new Set(pieces.map((p) => p.kind))
  for (const k of ['english', 'code', 'json', 'german', 'chinese', 'japanese', 'emoji', 'whitespace', 'digits', 'special']) {
    assert.ok(kinds.has(k), k)
  }
  assert.ok(corpus.includes('<|endoftext|>'))
  assert.ok(/ {100,}/.test(corpus), 'a long run of spaces')
  assert.ok(/\d{200,}/.test(corpus), 'a long run of digits')
})

for (const enc of ENCODINGS) {
  test(`${enc}: zero mismatches with gpt-tokenizer per piece, per chunk and on the whole text`, () => {
    /** @type {string[]} */
    const bad = []
    for (const p of pieces) {
      const ours = TokenEstimator.estimate(p.text, enc)
      const theirs = peerCount(enc, p.text)
      if (ours !== theirs) bad.push(`piece ${p.kind} ${excerpt(p.text)}: ${ours} vs ${theirs}`)
    }
    for (const [i, c] of CHUNKS.entries()) {
      const ours = TokenEstimator.estimate(c.text, enc)
      const theirs = peerCount(enc, c.text)
      if (ours !== theirs) bad.push(`chunk ${i} (${[...c.kinds].join(',')}) ${excerpt(c.text)}: ${ours} vs ${theirs}`)
    }
    const whole = TokenEstimator.estimate(corpus, enc)
    const theirs = peerCount(enc, corpus)
    if (whole !== theirs) bad.push(`whole text: ${whole} vs ${theirs}`)
    assert.deepEqual(bad.slice(0, 20), [], `${bad.length} mismatches`)
    assert.ok(whole > 100_000, `${whole} tokens`)
  })

  test(`${enc}: zero mismatches with js-tiktoken per chunk of 256 KB of typical text`, () => {
    /** @type {string[]} */
    const bad = []
    for (const [i, c] of TYPICAL_CHUNKS.entries()) {
      const ours = TokenEstimator.estimate(c.text, enc)
      const theirs = jsTiktokenCount(enc, c.text)
      if (ours !== theirs) bad.push(`chunk ${i} (${[...c.kinds].join(',')}) ${excerpt(c.text)}: ${ours} vs ${theirs}`)
    }
    assert.deepEqual(bad.slice(0, 20), [], `${bad.length} mismatches`)
    assert.ok(TYPICAL_CHUNKS.length > 30, `${TYPICAL_CHUNKS.length} chunks`)
  })

  test(`${enc}: estimateAsync equals estimate (sliced read of the whole text, one-copy read of a chunk)`, async () => {
    assert.ok(corpus.length > 256 * 1024, 'long enough for the sliced path')
    assert.equal(await TokenEstimator.estimateAsync(corpus, enc), TokenEstimator.estimate(corpus, enc))
    const c = CHUNKS[3].text
    assert.equal(await TokenEstimator.estimateAsync(c, enc), TokenEstimator.estimate(c, enc))
    assert.equal(await TokenEstimator.estimateAsync('', enc), 0)
  })
}

test('special-token text is ordinary text', () => {
  for (const enc of ENCODINGS) {
    for (const s of ['<|endoftext|>', '<|im_start|>user\nhi<|im_end|>', '<|fim_prefix|><|fim_suffix|>', '<|endofprompt|>']) {
      const n = TokenEstimator.estimate(s, enc)
      assert.ok(n > 1, `${enc} ${s}: ${n}`)
      assert.equal(n, peerCount(enc, s), `${enc} ${s}`)
      assert.equal(n, jsTiktokenCount(enc, s), `${enc} ${s}`)
    }
  }
})

test('the default encoding is cl100k_base; null and undefined mean the default', async () => {
  const s = 'Wie viele Tokens hat dieser Satz? 你好世界'
  const n = TokenEstimator.estimate(s, 'cl100k_base')
  assert.notEqual(n, TokenEstimator.estimate(s, 'o200k_base'))
  assert.equal(TokenEstimator.estimate(s), n)
  assert.equal(TokenEstimator.estimate(s, undefined), n)
  assert.equal(TokenEstimator.estimate(s, /** @type {any} */ (null)), n)
  assert.equal(await TokenEstimator.estimateAsync(s), n)
})

// Lone surrogates: JS -> UTF-8 replaces each with U+FFFD, as TextEncoder does (which is what
// the JS tokenizers feed their BPE), on the sync path, the one-copy async path and the sliced
// async path alike.
const LONE = ['a\uD800b', '\uDC00', 'x\uD83D', '\uDE00\uD83D', 'emoji 😀 then \uD83D alone', '\uD800\uD800\uDC00']
/** @param {string} s */
const replaced = (s) => s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD')

test('lone surrogates count as U+FFFD, as in the JS tokenizers', async () => {
  for (const enc of ENCODINGS) {
    for (const s of LONE) {
      const n = TokenEstimator.estimate(s, enc)
      assert.equal(n, TokenEstimator.estimate(replaced(s), enc), `${enc} ${JSON.stringify(s)}`)
      assert.equal(n, peerCount(enc, s), `${enc} ${JSON.stringify(s)} vs gpt-tokenizer`)
      assert.equal(await TokenEstimator.estimateAsync(s, enc), n)
    }
  }
})

test('surrogate pairs and lone surrogates at slice boundaries of the sliced async read', async () => {
  // Slices are 65,536 units: put pairs across every boundary and lone halves next to them.
  let s = ''
  let i = 0
  while (s.length < 600_000) {
    const pad = 65_535 - (s.length % 65_536)
    s += 'ab '.repeat(Math.floor(pad / 3)) + 'x'.repeat(pad % 3)
    s += ['😀', '\uD800', '\uDC00', '😀\uD83D', '\uDFFF😀'][i++ % 5]
  }
  assert.equal(TokenEstimator.estimate(s), TokenEstimator.estimate(replaced(s)))
  for (const enc of ENCODINGS) {
    assert.equal(await TokenEstimator.estimateAsync(s, enc), TokenEstimator.estimate(s, enc), enc)
  }
})

test('bad arguments: TypeError ERR_INVALID_ARG, RangeError ERR_UNKNOWN_ENCODING', async () => {
  const T = /** @type {any} */ (TokenEstimator)
  for (const bad of [undefined, null, 42, {}, ['a'], Buffer.from('abc'), new String('abc'), Symbol('s'), 1n]) {
    const check = { name: 'TypeError', code: 'ERR_INVALID_ARG' }
    assert.throws(() => T.estimate(bad), check, String(typeof bad))
    await assert.rejects(T.estimateAsync(bad), check)
  }
  assert.throws(() => T.estimate(), { name: 'TypeError', code: 'ERR_INVALID_ARG', message: /`text` must be a string, got undefined/ })
  for (const bad of ['cl100k', 'CL100K_BASE', 'gpt2', 'o200k_harmony', '']) {
    const check = (/** @type {any} */ e) => {
      assert.equal(e.code, 'ERR_UNKNOWN_ENCODING')
      assert.ok(e instanceof RangeError)
      assert.ok(e.message.includes(JSON.stringify(bad)), e.message)
      for (const enc of ENCODINGS) assert.ok(e.message.includes(enc), e.message)
      return true
    }
    assert.throws(() => T.estimate('x', bad), check)
    await assert.rejects(T.estimateAsync('x', bad), check)
  }
  assert.throws(() => T.estimate('x', 5), { name: 'TypeError', code: 'ERR_INVALID_ARG', message: /`encoding` must be a string/ })
  assert.throws(() => T.encodingForModel(4), { name: 'TypeError', code: 'ERR_INVALID_ARG' })
  assert.throws(() => T.countChat('hi'), { name: 'TypeError', code: 'ERR_INVALID_ARG', message: /must be an array/ })
})

test('encodingForModel: OpenAI tiktoken table with dated and sized variants', () => {
  /** @type {[string, Encoding][]} */
  const table = [
    ['gpt-4o', 'o200k_base'], ['gpt-4o-mini', 'o200k_base'], ['gpt-4o-2024-08-06', 'o200k_base'],
    ['gpt-4o-mini-2024-07-18', 'o200k_base'], ['chatgpt-4o-latest', 'o200k_base'],
    ['gpt-4.1', 'o200k_base'], ['gpt-4.1-mini', 'o200k_base'], ['gpt-4.1-nano', 'o200k_base'],
    ['o1', 'o200k_base'], ['o1-mini', 'o200k_base'], ['o3', 'o200k_base'], ['o3-mini', 'o200k_base'],
    ['o4-mini', 'o200k_base'], ['o4-mini-2025-04-16', 'o200k_base'],
    ['gpt-5', 'o200k_base'], ['gpt-5-mini', 'o200k_base'], ['gpt-5-nano', 'o200k_base'], ['gpt-5.1', 'o200k_base'],
    ['gpt-oss-120b', 'o200k_base'],
    ['gpt-4', 'cl100k_base'], ['gpt-4-0613', 'cl100k_base'], ['gpt-4-turbo', 'cl100k_base'],
    ['gpt-3.5-turbo', 'cl100k_base'], ['gpt-3.5-turbo-0125', 'cl100k_base'], ['text-embedding-3-small', 'cl100k_base'],
    ['text-davinci-003', 'p50k_base'], ['code-davinci-002', 'p50k_base'],
    ['davinci', 'r50k_base'], ['curie', 'r50k_base'], ['gpt2', 'r50k_base'],
  ]
  for (const [model, enc] of table) assert.equal(TokenEstimator.encodingForModel(model), enc, model)
  for (const bad of ['claude-3-5-sonnet', 'GPT-4o', 'gpt-6', '']) {
    assert.throws(() => TokenEstimator.encodingForModel(bad), (/** @type {any} */ e) => {
      assert.equal(e.code, 'ERR_UNKNOWN_MODEL')
      assert.ok(e instanceof RangeError)
      assert.ok(e.message.includes(JSON.stringify(bad)), e.message)
      return true
    })
  }
})

/** Chat messages cut from the corpus (names without special-token text). */
function chatMessages(count = 40) {
  const roles = ['system', 'user', 'assistant', 'user', 'tool', 'developer']
  /** @type {ChatMessage[]} */
  const out = []
  for (let i = 0; i < count; i++) {
    const p = pieces[i * 7]
    /** @type {ChatMessage} */
    const m = { role: roles[i % roles.length], content: p.text }
    if (i % 5 === 2) m.name = `user_${i}`
    out.push(m)
  }
  out.push({ role: 'user', content: '' })
  return out
}

const CHAT_MODELS = [
  'gpt-4o', 'gpt-4o-mini', 'gpt-4o-2024-08-06', 'chatgpt-4o-latest', 'gpt-4.1', 'gpt-4.1-mini', 'gpt-4.1-nano',
  'o1', 'o3', 'o4-mini', 'gpt-5', 'gpt-5-mini', 'gpt-5-nano', 'gpt-4', 'gpt-4-turbo', 'gpt-3.5-turbo', 'gpt-oss-20b',
]

test('countChat equals gpt-tokenizer encodeChat length for its chat models', async () => {
  const messages = chatMessages()
  for (const model of CHAT_MODELS) {
    const peer = await import(`gpt-tokenizer/model/${model}`)
    const expected = peer.encodeChat(messages, undefined, ORDINARY).length
    assert.equal(TokenEstimator.countChat(messages, model), expected, model)
    assert.equal(TokenEstimator.countChat(messages.slice(0, 1), model), peer.encodeChat(messages.slice(0, 1), undefined, ORDINARY).length, model)
    assert.equal(TokenEstimator.countChat([], model), peer.encodeChat([], undefined, ORDINARY).length, model)
  }
  assert.equal(TokenEstimator.countChat(messages), TokenEstimator.countChat(messages, 'gpt-4o'), 'default model')
  // An encoding name counts in the ChatML format with that encoding.
  assert.equal(TokenEstimator.countChat(messages, 'cl100k_base'), TokenEstimator.countChat(messages, 'gpt-4'))
})

test('countChat: text parts, null content, tool calls', () => {
  const enc = 'o200k_base'
  const text = 'Look at this: Größe 東京 😀 <|endoftext|>'
  const asString = TokenEstimator.countChat([{ role: 'user', content: text }])
  const parts = [{ type: /** @type {const} */ ('text'), text: text.slice(0, 9) }, { type: /** @type {const} */ ('text'), text: text.slice(9) }]
  assert.equal(TokenEstimator.countChat([{ role: 'user', content: parts }]), asString)
  assert.equal(TokenEstimator.countChat([{ role: 'assistant', content: null }]), TokenEstimator.countChat([{ role: 'assistant', content: '' }]))
  assert.equal(TokenEstimator.countChat([{ role: 'assistant' }]), TokenEstimator.countChat([{ role: 'assistant', content: '' }]))
  const calls = [
    { id: 'call_1', type: /** @type {const} */ ('function'), function: { name: 'get_weather', arguments: '{"city":"Berlin","unit":"celsius"}' } },
    { id: 'call_2', type: /** @type {const} */ ('function'), function: { name: 'lookup', arguments: '{}' } },
  ]
  const withCalls = TokenEstimator.countChat([{ role: 'assistant', content: null, tool_calls: calls }])
  const expected =
    o200k.encodeChat([{ role: 'assistant', content: '' }], 'gpt-4o').length +
    calls.reduce((n, c) => n + o200k.countTokens(c.function.name) + o200k.countTokens(c.function.arguments) + 3, 0)
  assert.equal(withCalls, expected)
  assert.equal(TokenEstimator.estimate('get_weather', enc), o200k.countTokens('get_weather'))
})

test('countChat: malformed messages are TypeError ERR_INVALID_ARG naming the message', () => {
  const T = /** @type {any} */ (TokenEstimator)
  /** @type {[unknown, RegExp][]} */
  const cases = [
    [[42], /messages\[0\]/],
    [[{ role: 'user', content: 'ok' }, { content: 'no role' }], /messages\[1\].*role/],
    [[{ role: 7, content: 'x' }], /messages\[0\].*role/],
    [[{ role: 'user', content: 5 }], /messages\[0\].*content/],
    [[{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }], /messages\[0\]\.content\[0\] is a "image_url" part/],
    [[{ role: 'user', content: [{ type: 'text' }] }], /messages\[0\]\.content\[0\] is a text part without `text`/],
    [[{ role: 'assistant', tool_calls: [{ function: { name: 'f' } }] }], /messages\[0\].*arguments/],
  ]
  for (const [messages, message] of cases) {
    assert.throws(() => T.countChat(messages), { name: 'TypeError', code: 'ERR_INVALID_ARG', message }, JSON.stringify(messages))
  }
  assert.throws(() => T.countChat([], 'llama-3-70b'), { name: 'RangeError', code: 'ERR_UNKNOWN_MODEL', message: /"llama-3-70b"/ })
  assert.throws(() => T.countChat([], 12), { name: 'TypeError', code: 'ERR_INVALID_ARG' })
  const boom = new Error('getter')
  assert.throws(() => T.countChat([{ get role() { throw boom } }]), (e) => e === boom)
})

test('a 100 MB string: exact count, sync and async', async () => {
  // A unit whose pre-tokenizer split is periodic, so that N copies have exactly N times its
  // tokens (checked here against gpt-tokenizer on 2,000 copies).
  const unit = 'Hello world, this is line 42 of many.\n'
  const per = TokenEstimator.estimate(unit)
  assert.equal(peerCount('cl100k_base', unit.repeat(2000)), per * 2000)
  const n = Math.ceil(100e6 / unit.length)
  const big = unit.repeat(n)
  assert.ok(big.length >= 100e6)
  assert.equal(TokenEstimator.estimate(big), per * n)
  assert.equal(await TokenEstimator.estimateAsync(big), per * n)
})
