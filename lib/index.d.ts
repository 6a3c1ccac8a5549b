// Types of the public entry point. Everything written in Rust is declared in the generated
// `../index.d.ts` (from the Rust doc comments); the JS-side classes are declared here.
export * from '../index'
export { ConversationCache } from './cache/index'
export type {
  ConversationCacheOptions,
  CacheStats,
  CacheHealth,
  CacheLogger,
  RateLimitOptions,
  MemoryPressureOptions,
  SetOptions,
  UpdateOptions,
  TierLatency,
} from './cache/index'
// `RedisTier` (with `RedisTierOptions`, `RedisTierHealth`, `RedisTierStats`) comes from the
// generated file: INTERNAL but documented — the native Redis tier (L2) that ConversationCache
// plugs in, exported for tests and diagnostics; its API may change with the cache's.
