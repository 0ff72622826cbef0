// Replicated maps against a real redis-server: writes through write.lua, the replica, watch,
// verify at the same seq while writes continue, and self-repair.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { Change, Client, ConflictError, Digest, InvalidWriteError, NotFoundError, NotReadyError, Position, ReplicatedMap, WriteLostError, codecs, encodeEnvelope, encodeRecord, silentLogger } from '../src';
import { RedisServer, newClient, rollback, uniquePrefix, waitFor } from './helpers';

let r: RedisServer;
const clients: Client[] = [];
function client(prefix: string): Client {
  const c = newClient(r, prefix);
  clients.push(c);
  return c;
}

before(async () => {
  r = await RedisServer.start();
});

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await r?.stop();
});

test('set, get, delete, compare-and-set and atomic multi-key writes; read-your-writes', { timeout: 30000 }, async () => {
  const c = client(uniquePrefix('rw'));
  const m = c.openMap('prices', { codec: codecs.json, verifyEvery: -1 });
  assert.throws(() => m.get('x'), NotReadyError);
  await m.ready();
  const v1 = await m.set('sku-1', { cents: 999 });
  assert.deepEqual(m.get('sku-1'), { value: { cents: 999 }, version: v1 }, 'the replica has the write when set returns');
  await assert.rejects(m.compareAndSet('sku-1', { cents: 1 }, v1 + 5), (e) => e instanceof ConflictError && e.key === 'sku-1' && e.expected === v1 + 5 && e.actual === v1);
  await assert.rejects(m.compareAndSet('sku-1', { cents: 1 }, 0), ConflictError, '0: only if absent');
  const v2 = await m.compareAndSet('sku-1', { cents: 899 }, v1);
  const seq = await m.write([{ key: 'sku-2', value: { cents: 5 } }, { key: 'sku-3', value: { cents: 7 } }, { key: 'sku-1', delete: true, ifVersion: v2 }]);
  assert.equal(seq, v2 + 1, 'one write, one seq');
  assert.equal(m.get('sku-1'), undefined);
  assert.deepEqual(m.get('sku-3'), { value: { cents: 7 }, version: seq });
  await assert.rejects(
    m.write([{ key: 'sku-2', value: { cents: 6 } }, { key: 'sku-3', value: { cents: 8 }, ifVersion: 1 }]),
    ConflictError,
  );
  assert.deepEqual(m.get('sku-2')?.value, { cents: 5 }, 'a conflict writes nothing of the write');
  await assert.rejects(m.update('sku-9', { cents: 1 }), (e) => e instanceof ConflictError && e.expectedExists && e.actual === 0, 'mustExist on an absent key');
  const v3 = await m.update('sku-2', { cents: 6 });
  assert.deepEqual(m.get('sku-2'), { value: { cents: 6 }, version: v3 }, 'mustExist on a present key, whatever its version');
  await assert.rejects(m.write([{ key: 'a', value: 1, mustExist: true, ifVersion: 1 }]), InvalidWriteError);
  await assert.rejects(m.write([{ key: 'a', value: 1 }, { key: 'a', value: 2 }]), InvalidWriteError, 'a key at most once per write');
  await assert.rejects(m.write([]), InvalidWriteError);
  await assert.rejects(m.set('', 1), InvalidWriteError);
  await m.close();
});

test('deleting an absent key returns a not-found error and writes nothing; a delete among sets is left out', { timeout: 30000 }, async () => {
  const c = client(uniquePrefix('del'));
  const m = c.openMap('m', { codec: codecs.utf8, verifyEvery: -1 });
  await m.ready();
  await m.set('a', 'x');
  const head = await c.head('m');
  await assert.rejects(m.delete('nope'), (e) => e instanceof NotFoundError && e.keys[0] === 'nope');
  await assert.rejects(m.write([{ key: 'nope', delete: true }, { key: 'nope2', delete: true }]), NotFoundError);
  assert.deepEqual(await c.head('m'), head, 'nothing appended');
  const changes: Change<string>[] = [];
  const w = await m.watch('now');
  const seq = await m.write([{ key: 'b', value: 'y' }, { key: 'gone', delete: true }]);
  const it = (await w.next()).value as Change<string>;
  changes.push(it);
  await w.return!();
  assert.equal(seq, head.seq + 1);
  assert.deepEqual([changes[0].key, changes[0].value, changes[0].version, changes[0].oldVersion], ['b', 'y', seq, 0]);
  const rec = await c.fetch(c.keys('m'), 'map', seq, 1);
  assert.equal(rec.entries[0].data[0].toString(), `m1 1 s 0 1 1\nby`, 'the delete of an absent key is not in the record');
  await m.close();
});

