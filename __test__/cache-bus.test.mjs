// The invalidation bus within one process (each ConversationCache has its own RedisTier and
// bus id, so two of them behave as two instances): changes reach the other instance, a late
// message never evicts a newer copy, own messages are ignored, a re-subscription drops L1,
// and a process with a live subscription exits after close().
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { createServer, connect } from 'node:net'
import { ConversationCache, RedisTier } from '@povc/agent-core-native'
import { startRedis } from './support/redis-server.mjs'
import { startCluster } from './support/redis-cluster.mjs'
import { sleep, subscribed, until } from './cache-helpers.mjs'
import { runChild } from './support/run-child.mjs'

const { Floors } = createRequire(import.meta.url)('../lib/cache/bus.js')

/** @param {string} url */
const connectedCache = (url) => subscribed(new ConversationCache({ redisUrl: url }))

test('version floors: nothing is refused before an announcement; after one, only older or versionless copies are', () => {
  const f = new Floors()
  assert.equal(f.admits('a', 3), true)
  assert.equal(f.admits('a', null), true)
  f.raise('a', 5)
  f.raise('a', 4) // a late, lower announcement does not lower the floor
  assert.equal(f.admits('a', 4), false)
  assert.equal(f.admits('a', null), false)
  assert.equal(f.admits('a', 5), true)
  assert.equal(f.admits('a', 6), true)
  assert.equal(f.admits('b', 1), true)
  f.clear()
  assert.equal(f.admits('a', 4), true)
})

test('a change in one instance drops the other instance\'s copy; its own copy stays', () =>
  twoCaches({}, async ({ a, b }) => {
    await a.set('k', { rev: 1 })
    assert.deepEqual(await b.get('k'), { rev: 1 })
    assert.deepEqual(b.peek('k'), { rev: 1 }, 'b holds rev 1')
    await a.set('k', { rev: 2 })
    assert.ok(await until(() => b.peek('k') === undefined), 'b dropped rev 1')
    assert.deepEqual(await b.get('k'), { rev: 2 })
    // a ignores its own messages: its copy (the very object it stored) stays.
    const mine = { rev: 3 }
    await a.set('k', mine)
    await sleep(50)
    assert.equal(a.peek('k'), mine)
    assert.equal(a.getStats().busMessages, 0)
    // invalidate and invalidateTag reach b too.
    assert.deepEqual(await b.get('k'), { rev: 3 })
    await a.invalidate('k')
    assert.ok(await until(() => b.peek('k') === undefined))
    await a.set('t1', { t: 1 }, { tags: ['g'] })
    assert.deepEqual(await b.get('t1'), { t: 1 })
    assert.equal(await a.invalidateTag('g'), 1)
    assert.ok(await until(() => b.peek('t1') === undefined))
    const s = b.getStats()
    assert.equal(s.busInvalidations, 4, 'rev 1, rev 2, the invalidation, the tag')
    assert.equal(s.busMessages, 6, 'set x3, invalidate, set t1, invalidateTag')
    assert.equal(s.busResyncs, 0)
    assert.match(b.metrics(), /agent_core_cache_bus_invalidations_total\{tier="l1"\} 4/)
    assert.match(b.metrics(), /agent_core_cache_bus_connected\{tier="l2"\} 1/)
  }))

