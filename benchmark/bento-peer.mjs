// The peer of benchmark/coherence.mjs: BentoCache with a memory L1, a Redis L2 and its Redis
// pub/sub bus (which keeps the L1s of several processes in line), behind the few methods the
// benchmark's child processes use (__test__/support/cache-child.mjs, `lib: 'bento'`).

/**
 * BentoCache behind the few methods the benchmark uses (a peer: memory L1, Redis L2, and
 * its Redis pub/sub bus to keep the L1s of several processes in line).
 * @param {string} redisUrl
 */
export async function bento(redisUrl) {
  const { BentoCache, bentostore } = await import('bentocache')
  const { memoryDriver } = await import('bentocache/drivers/memory')
  const { redisDriver, redisBusDriver } = await import('bentocache/drivers/redis')
  const { Redis, Cluster } = await import('ioredis')
  const hosts = redisUrl.replace(/^redis:\/\//, '').split('/')[0].split(',')
  const connect = () =>
    hosts.length > 1
      ? new Cluster(hosts.map((h) => ({ host: h.split(':')[0], port: Number(h.split(':')[1]) })))
      : new Redis(redisUrl)
  const b = new BentoCache({
    default: 's',
    stores: {
      s: bentostore()
        .useL1Layer(memoryDriver({ maxItems: 1000 }))
        .useL2Layer(redisDriver({ connection: connect() }))
        .useBus(redisBusDriver({ connection: connect() })),
    },
  })
  return {
    get: async (/** @type {string} */ key) => (await b.get({ key })) ?? null,
    set: (/** @type {string} */ key, /** @type {unknown} */ value) => b.set({ key, value }),
    close: () => b.disconnectAll(),
  }
}
