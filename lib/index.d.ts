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
