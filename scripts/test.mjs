// `npm test`: every check, in order, stopping at the first failure.
// cargo fmt/clippy, cargo test, the release build (which regenerates index.js / index.d.ts
// and must leave them unchanged), the JS tests (node's test runner) and the type check.
import { execFileSync, spawnSync } from 'node:child_process'
import { readFileSync, existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import path from 'node:path'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const only = process.argv.slice(2)

function run(name, cmd, args, opts = {}) {
  if (only.length && !only.includes(name)) return
  console.log(`\n=== ${name}: ${cmd} ${args.join(' ')}`)
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts })
  if (r.status !== 0) {
    console.error(`\n${name} failed (exit ${r.status ?? r.signal})`)
    process.exit(r.status || 1)
  }
}

const generated = ['index.js', 'index.d.ts']
const before = Object.fromEntries(
  generated.map((f) => [f, existsSync(path.join(root, f)) ? readFileSync(path.join(root, f), 'utf8') : null]),
)

run('fmt', 'cargo', ['fmt', '--check'])
run('clippy', 'cargo', ['clippy', '--all-targets', '--', '-D', 'warnings'])
run('cargo-test', 'cargo', ['test'])
run('build', 'npx', ['napi', 'build', '--platform', '--release'])
if (!only.length || only.includes('build')) {
  const stale = generated.filter((f) => readFileSync(path.join(root, f), 'utf8') !== before[f])
  if (stale.length) {
    console.error(
      `\n${stale.join(', ')} changed when regenerated from the Rust sources: the committed copy was stale.\n` +
        'Commit the regenerated file(s) (git diff shows the change).',
    )
    try {
      execFileSync('git', ['--no-pager', 'diff', '--stat', '--', ...stale], { cwd: root, stdio: 'inherit' })
    } catch {}
    process.exit(1)
  }
}
run('js-test', process.execPath, ['--test', '--test-concurrency=1', '__test__/'])
run('types', process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', '__test__/tsconfig.json'])
console.log('\nall checks passed')
