// Channels against a real redis-server: the publishing protocol (tokens, low-water mark,
// defaults, retries), subscriptions (from now, iterator, junk, oversized envelopes, idle
// checks, a resume by seq alone after a marked rewind), kinds, errors, and a close() that
// leaves nothing open.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { AbortError, Client, ClosedError, EmptyBatchError, Event, InvalidNameError, PARTED_WINDOW_MS, TooLargeError, UnknownOutcomeError, encodeEnvelope, silentLogger } from '../src';
import { packMessages } from '../src/envelope';
import { scripts } from '../src/scripts';
import { RedisServer, freePort, newClient, rollback, uniquePrefix, waitFor } from './helpers';

let r: RedisServer;
const clients: Client[] = [];
function client(prefix: string, o = {}): Client {
  const c = newClient(r, prefix, o);
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

test('tokens run 1, 2, 3, … per producer and channel; every 16th call forgets the tokens below the low-water mark', { timeout: 30000 }, async () => {
  const prefix = uniquePrefix('tokens');
  const c = client(prefix);
  const k = c.keys('t');
  for (let i = 1; i <= 16; i++) await c.publish('t', `m${i}`);
  const members = await c.redis.zrange(k.idem, 0, -1, 'WITHSCORES');
  const scores = members.filter((_, i) => i % 2 === 1).map(Number);
  assert.deepEqual(scores, Array.from({ length: 16 }, (_, i) => i + 1), 'one token per call, 1..16, all remembered');
  const epoch = (await c.head('t')).epoch;
  assert.equal(members[0], `${epoch}:1`, 'member EPOCH:FIRST');
  await c.publish('t', 'm17'); // token 17: 17 mod 16 = 1 prunes below LOWWATER (17: nothing is in flight)
  assert.deepEqual(await c.redis.zrange(k.idem, 0, -1, 'WITHSCORES'), [`${epoch}:17`, '17']);
  const ttl = await c.redis.pttl(k.idem);
  assert.ok(ttl > 290_000 && ttl <= 300_000, `the set expires after IDEMTTL, 5 minutes by default (PTTL ${ttl})`);
  assert.deepEqual(await c.retention('t'), { maxLen: 1_000_000, maxAge: 0 }, 'default MAXLEN and MAXAGE stored by the first publish');
  assert.equal(await c.kind('t'), 'channel');
});

test('a repeated token is answered from the idempotency set, not appended twice', { timeout: 30000 }, async () => {
  const prefix = uniquePrefix('dup');
  const c = client(prefix);
  const k = c.keys('d');
  const argv = [k.pubsub, 'PUBLISH', 'aaaaaaaaaaaaaaaa', '1', '1', '300000', '0', '0', ...packMessages(['once'])];
  const a = (await scripts().publish.run(c.redis, [k.meta, k.log, k.idem], argv)) as Buffer[];
  const b = (await scripts().publish.run(c.redis, [k.meta, k.log, k.idem], argv)) as Buffer[];
  assert.deepEqual(a.map(String).slice(1), ['1', '0']);
  assert.deepEqual(b.map(String).slice(1), ['1', '1'], 'the repeat returns the first seq with "1"');
  assert.equal((await c.head('d')).seq, 1);
});

test('publishes are retried across killed connections with the same token: every message once, no seq skipped', { timeout: 30000 }, async () => {
  const prefix = uniquePrefix('retry');
  const c = client(prefix);
  const n = 3000;
  const done: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    done.push(c.publish('r', `m${i}`));
    if (i % 500 === 250) {
      await new Promise((res) => setTimeout(res, 2));
      await r.cli('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    }
  }
  const ps = (await Promise.all(done)) as { seq: number }[];
  assert.deepEqual(ps.map((p) => p.seq).sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i + 1));
  assert.equal((await c.head('r')).seq, n, 'nothing appended twice');
  assert.ok(c.cmdCloses >= 1, 'the connection was killed');
  const got: Event[] = [];
  const sub = await c.subscribe('r', 'start', (ev) => {
    got.push(ev);
  });
  await waitFor('the log', () => got.length === n);
  await sub.close();
  assert.deepEqual(new Set(got.map((e) => e.data.toString())).size, n);
});

test('from now: every message published after subscribe returns is delivered; start is the head read', { timeout: 30000 }, async () => {
  const prefix = uniquePrefix('now');
  const c = client(prefix);
  const p = client(prefix);
  await p.publish('n', 'before');
  for (let round = 0; round < 20; round++) {
    const got: Event[] = [];
    const sub = await c.subscribe('n', 'now', (ev) => {
      got.push(ev);
    });
    const pos = await p.publish('n', `after ${round}`);
    assert.equal(sub.start.seq, pos.seq - 1);
    await waitFor('the message published after subscribe returned', () => got.length === 1);
    assert.equal(got[0].data.toString(), `after ${round}`);
    await sub.close();
  }
});

test('the async iterator: in order, resumable from a pos, break closes the subscription', { timeout: 30000 }, async () => {
  const prefix = uniquePrefix('iter');
  const c = client(prefix);
  await c.publishBatch('it', ['a', 'b', 'c', 'd']);
  const stream = await c.events('it', 'start');
  const seen: string[] = [];
  for await (const ev of stream) {
    seen.push(`${ev.pos.split(':')[1]}:${ev.data}`);
    if (seen.length === 2) break;
  }
  assert.deepEqual(seen, ['1:a', '2:b']);
  const head = await c.head('it');
  const again = await c.events('it', `${head.epoch}:2`);
  const next = await again.next();
  assert.equal(next.value?.data.toString(), 'c');
  await again.close();
  assert.deepEqual(await again.next(), { value: undefined, done: true });
});

test('junk on the pub/sub channel is counted and ignored; an envelope over maxEnvelopeBytes is junk and comes from the log', { timeout: 30000 }, async () => {
  const prefix = uniquePrefix('junk');
  const small = { maxMessageBytes: 1000, maxBatchBytes: 1000, maxEnvelopeBytes: 1000 };
  const c = client(prefix, small);
  const p = client(prefix);
  const got: Event[] = [];
  const sub = await c.subscribe('j', 'now', (ev) => {
    got.push(ev);
  });
  await waitFor('the pub/sub connection', () => c.pubsubConnected);
  const k = c.keys('j');
  await p.publish('j', 'first');
  await waitFor('first', () => got.length === 1);
  const fromLog = c.stats.fromLog;
  await r.cli('PUBLISH', k.pubsub, 'not an envelope');
  await p.redis.publish(k.pubsub, encodeEnvelope({ epoch: 'e', first: 1, time: 0, id: 'x', prev: '', data: [] }).subarray(0, 20));
  await p.publish('j', 'x'.repeat(2000)); // an 8 MiB limit scaled down: this envelope is junk to c
  await waitFor('the big message, from the log', () => got.length === 2);
  assert.equal(got[1].data.length, 2000);
  assert.equal(c.stats.junk, 3);
  assert.ok(c.stats.fromLog > fromLog, 'it came from the log');
  await p.publish('j', 'after');
  await waitFor('after', () => got.length === 3);
  assert.deepEqual(got.map((e) => e.position.seq), [1, 2, 3]);
  await sub.close();
});

test('a lost tail is found by the idle check; twice in a row replaces the pub/sub connection', { timeout: 30000 }, async () => {
  const prefix = uniquePrefix('idle');
  const c = client(prefix, { idleCheck: 100 });
  const got: Event[] = [];
  const sub = await c.subscribe('quiet', 'now', (ev) => {
    got.push(ev);
  });
  await waitFor('the pub/sub connection', () => c.pubsubConnected);
  const k = c.keys('quiet');
  // Publish with the real script but announce on another pub/sub channel: the copy is "lost".
  const silent = async (msg: string, id: string) =>
    scripts().publish.run(c.redis, [k.meta, k.log, `${k.idem}x`], [`${k.pubsub}-elsewhere`, 'PUBLISH', id, '0', '0', '300000', '0', '0', ...packMessages([msg])]);
  await silent('lost 1', '1111111111111111');
  await waitFor('the lost message, found by an idle head check', () => got.length === 1, 3000);
  assert.equal(c.stats.reconnects, 0);
  await silent('lost 2', '2222222222222222');
  await waitFor('the second, and a new pub/sub connection', () => got.length === 2 && c.stats.reconnects === 1, 3000);
  assert.equal(c.stats.tailLosses, 2);
  assert.deepEqual(got.map((e) => e.data.toString()), ['lost 1', 'lost 2']);
  await sub.close();
});

test('errors: names, limits, empty batches, closed clients; close() ends subscriptions with a ClosedError', { timeout: 30000 }, async () => {
  const prefix = uniquePrefix('errors');
  const c = newClient(r, prefix, { maxMessageBytes: 10, maxBatchBytes: 20, maxBatchMessages: 3, maxEnvelopeBytes: 20 });
  await assert.rejects(c.publish('a{b', 'x'), InvalidNameError);
  await assert.rejects(c.publish('ok', 'x'.repeat(11)), TooLargeError);
  await assert.rejects(c.publishBatch('ok', ['1', '2', '3', '4']), TooLargeError);
  await assert.rejects(c.publishBatch('ok', ['x'.repeat(10), 'x'.repeat(10), 'x']), TooLargeError);
  await assert.rejects(c.publishBatch('ok', []), EmptyBatchError);
  assert.throws(() => new Client({ maxEnvelopeBytes: 1, url: r.url }), RangeError);
  const sub = await c.subscribe('ok', 'now', () => {});
  const stream = await c.events('ok', 'now');
  const pending = assert.rejects(stream.next(), (e) => e instanceof ClosedError && /client closed/.test(e.message));
  await c.close();
  assert.ok((await sub.done) instanceof ClosedError);
  await pending;
  await assert.rejects(c.publish('ok', 'x'), ClosedError);
  await c.close(); // idempotent
});

test('a handler that throws ends its subscription with that error', { timeout: 30000 }, async () => {
  const prefix = uniquePrefix('handler');
  const c = client(prefix);
  await c.publish('h', 'boom');
  const sub = await c.subscribe('h', 'start', () => {
    throw new Error('handler failed');
  });
  assert.equal((await sub.done).message, 'handler failed');
});

test('close() leaves no handle open: no socket, no timer', { timeout: 30000 }, async () => {
  const prefix = uniquePrefix('handles');
  const baseline = process.getActiveResourcesInfo().filter((x) => x !== 'TTYWrap');
  const c = newClient(r, prefix, { idleCheck: 50 });
  const m = c.openMap('hm', { verifyEvery: 100 });
  await m.ready();
  await m.set('k', Buffer.from('v'));
  const sub = await c.subscribe('hc', 'now', () => {});
  await c.publish('hc', 'x');
  await waitFor('the pub/sub connection', () => c.pubsubConnected);
  void sub;
  await c.close();
  await new Promise((res) => setTimeout(res, 50));
  const now = process.getActiveResourcesInfo().filter((x) => x !== 'TTYWrap');
  const count = (l: string[], k: string) => l.filter((x) => x === k).length;
  for (const kind of ['TCPSocketWrap', 'Timeout', 'TCPWRAP']) {
    assert.ok(count(now, kind) <= count(baseline, kind), `${kind}: ${JSON.stringify(now)} vs ${JSON.stringify(baseline)}`);
  }
});

test('LOWWATER: the least token whose call may still reach Redis; an in-doubt call holds it down for the idempotency window', { timeout: 30000 }, async () => {
  const c = client(uniquePrefix('low'), { idempotencyWindow: 1000 });
  const st = c.pubState('lw');
  assert.deepEqual(st.issue(), { token: 1, low: 1 }, 'nothing outstanding: the token itself');
  assert.deepEqual(st.issue(), { token: 2, low: 1 }, 'token 1 is in flight');
  st.settle(2, false);
  st.settle(1, true); // its connection failed: an attempt may still arrive
  assert.deepEqual(st.issue(), { token: 3, low: 1 });
  st.settle(3, false);
  await new Promise((res) => setTimeout(res, 1100));
  assert.deepEqual(st.issue(), { token: 4, low: 4 }, 'after the window, token 1 is forgotten');
});

test('a publish that cannot be confirmed within half the idempotency window fails with UnknownOutcomeError', { timeout: 30000 }, async () => {
  const nobody = await freePort(); // nothing listens there
  const c = new Client({ url: `redis://127.0.0.1:${nobody}`, idempotencyWindow: 1000, logger: silentLogger });
  const t0 = Date.now();
  await assert.rejects(c.publish('u', 'x'), UnknownOutcomeError);
  const took = Date.now() - t0;
  assert.ok(took >= 450 && took < 3000, `gave up after ${took} ms`);
  await c.close();
});

/** texts describes events as the Go chain tests do: "m:SEQ:DATA" for a message, "r:FROM-TO" for a rewound reset (":REASON" added for another). */
function texts(evs: Event[]): string[] {
  return evs.map((e) => {
    if (!e.reset) return `m:${e.position.seq}:${e.data}`;
    const r = `r:${e.reset.from}-${e.reset.to ?? 'on'}`;
    return e.reset.reason === 'rewound' ? r : `${r}:${e.reset.reason}`;
  });
}

const msgs = (from: number, to: number, prefix: string) => Array.from({ length: to - from + 1 }, (_, i) => `m:${from + i}:${prefix}${from + i}`);

// A client that delivered messages a failover then lost resumes by seq alone (EPOCH:SEQ, as an
// EventSource does with Last-Event-ID), from another process: nothing tells which history its
// seq came from. A subscription that found the rewind left a mark of where the histories part:
// the resume announces from there to its seq as rewound, and delivers the log from there (the
// Go client's TestBareResumeAfterAMarkedRewind).
test('a resume by seq alone after a marked rewind is announced as rewound from where the histories part', { timeout: 30000 }, async () => {
  const prefix = uniquePrefix('marked');
  const pub = client(prefix);
  const watcher = client(prefix, { idleCheck: 50 });
  const rec: Event[] = [];
  const watch = await watcher.subscribe('c', 'start', (ev) => {
    rec.push(ev);
  });
  const ps = [];
  for (let i = 1; i <= 10; i++) ps.push(await pub.publish('c', `old${i}`));
  const epoch = ps[0].epoch;
  await waitFor('old1..old10', () => rec.length >= 10);
  await rollback(pub, 'c', 7); // the new primary had 1..7
  for (let i = 8; i <= 12; i++) await pub.publish('c', `new${i}`);
  await waitFor('the watcher: 10, the reset 8..10, 8..12', () => rec.length >= 16);
  assert.deepEqual(texts(rec), [...msgs(1, 10, 'old'), 'r:8-10', ...msgs(8, 12, 'new')]);
  const k = pub.keys('c');
  await waitFor('the mark of where the histories part', async () => {
    const m = await pub.readParted(k).catch(() => undefined);
    return m?.epoch === epoch && m.seq === 8;
  });
  const mark = (await pub.readParted(k))!;
  assert.ok(Math.abs(Date.now() - mark.at) < 10_000, `marked with Redis's time: ${mark.at}`);
  assert.match((await pub.redis.hget(k.meta, 'parted')) ?? '', new RegExp(`^${epoch} 8 [0-9]+$`), 'EPOCH SEQ MS');
  await watch.close();

  const other = client(prefix, { idleCheck: 50 });
  const collect = async (from: string | { epoch: string; seq: number }, n: number): Promise<Event[]> => {
    const got: Event[] = [];
    const sub = await other.subscribe('c', from, (ev) => {
      got.push(ev);
    });
    await waitFor(`${n} events after ${JSON.stringify(from)}`, () => got.length >= n);
    await new Promise((res) => setTimeout(res, 200)); // nothing more may come
    await sub.close();
    return got;
  };
  const rewinds = other.stats.rewinds;
  const late = await collect({ epoch, seq: 10 }, 6); // what the client kept of old10
  assert.deepEqual(texts(late), ['r:8-10', ...msgs(8, 12, 'new')]);
  assert.deepEqual(late[0].reset, { reason: 'rewound', from: 8, to: 10, oldEpoch: epoch, newEpoch: epoch });
  assert.deepEqual(late[0].position, { epoch, seq: 7 }, 'the reset continues after (EPOCH, 7), with no entry');
  assert.equal(other.stats.rewinds, rewinds + 1);
  assert.deepEqual(texts(await collect(`${epoch}:12`, 6)), ['r:8-12', ...msgs(8, 12, 'new')], 'EPOCH:SEQ text, above the mark: the same');

  // A start below where the histories part is not concerned.
  assert.deepEqual(texts(await collect({ epoch, seq: 6 }, 6)), [...msgs(7, 7, 'old'), ...msgs(8, 12, 'new')]);
  // Nor one with the entry of a message the log still holds: the log checks it.
  const head = await pub.head('c');
  await pub.publish('c', 'new13');
  assert.deepEqual(texts(await collect(head, 1)), msgs(13, 13, 'new'));
  // mark.lua keeps the lowest seq of the current epoch, and writes nothing for another epoch.
  assert.equal(await scripts().mark.run(pub.redis, [k.meta], [epoch, '9']), 1);
  assert.equal((await pub.readParted(k))?.seq, 8);
  await scripts().mark.run(pub.redis, [k.meta], [epoch, '5']);
  assert.equal((await pub.readParted(k))?.seq, 5);
  assert.equal(await scripts().mark.run(pub.redis, [k.meta], ['0123456789abcdef', '3']), 0);
  assert.deepEqual([(await pub.readParted(k))?.epoch, (await pub.readParted(k))?.seq], [epoch, 5]);
  // A mark of another epoch, one older than PARTED_WINDOW_MS, or one that does not parse: trusted.
  for (const bad of [`0123456789abcdef 8 ${Date.now()}`, `${epoch} 8 ${Date.now() - PARTED_WINDOW_MS - 60_000}`, `${epoch} 8`, 'junk']) {
    await pub.redis.hset(k.meta, 'parted', bad);
    assert.deepEqual(texts(await collect({ epoch, seq: 10 }, 3)), [...msgs(11, 12, 'new'), 'm:13:new13'], `mark ${bad}`);
  }
});

// An abort says what became of the publish: while it still waited for its turn it was not
// sent, and nothing is appended; once its call was on its way, it may land (inFlight), as a
// cancelled context does in Go. A caller's bad message fails that caller alone, not the
// publishes grouped with it.
test('aborted publishes say whether they were in flight; a bad message fails its caller alone', { timeout: 30000 }, async () => {
  const c = client(uniquePrefix('abort'));
  await c.publish('a', 'first');
  await r.cli('CLIENT', 'PAUSE', '1000', 'ALL'); // Redis answers no client for a second
  const inFlight = new AbortController();
  const queued = new AbortController();
  const p1 = c.publish('a', 'in-flight', { signal: inFlight.signal });
  await new Promise((res) => setTimeout(res, 50));
  const p2 = c.publish('a', 'queued', { signal: queued.signal });
  const p3 = c.publish('a', 'good');
  const p4 = c.publish('a', 42 as unknown as string);
  inFlight.abort();
  queued.abort();
  await assert.rejects(p1, (e) => e instanceof AbortError && e.inFlight === true, 'the call in flight');
  await assert.rejects(p2, (e) => e instanceof AbortError && e.inFlight === false, 'the call still queued');
  await assert.rejects(p4, TypeError, 'a message that is not bytes');
  const good = await p3;
  const f = await c.fetch(c.keys('a'), '', 1, 100);
  const data = f.entries.flatMap((e) => e.data.map((d) => d.toString()));
  assert.deepEqual(data, ['first', 'in-flight', 'good'], 'the call in flight landed; the queued one did not');
  assert.equal(good.seq, 3);
});

// A publisher that is handed a seq it was given before, in the same epoch, counts it, logs it
// (a failover lost messages it had acknowledged), and marks where the history parted, found
// from the calls it remembers: here another publisher wrote 4 first on the new history, so
// the reused seq (5) is above where the histories part (4).
test('a seq handed out again is counted in stats.seqsReused, logged, and marked where the history parted', { timeout: 30000 }, async () => {
  const warnings: string[] = [];
  const prefix = uniquePrefix('reused');
  const c = client(prefix, { logger: { ...silentLogger, warn: (m: string) => warnings.push(m) } });
  for (let i = 1; i <= 5; i++) await c.publish('r', `m${i}`);
  const epoch = (await c.head('r')).epoch;
  await rollback(c, 'r', 3);
  await client(prefix).publish('r', 'other');
  assert.equal((await c.publish('r', 'again')).seq, 5);
  assert.equal(c.stats.seqsReused, 1);
  assert.ok(warnings.some((w) => w.includes('seq already given to another') && w.includes('seq 5') && w.includes('before 5')), warnings.join('\n'));
  await waitFor('the mark', async () => ((await c.redis.hget(c.keys('r').meta, 'parted')) ?? '').startsWith(`${epoch} 4 `));
});

// close() ends the calls waiting for Redis with a ClosedError, as it says.
test('calls in flight at close() fail with a ClosedError', { timeout: 30000 }, async () => {
  const c = newClient(r, uniquePrefix('closing'));
  await c.publish('h', 'x');
  await r.cli('CLIENT', 'PAUSE', '1000', 'ALL'); // Redis answers no client for a second
  const head = c.head('h');
  const sub = c.subscribe('h', 'now', () => {});
  await new Promise((res) => setTimeout(res, 50));
  await c.close();
  await assert.rejects(head, ClosedError, 'head');
  await assert.rejects(sub, ClosedError, "subscribe 'now'");
});

// After a long loss the publisher's mark stays close below where the histories part: older
// calls are remembered ever more sparsely, never none.
test("a publisher's mark after a long loss is close below where the histories part", { timeout: 30000 }, async () => {
  const c = client(uniquePrefix('longloss'));
  for (let i = 1; i <= 400; i++) await c.publish('l', `old${i}`);
  const epoch = (await c.head('l')).epoch;
  await rollback(c, 'l', 100);
  assert.equal((await c.publish('l', 'new101')).seq, 101);
  let d = 0;
  await waitFor('the mark', async () => {
    const [e, seq] = ((await c.redis.hget(c.keys('l').meta, 'parted')) ?? '').split(' ');
    d = Number(seq);
    return e === epoch && d > 0;
  });
  assert.ok(d <= 101 && d >= 90, `mark at ${d} after losing 101..400`);
});
