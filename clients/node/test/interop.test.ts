// Interop with the Go implementation, through its CLI (cmd/redisync, built once here): both
// sides join the same channels and maps on one real redis-server and must agree on every seq,
// byte, reset, position and digest. A change to PROTOCOL.md (or to the scripts) that one side
// does not follow fails here.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Change, Client, ConflictError, Event, KindError, NotFoundError, Position, codecs, formatPosition, formatToken } from '../src';
import { GoStream, RedisServer, go, goBinary, goBytes, killGoCommands, newClient, removeGoBinary, rollback, uniquePrefix, waitFor } from './helpers';

let r: RedisServer;
const clients: Client[] = [];
function client(prefix: string, o = {}): Client {
  const c = newClient(r, prefix, o);
  clients.push(c);
  return c;
}

before(async () => {
  goBinary(); // go build ./cmd/redisync, once
  r = await RedisServer.start();
});

after(async () => {
  killGoCommands();
  await Promise.all(clients.map((c) => c.close()));
  await r?.stop();
  removeGoBinary();
});

const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

/** The text of message i published through the Go CLI's standard input: one line each, not all ASCII. */
const goLine = (i: number) => `go ${i} é✓ ${'x'.repeat(i % 37)}`;

test('Go publishes 20,000 messages, a Node subscriber gets each once, in order, same seqs and bytes, across pub/sub kills', { timeout: 60000 }, async () => {
  const prefix = uniquePrefix('go2node');
  const c = client(prefix);
  const got: Event[] = [];
  const sub = await c.subscribe('orders', 'now', (ev) => {
    got.push(ev);
  });
  assert.deepEqual(sub.start, { epoch: '', seq: 0 });
  await waitFor('the Node pub/sub connection', () => c.pubsubConnected);

  const n = 20_000;
  const pub = new GoStream(r, prefix, ['pub', 'orders', '--batch', '40']);
  let kills = 0;
  for (let k = 0; k < 20; k++) {
    const chunk = Array.from({ length: n / 20 }, (_, j) => goLine(k * (n / 20) + j)).join('\n') + '\n';
    pub.proc.stdin!.write(chunk);
    await sleep(60);
    if (k % 5 === 2) {
      await waitFor('the Node pub/sub connection', () => c.pubsubConnected);
      assert.match(await r.killPubSub(), /^[1-9]/, 'CLIENT KILL TYPE pubsub killed the Node subscriber\'s connection');
      kills++;
    }
  }
  pub.proc.stdin!.end();
  const res = await pub.done;
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout.trim(), String(n), 'the Go publisher prints the last seq');

  await waitFor('20,000 messages in Node', () => got.length >= n, 30_000);
  await sleep(100); // a duplicate would arrive now
  assert.equal(got.length, n, 'no message twice');
  const epoch = got[0].position.epoch;
  assert.match(epoch, /^[0-9a-f]{16}$/);
  for (let i = 0; i < n; i++) {
    const ev = got[i];
    assert.equal(ev.reset, undefined);
    assert.equal(ev.position.seq, i + 1);
    assert.equal(ev.position.epoch, epoch);
    assert.equal(ev.pos, `${epoch}:${i + 1}`);
    assert.match(ev.position.entry ?? '', /^[0-9a-f]{16}$/, 'the id of its log entry');
    if (!ev.data.equals(Buffer.from(goLine(i), 'utf8'))) assert.fail(`message ${i + 1}: ${ev.data} != ${goLine(i)}`);
  }
  assert.ok(kills >= 3);
  await waitFor('the reconnects counted', () => c.stats.reconnects >= kills);
  await sub.close();
});

