// CommonJS bridge to the shared conversation generator, for child processes started with -e.
'use strict'
const { execFileSync } = require('node:child_process')
module.exports = {
  /** @param {number} bytes @param {number} [seed] */
  makeConversation(bytes, seed = 1) {
    // Generated in a child so this stays synchronous for `node -e` scripts.
    const url = require('node:url').pathToFileURL(require('node:path').join(__dirname, '../../benchmark/conversation.mjs')).href
    const json = execFileSync(process.execPath, ['--input-type=module', '-e', `import { makeConversation } from ${JSON.stringify(url)}; process.stdout.write(JSON.stringify(makeConversation(${bytes}, ${seed})))`], { maxBuffer: 1 << 30 })
    return JSON.parse(json.toString())
  },
}
