// The README's quick start is a program that runs: it is taken from README.md, pointed at a
// test server, compiled with TypeScript and run in a process of its own, which must exit by
// itself once the client is closed.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ts from 'typescript';
import { RedisServer } from './helpers';

let r: RedisServer;
const dir = mkdtempSync(path.join(os.tmpdir(), 'redisync-node-readme-'));

before(async () => {
  r = await RedisServer.start();
});

after(async () => {
  await r?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('the README quick start compiles, runs against Redis, prints what it says, and exits by itself', { timeout: 30000 }, async () => {
  const readme = readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
  const m = /```ts\n([\s\S]*?)```/.exec(readme);
  assert.ok(m, 'README.md has a ts block');
  const lines = m[1].split('\n');
  const imports = lines.filter((l) => l.startsWith('import '));
  const body = lines.filter((l) => !l.startsWith('import ')).join('\n');
  const src = [
    ...imports.map((l) => l.replace("from 'redisync'", `from ${JSON.stringify(path.join(__dirname, '..', 'src'))}`)),
    '(async () => {',
    body.replace("'redis://127.0.0.1:6379'", JSON.stringify(r.url)),
    '})().catch((e) => { console.error(e); process.exit(1); });',
  ].join('\n');
  const out = ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 }, reportDiagnostics: true });
  assert.deepEqual(out.diagnostics ?? [], []);
  const file = path.join(dir, 'quickstart.js');
  writeFileSync(file, out.outputText);
  const res = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const p = execFile(process.execPath, [file], { timeout: 20_000 }, (err, stdout, stderr) => resolve({ code: p.exitCode, stdout, stderr }));
  });
  assert.equal(res.code, 0, res.stderr);
  const printed = res.stdout.trim().split('\n');
  const first = printed.find((l) => /^[0-9a-f]{16}:1 order 1 created$/.test(l));
  assert.ok(first, `the subscriber printed the first message: ${res.stdout}`);
  const epoch = first.slice(0, 16);
  for (const l of [`${epoch}:2 a`, `${epoch}:4 c`, `again ${epoch}:2 a`, `again ${epoch}:4 c`]) assert.ok(printed.includes(l), `${l} in ${res.stdout}`);
  assert.ok(printed.some((l) => /^\{ value: \{ cents: 999 \}, version: \d+ \}$/.test(l)), res.stdout);
  assert.ok(printed.some((l) => /^sku-1 \{ cents: 999 \} \d+$/.test(l)), res.stdout);
  assert.equal(printed[printed.length - 1], 'true', 'verify matched');
});