test('two replicas converge while writes go on; verify compares at the same seq', { timeout: 30000 }, async () => {
  const c = client(uniquePrefix('conv'));
  const c2 = client(c.config.prefix);
  const a = c.openMap('shared', { codec: codecs.utf8, verifyEvery: -1 });
  await a.ready();
  const writes = (async () => {
    for (let i = 0; i < 300; i++) await a.write([{ key: `k${i % 37}`, value: `v${i}` }, ...(i % 5 === 0 ? [{ key: `k${(i + 1) % 37}`, delete: true }] : [])]).catch((e) => {
      if (!(e instanceof NotFoundError)) throw e;
    });
  })();
  await new Promise((res) => setTimeout(res, 30));
  const b = c2.openMap('shared', { codec: codecs.utf8, verifyEvery: -1 });
  await b.ready();
  const during = await b.verify(); // writes are still going on
  assert.equal(during.match, true, JSON.stringify(during));
  await writes;
  const head = await c.head('shared');
  await b.waitFor(head.seq);
  assert.equal(a.digest().digest, b.digest().digest);
  assert.deepEqual(a.keys().sort(), b.keys().sort());
  const v = await b.verify();
  assert.deepEqual([v.match, v.position.seq, v.replica, v.redis], [true, head.seq, b.digest().digest, b.digest().digest]);
  await a.close();
  await b.close();
});

test('a replica that differs from Redis at the same seq reloads by itself', { timeout: 30000 }, async () => {
  const c = client(uniquePrefix('repair'));
  const m = c.openMap('fix', { codec: codecs.utf8, verifyEvery: -1 });
  await m.ready();
  await m.set('a', '1');
  // A change that bypassed the channel: state and digest updated in Redis, nothing appended.
  const k = c.keys('fix');
  const [dx, dy, n] = (await c.redis.hmget(k.meta, 'dx', 'dy', 'n')).map(Number);
  const d = new Digest(dx, dy);
  const seq = (await c.head('fix')).seq;
  d.add('sneaky', seq);
  await c.redis.hset(k.state, 'sneaky', `${seq}:z`);
  await c.redis.hset(k.meta, 'dx', String(d.x), 'dy', String(d.y), 'n', String(n + 1));
  const v = await m.verify();
  assert.equal(v.match, false);
  assert.equal(v.redisKeys, 2);
  await waitFor('the reload', () => m.isReady && m.stats.resnapshots === 1);
  assert.equal(m.get('sneaky')?.value, 'z');
  assert.equal((await m.verify()).match, true);
  await m.close();
});

test('a message on a map\'s channel that is not a change record is skipped, and the replica still counts its seq', { timeout: 30000 }, async () => {
  const c = client(uniquePrefix('badrec'));
  const m = c.openMap('br', { codec: codecs.utf8, verifyEvery: -1 });
  await m.ready();
  await m.set('a', '1');
  // Appended by hand (write.lua never appends such a thing): an envelope whose message is no record.
  const k = c.keys('br');
  const [epoch, seqText, tip] = await c.redis.hmget(k.meta, 'epoch', 'seq', 'tip');
  const seq = Number(seqText) + 1;
  const env = encodeEnvelope({ epoch: epoch!, first: seq, time: Date.now(), id: 'bbbbbbbbbbbbbbbb', prev: tip!, data: [Buffer.from('not a record')] });
  await c.redis.xadd(k.log, `${seq}-0`, 'e', env, 't', String(Date.now()));
  await c.redis.hset(k.meta, 'seq', String(seq), 'tip', 'bbbbbbbbbbbbbbbb');
  await c.redis.publish(k.pubsub, env);
  await m.waitFor(seq);
  assert.equal(m.stats.badRecords, 1);
  assert.equal(m.position.seq, seq);
  assert.equal((await m.verify()).match, true, 'digests compare at that seq');
  const after = await m.set('b', '2');
  assert.equal(after, seq + 1);
  assert.equal(m.get('b')?.value, '2');
  void encodeRecord;
  await m.close();
});