test('Node publishes 20,000 messages, the Go subscriber gets each once, in order, same seqs and bytes, across pub/sub kills', { timeout: 60000 }, async () => {
  const prefix = uniquePrefix('node2go');
  const c = client(prefix);
  const n = 20_000;
  const sub = new GoStream(r, prefix, ['sub', 'events', '--from', 'now', '--json', '--count', String(n)]);
  assert.equal(await sub.started(), '0', 'a channel without history starts after 0');

  // Bytes that are not UTF-8, newlines, NULs and empty messages: the Go side must see them exactly.
  const msg = (i: number) =>
    i % 7 === 0 ? Buffer.from([0xff, 0x00, i & 0xff, 0x0a, 0xfe]) : i % 11 === 0 ? Buffer.alloc(0) : Buffer.from(`node ${i}\n☃`, 'utf8');
  const seqs: number[] = [];
  const entries: string[] = [];
  let epoch = '';
  let kills = 0;
  for (let b = 0; b < n / 1000; b++) {
    if (b % 4 === 2) {
      assert.match(await r.killPubSub(), /^[1-9]/, 'CLIENT KILL TYPE pubsub killed the Go subscriber\'s connection');
      kills++;
    }
    const i0 = b * 1000;
    if (b % 2 === 0) {
      // publishBatch: one script call, contiguous seqs.
      for (let i = i0; i < i0 + 1000; i += 100) {
        const p = await c.publishBatch('events', Array.from({ length: 100 }, (_, j) => msg(i + j)));
        for (let j = 0; j < 100; j++) {
          seqs[i + j] = p.seq + j;
          entries[i + j] = p.entry!; // one script call: one log entry
        }
        epoch = p.epoch;
      }
    } else {
      // Concurrent publish calls: committed together, each its own seq.
      for (let i = i0; i < i0 + 1000; i += 200) {
        const ps = await Promise.all(Array.from({ length: 200 }, (_, j) => c.publish('events', msg(i + j))));
        ps.forEach((p, j) => {
          seqs[i + j] = p.seq;
          entries[i + j] = p.entry!;
        });
      }
    }
    await sleep(10);
  }
  assert.deepEqual(seqs, Array.from({ length: n }, (_, i) => i + 1), 'Node got seqs 1..n in the order it published');
  assert.ok(c.stats.publishCalls < n, 'concurrent publishes were grouped');
  const res = await sub.done;
  assert.equal(res.code, 0, res.stderr);
  const lines = sub.json();
  assert.equal(lines.length, n, 'no message twice');
  for (let i = 0; i < n; i++) {
    const l = lines[i];
    assert.equal(l.reset, undefined);
    assert.equal(l.seq, i + 1);
    assert.equal(l.epoch, epoch);
    assert.equal(l.pos, `${epoch}:${i + 1}`);
    assert.equal(l.entry, entries[i], 'the Go line names the log entry Node\'s publish returned');
    if (!goBytes(l).equals(msg(i))) assert.fail(`message ${i + 1}: Go printed ${JSON.stringify(l)}`);
  }
  assert.ok(kills >= 3);
});