test('a late message never evicts a newer copy; a newer one does', async () => {
  const server = await startRedis()
  const a = await connectedCache(server.url)
  const b = await connectedCache(server.url)
  const t = new RedisTier({ url: server.url })
  try {
    await a.set('k', { rev: 1 })
    const v1 = /** @type {any} */ (await t.read('k')).version
    await a.set('k', { rev: 2 })
    assert.deepEqual(await b.get('k'), { rev: 2 })
    const v2 = /** @type {any} */ (await t.read('k')).version
    await sleep(20)
    const before = b.getStats()
    // The message of the older write, arriving late (republished by a third party).
    assert.equal(await t.publish('k', v1), true)
    assert.equal(await t.publish('k', v2), true, 'same version: not newer either')
    await sleep(50)
    assert.deepEqual(b.peek('k'), { rev: 2 })
    assert.equal(b.getStats().busMessages - before.busMessages, 2)
    assert.equal(b.getStats().busInvalidations - before.busInvalidations, 0)
    assert.equal(await t.publish('k', v2 + 1), true)
    assert.ok(await until(() => b.peek('k') === undefined))
    // A read that saw an older version than one already announced does not warm L1.
    assert.equal(await t.publish('k', v2 + 1000), true)
    await sleep(50)
    assert.deepEqual(await b.get('k'), { rev: 2 }, 'served from L2')
    assert.equal(b.peek('k'), undefined, 'but not held: a newer version was announced')
  } finally {
    await t.close()
    await a.close()
    await b.close()
    await server.stop()
  }
})

test('a lost subscription drops the whole L1 once re-subscribed, and is counted', async () => {
  const server = await startRedis()
  const a = await connectedCache(server.url)
  try {
    await a.set('k', { rev: 1 })
    await a.set('j', { rev: 1 })
    assert.equal(a.getStats().entries, 2)
    // Kill only the subscriber connections: Redis stays up, messages published before the
    // re-subscription are lost to them.
    await server.command('CLIENT', 'KILL', 'TYPE', 'pubsub')
    assert.ok(await until(() => a.getStats().busResyncs === 1, 5000), 'resynced')
    assert.ok(await until(() => a.getStats().busConnected))
    assert.equal(a.getStats().entries, 0)
    assert.match(a.metrics(), /agent_core_cache_bus_resyncs_total\{tier="l1"\} 1/)
    assert.deepEqual(await a.get('k'), { rev: 1 }, 'L2 still answers')
  } finally {
    await a.close()
    await server.stop()
  }
})

/**
 * A TCP proxy to `port` that holds back what a client sends on a connection whose first
 * command is SUBSCRIBE until `release()` (the server must refuse HELLO, see throughGate):
 * the bus subscriber of a cache connected through it stays unsubscribed while its command
 * connection works. Between `holdReplies()` and
 * `passReplies()`, Redis's answers on the other connections are held back too.
 * @param {number} port
 */
async function subscriptionGate(port) {
  /** @type {() => void} */
  let release = () => {}
  const released = new Promise((/** @type {(v?: unknown) => void} */ r) => (release = r))
  /** @type {Set<import('node:net').Socket>} */
  const sockets = new Set()
  /** @type {(() => void)[] | null} replies held back (null: passing) */
  let held = null
  const srv = createServer((client) => {
    const upstream = connect(port, '127.0.0.1')
    sockets.add(client).add(upstream)
    let first = true
    let subscriber = false
    upstream.on('data', (chunk) => {
      if (held !== null && !subscriber) held.push(() => client.write(chunk))
      else client.write(chunk)
    })
    client.on('data', (chunk) => {
      if (first && /SUBSCRIBE/i.test(chunk.toString('latin1'))) {
        subscriber = true
        client.pause()
        released.then(() => {
          upstream.write(chunk)
          client.resume()
        })
      } else upstream.write(chunk)
      first = false
    })
    const end = () => { client.destroy(); upstream.destroy() }
    client.on('close', end).on('error', end)
    upstream.on('close', end).on('error', end)
  })
  await new Promise((/** @type {(v?: unknown) => void} */ r) => srv.listen(0, '127.0.0.1', r))
  const addr = /** @type {import('node:net').AddressInfo} */ (srv.address())
  return {
    url: `redis://127.0.0.1:${addr.port}`,
    release,
    holdReplies() {
      held ??= []
    },
    passReplies() {
      const h = held ?? []
      held = null
      for (const write of h) write()
    },
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise((r) => srv.close(r))
    },
  }
}

