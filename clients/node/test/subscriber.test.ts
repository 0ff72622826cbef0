// The subscriber algorithm (PROTOCOL.md section 5) against a log held in memory: gap fill,
// trims, epoch changes, failovers that rewind the log, bare seqs, idle head checks and
// overflows, each with the exact events a subscriber must deliver.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Envelope, Event, silentLogger } from '../src';
import { Fetched, Start, Subscriber } from '../src/subscriber';
import { newStats } from '../src/stats';

/** FakeLog behaves as fetch.lua does over a log of entries. */
class FakeLog {
  epoch = 'e1';
  head = 0;
  tip = '';
  entries: Envelope[] = [];

  append(...msgs: string[]): Envelope {
    const env: Envelope = { epoch: this.epoch, first: this.head + 1, time: 1, id: randomBytes(4).toString('hex'), prev: this.tip, data: msgs.map((m) => Buffer.from(m)) };
    this.entries.push(env);
    this.head += msgs.length;
    this.tip = env.id;
    return env;
  }

  /** failover keeps only the entries that end at or below seq: what a replica that lagged holds. */
  failover(seq: number): void {
    this.entries = this.entries.filter((e) => e.first + e.data.length - 1 <= seq);
    this.head = seq;
    this.tip = this.entries.length ? this.entries[this.entries.length - 1].id : '';
  }

  fetch(from: number, count: number): Fetched {
    if (this.epoch === '') return { epoch: '', head: 0, tip: '', entries: [] };
    const out: Fetched = { epoch: this.epoch, head: this.head, tip: this.tip, entries: [] };
    if (count === 0) return out;
    let i = this.entries.length - 1;
    while (i > 0 && this.entries[i].first > from) i--;
    if (i < 0) i = 0;
    out.entries = this.entries.slice(i, i + count);
    return out;
  }
}

interface Harness {
  log: FakeLog;
  sub: Subscriber;
  events: Event[];
  reconnects: number;
  stats: ReturnType<typeof newStats>;
  stop(): Promise<void>;
  until(what: string, cond: () => boolean): Promise<void>;
  /** texts describes the events: "seq:data" or "reset reason from-to after pos". */
  texts(): string[];
}

function harness(log: FakeLog, start: Start, o: { bufferSize?: number; fetchCount?: number; block?: () => Promise<void> } = {}): Harness {
  const stats = newStats();
  const events: Event[] = [];
  const h = { log, events, reconnects: 0, stats } as Harness;
  const sub = new Subscriber({
    fetch: async (from, count) => log.fetch(from, count),
    deliver: async (ev) => {
      events.push(ev);
      if (o.block) await o.block();
    },
    reconnect: () => h.reconnects++,
    stats,
    logger: silentLogger,
    name: 'test',
    fetchCount: o.fetchCount ?? 3,
    bufferSize: o.bufferSize ?? 16,
    rewindMemory: 4,
  });
  h.sub = sub;
  const ctl = new AbortController();
  const ran = sub.run(start, ctl.signal).catch((e) => e);
  h.stop = async () => {
    ctl.abort();
    await ran;
  };
  h.until = async (what, cond) => {
    for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setImmediate(r));
    assert.ok(cond(), `waited for ${what}; got ${JSON.stringify(h.texts())}`);
  };
  h.texts = () =>
    events.map((e) => (e.reset ? `reset ${e.reset.reason} ${e.reset.from}-${e.reset.to ?? 'open'} after ${e.pos}` : `${e.position.seq}:${e.data}`));
  return h;
}

const seqs = (from: number, to: number, data: (i: number) => string) => Array.from({ length: to - from + 1 }, (_, i) => `${from + i}:${data(from + i)}`);

test('catch up from the log, then live envelopes; duplicates ignored; a hole is filled from the log', { timeout: 10000 }, async () => {
  const log = new FakeLog();
  for (let i = 1; i <= 7; i++) log.append(`m${i}`);
  const h = harness(log, { epoch: 'e1', seq: 2, tip: '' });
  await h.until('3..7 from the log', () => h.events.length === 5);
  h.sub.offer(log.append('m8'));
  await h.until('8 live', () => h.events.length === 6);
  h.sub.offer(log.entries[7]); // a duplicate of 8
  log.append('m9');
  h.sub.offer(log.append('m10', 'm11')); // 9's pub/sub copy was lost
  await h.until('9..11', () => h.events.length === 9);
  assert.deepEqual(h.texts(), seqs(3, 11, (i) => `m${i}`));
  assert.equal(h.stats.gapsFilled, 1);
  assert.equal(h.stats.duplicates, 1);
  await h.stop();
});

