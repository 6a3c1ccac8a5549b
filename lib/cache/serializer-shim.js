'use strict'
// TEMP stand-in for the native serializeAsync until it lands on main. Not to be merged.
/** @param {unknown} value */
async function serializeAsync(value) {
  let serialized
  try {
    serialized = JSON.stringify(value)
  } catch (e) {
    const msg = String(/** @type {Error} */ (e).message)
    const err = new TypeError(msg)
    Object.assign(err, { code: /BigInt/.test(msg) ? "ERR_BIGINT" : "ERR_CIRCULAR" })
    throw err
  }
  if (serialized === undefined) {
    const err = new TypeError('value has no JSON form')
    Object.assign(err, { code: "ERR_NOT_SERIALIZABLE" })
    throw err
  }
  return { serialized, truncated: false, bytes: Buffer.byteLength(serialized) }
}
module.exports = { serializeAsync }