/**
 * Runs `body` against a fresh redis-server with: a cache `a` connected through a
 * subscription gate (see above), and a cache `writer` connected directly and subscribed.
 * The server refuses HELLO (as one older than Redis 6 does), so that `a`'s subscriber has a
 * connection of its own, which the gate can hold back while `a`'s commands go through. (On
 * a server that speaks RESP3 the subscription rides the command connection, see below; a
 * read sent on it before the SUBSCRIBE is answered before it, which these tests stand for.)
 * @param {(t: { gate: Awaited<ReturnType<typeof subscriptionGate>>, writer: ConversationCache, a: ConversationCache }) => Promise<void>} body
 * @param {Record<string, unknown>} [aOptions]
 */
async function throughGate(body, aOptions = {}) {
  const server = await startRedis({ args: NO_HELLO })
  const gate = await subscriptionGate(server.port)
  const writer = await connectedCache(server.url)
  const a = new ConversationCache({ redisUrl: gate.url, ...aOptions })
  try {
    await body({ gate, writer, a })
  } finally {
    await a.close()
    await writer.close()
    await gate.close()
    await server.stop()
  }
}

/** redis-server arguments that make it answer as a server without RESP3 (before Redis 6). */
const NO_HELLO = ['--rename-command', 'HELLO', '']

/** @param {{ command(...args: string[]): Promise<string> }} server */
async function clients(server) {
  // The connection that asks is one of them.
  return Number(/connected_clients:(\d+)/.exec(await server.command('INFO', 'clients'))?.[1]) - 1
}

/**
 * Runs `body` with two subscribed caches `a` and `b` on a fresh redis-server started with
 * `opts`, and closes everything after.
 * @param {Parameters<typeof startRedis>[0]} opts
 * @param {(t: { server: Awaited<ReturnType<typeof startRedis>>, a: ConversationCache, b: ConversationCache }) => Promise<void>} body
 */
async function twoCaches(opts, body) {
  const server = await startRedis(opts)
  const a = await connectedCache(server.url)
  const b = await connectedCache(server.url)
  try {
    await body({ server, a, b })
  } finally {
    await a.close()
    await b.close()
    await server.stop()
  }
}

for (const [label, opts, perInstance] of /** @type {const} */ ([
  ['a single server: one connection per instance, its subscription and its commands share it', {}, 1],
  ['a server without RESP3 (older than Redis 6): the subscriber has a connection of its own', { args: NO_HELLO }, 2],
])) {
  test(`${label}; reads, writes, scripts and the bus all work`, () =>
    twoCaches(opts, async ({ server, a, b }) => {
      await a.set('k', { rev: 1 })
      assert.deepEqual(await b.get('k'), { rev: 1 })
      assert.deepEqual(await b.getOrLoad('m', async () => ({ loaded: 1 })), { loaded: 1 })
      assert.deepEqual(await a.getOrLoad('m', async () => ({ loaded: 2 })), { loaded: 1 }, 'an L2 hit')
      assert.equal(await clients(server), 2 * perInstance)
      await a.set('k', { rev: 2 })
      assert.ok(await until(() => b.peek('k') === undefined), 'b heard of the change')
      assert.deepEqual(await b.get('k'), { rev: 2 })
      await a.update('k', (v) => ({ rev: /** @type {any} */ (v).rev + 1 }))
      assert.ok(await until(() => b.peek('k') === undefined), 'and of the update')
      assert.deepEqual(await b.get('k'), { rev: 3 })
      assert.equal(await clients(server), 2 * perInstance)
      assert.equal(a.getStats().redisErrors + b.getStats().redisErrors, 0)
    }))
}

/**
 * The commands Redis runs from now on, as MONITOR reports them: `lines()` gives
 * `{ client, args }` per command (client = "host:port" of the connection that sent it).
 * @param {number} port
 */
