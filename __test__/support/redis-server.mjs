// A private redis-server for one test: a free loopback port, no persistence, stopped by PID.
// The binary comes from REDIS_SERVER_BIN or PATH; a missing binary is an error telling how to
// install it (tests never skip for want of Redis). Never the machine's shared 6379.
//
//   const server = await startRedis({ password, args })
//   server.url / server.port / server.pid
//   await server.kill('SIGSTOP' | 'SIGCONT' | 'SIGKILL')   // signal the current process
//   await server.command('INFO', 'commandstats')  // one raw command, own socket
//   await server.stop()      // SIGKILL, wait for exit, remove its temp dir (idempotent)
//   await server.restart()   // stop, then start again on the same port
//
// `startRedis({ start: false })` reserves a port without starting (for "Redis down at start"
// tests); `server.restart()` then starts it.
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { mkdtempSync, mkdirSync, rmSync, readFileSync, existsSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'

const BIN = process.env.REDIS_SERVER_BIN || 'redis-server'

/** @returns {Promise<number>} */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

/**
 * @typedef {{ port: number, url: string, pid: number | undefined, stop(): Promise<void>,
 *   kill(signal?: NodeJS.Signals): Promise<void>, restart(): Promise<void>,
 *   command(...args: string[]): Promise<string> }} RedisServer
 */

/**
 * @param {{ password?: string, user?: string, args?: string[], start?: boolean }} [opts]
 * @returns {Promise<RedisServer>}
 */
export async function startRedis(opts = {}) {
  const port = await freePort()
  const dir = mkdtempSync(path.join(tmpdir(), 'agent-core-redis-'))
  const log = path.join(dir, 'redis.log')
  const auth = opts.password ? `${encodeURIComponent(opts.user ?? '')}:${encodeURIComponent(opts.password)}@` : ''
  /** @type {import('node:child_process').ChildProcess | null} */
  let child = null
  /** @type {Promise<void> | null} */
  let exited = null

  async function launch() {
    mkdirSync(dir, { recursive: true })
    rmSync(log, { force: true })
    const args = [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--daemonize', 'no', '--dir', dir, '--logfile', log,
    ]
    if (opts.password && !opts.user) args.push('--requirepass', opts.password)
    if (opts.user && opts.password) {
      const conf = path.join(dir, 'acl.conf')
      writeFileSync(conf, `user ${opts.user} on >${opts.password} ~* &* +@all\nuser default off\n`)
      args.unshift(conf)
    }
    args.push(...(opts.args ?? []))
    const c = spawn(BIN, args, { stdio: 'ignore' })
    child = c
    exited = new Promise((resolve) => c.once('exit', () => resolve()))
    await new Promise((resolve, reject) => {
      c.once('spawn', resolve)
      c.once('error', (/** @type {NodeJS.ErrnoException} */ e) =>
        reject(
          new Error(
            `cannot start ${BIN} (${e.code ?? e.message}). These tests need redis-server (>= 6): ` +
              'install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) ' +
              'or set REDIS_SERVER_BIN to its path.',
          ),
        ),
      )
    })
    const deadline = Date.now() + 10_000
    for (;;) {
      const text = existsSync(log) ? readFileSync(log, 'utf8') : ''
      if (text.includes('Ready to accept connections')) return
      if (c.exitCode !== null || c.signalCode !== null) throw new Error(`redis-server exited early:\n${text}`)
      if (Date.now() > deadline) throw new Error(`redis-server not ready after 10 s:\n${text}`)
      await new Promise((r) => setTimeout(r, 10))
    }
  }

  async function stop() {
    const c = child
    if (!c || c.exitCode !== null || c.signalCode !== null) return
    try { process.kill(/** @type {number} */ (c.pid), 'SIGCONT') } catch {}
    c.kill('SIGKILL')
    await exited
  }

  /** Sends one command with redis-cli-free RESP over a fresh socket. @param {string[]} args */
  async function command(...args) {
    const { connect } = await import('node:net')
    const enc = (/** @type {string[]} */ a) =>
      `*${a.length}\r\n` + a.map((s) => `$${Buffer.byteLength(s)}\r\n${s}\r\n`).join('')
    let req = ''
    if (opts.password) req += enc(opts.user ? ['AUTH', opts.user, opts.password] : ['AUTH', opts.password])
    req += enc(args)
    return await new Promise((resolve, reject) => {
      const sock = connect(port, '127.0.0.1')
      let buf = ''
      const timer = setTimeout(() => { sock.destroy(); reject(new Error('raw command timed out')) }, 5000)
      sock.on('data', (d) => {
        buf += d.toString('latin1')
        const body = opts.password ? buf.slice(buf.indexOf('\r\n') + 2) : buf
        if (complete(body)) { clearTimeout(timer); sock.destroy(); resolve(body) }
      })
      sock.on('error', (e) => { clearTimeout(timer); reject(e) })
      sock.write(req)
    })
  }

  if (opts.start !== false) await launch()
  const server = {
    port,
    url: `redis://${auth}127.0.0.1:${port}/0`,
    get pid() { return child?.pid },
    /** SIGKILL, wait for the exit, remove the temp dir (a later restart() makes it again). */
    async stop() {
      await stop()
      rmSync(dir, { recursive: true, force: true })
    },
    async kill(/** @type {NodeJS.Signals} */ signal = 'SIGKILL') {
      if (!child?.pid) return
      if (signal === 'SIGKILL') return stop()
      process.kill(child.pid, signal)
    },
    async restart() { await stop(); await launch() },
    command,
  }
  return server
}

/** Whether `b` holds one complete RESP reply. @param {string} b */
function complete(b) {
  /** @param {number} at @returns {number} */
  function parse(at) {
    const e = b.indexOf('\r\n', at)
    if (e < 0) return -1
    const t = b[at]
    const head = b.slice(at + 1, e)
    if (t === '+' || t === '-' || t === ':') return e + 2
    if (t === '$') {
      const n = Number(head)
      if (n < 0) return e + 2
      const end = e + 2 + n + 2
      return Buffer.byteLength(b, 'latin1') >= end ? end : -1
    }
    if (t === '*') {
      let p = e + 2
      for (let i = 0; i < Number(head); i++) { p = parse(p); if (p < 0) return -1 }
      return p
    }
    return -1
  }
  return b.length > 0 && parse(0) >= 0
}