test('Go and Node writers race on one map with compare-and-set: no lost update, both replicas converge, digests equal Redis\'s', { timeout: 60000 }, async () => {
  const prefix = uniquePrefix('mapcas');
  const c = client(prefix);
  const m = c.openMap('stock', { codec: codecs.utf8, verifyEvery: -1 });
  await m.ready();

  // The Go writer: read with get --json, then set --if-version; exit code 3 is a conflict.
  // Both writers stop at their target or at the deadline, whichever comes first.
  const deadline = Date.now() + 12_000;
  const goWins: number[] = [];
  let goConflicts = 0;
  const goWriter = (async () => {
    while (goWins.length < 8 && Date.now() < deadline) {
      const g = await go(r, prefix, ['get', 'stock', 'counter', '--json']);
      let value = 0;
      let version = 0;
      if (g.code === 0) {
        const j = JSON.parse(g.stdout);
        value = Number(j.value);
        version = j.version;
      } else assert.match(g.stderr, /not found/);
      const s = await go(r, prefix, ['set', 'stock', 'counter', String(value + 1), '--if-version', String(version)]);
      if (s.code === 3) {
        goConflicts++;
        assert.match(s.stderr, /conflict/);
        continue;
      }
      assert.equal(s.code, 0, s.stderr);
      goWins.push(value + 1);
    }
  })();

  // The Node writer: the same loop against its own replica, plus atomic multi-key writes and deletes.
  const nodeWins: number[] = [];
  let nodeConflicts = 0;
  let round = 0;
  while ((nodeWins.length < 25 || goWins.length < 8) && Date.now() < deadline) {
    const cur = m.get('counter');
    const value = cur ? Number(cur.value) : 0;
    await sleep(Math.floor(Math.random() * 40)); // read, think, write: the Go writer may come between
    try {
      await m.compareAndSet('counter', String(value + 1), cur?.version ?? 0);
      nodeWins.push(value + 1);
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      nodeConflicts++;
      await m.waitFor(err.actual); // our replica catches up with the Go write that won
    }
    round++;
    await m.write([{ key: `node-${round % 5}`, value: `v${round}` }, { key: `pair-${round % 3}`, value: `p${round}` }]);
    if (round % 4 === 0) await m.delete(`node-${round % 5}`);
    await sleep(20 + Math.floor(Math.random() * 60));
  }
  await goWriter;
  assert.ok(goWins.length >= 3 && nodeWins.length >= 3, `both sides won: Go ${goWins.length}, Node ${nodeWins.length}`);
  assert.ok(goConflicts + nodeConflicts > 0, `the writers raced: ${goConflicts} Go and ${nodeConflicts} Node conflicts`);
  await assert.rejects(m.delete('never-there'), NotFoundError);

  const total = goWins.length + nodeWins.length;
  const all = [...goWins, ...nodeWins].sort((a, b) => a - b);
  assert.deepEqual(all, Array.from({ length: total }, (_, i) => i + 1), 'every increment won exactly once: no lost update');

  // Both replicas: Node's (followed live), and the Go check's (loaded now), at the same seq as Redis.
  const head = await c.head('stock');
  await m.waitFor(head.seq);
  assert.equal(m.get('counter')?.value, String(total));
  const v = await m.verify();
  assert.equal(v.match, true, JSON.stringify(v));
  const check = await go(r, prefix, ['check', 'stock']);
  assert.equal(check.code, 0, check.stdout + check.stderr);
  assert.match(check.stdout, new RegExp(`seq ${head.seq} of epoch ${head.epoch}`));
  const d = m.digest();
  assert.match(d.digest, /^[0-9a-f]{24}$/);
  assert.match(check.stdout, new RegExp(`replica:\\s+digest ${d.digest}\\s+keys ${d.keys}\\b`), 'the Go replica\'s digest is the Node replica\'s');
  assert.match(check.stdout, new RegExp(`redis:\\s+digest ${d.digest}\\s`));

  // A Go get sees Node's last value; a Node replica opened now loads the same state.
  const g = await go(r, prefix, ['get', 'stock', 'counter']);
  assert.equal(g.stdout.trim(), String(total));
  const m2 = c.openMap('stock', { codec: codecs.utf8, verifyEvery: -1 });
  await m2.ready();
  assert.equal(m2.digest().digest, d.digest);
  await m2.close();
  await m.close();
});

test('Go watch and Node watch print the same changes, and the Go dump the same state', { timeout: 60000 }, async () => {
  const prefix = uniquePrefix('watch');
  const c = client(prefix);
  const m = c.openMap('cfg', { verifyEvery: -1 });
  await m.ready();
  await m.set('a', Buffer.from([0xff, 0x01]));
  assert.equal((await go(r, prefix, ['set', 'cfg', 'b', 'from go'])).code, 0);
  await m.write([{ key: 'c', value: Buffer.from('multi') }, { key: 'a', delete: true }, { key: 'ключ', value: Buffer.from('unicode key') }]);
  const del = await go(r, prefix, ['del', 'cfg', 'missing']);
  assert.equal(del.code, 1);
  assert.match(del.stderr, /not found/);
  assert.equal((await c.head('cfg')).seq, 3, 'a delete of an absent key appends nothing');

  const goWatch = await go(r, prefix, ['watch', 'cfg', '--from', '0', '--json', '--count', '5']);
  assert.equal(goWatch.code, 0, goWatch.stderr);
  const goLines = goWatch.stdout.trim().split('\n').map((l) => JSON.parse(l));
  const it = await m.watch('start');
  const nodeLines: Change<Buffer>[] = [];
  for await (const ch of it) {
    nodeLines.push(ch);
    if (nodeLines.length === 5) break;
  }
  assert.equal(goLines.length, 5);
  for (let i = 0; i < 5; i++) {
    const g = goLines[i];
    const n = nodeLines[i];
    assert.equal(n.pos, g.pos);
    assert.equal(n.position.seq, g.seq);
    assert.equal(n.position.entry, g.entry);
    assert.equal(n.key, g.key);
    assert.equal(n.deleted ? 'del' : 'set', g.op);
    assert.equal(n.version, g.version);
    assert.equal(n.oldVersion, g.old_version);
    if (!n.deleted) assert.ok(goBytes(g, 'value').equals(n.raw!), `value of change ${i}`);
  }
  const dump = await go(r, prefix, ['dump', 'cfg', '--json']);
  assert.equal(dump.code, 0, dump.stderr);
  assert.deepEqual(m.keys().sort(), ['b', 'c', 'ключ']);
  await m.close();
});

