// The package loads from both module systems and exposes the same objects.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import * as esm from '@povc/agent-core-native'

const require = createRequire(import.meta.url)
const cjs = require('@povc/agent-core-native')

test('require and import give the same exports', () => {
  const names = Object.keys(cjs).sort()
  assert.ok(names.includes('shutdownSerializationPool'))
  for (const name of names) {
    assert.equal(/** @type {any} */ (esm)[name], cjs[name], `export ${name}`)
  }
})

test('shutdownSerializationPool is idempotent and harmless', async () => {
  await cjs.shutdownSerializationPool()
  await cjs.shutdownSerializationPool()
})