async function monitor(port) {
  const sock = connect(port, '127.0.0.1')
  let text = ''
  sock.on('data', (d) => (text += d.toString('latin1')))
  sock.write('MONITOR\r\n')
  assert.ok(await until(() => text.startsWith('+OK\r\n')), 'MONITOR answered')
  return {
    lines() {
      return [...text.matchAll(/^\+[\d.]+ \[\d+ ([^\]]+)\] (.*)$/gm)].map((m) => ({
        client: m[1],
        args: [...m[2].matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((a) => a[1]),
      }))
    },
    close() {
      sock.destroy()
    },
  }
}

test('on a single server the SUBSCRIBE goes ahead of every command: a cold start\'s first read and write stay in L1, and later changes are heard', async () => {
  const server = await startRedis()
  const writer = await connectedCache(server.url)
  const mon = await monitor(server.port)
  /** @type {ConversationCache | null} */
  let a = null
  try {
    await writer.set('k', { rev: 1 })
    // A cold start: the first read comes right after the constructor, in its tick, then a
    // write (after the read: a write under way keeps any read from warming L1).
    a = new ConversationCache({ redisUrl: server.url })
    assert.deepEqual(await a.get('k'), { rev: 1 })
    await a.set('j', { rev: 1 })
    await subscribed(a)
    assert.deepEqual(a.peek('k'), { rev: 1 }, 'the read before the subscription event is kept')
    assert.deepEqual(a.peek('j'), { rev: 1 }, 'so is the write')
    assert.equal(a.getStats().busResyncs, 0)
    // On a's connection Redis ran the SUBSCRIBE before any command of the cache. (MONITOR
    // reports a command on its own socket, possibly after the command's reply: wait for the
    // write's line.)
    const subs = () => mon.lines().filter((l) => l.args[0] === 'SUBSCRIBE')
    const ofA = () => mon.lines().filter((l) => l.client === subs()[0]?.client).map((l) => l.args[0])
    await until(() => ofA().includes('EVALSHA') || ofA().includes('EVAL'))
    assert.equal(subs().length, 1, "a's subscription (the writer's came before MONITOR)")
    assert.deepEqual(ofA().slice(0, 2), ['HELLO', 'SUBSCRIBE'], ofA().join(' '))
    assert.ok(ofA().includes('MGET') && (ofA().includes('EVALSHA') || ofA().includes('EVAL')), ofA().join(' '))
    // From now on a hears of changes as usual.
    await writer.set('k', { rev: 2 })
    assert.ok(await until(() => a?.peek('k') === undefined), 'a dropped rev 1 on the message')
    assert.deepEqual(await a.get('k'), { rev: 2 })
    assert.equal(a.getStats().redisErrors, 0)
  } finally {
    mon.close()
    await a?.close()
    await writer.close()
    await server.stop()
  }
})

test('what an instance held before its first subscription was in place is dropped once it is: a change made in between is not missed', () =>
  throughGate(async ({ gate, writer, a }) => {
    await writer.set('k', { rev: 1 })
    assert.deepEqual(await a.get('k'), { rev: 1 }, 'read while a is not subscribed yet')
    await a.set('j', { rev: 1 })
    assert.deepEqual(a.peek('k'), { rev: 1 })
    await sleep(50)
    assert.equal(a.getStats().busConnected, false, 'the gate holds the subscription back')
    // Published while a is not subscribed: a never receives this message.
    await writer.set('k', { rev: 2 })
    gate.release()
    assert.ok(await until(() => a.getStats().busConnected, 5000), 'a subscribed')
    assert.equal(a.peek('k'), undefined, 'the copy read before the subscription is gone')
    assert.equal(a.peek('j'), undefined, 'so is the one written before it')
    assert.deepEqual(await a.get('k'), { rev: 2 })
    assert.equal(a.getStats().busResyncs, 1, 'counted as a resync')
    // From now on a hears of changes as usual, and nothing more is dropped.
    assert.deepEqual(a.peek('k'), { rev: 2 })
    await writer.set('k', { rev: 3 })
    assert.ok(await until(() => a.peek('k') === undefined), 'a dropped rev 2 on the message')
    assert.equal(a.getStats().busResyncs, 1)
  }))