test('a trimmed reset reaches Node subscribers the way it reaches Go ones, with the same range and position', { timeout: 60000 }, async () => {
  const prefix = uniquePrefix('trim');
  const c = client(prefix);
  const seed = await go(r, prefix, ['pub', 'trimmed'], Array.from({ length: 1000 }, (_, i) => goLine(i)).join('\n') + '\n');
  assert.equal(seed.code, 0, seed.stderr);
  const head = await c.head('trimmed');
  assert.equal(head.seq, 1000);
  const ret = await go(r, prefix, ['retention', 'trimmed', '--max-len', '50']);
  assert.equal(ret.code, 0, ret.stderr);
  assert.deepEqual(await c.retention('trimmed'), { maxLen: 50, maxAge: 0 });
  // The next publishes cross 1024: the log is trimmed to (about) the newest 50.
  for (let i = 0; i < 30; i++) await c.publish('trimmed', `node ${i}`);
  const from = formatPosition({ epoch: head.epoch, seq: 5 });

  const goSub = await go(r, prefix, ['sub', 'trimmed', '--from', from, '--json', '--count', '30']);
  assert.equal(goSub.code, 0, goSub.stderr);
  const goLines = goSub.stdout.trim().split('\n').map((l) => JSON.parse(l));
  const goReset = goLines[0].reset as Record<string, unknown>;
  assert.equal(goReset.reason, 'trimmed');

  const got: Event[] = [];
  const sub = await c.subscribe('trimmed', from, (ev) => {
    got.push(ev);
  });
  await waitFor('the reset and the messages after it', () => got.length >= 31);
  await sub.close();
  const reset = got[0].reset!;
  assert.deepEqual(
    { reason: reset.reason, from: reset.from, to: reset.to, old_epoch: reset.oldEpoch, new_epoch: reset.newEpoch },
    { reason: goReset.reason, from: goReset.from, to: goReset.to, old_epoch: goReset.old_epoch, new_epoch: goReset.new_epoch },
  );
  assert.equal(reset.from, 6);
  assert.equal(got[0].pos, goLines[0].pos, 'the reset continues after the same position');
  assert.equal(got[0].position.seq, reset.to);
  for (let i = 0; i < goLines.length; i++) {
    assert.equal(got[i].pos, goLines[i].pos);
    assert.equal(got[i].position.entry, goLines[i].entry, `the entry of event ${i}`);
    if (i > 0) assert.ok(got[i].data.equals(goBytes(goLines[i])));
  }
  // A Go position resumes a Node subscription and the reverse: EPOCH:SEQ on both sides.
  const resumeFrom = goLines[10].pos as string;
  const nodeNext: Event[] = [];
  const s2 = await c.subscribe('trimmed', resumeFrom, (ev) => {
    nodeNext.push(ev);
  });
  await waitFor('the message after a Go position', () => nodeNext.length >= 1);
  await s2.close();
  assert.equal(nodeNext[0].pos, goLines[11].pos);
  const goNext = await go(r, prefix, ['sub', 'trimmed', '--from', got[20].pos, '--json', '--count', '1']);
  assert.equal(JSON.parse(goNext.stdout).pos, got[21].pos);
  // And with the entry, EPOCH:SEQ:ENTRY: both sides check it and go on from there.
  const s3Next: Event[] = [];
  const s3 = await c.subscribe('trimmed', `${goLines[10].pos}:${goLines[10].entry}`, (ev) => {
    s3Next.push(ev);
  });
  await waitFor('the message after a Go token', () => s3Next.length >= 1);
  await s3.close();
  assert.deepEqual([s3Next[0].pos, s3Next[0].reset], [goLines[11].pos, undefined]);
  const goTok = await go(r, prefix, ['sub', 'trimmed', '--from', formatToken(got[20].position), '--json', '--count', '1']);
  assert.equal(goTok.code, 0, goTok.stderr);
  assert.deepEqual(JSON.parse(goTok.stdout).pos, got[21].pos);
});

