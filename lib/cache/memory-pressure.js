'use strict'
// Memory pressure, measured against V8's heap size limit (`heap_size_limit`), not against
// `heapTotal`: heapTotal grows on demand, so heapUsed/heapTotal is above 0.8 in many healthy
// processes. Above `heapUsedRatio` of the limit the cache sheds least-recently-used entries
// until it has let go of enough to bring the heap back to `lowWatermarkRatio` (estimated by
// the entries' JSON sizes, which understate their heap size, so it errs on shedding more).
const v8 = require('node:v8')
const { performance } = require('node:perf_hooks')

/** A write re-reads the heap once this many ms passed since the last reading... */
const WRITE_CHECK_MS = 1
/** ...or once this many bytes were written since it. */
const WRITE_CHECK_BYTES = 1024 * 1024

/**
 * @typedef {{ used: number, limit: number }} HeapReading
 * @typedef {{ heapUsedRatio: number, lowWatermarkRatio: number }} Thresholds
 */

/** @returns {HeapReading} */
function readHeap() {
  const h = v8.getHeapStatistics()
  return { used: h.used_heap_size, limit: h.heap_size_limit }
}

/**
 * How many bytes to shed for a heap reading: 0 below the threshold, otherwise the distance
 * from the current use down to the low watermark.
 * @param {HeapReading} heap @param {Thresholds} t
 */
function bytesToShed(heap, t) {
  if (heap.used < t.heapUsedRatio * heap.limit) return 0
  return Math.max(1, Math.ceil(heap.used - t.lowWatermarkRatio * heap.limit))
}

class MemoryPressure {
  #t
  #read
  #now
  /** When the heap was last read for a write, and the bytes written since. */
  #readAt = -Infinity
  #written = 0
  /** Whether the last check found pressure (a warning is logged once per episode). */
  underPressure = false

  /**
   * @param {Thresholds} thresholds @param {() => HeapReading} [read]
   * @param {() => number} [now] clock in ms (tests)
   */
  constructor(thresholds, read = readHeap, now = () => performance.now()) {
    this.#t = thresholds
    this.#read = read
    this.#now = now
  }

  /**
   * Whether a write of `bytes` into L1 should check the heap now: always under pressure,
   * else once a millisecond has passed or a megabyte was written since the last reading.
   * Reading the heap (v8.getHeapStatistics) on every write cost 1.5% of the main thread at
   * 50 L2 hits in flight; a burst of writes now reads it once.
   * @param {number} bytes
   */
  dueAfterWrite(bytes) {
    this.#written += bytes
    const now = this.#now()
    if (!this.underPressure && this.#written < WRITE_CHECK_BYTES && now - this.#readAt < WRITE_CHECK_MS) return false
    this.#written = 0
    this.#readAt = now
    return true
  }

  /** @returns {{ shed: number, heap: HeapReading }} bytes to shed now (0: no pressure) */
  check() {
    const heap = this.#read()
    return { shed: bytesToShed(heap, this.#t), heap }
  }

  /** The current heapUsed / heap_size_limit. */
  ratio() {
    const h = this.#read()
    return h.used / h.limit
  }
}

module.exports = { MemoryPressure, bytesToShed, readHeap, WRITE_CHECK_MS, WRITE_CHECK_BYTES }
