// Sentinel: the client finds the primary through redis-server --sentinel (ioredis's
// SentinelConnector), publishes, subscribes and writes a map there.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Event, codecs, silentLogger } from '../src';
import { RedisServer, freePort, newClient, trackServer, uniquePrefix, waitFor } from './helpers';

let primary: RedisServer;
let sentinel: ChildProcess;
let sentinelPort = 0;
const dir = mkdtempSync(path.join(os.tmpdir(), 'redisync-node-sentinel-'));

before(async () => {
  primary = await RedisServer.start();
  sentinelPort = await freePort();
  const conf = path.join(dir, 'sentinel.conf');
  writeFileSync(conf, `port ${sentinelPort}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor main 127.0.0.1 ${primary.port} 1\nsentinel down-after-milliseconds main 1000\n`);
  sentinel = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
  trackServer(sentinel);
  const probe = new RedisServer();
  probe.port = sentinelPort;
  await waitFor('the sentinel to know the primary', async () => (await probe.cli('SENTINEL', 'get-master-addr-by-name', 'main').catch(() => '')).includes(String(primary.port)));
});

after(async () => {
  if (sentinel.exitCode === null) {
    const gone = new Promise((res) => sentinel.once('exit', res));
    sentinel.kill('SIGKILL');
    await gone;
  }
  await primary?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('through Sentinel: publish, subscribe and a map, seen by a client connected to the primary directly', { timeout: 30000 }, async () => {
  const prefix = uniquePrefix('sentinel');
  const c = new Client({ redisOptions: { sentinels: [{ host: '127.0.0.1', port: sentinelPort }], name: 'main' }, prefix, logger: silentLogger });
  const direct = newClient(primary, prefix);
  try {
    const got: Event[] = [];
    const sub = await c.subscribe('s', 'now', (ev) => {
      got.push(ev);
    });
    await waitFor('the pub/sub connection', () => c.pubsubConnected);
    const pos = await c.publish('s', 'via sentinel');
    await direct.publish('s', 'direct');
    await waitFor('both messages', () => got.length === 2);
    assert.deepEqual(got.map((e) => [e.position.seq, e.data.toString()]), [[pos.seq, 'via sentinel'], [pos.seq + 1, 'direct']]);
    const m = c.openMap('sm', { codec: codecs.utf8, verifyEvery: -1 });
    await m.ready();
    await m.set('k', 'v');
    const dm = direct.openMap('sm', { codec: codecs.utf8, verifyEvery: -1 });
    await dm.ready();
    assert.equal(dm.get('k')?.value, 'v');
    await sub.close();
  } finally {
    await c.close();
    await direct.close();
  }
});
