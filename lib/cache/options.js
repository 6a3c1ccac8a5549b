'use strict'
// ConversationCache options: defaults, the old TypeScript API's aliases, and validation.
// Every invalid option throws ERR_INVALID_OPTION naming it (TypeError for a wrong type,
// RangeError for a value out of range). Unknown option names are refused too, so that a
// typo (`maxEntires`) does not silently leave a default in place.
const { invalidOption } = require('./errors.js')

const DEFAULTS = Object.freeze({
  maxEntries: 100,
  maxBytes: 50 * 1024 * 1024,
  ttlMs: 5 * 60 * 1000,
  redisTtlSeconds: 3600,
  keyPrefix: 'agent-core:conv:',
  l2TimeoutMs: 50,
  negativeTtlMs: 0,
  heapUsedRatio: 0.8,
  lowWatermarkGap: 0.1,
  checkIntervalMs: 1000,
  maxWaitMs: 1000,
  lockTtlMs: 5000,
  lockWaitMs: 10_000,
  lockRetries: 2,
  loadLeaseMs: 3000,
})

/** Old TypeScript API name -> this API's name. */
const ALIASES = Object.freeze({ maxSize: 'maxEntries', ttl: 'ttlMs', redisTtl: 'redisTtlSeconds' })

const KNOWN = new Set([
  'maxEntries',
  'maxBytes',
  'ttlMs',
  'redisUrl',
  'redisCluster',
  'redisTtlSeconds',
  'keyPrefix',
  'loader',
  'loaderTimeoutMs',
  'l2TimeoutMs',
  'negativeTtlMs',
  'rateLimit',
  'memoryPressure',
  'logger',
  'lockTtlMs',
  'lockWaitMs',
  'lockRetries',
  'loadLeaseMs',
  ...Object.keys(ALIASES),
])

const INTERVALS = Object.freeze({ second: 1000, minute: 60_000 })

/**
 * @param {string} name @param {unknown} v
 * @param {{ min?: number, max?: number, integer?: boolean }} [o]
 * @returns {number}
 */
function number(name, v, { min = 0, max = Number.MAX_SAFE_INTEGER, integer = true } = {}) {
  if (typeof v !== 'number') throw invalidOption(name, `must be a number, got ${typeof v}`, 'type')
  const ok = Number.isFinite(v) && (!integer || Number.isInteger(v)) && v >= min && v <= max
  if (!ok) {
    const kind = integer ? 'an integer' : 'a number'
    throw invalidOption(name, `must be ${kind} from ${min} to ${max}, got ${v}`)
  }
  return v
}

/** @param {string} name @param {unknown} v */
function plainObject(name, v) {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw invalidOption(name, `must be an object, got ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v}`, 'type')
  }
  return /** @type {Record<string, unknown>} */ (v)
}

/** @param {string} name @param {Record<string, unknown>} o @param {string[]} allowed */
function onlyKeys(name, o, allowed) {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw invalidOption(`${name}.${k}`, `is not an option (known: ${allowed.join(', ')})`)
  }
}

/** @param {Record<string, unknown>} raw */
function resolveAliases(raw) {
  /** @type {Record<string, unknown>} */
  const out = {}
  for (const [k, v] of Object.entries(raw)) {
    if (!KNOWN.has(k)) throw invalidOption(k, 'is not a ConversationCache option')
    if (v === undefined) continue
    const name = /** @type {Record<string, string>} */ (ALIASES)[k] ?? k
    if (name in out) {
      const alias = k === name ? nameOf(raw, name) : k
      throw invalidOption(alias, `is another name of \`${name}\`; give one of them`)
    }
    out[name] = v
  }
  return out
}

/** @param {Record<string, unknown>} o @param {string} name as written by the caller */
function nameOf(o, name) {
  for (const [alias, canonical] of Object.entries(ALIASES)) if (canonical === name && alias in o) return alias
  return name
}

/**
 * One URL per host of `url`: `redis://[user:pass@]h1:p1,h2:p2[/db]` lists the seed nodes of
 * a Redis Cluster (scheme, credentials and path apply to each); null if a host is empty.
 * @param {string} url
 */
function seedUrls(url) {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)(.*)$/is.exec(url)
  if (!m) return [url]
  const [, scheme, authority, tail] = m
  const at = authority.lastIndexOf('@')
  const userinfo = authority.slice(0, at + 1)
  const hosts = authority.slice(at + 1).split(',').map((h) => h.trim())
  if (hosts.some((h) => h === '')) return null
  return hosts.map((h) => `${scheme}${userinfo}${h}${tail}`)
}

