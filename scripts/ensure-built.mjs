// Builds the native addon (release) if this checkout has none yet, so that
// `npm install && npm run demo` works from a fresh clone (needs Rust; published packages
// ship the prebuilt binary instead).
import { existsSync, readdirSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import path from 'node:path'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const built = readdirSync(root).some((f) => f.endsWith('.node'))
if (!built && !process.env.NAPI_RS_NATIVE_LIBRARY_PATH) {
  console.log('building the native addon (first run; needs Rust / cargo)...')
  const r = spawnSync('npx', ['napi', 'build', '--platform', '--release'], { cwd: root, stdio: 'inherit' })
  if (r.status !== 0) process.exit(r.status ?? 1)
}
if (!existsSync(path.join(root, 'index.js'))) {
  console.error('index.js is missing: run `npm run build`')
  process.exit(1)
}
