'use strict'
// Key validation on the hot path: a non-empty string of at most 1,024 UTF-8 bytes.
const { MAX_KEY_BYTES } = require('./errors.js')

// A UTF-16 unit takes at most 3 UTF-8 bytes (a surrogate pair: 2 units, 4 bytes), and at
// least 1: keys up to 341 units always fit, keys over 1,024 units never do.
const ALWAYS_FITS = Math.floor(MAX_KEY_BYTES / 3)

/** @param {unknown} key @returns {key is string} */
function isValidKey(key) {
  if (typeof key !== 'string') return false
  const n = key.length
  if (n === 0) return false
  if (n <= ALWAYS_FITS) return true
  return n <= MAX_KEY_BYTES && Buffer.byteLength(key, 'utf8') <= MAX_KEY_BYTES
}

module.exports = { isValidKey }