test('watch from a position yields every change in order with its versions; reset on a trimmed log', { timeout: 30000 }, async () => {
  const c = client(uniquePrefix('watch'));
  const m = c.openMap('w', { codec: codecs.utf8, verifyEvery: -1 });
  await m.ready();
  const s1 = await m.set('a', '1');
  await m.write([{ key: 'b', value: '2' }, { key: 'a', value: '3' }]);
  const w = await m.watch({ epoch: m.position.epoch, seq: s1 - 1 });
  const got: string[] = [];
  for await (const ch of w) {
    got.push(`${ch.position.seq} ${ch.key}=${ch.value} v${ch.version} was v${ch.oldVersion}`);
    if (got.length === 3) break;
  }
  assert.deepEqual(got, ['1 a=1 v1 was v0', '2 b=2 v2 was v0', '2 a=3 v2 was v1']);
  await c.setRetention('w', { maxLen: 10, maxAge: 0 });
  for (let i = 0; i < 300; i++) await m.set(`k${i}`, 'v');
  const w2 = await m.watch({ epoch: m.position.epoch, seq: 1 });
  const first = (await w2.next()).value as Change<string>;
  await w2.return!();
  assert.equal(first.reset?.reason, 'trimmed');
  await m.close();
});

// A write returns once its replica holds that very write. After a failover that lost writes,
// the replica may stand past the write's seq on the lost history, where the same seq holds
// another write: the write waits for the replica to find out and reload, so that a get that
// follows sees the value written, not the lost one at the same version.
test('read-your-writes across a lost history: the write waits for the replica to hold that very write', { timeout: 30000 }, async () => {
  const prefix = uniquePrefix('lost');
  const cb = client(prefix);
  const b = cb.openMap('m', { codec: codecs.utf8, verifyEvery: -1 });
  // Replica a hears of the failover only from its own write: no idle check in the test's time.
  const ca = newClient(r, prefix, { idleCheck: 3_600_000 });
  clients.push(ca);
  const a = ca.openMap('m', { codec: codecs.utf8, verifyEvery: -1 });
  await Promise.all([a.ready(), b.ready()]);
  for (let i = 1; i <= 10; i++) await b.set(`k${i}`, `old${i}`);
  await a.waitFor(10);
  // The failover: a replica of Redis that had received seqs 1..7 only is the primary now.
  await rollback(cb, 'm', 7);
  await cb.redis.hdel(cb.keys('m').state, 'k8', 'k9', 'k10');

  const seq = await a.set('k8', 'new8');
  assert.equal(seq, 8, "the new primary's next seq");
  assert.deepEqual(a.get('k8'), { value: 'new8', version: 8 }, 'the replica holds the write when set returns');
  assert.equal(a.get('k9'), undefined, 'k9, lost by the failover, is gone from the replica');
  await a.close();
  await b.close();
});

// The wait of a write for its replica, step by step, on a replica with no Redis behind it: held
// at once; on the lost history, held once the replica has reloaded below the write and applied
// it; and lost, once the reloaded replica holds another write at its seq (a WriteLostError
// rather than a wait until the caller gives up).
test('the wait of a write for its replica: held, held after the reload, or lost', async () => {
  interface Internals {
    epoch: string;
    applied: number;
    isReadyNow: boolean;
    loadStarts: number;
    loadStart: number;
    recent: unknown[];
    remember(p: Position): void;
    notify(): void;
    awaitWrite(pos: Position, replied: number): Promise<void>;
  }
  // A client whose map never gets past asking the name's kind: the test sets the replica's state.
  const stub = {
    keys: (n: string) => ({ meta: `${n}:meta`, state: `${n}:state` }),
    signal: new AbortController().signal,
    kind: () => new Promise(() => {}),
    config: { logger: silentLogger },
  } as unknown as Client;
  const pos: Position = { epoch: 'e', seq: 8, entry: 'mine' };
  const replica = (id: string): Internals => {
    const m = new ReplicatedMap<string>(stub, 'm', { codec: codecs.utf8, verifyEvery: -1 }) as unknown as Internals;
    m.epoch = 'e';
    m.applied = 10;
    m.isReadyNow = true;
    m.loadStarts = 1;
    m.loadStart = 1;
    m.remember({ epoch: 'e', seq: 8, entry: id });
    return m;
  };
  const wait = (m: Internals) => {
    const w = { settled: false, err: undefined as unknown };
    const p = m.awaitWrite(pos, m.loadStarts).then(
      () => void (w.settled = true),
      (e) => void ((w.settled = true), (w.err = e)),
    );
    return { w, p };
  };
  const settled = async (w: { settled: boolean }) => {
    await new Promise((res) => setTimeout(res, 100));
    return w.settled;
  };
  const reload = (m: Internals) => {
    m.loadStarts++;
    m.recent = [];
    m.loadStart = m.loadStarts;
    m.applied = 7; // below the write
    m.notify();
  };

  let d = wait(replica('mine'));
  assert.equal(await settled(d.w), true, 'a replica holding the write: at once');
  assert.equal(d.w.err, undefined);

  let m = replica('lost-history');
  d = wait(m);
  assert.equal(await settled(d.w), false, 'returned while the replica held another write at the seq, on a history it had not reloaded');
  reload(m); // then the new primary's 8 is the write
  m.applied = 10;
  m.remember(pos);
  m.notify();
  assert.equal(await settled(d.w), true, 'after the reload');
  assert.equal(d.w.err, undefined);

  m = replica('lost-history');
  d = wait(m);
  reload(m);
  m.applied = 10;
  m.remember({ epoch: 'e', seq: 8, entry: 'another' });
  m.notify();
  assert.equal(await settled(d.w), true, 'the reloaded replica holds another write at the seq');
  assert.ok(d.w.err instanceof WriteLostError && d.w.err.seq === 8, String(d.w.err));
});

