// Coherence across SEPARATE node processes sharing one redis-server (started here): the
// invalidation bus, the flush after a lost subscription, and tags (support/coherence-suite.mjs).
import { startRedis } from './support/redis-server.mjs'
import { coherenceSuite } from './support/coherence-suite.mjs'

coherenceSuite('single server', async () => {
  const server = await startRedis()
  return {
    url: server.url,
    stop: () => server.stop(),
    kill: () => server.kill('SIGKILL'),
    start: () => server.restart(),
    commandAll: async (...args) => {
      await server.command(...args)
    },
  }
})