test('a resume after a position a failover lost is a rewound reset on both sides, from the oldest message on', { timeout: 60000 }, async () => {
  const prefix = uniquePrefix('lost');
  const c = client(prefix);
  const ps: Position[] = [];
  for (let i = 1; i <= 10; i++) ps.push(await c.publish('lost', `old${i}`));
  assert.ok(ps.every((p) => /^[0-9a-f]{16}$/.test(p.entry ?? '')), 'publish returns the entry of each message');
  await rollback(c, 'lost', 7); // the new primary had 1..7
  const pub = await go(r, prefix, ['pub', 'lost'], ['new8', 'new9', 'new10', 'new11', 'new12'].join('\n') + '\n');
  assert.equal(pub.code, 0, pub.stderr);
  const want = [...Array.from({ length: 7 }, (_, i) => `old${i + 1}`), 'new8', 'new9', 'new10', 'new11', 'new12'];

  const lost = formatToken(ps[9]); // EPOCH:10:ENTRY, as a process would have stored it
  const goSub = await go(r, prefix, ['sub', 'lost', '--from', lost, '--json', '--count', '12']);
  assert.equal(goSub.code, 0, goSub.stderr);
  const goLines = goSub.stdout.trim().split('\n').map((l) => JSON.parse(l));
  const got: Event[] = [];
  const sub = await c.subscribe('lost', lost, (ev) => {
    got.push(ev);
  });
  assert.deepEqual(sub.start, ps[9]);
  await waitFor('the reset and 12 messages', () => got.length >= 13);
  await sleep(100); // nothing more may come
  await sub.close();
  assert.equal(got.length, 13);
  assert.deepEqual(got[0].reset, { reason: 'rewound', from: 1, to: 10, oldEpoch: ps[0].epoch, newEpoch: ps[0].epoch });
  const gr = goLines[0].reset;
  assert.deepEqual([gr.reason, gr.from, gr.to], ['rewound', 1, 10]);
  assert.equal(goLines.length, 13);
  for (let i = 0; i < 13; i++) {
    assert.equal(got[i].pos, goLines[i].pos, `event ${i}`);
    assert.equal(got[i].position.entry, goLines[i].entry, `the entry of event ${i}`);
    if (i > 0) assert.deepEqual([got[i].data.toString(), goLines[i].data], [want[i - 1], want[i - 1]]);
  }

  // A position the new primary still holds resumes without a reset on both sides.
  const kept = formatToken(ps[6]);
  const goKept = await go(r, prefix, ['sub', 'lost', '--from', kept, '--json', '--count', '5']);
  assert.equal(goKept.code, 0, goKept.stderr);
  const nodeKept: Event[] = [];
  const s2 = await c.subscribe('lost', kept, (ev) => {
    nodeKept.push(ev);
  });
  await waitFor('8..12', () => nodeKept.length >= 5);
  await sleep(100);
  await s2.close();
  assert.deepEqual(nodeKept.map((e) => e.pos), goKept.stdout.trim().split('\n').map((l) => JSON.parse(l).pos));
  assert.deepEqual(nodeKept.map((e) => e.data.toString()), want.slice(7));
});