test('a read under way when the first subscription comes in is answered but not held (it may predate a change it never hears of)', () =>
  throughGate(async ({ gate, writer, a }) => {
    await writer.set('k', { rev: 1 })
    await writer.set('m', { rev: 1 })
    // Loads getOrLoad's read script into Redis, so that a's first EVALSHA is answered at once
    // (a NOSCRIPT answer held in the gate would delay the read past the writes below).
    await writer.getOrLoad('prime', async () => ({}))
    // a's command connection is open (its HELLO refused, so RESP2) before replies are held:
    // else the refusal waits in the gate, and so does the subscriber, which must learn it
    // before it opens its own connection (a loaded machine was that slow).
    assert.equal((await a.health()).l2.state, 'up')
    gate.holdReplies()
    const reading = a.get('k')
    let loads = 0
    const loading = a.getOrLoad('m', async () => ({ loaded: ++loads }))
    await sleep(50) // Redis has answered rev 1; the answers wait in the gate
    // Published while a is not subscribed.
    await writer.set('k', { rev: 2 })
    await writer.set('m', { rev: 2 })
    gate.release()
    assert.ok(await until(() => a.getStats().busConnected, 5000), 'a subscribed')
    gate.passReplies()
    assert.deepEqual(await reading, { rev: 1 }, 'the read answers what Redis gave it')
    assert.deepEqual(await loading, { rev: 1 }, 'so does getOrLoad (an L2 hit)')
    assert.equal(loads, 0)
    assert.equal(a.peek('k'), undefined, 'but the copy is not held')
    assert.equal(a.peek('m'), undefined, 'neither is the one getOrLoad read')
    assert.deepEqual(await a.get('k'), { rev: 2 })
    assert.deepEqual(await a.getOrLoad('m', async () => ({ loaded: ++loads })), { rev: 2 })
    assert.equal(a.getStats().busResyncs, 0, 'L1 was empty: nothing to drop')
  }, { l2TimeoutMs: 5000 }))

test('an instance that held nothing before its first subscription drops nothing and counts no resync', () =>
  throughGate(async ({ gate, a }) => {
    await sleep(30)
    gate.release()
    assert.ok(await until(() => a.getStats().busConnected, 5000), 'a subscribed')
    await a.set('k', { rev: 1 })
    await sleep(30)
    assert.deepEqual(a.peek('k'), { rev: 1 })
    assert.equal(a.getStats().busResyncs, 0)
  }))

for (const [label, start] of /** @type {const} */ ([
  ['single server', startRedis],
  ['cluster of 3 masters', startCluster],
])) {
  test(`[${label}] a process with a cache and a live bus subscription exits on its own after close()`, async () => {
    const server = await start()
    await exitsOnItsOwn(server.url)
    await server.stop()
  })
}

/** @param {string} url */
async function exitsOnItsOwn(url) {
  const entry = JSON.stringify(fileURLToPath(new URL('../lib/index.mjs', import.meta.url)))
  const body = (/** @type {boolean} */ close) => `
    import { ConversationCache } from ${entry}
    const cache = new ConversationCache({ redisUrl: ${JSON.stringify(url)} })
    await cache.set('k', { v: 1 })
    const t0 = Date.now()
    while (!cache.getStats().busConnected) {
      if (Date.now() - t0 > 5000) { console.error('never subscribed'); process.exit(3) }
      await new Promise((r) => setTimeout(r, 5))
    }
    ${close ? 'await cache.close()' : ''}`
  const closed = await runChild(body(true), 10_000, { esm: true })
  assert.equal(closed.code, 0, `exits after close(); stderr: ${closed.stderr}`)
  // The subscription never keeps Node alive, even if close() is forgotten.
  const unclosed = await runChild(body(false), 10_000, { esm: true })
  assert.equal(unclosed.code, 0, `exits without close() too; stderr: ${unclosed.stderr}`)
}