test('trimmed: the first entry the log still holds starts above next; its reset continues after the last trimmed seq', { timeout: 10000 }, async () => {
  const log = new FakeLog();
  for (let i = 1; i <= 10; i++) log.append(`m${i}`);
  log.entries = log.entries.slice(5); // retention dropped 1..5
  const h = harness(log, { epoch: 'e1', seq: 2, tip: '' });
  await h.until('the reset and 6..10', () => h.events.length === 6);
  assert.deepEqual(h.texts(), ['reset trimmed 3-5 after e1:5', ...seqs(6, 10, (i) => `m${i}`)]);
  await h.stop();
});

test('trimmed: no message at or above next while the head is at or above it (the log holds only older entries)', { timeout: 10000 }, async () => {
  const log = new FakeLog();
  for (let i = 1; i <= 10; i++) log.append(`m${i}`);
  log.entries = log.entries.slice(0, 5); // the entries holding 6..10 are gone, the head is still 10
  const h = harness(log, { epoch: 'e1', seq: 5, tip: '' });
  await h.until('the reset', () => h.events.length === 1);
  assert.deepEqual(h.texts(), ['reset trimmed 6-10 after e1:10']);
  h.sub.offer(log.append('m11'));
  await h.until('11', () => h.events.length === 2);
  assert.equal(h.texts()[1], '11:m11');
  await h.stop();
});

test('epoch-changed: the log is gone (open range, continuing after 0), then a new epoch begins from seq 1', { timeout: 10000 }, async () => {
  const log = new FakeLog();
  log.append('a', 'b', 'c');
  const h = harness(log, { epoch: 'e1', seq: 1, tip: '' });
  await h.until('2, 3', () => h.events.length === 2);
  log.epoch = '';
  log.entries = [];
  log.head = 0;
  log.tip = '';
  h.sub.askResync();
  await h.until('the reset', () => h.events.length === 3);
  log.epoch = 'e2';
  h.sub.offer(log.append('x'));
  await h.until('x', () => h.events.length === 4);
  assert.deepEqual(h.texts(), ['2:b', '3:c', 'reset epoch-changed 4-open after 0', '1:x']);
  assert.deepEqual(h.events[2].reset, { reason: 'epoch-changed', from: 4, to: null, oldEpoch: 'e1', newEpoch: '' });
  await h.stop();
});

test('epoch-changed: another epoch in the log (open range, continuing after NEW:0)', { timeout: 10000 }, async () => {
  const log = new FakeLog();
  log.append('a');
  const h = harness(log, { epoch: 'e1', seq: 0, tip: '' });
  await h.until('a', () => h.events.length === 1);
  log.epoch = 'e2';
  log.entries = [];
  log.head = 0;
  log.tip = '';
  const env = log.append('x', 'y');
  h.sub.offer(env); // another epoch: the log decides
  await h.until('the reset, x, y', () => h.events.length === 4);
  assert.deepEqual(h.texts(), ['1:a', 'reset epoch-changed 2-open after e2:0', '1:x', '2:y']);
  assert.equal(h.events[1].reset!.newEpoch, 'e2');
  await h.stop();
});

test('rewound: after a failover that lost acknowledged entries, the entry ids show where the log parted', { timeout: 10000 }, async () => {
  const log = new FakeLog();
  for (let i = 1; i <= 10; i += 2) log.append(`m${i}`, `m${i + 1}`);
  const h = harness(log, { epoch: 'e1', seq: 0, tip: '' });
  await h.until('1..10', () => h.events.length === 10);
  log.failover(6); // the new primary has 1..6; 7..10 are lost
  log.append('n7', 'n8');
  log.append('n9', 'n10');
  h.sub.offer(log.append('n11', 'n12')); // same epoch, seq 11 = next: only the chain tells
  await h.until('the reset and 7..12 of the new history', () => h.events.length === 17);
  assert.deepEqual(h.texts().slice(10), ['reset rewound 7-10 after e1:6', '7:n7', '8:n8', '9:n9', '10:n10', '11:n11', '12:n12']);
  assert.equal(h.stats.rewinds, 1);
  await h.stop();
});

test('rewound: the head went back below what was delivered (an idle head check finds it)', { timeout: 10000 }, async () => {
  const log = new FakeLog();
  for (let i = 1; i <= 10; i += 2) log.append(`m${i}`, `m${i + 1}`);
  const h = harness(log, { epoch: 'e1', seq: 0, tip: '' });
  await h.until('1..10', () => h.events.length === 10);
  log.failover(8);
  h.sub.offerHead(log.fetch(1, 0));
  await h.until('the reset', () => h.events.length === 11);
  assert.equal(h.texts()[10], 'reset rewound 9-10 after e1:8');
  assert.equal(h.reconnects, 0, 'a rewind is not a silent connection');
  h.sub.offer(log.append('n9'));
  await h.until('the new 9', () => h.events.length === 12);
  assert.equal(h.texts()[11], '9:n9');
  await h.stop();
});