test('a mark of where a history parted, left by a Go or a Node subscriber, is heeded by a bare EPOCH:SEQ resume on both sides', { timeout: 60000 }, async () => {
  const prefix = uniquePrefix('marked');
  const c = client(prefix, { idleCheck: 100 });
  const want = ['r:8-10', ...[8, 9, 10, 11, 12].map((i) => `m:${i}:new${i}`)];
  /** fail publishes old1..old10, rolls the log back to 7 (a failover) and publishes new8..new12. */
  const fail = async (name: string, watching: () => boolean): Promise<string> => {
    let epoch = '';
    for (let i = 1; i <= 10; i++) epoch = (await c.publish(name, `old${i}`)).epoch;
    await waitFor(`the subscriber of ${name} to deliver old1..old10`, watching);
    await rollback(c, name, 7);
    for (let i = 8; i <= 12; i++) await c.publish(name, `new${i}`);
    return epoch;
  };
  const marked = async (name: string, epoch: string) =>
    waitFor(`the mark on ${name}`, async () => new RegExp(`^${epoch} 8 [0-9]+$`).test((await c.redis.hget(c.keys(name).meta, 'parted')) ?? ''));
  const nodeResume = async (name: string, from: string): Promise<string[]> => {
    const got: Event[] = [];
    const sub = await c.subscribe(name, from, (ev) => {
      got.push(ev);
    });
    await waitFor('the reset and new8..new12', () => got.length >= 6);
    await sleep(100); // nothing more may come
    await sub.close();
    return got.map((e) => (e.reset ? `r:${e.reset.from}-${e.reset.to}@${e.pos}` : `m:${e.position.seq}:${e.data}`));
  };
  const goResume = async (name: string, from: string): Promise<string[]> => {
    const res = await go(r, prefix, ['sub', name, '--from', from, '--json', '--count', '5']); // resets do not count
    assert.equal(res.code, 0, res.stderr);
    return res.stdout.trim().split('\n').map((l) => JSON.parse(l)).map((l) => (l.reset ? `r:${l.reset.from}-${l.reset.to}@${l.pos}` : `m:${l.seq}:${l.data}`));
  };

  // The Go subscriber finds the rewind and leaves the mark; a bare resume heeds it on both sides.
  const goSub = new GoStream(r, prefix, ['sub', 'by-go', '--from', '0', '--json']);
  await goSub.started();
  const e1 = await fail('by-go', () => goSub.json().length >= 10);
  await waitFor('the Go subscriber: the reset 8..10 and new8..new12', () => goSub.json().length >= 16);
  await marked('by-go', e1);
  goSub.kill();
  await goSub.done;
  assert.deepEqual(goSub.json()[10].reset, { reason: 'rewound', from: 8, to: 10, old_epoch: e1, new_epoch: e1 });
  const w1 = [`${want[0]}@${e1}:7`, ...want.slice(1)];
  assert.deepEqual(await nodeResume('by-go', `${e1}:10`), w1, 'Node heeds the mark Go left');
  assert.deepEqual(await goResume('by-go', `${e1}:10`), w1, 'Go heeds it too');

  // The Node subscriber finds the rewind and leaves the mark; the Go resume heeds it.
  const seen: Event[] = [];
  const nodeSub = await c.subscribe('by-node', 'start', (ev) => {
    seen.push(ev);
  });
  const e2 = await fail('by-node', () => seen.length >= 10);
  await waitFor('the Node subscriber: the reset 8..10 and new8..new12', () => seen.length >= 16);
  await marked('by-node', e2);
  await nodeSub.close();
  assert.deepEqual(seen[10].reset, { reason: 'rewound', from: 8, to: 10, oldEpoch: e2, newEpoch: e2 });
  const w2 = [`${want[0]}@${e2}:7`, ...want.slice(1)];
  assert.deepEqual(await goResume('by-node', `${e2}:10`), w2, 'Go heeds the mark Node left');
  assert.deepEqual(await nodeResume('by-node', `${e2}:10`), w2);
});

test('a start after a bare seq above the head is a rewound reset on both sides; kinds are enforced across languages', { timeout: 60000 }, async () => {
  const prefix = uniquePrefix('bare');
  const c = client(prefix);
  for (let i = 1; i <= 10; i++) await c.publish('short', `m${i}`);
  const goSub = await go(r, prefix, ['sub', 'short', '--from', '50', '--json', '--count', '10']);
  assert.equal(goSub.code, 0, goSub.stderr);
  const goLines = goSub.stdout.trim().split('\n').map((l) => JSON.parse(l));
  const got: Event[] = [];
  const sub = await c.subscribe('short', '50', (ev) => {
    got.push(ev);
  });
  await waitFor('the reset and 10 messages', () => got.length >= 11);
  await sub.close();
  assert.equal(goLines[0].reset.reason, 'rewound');
  assert.deepEqual([got[0].reset!.reason, got[0].reset!.from, got[0].reset!.to], ['rewound', goLines[0].reset.from, goLines[0].reset.to]);
  assert.deepEqual([got[0].reset!.from, got[0].reset!.to], [1, 50]);
  assert.equal(got[0].pos, goLines[0].pos);
  for (let i = 1; i <= 10; i++) assert.equal(got[i].pos, goLines[i].pos);

  // Kinds: a Node channel is no map for Go, a Go map no channel for Node.
  const set = await go(r, prefix, ['set', 'short', 'k', 'v']);
  assert.equal(set.code, 1);
  assert.match(set.stderr, /"short" is a channel, not a map/);
  assert.equal((await go(r, prefix, ['set', 'gomap', 'k', 'v'])).code, 0);
  await assert.rejects(c.publish('gomap', 'x'), (e) => e instanceof KindError && e.kind === 'map' && e.want === 'channel');
  await assert.rejects(c.subscribe('gomap', 'now', () => {}), (e) => e instanceof KindError && e.kind === 'map');
  const m = c.openMap('short', { verifyEvery: -1 });
  await assert.rejects(m.ready(), (e) => e instanceof KindError && e.kind === 'channel' && e.want === 'map');
  await m.close();
  const pub = await go(r, prefix, ['pub', 'gomap', 'x']);
  assert.equal(pub.code, 1);
  assert.match(pub.stderr, /"gomap" is a map, not a channel/);
});

