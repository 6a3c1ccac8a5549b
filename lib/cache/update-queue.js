'use strict'
// Per-key FIFO: tasks for one key run one after another, in call order; tasks for
// different keys run independently. A failing task does not stop the ones queued after it.

class KeyedQueue {
  /** @type {Map<string, Promise<void>>} the last task of each key, settled never rejecting */
  #tails = new Map()

  /**
   * Runs `task` after every task queued before it for `key`.
   * @template T
   * @param {string} key
   * @param {() => T | Promise<T>} task
   * @returns {Promise<T>}
   */
  run(key, task) {
    const prev = this.#tails.get(key) ?? Promise.resolve()
    const result = prev.then(task)
    /** @type {Promise<void>} */
    const tail = result.then(
      () => {},
      () => {},
    )
    this.#tails.set(key, tail)
    tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key)
    })
    return result
  }

  /** Keys with tasks queued or running. */
  get size() {
    return this.#tails.size
  }
}

module.exports = { KeyedQueue }
