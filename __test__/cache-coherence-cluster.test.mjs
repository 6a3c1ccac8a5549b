// The multi-process coherence tests (support/coherence-suite.mjs) against a REAL Redis
// Cluster of 3 masters built here from redis-server --cluster-enabled processes: sharded
// pub/sub for the bus, threads spread over the nodes, every node killed and restarted.
import { startCluster } from './support/redis-cluster.mjs'
import { coherenceSuite } from './support/coherence-suite.mjs'

coherenceSuite('cluster of 3 masters', async () => {
  const cluster = await startCluster()
  return {
    url: cluster.url,
    stop: () => cluster.stop(),
    kill: () => cluster.kill(),
    start: () => cluster.start(),
    commandAll: (...args) => cluster.commandAll(...args),
  }
})