test('an epoch change (redis-server restarted without persistence) reaches Node subscribers the way it reaches Go ones', { timeout: 60000 }, async () => {
  // A server of its own: the restart loses every key.
  const own = await RedisServer.start();
  try {
    const prefix = uniquePrefix('epoch');
    const c = newClient(own, prefix);
    clients.push(c);
    const before = await c.publishBatch('life', ['one', 'two', 'three']);
    const got: Event[] = [];
    const sub = await c.subscribe('life', 'now', (ev) => {
      got.push(ev);
    });
    const m = c.openMap('life-map', { codec: codecs.utf8, verifyEvery: -1 });
    await m.ready();
    await m.set('k', 'before');
    const goSub = new GoStream(own, prefix, ['sub', 'life', '--from', formatPosition({ epoch: before.epoch, seq: 1 }), '--json', '--count', '5']); // resets do not count
    await goSub.started();
    await waitFor('the Go subscriber to deliver 2 and 3', () => goSub.json().length >= 2);
    await waitFor('the Node pub/sub connection', () => c.pubsubConnected);

    await own.restart();
    // Both subscribers reconnect and see either the empty log or the new epoch: the protocol
    // allows both resets (new epoch empty, or known), depending on when each catches up.
    const after = await go(own, prefix, ['pub', 'life'], 'four\nfive\nsix\n');
    assert.equal(after.code, 0, after.stderr);
    const newEpoch = (await c.head('life')).epoch;
    assert.notEqual(newEpoch, before.epoch);
    const res = await goSub.done;
    assert.equal(res.code, 0, res.stderr);
    const goLines = goSub.json();
    await waitFor('the Node reset and the 3 messages of the new epoch', () => got.length >= 4);
    await sub.close();

    const check = (reset: { reason: unknown; from: unknown; to: unknown; oldEpoch: unknown; newEpoch: unknown }, pos: unknown) => {
      assert.equal(reset.reason, 'epoch-changed');
      assert.equal(reset.from, 4);
      assert.equal(reset.to, null);
      assert.equal(reset.oldEpoch, before.epoch);
      assert.ok(reset.newEpoch === '' || reset.newEpoch === newEpoch, `new epoch ${reset.newEpoch}`);
      assert.equal(pos, reset.newEpoch === '' ? '0' : `${newEpoch}:0`);
    };
    const gr = goLines[2].reset as Record<string, unknown>;
    check({ reason: gr.reason, from: gr.from, to: gr.to, oldEpoch: gr.old_epoch, newEpoch: gr.new_epoch ?? '' }, goLines[2].pos);
    check(got[0].reset!, got[0].pos);
    assert.equal(goLines.length, 6, 'two, three, the reset, four, five, six');
    assert.deepEqual(goLines.slice(3).map((l) => [l.pos, l.data]), [[`${newEpoch}:1`, 'four'], [`${newEpoch}:2`, 'five'], [`${newEpoch}:3`, 'six']]);
    assert.deepEqual(got.slice(1, 4).map((e) => [e.pos, e.data.toString()]), [[`${newEpoch}:1`, 'four'], [`${newEpoch}:2`, 'five'], [`${newEpoch}:3`, 'six']]);

    // The map's replica reloads by itself: Redis has nothing; a Go write reaches it; digests agree.
    assert.equal((await go(own, prefix, ['set', 'life-map', 'k', 'after'])).code, 0);
    await waitFor('the replica to reload and apply the Go write', () => m.isReady && m.get('k')?.value === 'after');
    assert.equal(m.stats.resnapshots >= 1, true);
    assert.equal(m.size, 1);
    assert.equal((await m.verify()).match, true);
    const chk = await go(own, prefix, ['check', 'life-map']);
    assert.equal(chk.code, 0, chk.stdout + chk.stderr);
    await m.close();
    await c.close();
  } finally {
    await own.stop();
  }
});
