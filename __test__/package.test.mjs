// The package loads from both module systems and exposes the same objects.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import * as esmNamespace from '@povc/agent-core-native'

const require = createRequire(import.meta.url)
/** @type {Record<string, any>} */
const cjs = require('@povc/agent-core-native')
/** @type {Record<string, unknown>} */
const esm = esmNamespace

test('require and import give the same exports', () => {
  assert.ok(Object.keys(esm).length >= 3)
  const names = Object.keys(cjs).sort()
  for (const n of ['serialize', 'serializeAsync', 'shutdownSerializationPool']) {
    assert.equal(typeof cjs[n], 'function', n)
  }
  for (const name of names) {
    assert.equal(esm[name], cjs[name], `export ${name}`)
  }
})

test('shutdownSerializationPool is idempotent and harmless', async () => {
  await cjs.shutdownSerializationPool()
  await cjs.shutdownSerializationPool()
})
