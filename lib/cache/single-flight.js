'use strict'
// One load per key at a time: the first caller starts a flight, later callers for the same
// key join it and get the same promise (the same value, or the same error). Different keys
// never wait on each other. A flight can be detached (`forget`) when a write makes what it
// is loading stale: its callers still get its result, but the result is not cached and new
// callers start a fresh flight.

/**
 * @typedef {object} Flight
 * @property {Promise<unknown>} promise what every caller of this flight awaits
 * @property {number} waiters callers that joined after the first
 * @property {boolean} stale a write happened since the flight started: do not cache its result
 * @property {boolean} settled
 * @property {string} source what answered ('l2' or 'loader'), set by the work
 * @property {ReturnType<typeof setTimeout> | null} timer a deadline of the flight, cleared when it settles
 * @property {(err: unknown) => void} abort rejects every caller now (close, timeout)
 */

class SingleFlight {
  /** @type {Map<string, Flight>} */
  #flights = new Map()

  /** The flight under way for `key`, if any. */
  get(/** @type {string} */ key) {
    return this.#flights.get(key)
  }

  /**
   * Starts a flight for `key` running `work(flight)`. `onSettle(flight)` runs once, when
   * the flight settles and before its callers hear of it; no caller can join it after that.
   * @param {string} key
   * @param {(flight: Flight) => Promise<unknown>} work
   * @param {(flight: Flight) => void} onSettle
   * @returns {Flight}
   */
  start(key, work, onSettle) {
    /** @type {(v: unknown) => void} */
    let resolve = () => {}
    /** @type {(e: unknown) => void} */
    let reject = () => {}
    const promise = new Promise((res, rej) => {
      resolve = res
      reject = rej
    })
    /** @type {Flight} */
    const flight = {
      promise,
      waiters: 0,
      stale: false,
      settled: false,
      source: 'loader',
      timer: null,
      abort: (err) => settle(reject, err),
    }
    const settle = (/** @type {(v: unknown) => void} */ fn, /** @type {unknown} */ v) => {
      if (flight.settled) return
      flight.settled = true
      if (flight.timer) clearTimeout(flight.timer)
      flight.timer = null
      if (this.#flights.get(key) === flight) this.#flights.delete(key)
      onSettle(flight)
      fn(v)
    }
    this.#flights.set(key, flight)
    work(flight).then(
      (v) => settle(resolve, v),
      (e) => settle(reject, e),
    )
    return flight
  }

  /** Detaches the flight of `key`: its result will not be cached; new callers start anew. */
  forget(/** @type {string} */ key) {
    const f = this.#flights.get(key)
    if (!f) return
    f.stale = true
    this.#flights.delete(key)
  }

  /** `forget` for every key (the bus re-subscribed: anything loading may be stale). */
  forgetAll() {
    for (const f of this.#flights.values()) f.stale = true
    this.#flights.clear()
  }

  /** Rejects every flight under way with `err` (used by close()). */
  abortAll(/** @type {unknown} */ err) {
    for (const f of [...this.#flights.values()]) f.abort(err)
    this.#flights.clear()
  }

  get size() {
    return this.#flights.size
  }
}

module.exports = { SingleFlight }
