'use strict'
// A token bucket for loader calls. The bucket holds up to `tokensPerInterval` tokens and
// refills continuously at tokensPerInterval per interval. A call that finds no token
// reserves the next one and waits for it, in FIFO order; when that wait would be longer
// than `maxWaitMs` the call is refused at once with ERR_RATE_LIMITED (waiting first could
// not change the answer: tokens come only from the refill, at a known rate).
const { rateLimited } = require('./errors.js')

class TokenBucket {
  #capacity
  #perMs
  #maxWaitMs
  #tokens
  #last
  /** @type {Set<{ timer: ReturnType<typeof setTimeout>, reject: (e: unknown) => void }>} */
  #waiting = new Set()
  /** Calls refused with ERR_RATE_LIMITED. */
  refused = 0

  /** @param {{ tokensPerInterval: number, intervalMs: number, maxWaitMs: number }} o */
  constructor({ tokensPerInterval, intervalMs, maxWaitMs }) {
    this.#capacity = tokensPerInterval
    this.#perMs = tokensPerInterval / intervalMs
    this.#maxWaitMs = maxWaitMs
    this.#tokens = tokensPerInterval
    this.#last = performance.now()
  }

  #refill() {
    const now = performance.now()
    this.#tokens = Math.min(this.#capacity, this.#tokens + (now - this.#last) * this.#perMs)
    this.#last = now
  }

  /**
   * Takes a token: resolves when one is free (at once if the bucket has one), or rejects with
   * ERR_RATE_LIMITED when none will be free within maxWaitMs.
   * @returns {Promise<void>}
   */
  take() {
    this.#refill()
    this.#tokens -= 1
    if (this.#tokens >= 0) return Promise.resolve()
    const waitMs = -this.#tokens / this.#perMs
    if (waitMs > this.#maxWaitMs) {
      this.#tokens += 1
      this.refused++
      return Promise.reject(rateLimited(waitMs, this.#maxWaitMs))
    }
    return new Promise((resolve, reject) => {
      const w = {
        timer: setTimeout(() => {
          this.#waiting.delete(w)
          resolve()
        }, Math.ceil(waitMs)),
        reject,
      }
      this.#waiting.add(w)
    })
  }

  /** Rejects every waiting call with `err` and clears their timers. */
  close(/** @type {unknown} */ err) {
    for (const w of this.#waiting) {
      clearTimeout(w.timer)
      w.reject(err)
    }
    this.#waiting.clear()
  }
}

module.exports = { TokenBucket }