test('a live duplicate that is not the entry delivered at its seq means the log was rewound', { timeout: 10000 }, async () => {
  const log = new FakeLog();
  log.append('a', 'b');
  log.append('c', 'd');
  const h = harness(log, { epoch: 'e1', seq: 0, tip: '' });
  await h.until('1..4', () => h.events.length === 4);
  log.failover(2);
  const other = log.append('C', 'D'); // seqs 3-4 again, another entry
  h.sub.offer(other);
  await h.until('the reset and the new 3, 4', () => h.events.length === 7);
  assert.deepEqual(h.texts().slice(4), ['reset rewound 3-4 after e1:2', '3:C', '4:D']);
  await h.stop();
});

test('a start after a bare seq: resolved by the first catch-up; above the head it is a rewound reset from 1', { timeout: 10000 }, async (t) => {
  await t.test('within the history: adopt its epoch', async () => {
    const log = new FakeLog();
    log.append('a', 'b', 'c');
    const h = harness(log, { epoch: '', seq: 1, tip: '' });
    await h.until('2, 3', () => h.events.length === 2);
    assert.deepEqual(h.texts(), ['2:b', '3:c']);
    assert.equal(h.events[0].pos, 'e1:2');
    await h.stop();
  });
  await t.test('above the head', async () => {
    const log = new FakeLog();
    log.append('a', 'b', 'c');
    const h = harness(log, { epoch: '', seq: 50, tip: '' });
    await h.until('the reset, 1..3', () => h.events.length === 4);
    assert.deepEqual(h.texts(), ['reset rewound 1-50 after e1:0', '1:a', '2:b', '3:c']);
    await h.stop();
  });
  await t.test('a channel without history', async () => {
    const log = new FakeLog();
    log.epoch = '';
    const h = harness(log, { epoch: '', seq: 50, tip: '' });
    await h.until('the reset', () => h.events.length === 1);
    assert.deepEqual(h.texts(), ['reset rewound 1-50 after 0']);
    log.epoch = 'e9';
    h.sub.offer(log.append('x'));
    await h.until('x', () => h.events.length === 2);
    assert.equal(h.events[1].pos, 'e9:1');
    await h.stop();
  });
  await t.test('a start after seq 0 of no epoch is everything the log holds', async () => {
    const log = new FakeLog();
    log.append('a');
    const h = harness(log, { epoch: '', seq: 0, tip: '' });
    await h.until('a', () => h.events.length === 1);
    assert.deepEqual(h.texts(), ['1:a']);
    await h.stop();
  });
});

test('idle head checks: all delivered confirms; a lost tail is caught up; twice in a row replaces the pub/sub connection', { timeout: 10000 }, async () => {
  const log = new FakeLog();
  log.append('a');
  const h = harness(log, { epoch: 'e1', seq: 0, tip: '' });
  await h.until('a', () => h.events.length === 1);
  h.sub.confirmed = 0;
  h.sub.offerHead(log.fetch(1, 0));
  await h.until('a confirmation', () => h.sub.confirmed > 0);
  log.append('b'); // its pub/sub copy is lost
  h.sub.offerHead(log.fetch(1, 0));
  await h.until('b', () => h.events.length === 2);
  assert.equal(h.reconnects, 0, 'once is a lost message');
  log.append('c');
  h.sub.offerHead(log.fetch(1, 0));
  await h.until('c', () => h.events.length === 3);
  assert.equal(h.reconnects, 1, 'twice in a row: the connection is silently broken');
  log.append('d');
  h.sub.offerHead(log.fetch(1, 0));
  await h.until('d', () => h.events.length === 4);
  h.sub.offer(log.append('e')); // a live envelope delivered in order ends the run
  await h.until('e', () => h.events.length === 5);
  log.append('f');
  h.sub.offerHead(log.fetch(1, 0));
  await h.until('f', () => h.events.length === 6);
  assert.equal(h.reconnects, 1, 'not in a row: a delivered live envelope came between');
  assert.equal(h.stats.tailLosses, 4);
  await h.stop();
});

test('a full live queue drops envelopes (counted) and catches up from the log: nothing lost, nothing twice', { timeout: 10000 }, async () => {
  const log = new FakeLog();
  let release!: () => void;
  let gate: Promise<void> | undefined = new Promise((r) => (release = r));
  const h = harness(log, { epoch: 'e1', seq: 0, tip: '' }, { bufferSize: 2, block: () => gate ?? Promise.resolve() });
  h.sub.offer(log.append('m1'));
  await h.until('1 in the handler', () => h.events.length === 1);
  for (let i = 2; i <= 8; i++) h.sub.offer(log.append(`m${i}`));
  gate = undefined;
  release();
  await h.until('1..8', () => h.events.length === 8);
  assert.deepEqual(h.texts(), seqs(1, 8, (i) => `m${i}`));
  assert.ok(h.stats.overflows >= 1);
  await h.stop();
});