/** @param {unknown} v @param {string} name */
function redisUrl(v, name) {
  if (typeof v !== 'string') throw invalidOption(name, `must be a string, got ${typeof v}`, 'type')
  const seeds = seedUrls(v)
  if (seeds === null) throw invalidOption(name, 'has an empty host in its list (expected redis://host1:port1,host2:port2)')
  for (const seed of seeds) {
    let url
    try {
      url = new URL(seed)
    } catch {
      // Never echo the value: it may carry a password.
      throw invalidOption(name, 'is not a valid URL (expected redis://host:port, rediss://host:port, or redis://host1:port1,host2:port2 for a cluster)')
    }
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
      throw invalidOption(name, `must use redis:// or rediss://, got ${url.protocol}//`)
    }
  }
  return v
}

/** @param {unknown} v */
function rateLimit(v) {
  const o = plainObject('rateLimit', v)
  onlyKeys('rateLimit', o, ['tokensPerInterval', 'interval', 'maxWaitMs'])
  const tokensPerInterval = number('rateLimit.tokensPerInterval', o.tokensPerInterval, { min: 1 })
  let intervalMs
  if (typeof o.interval === 'string') {
    intervalMs = /** @type {Record<string, number>} */ (INTERVALS)[o.interval]
    if (intervalMs === undefined) {
      throw invalidOption('rateLimit.interval', `must be 'second', 'minute' or a number of milliseconds, got ${JSON.stringify(o.interval)}`)
    }
  } else {
    intervalMs = number('rateLimit.interval', o.interval, { min: 1 })
  }
  const maxWaitMs = o.maxWaitMs === undefined ? DEFAULTS.maxWaitMs : number('rateLimit.maxWaitMs', o.maxWaitMs)
  return { tokensPerInterval, intervalMs, maxWaitMs }
}

/** @param {unknown} v */
function memoryPressure(v) {
  if (v === false) return null
  const o = v === undefined || v === true ? {} : plainObject('memoryPressure', v)
  onlyKeys('memoryPressure', o, ['heapUsedRatio', 'lowWatermarkRatio', 'checkIntervalMs'])
  const heapUsedRatio =
    o.heapUsedRatio === undefined
      ? DEFAULTS.heapUsedRatio
      : number('memoryPressure.heapUsedRatio', o.heapUsedRatio, { min: Number.MIN_VALUE, max: 1, integer: false })
  const lowWatermarkRatio =
    o.lowWatermarkRatio === undefined
      ? Math.max(0, heapUsedRatio - DEFAULTS.lowWatermarkGap)
      : number('memoryPressure.lowWatermarkRatio', o.lowWatermarkRatio, { max: heapUsedRatio, integer: false })
  const checkIntervalMs =
    o.checkIntervalMs === undefined ? DEFAULTS.checkIntervalMs : number('memoryPressure.checkIntervalMs', o.checkIntervalMs)
  return { heapUsedRatio, lowWatermarkRatio, checkIntervalMs }
}

/** @param {unknown} v */
function logger(v) {
  const o = /** @type {Record<string, unknown>} */ (plainObjectOrInstance('logger', v))
  for (const m of ['warn', 'error']) {
    if (typeof o[m] !== 'function') throw invalidOption('logger', `must have a ${m}(message, meta) method`, 'type')
  }
  return /** @type {{ warn(msg: string, meta?: object): void, error(msg: string, meta?: object): void }} */ (o)
}

/** @param {string} name @param {unknown} v */
function plainObjectOrInstance(name, v) {
  if (v === null || (typeof v !== 'object' && typeof v !== 'function')) {
    throw invalidOption(name, `must be an object, got ${v === null ? 'null' : typeof v}`, 'type')
  }
  return v
}

/**
 * Validates options and fills in defaults.
 * @param {unknown} options
 * @param {NodeJS.ProcessEnv} [env]
 */
