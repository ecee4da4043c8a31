#!/usr/bin/env node
/**
 * `npx tollgate <command>`: the operator CLI (src/cli/main.ts).
 *
 * Runs the compiled CLI (dist/src/cli/main.js) when it exists and is not older
 * than the sources next to it; otherwise (a checkout without a build, or with a
 * stale one) the TypeScript sources through ts-node.
 */
'use strict';
const { existsSync, readdirSync, statSync } = require('node:fs');
const { join } = require('node:path');

const root = join(__dirname, '..');
const compiled = join(root, 'dist', 'src', 'cli', 'main.js');

/** Newest modification time of the .ts files under `dir` (0 when it does not exist). */
function newestSource(dir) {
  if (!existsSync(dir)) return 0;
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function useCompiled() {
  if (!existsSync(compiled)) return false;
  const built = statSync(compiled).mtimeMs;
  return newestSource(join(root, 'src')) <= built && newestSource(join(root, 'migrations')) <= built;
}

let run;
if (useCompiled()) {
  ({ run } = require(compiled));
} else {
  require('ts-node').register({ transpileOnly: true, project: join(root, 'tsconfig.json') });
  ({ run } = require(join(root, 'src', 'cli', 'main.ts')));
}
run(process.argv).then((code) => process.exit(code));
