// Public entry point (ES modules): the same objects as the CommonJS entry.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const cjs = require('./index.js')

export const {
  serialize,
  serializeAsync,
  shutdownSerializationPool,
  serializeToPayload,
  SerializedPayload,
  ConversationCache,
  CacheMetrics,
  RedisTier,
  TokenEstimator,
} = cjs
export default cjs
