// copy-scripts.js copies the Lua scripts of the protocol from the repository (internal/wire/scripts,
// the normative definition: PROTOCOL.md) into dist/scripts, so that the client
// runs exactly the scripts the Go implementation runs, never a copy that could drift.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..', '..');
const out = path.resolve(__dirname, '..', 'dist', 'scripts');
fs.mkdirSync(out, { recursive: true });
for (const dir of ['internal/wire/scripts']) {
  for (const name of fs.readdirSync(path.join(root, dir))) {
    if (!name.endsWith('.lua')) continue;
    fs.copyFileSync(path.join(root, dir, name), path.join(out, name));
  }
}
