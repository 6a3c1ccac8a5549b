// A private Redis Cluster of 3 masters (no replicas) for one test: redis-server processes
// started with --cluster-enabled on free loopback ports (support/redis-server.mjs), joined
// with `redis-cli --cluster create`, ready once every node says cluster_state:ok. The CLI comes
// from REDIS_CLI_BIN or PATH; missing = an error telling how to install it (never a skip).
//
//   const cluster = await startCluster()
//   cluster.url                      // redis://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3
//   await cluster.kill()             // SIGKILL every node (no persistence: data lost)
//   await cluster.start()            // start them again (same ports, same cluster), wait ok
//   await cluster.commandAll('CLIENT', 'KILL', 'TYPE', 'pubsub')
//   await cluster.stop()
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { startRedis } from './redis-server.mjs'

const CLI = process.env.REDIS_CLI_BIN || 'redis-cli'
const run = promisify(execFile)

/** @typedef {Awaited<ReturnType<typeof startCluster>>} RedisCluster */

export async function startCluster(n = 3) {
  const nodes = await Promise.all(
    Array.from({ length: n }, () =>
      startRedis({
        args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'],
      }),
    ),
  )
  try {
    await run(CLI, ['--cluster', 'create', ...nodes.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', '0', '--cluster-yes'])
  } catch (e) {
    await Promise.all(nodes.map((s) => s.stop()))
    const err = /** @type {NodeJS.ErrnoException} */ (e)
    if (err.code === 'ENOENT') {
      throw new Error(`cannot run ${CLI}: the cluster tests need redis-cli (Debian/Ubuntu: apt-get install redis-tools) or REDIS_CLI_BIN pointing at it`)
    }
    throw e
  }
  const waitOk = async () => {
    const deadline = Date.now() + 20_000
    for (;;) {
      const states = await Promise.all(nodes.map((s) => s.command('CLUSTER', 'INFO').catch(() => '')))
      if (states.every((t) => t.includes('cluster_state:ok'))) return
      if (Date.now() > deadline) throw new Error('cluster not ok after 20 s')
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  await waitOk()
  return {
    nodes,
    url: `redis://${nodes.map((s) => `127.0.0.1:${s.port}`).join(',')}`,
    async stop() {
      await Promise.all(nodes.map((s) => s.stop()))
    },
    async kill() {
      await Promise.all(nodes.map((s) => s.kill('SIGKILL')))
    },
    async start() {
      await Promise.all(nodes.map((s) => s.restart()))
      await waitOk()
    },
    /** @param {string[]} args */
    async commandAll(...args) {
      await Promise.all(nodes.map((s) => s.command(...args)))
    },
  }
}
