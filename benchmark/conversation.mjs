// Conversation-shaped test data shared by the benchmarks, the demo and the tests: chat
// messages with prose, code, unicode (accents, CJK, emoji) and nested tool-call arguments.
// Deterministic for a given seed.

const PROSE = [
  'The quick brown fox jumps over the lazy dog while the agent plans its next step.',
  'Here is the summary you asked for, with the figures from last quarter and a short outlook.',
  'Voilà: the café on the Straße serves crème brûlée; naïve coöperation is déjà vu.',
  '我们需要在明天之前完成这个任务，并把结果发送给团队。',
  'エージェントは会話の履歴を要約してから次のツールを呼び出します。',
  'Deploy finished 🚀 — all checks green ✅, latency p95 at 120 ms 📉.',
]
const CODE = [
  'function add(a, b) {\n  return a + b;\n}\n',
  'for (let i = 0; i < items.length; i++) {\n\tif (items[i].done) continue;\n\tqueue.push(items[i]);\n}\n',
  'SELECT id, title FROM threads WHERE owner_id = $1 ORDER BY updated_at DESC LIMIT 20;\n',
  'def handler(event):\n    return {"statusCode": 200, "body": json.dumps(event)}\n',
]

/** @param {number} seed */
export function rng(seed) {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    return (s >>> 0) / 4294967296
  }
}

/**
 * @typedef {{ id: string, role: string, content: string, createdAt?: Date, tokens?: number, score?: number,
 *   tool_calls?: { id: string, type: string, function: { name: string, arguments: string } }[],
 *   metadata?: Record<string, unknown> }} ChatMessage
 */

/**
 * One chat message of roughly `size` characters.
 * @param {number} i @param {number} [size] @param {number} [seed]
 * @returns {ChatMessage}
 */
export function makeMessage(i, size = 1500, seed = 1) {
  const r = rng(seed * 7919 + i)
  const parts = []
  let len = 0
  while (len < size) {
    const p = r() < 0.3 ? '```js\n' + CODE[(r() * CODE.length) | 0] + '```\n' : PROSE[(r() * PROSE.length) | 0] + ' '
    parts.push(p)
    len += p.length
  }
  const role = i % 4 === 0 ? 'user' : i % 4 === 3 ? 'tool' : 'assistant'
  /** @type {ChatMessage} */
  const msg = {
    id: `msg_${i.toString(36).padStart(6, '0')}`,
    role,
    content: parts.join(''),
    createdAt: new Date(1_700_000_000_000 + i * 61_000),
    tokens: Math.round(len / 3.7),
    score: r(),
  }
  if (role === 'assistant' && r() < 0.5) {
    msg.tool_calls = [
      {
        id: `call_${i}`,
        type: 'function',
        function: {
          name: 'search_documents',
          arguments: JSON.stringify({ query: PROSE[i % PROSE.length].slice(0, 40), limit: 10, filters: { lang: ['en', 'de', 'ja'], since: '2025-01-01' } }),
        },
      },
    ]
  }
  if (role === 'tool') msg.metadata = { tool: 'search_documents', hits: [1, 2, 3].map((k) => ({ id: k * i, rank: k, title: PROSE[k] })) }
  return msg
}

/**
 * A conversation whose JSON is about `bytes` characters long.
 * @param {number} bytes @param {number} [seed]
 */
export function makeConversation(bytes, seed = 1) {
  /** @type {ChatMessage[]} */
  const messages = []
  let total = 0
  let i = 0
  while (total < bytes) {
    const m = makeMessage(i++, 1500, seed)
    messages.push(m)
    total += JSON.stringify(m).length + 1
  }
  return { threadId: `thread_${seed}`, title: 'Agent session', model: 'gpt-4o', messages, updatedAt: new Date(1_700_000_000_000) }
}
