'use strict'
// The cache's JS errors. Each has a stable `code` (the same strings as the native errors in
// src/error.rs) and the class JS itself would use: TypeError for a wrong type, RangeError
// for a value out of range, Error otherwise.

/**
 * @param {ErrorConstructor | TypeErrorConstructor | RangeErrorConstructor} Class
 * @param {string} code
 * @param {string} message
 */
function coded(Class, code, message) {
  const err = new Class(message)
  Object.defineProperty(err, 'code', { value: code, enumerable: true, writable: true, configurable: true })
  return err
}

/** A key shown in a message: at most 60 characters of it. */
function show(key) {
  if (typeof key !== 'string') return key === null ? 'null' : typeof key
  return JSON.stringify(key.length > 60 ? `${key.slice(0, 60)}…` : key)
}

const MAX_KEY_BYTES = 1024

/** @param {unknown} key */
function invalidKey(key) {
  let why
  if (typeof key !== 'string') why = `must be a string, got ${show(key)}`
  else if (key.length === 0) why = 'must not be empty'
  else why = `must be at most ${MAX_KEY_BYTES} bytes in UTF-8, got ${Buffer.byteLength(key)} (${show(key)})`
  return coded(TypeError, 'ERR_INVALID_KEY', `threadId ${why}`)
}

/**
 * @param {string} option the option's name as the caller wrote it
 * @param {string} why
 * @param {'type' | 'range'} kind
 */
function invalidOption(option, why, kind = 'range') {
  return coded(kind === 'type' ? TypeError : RangeError, 'ERR_INVALID_OPTION', `option \`${option}\` ${why}`)
}

/** @param {string} message */
function invalidArg(message) {
  return coded(TypeError, 'ERR_INVALID_ARG', message)
}

/** @param {string} key @param {number} ms */
function loaderTimeout(key, ms) {
  return coded(Error, 'ERR_LOADER_TIMEOUT', `loader for threadId ${show(key)} did not settle within loaderTimeoutMs (${ms} ms)`)
}

/** @param {number} waitMs @param {number} maxWaitMs */
function rateLimited(waitMs, maxWaitMs) {
  return coded(
    Error,
    'ERR_RATE_LIMITED',
    `loader rate limit reached: the next free slot is ${Math.ceil(waitMs)} ms away, more than rateLimit.maxWaitMs (${maxWaitMs} ms)`,
  )
}

/**
 * An update could not commit under its distributed lock: the lock expired before the write
 * (a slow updater or save) or the thread was written meanwhile, on every attempt; or Redis
 * stopped answering so that it cannot be known whether the write landed. Nothing of the
 * failed attempts was written to the cache (unless `unknown`).
 * @param {string} key @param {'lost' | 'conflict' | 'unknown'} why @param {number} attempts @param {number} ttlMs
 */
function lockLost(key, why, attempts, ttlMs) {
  const what =
    why === 'unknown'
      ? 'Redis stopped answering during the write and the lock expired before it could be told whether the write landed'
      : `the lock (lockTtlMs ${ttlMs} ms) was lost or the thread was written by someone else before the write, on ${attempts} attempt(s); nothing was written`
  return coded(Error, 'ERR_LOCK_LOST', `update of threadId ${show(key)}: ${what}`)
}

/** @param {string} key @param {number} waitMs */
function lockTimeout(key, waitMs) {
  return coded(Error, 'ERR_LOCK_TIMEOUT', `update of threadId ${show(key)}: another instance held the lock for all of lockWaitMs (${waitMs} ms)`)
}

function closed() {
  return coded(Error, 'ERR_CLOSED', 'the ConversationCache is closed')
}

module.exports = { MAX_KEY_BYTES, invalidKey, invalidOption, invalidArg, loaderTimeout, rateLimited, lockLost, lockTimeout, closed }