// A replica that has reloaded past a write's seq has no record of which write it applied there;
// the write's wait asks the log in Redis: held if the log's entry at that seq is the write's,
// lost if it is another write's, or if Redis lost the map's history since.
test('the wait of a write asks the log when the replica reloaded past it', { timeout: 30000 }, async () => {
  interface Internals {
    loadStarts: number;
    verdict(pos: Position, replied: number): string;
    awaitWrite(pos: Position, replied: number): Promise<void>;
  }
  const prefix = uniquePrefix('ask');
  const ca = client(prefix);
  const cb = client(prefix);
  const a = ca.openMap('m', { codec: codecs.utf8, verifyEvery: -1 });
  const b = cb.openMap('m', { codec: codecs.utf8, verifyEvery: -1 });
  const ai = a as unknown as Internals;
  await Promise.all([a.ready(), b.ready()]);
  // written sets key on a and returns the write's position (with its entry) and the snapshot
  // reads begun when its reply came, as write hands them to its wait.
  const written = async (key: string) => {
    const seq = await a.set(key, 'mine');
    const pos = a.position;
    assert.equal(pos.seq, seq);
    return { pos, replied: ai.loadStarts };
  };
  // reloadPast has a's replica load a snapshot at seq or later, which records no write.
  const reloadPast = async (seq: number) => {
    await a.waitFor(seq);
    const n = a.stats.snapshots;
    a.reload();
    await waitFor('a reload past the write', () => a.stats.snapshots > n && a.isReady && a.position.seq >= seq, 20000);
  };
  const asked = (w: { pos: Position; replied: number }) => {
    assert.equal(ai.verdict(w.pos, w.replied), 'ask', 'the replica, reloaded past the write, asks the log');
    return ai.awaitWrite(w.pos, w.replied);
  };

  for (let i = 1; i <= 7; i++) await b.set(`k${i}`, 'old');
  const mine = await written('k8');
  assert.equal(mine.pos.seq, 8);
  await rollback(cb, 'm', 7);
  await cb.redis.hdel(cb.keys('m').state, 'k8');
  await b.set('k8', 'other');
  await b.set('k9', 'other');
  await reloadPast(9);
  await assert.rejects(asked(mine), (e) => e instanceof WriteLostError && e.seq === 8, 'the log holds another write at the seq');

  const kept = await written('k10');
  await reloadPast(kept.pos.seq);
  await asked(kept);

  await cb.redis.flushall();
  await b.set('k1', 'fresh'); // a new epoch
  await waitFor('the replica in the new epoch', () => a.isReady && a.position.epoch !== '' && a.position.epoch !== kept.pos.epoch, 20000);
  await assert.rejects(ai.awaitWrite(kept.pos, kept.replied), (e) => e instanceof WriteLostError, 'Redis lost the map history after the write');
  await a.close();
  await b.close();
});

// verify() waits for the replica to reach Redis's seq; once answered, its wait leaves no
// listener behind on the map's signal (200 verifies used to leave 90 and a MaxListeners warning).
test('verify leaves no abort listener behind', { timeout: 30000 }, async () => {
  const c = client(uniquePrefix('verifyleak'));
  const m = c.openMap('v', { codec: codecs.utf8, verifyEvery: -1 });
  await m.ready();
  const signal = (m as unknown as { ctl: AbortController }).ctl.signal;
  const before = getEventListeners(signal, 'abort').length;
  let writing = true;
  const writer = (async () => {
    for (let i = 0; writing; i++) await m.set(`k${i % 20}`, String(i));
  })();
  for (let i = 0; i < 40; i++) assert.equal((await m.verify()).match, true);
  writing = false;
  await writer;
  assert.ok(getEventListeners(signal, 'abort').length <= before + 1, `${getEventListeners(signal, 'abort').length} abort listeners after 40 verifies, ${before} before`);
  await m.close();
});