function normalizeOptions(options, env = process.env) {
  const raw = options === undefined ? {} : plainObject('options', options)
  const o = resolveAliases(raw)
  const n = (/** @type {string} */ name, /** @type {number} */ dflt, /** @type {{min?: number, max?: number}} */ lim = {}) =>
    o[name] === undefined ? dflt : number(nameOf(raw, name), o[name], lim)

  const loader = o.loader
  if (loader !== undefined && typeof loader !== 'function') throw invalidOption('loader', 'must be a function', 'type')
  const keyPrefix = o.keyPrefix === undefined ? DEFAULTS.keyPrefix : o.keyPrefix
  if (typeof keyPrefix !== 'string') throw invalidOption('keyPrefix', 'must be a string', 'type')

  let url = null
  if (o.redisUrl !== undefined) url = redisUrl(o.redisUrl, 'redisUrl')
  else if (env.REDIS_URL) url = redisUrl(env.REDIS_URL, 'redisUrl (from REDIS_URL)')
  if (o.redisCluster !== undefined && typeof o.redisCluster !== 'boolean') {
    throw invalidOption('redisCluster', `must be a boolean, got ${typeof o.redisCluster}`, 'type')
  }
  const several = url !== null && (seedUrls(url)?.length ?? 0) > 1
  if (o.redisCluster === false && several) {
    throw invalidOption('redisCluster', 'cannot be false: redisUrl lists several hosts, which is a Redis Cluster')
  }

  return Object.freeze({
    maxEntries: n('maxEntries', DEFAULTS.maxEntries, { min: 1 }),
    maxBytes: n('maxBytes', DEFAULTS.maxBytes, { min: 1 }),
    ttlMs: n('ttlMs', DEFAULTS.ttlMs),
    redisUrl: url,
    redisCluster: o.redisCluster === true || several,
    redisTtlSeconds: n('redisTtlSeconds', DEFAULTS.redisTtlSeconds, { min: 1 }),
    keyPrefix,
    loader: /** @type {((id: string) => unknown) | undefined} */ (loader),
    loaderTimeoutMs: o.loaderTimeoutMs === undefined ? 0 : number('loaderTimeoutMs', o.loaderTimeoutMs, { min: 1 }),
    l2TimeoutMs: n('l2TimeoutMs', DEFAULTS.l2TimeoutMs, { min: 1 }),
    negativeTtlMs: n('negativeTtlMs', DEFAULTS.negativeTtlMs),
    rateLimit: o.rateLimit === undefined ? null : rateLimit(o.rateLimit),
    memoryPressure: memoryPressure(o.memoryPressure),
    logger: o.logger === undefined ? null : logger(o.logger),
    ...lockOptions(o),
    loadLeaseMs: n('loadLeaseMs', DEFAULTS.loadLeaseMs, { min: 1, max: MAX_LOCK_MS }),
  })
}

/**
 * Options of set(): `{ tags?: string[], ttlMs?: number }`.
 * @param {unknown} opts
 * @returns {{ tags?: string[], ttlMs?: number }}
 */
function setOptions(opts) {
  if (opts === undefined) return {}
  const o = plainObject('set options', opts)
  onlyKeys('set options', o, ['tags', 'ttlMs'])
  /** @type {{ tags?: string[], ttlMs?: number }} */
  const out = {}
  if (o.tags !== undefined) {
    if (!Array.isArray(o.tags) || !o.tags.every((t) => typeof t === 'string' && t.length > 0)) {
      throw invalidOption('tags', 'must be an array of non-empty strings', 'type')
    }
    out.tags = o.tags
  }
  if (o.ttlMs !== undefined) out.ttlMs = number('ttlMs', o.ttlMs)
  return out
}

/** Upper bound of lockTtlMs / lockWaitMs (1 hour). */
const MAX_LOCK_MS = 3_600_000

/**
 * The lock options (of the cache, or of one update()), each checked when given.
 * @param {Record<string, unknown>} o
 * @param {{ lockTtlMs: number, lockWaitMs: number, lockRetries: number }} [dflt]
 */
function lockOptions(o, dflt = DEFAULTS) {
  const n = (/** @type {'lockTtlMs' | 'lockWaitMs' | 'lockRetries'} */ name, /** @type {number} */ min, /** @type {number} */ max) =>
    o[name] === undefined ? dflt[name] : number(name, o[name], { min, max })
  return { lockTtlMs: n('lockTtlMs', 1, MAX_LOCK_MS), lockWaitMs: n('lockWaitMs', 0, MAX_LOCK_MS), lockRetries: n('lockRetries', 0, 100) }
}

/**
 * @typedef {{ save: ((value: unknown) => unknown) | undefined, lockTtlMs: number, lockWaitMs: number, lockRetries: number }} UpdateOpts
 */

/**
 * Options of update(): `{ save?, lockTtlMs?, lockWaitMs?, lockRetries? }`; the lock options
 * default to the cache's.
 * @param {unknown} opts
 * @param {{ lockTtlMs: number, lockWaitMs: number, lockRetries: number }} dflt the cache's
 * @returns {UpdateOpts}
 */
function updateOptions(opts, dflt) {
  if (opts === undefined) return { save: undefined, ...lockOptions({}, dflt) }
  const o = plainObject('update options', opts)
  onlyKeys('update options', o, ['save', 'lockTtlMs', 'lockWaitMs', 'lockRetries'])
  if (o.save !== undefined && typeof o.save !== 'function') throw invalidOption('save', 'must be a function', 'type')
  return { save: /** @type {((value: unknown) => unknown) | undefined} */ (o.save), ...lockOptions(o, dflt) }
}

module.exports = { normalizeOptions, setOptions, updateOptions, DEFAULTS, ALIASES }
