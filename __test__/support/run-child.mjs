// Runs a script in a child node and reports how it ended, for the tests that check that
// nothing keeps Node alive (not a test file itself).
//
//   const r = await runChild(source, 10_000, { esm: true })   // r.code: exit code or 'timeout'
import { spawn } from 'node:child_process'

/**
 * Runs `node -e script` (`--input-type=module` with `esm`) from the package root; resolves its
 * exit code, or 'timeout' when it did not exit on its own within `ms` (it is then killed),
 * with what it printed. `env` replaces the child's environment (default: this process's).
 * @param {string} script @param {number} ms @param {{ esm?: boolean, env?: NodeJS.ProcessEnv }} [opts]
 * @returns {Promise<{ code: number | null | 'timeout', stdout: string, stderr: string }>}
 */
export function runChild(script, ms, opts = {}) {
  return new Promise((resolve) => {
    const args = opts.esm ? ['--input-type=module', '-e', script] : ['-e', script]
    const child = spawn(process.execPath, args, {
      cwd: new URL('../..', import.meta.url),
      stdio: ['ignore', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      resolve({ code: 'timeout', stdout, stderr })
    }, ms)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}
