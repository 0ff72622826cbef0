// The subscriber algorithm (PROTOCOL.md section 5) against a log held in memory: gap fill,
// trims, epoch changes, failovers that rewind the log, bare seqs, idle head checks and
// overflows, each with the exact events a subscriber must deliver.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Envelope, Event, Position, formatToken, silentLogger } from '../src';
import { Fetched, Subscriber } from '../src/subscriber';
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

function harness(log: FakeLog, start: Position, o: { bufferSize?: number; fetchCount?: number; block?: () => Promise<void> } = {}): Harness {
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
  const h = harness(log, { epoch: 'e1', seq: 2 });
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
  const h = harness(log, { epoch: 'e1', seq: 2 });
  await h.until('the reset and 6..10', () => h.events.length === 6);
  assert.deepEqual(h.texts(), ['reset trimmed 3-5 after e1:5', ...seqs(6, 10, (i) => `m${i}`)]);
  await h.stop();
});

test('trimmed: no message at or above next while the head is at or above it (the log holds only older entries)', { timeout: 10000 }, async () => {
  const log = new FakeLog();
  for (let i = 1; i <= 10; i++) log.append(`m${i}`);
  log.entries = log.entries.slice(0, 5); // the entries holding 6..10 are gone, the head is still 10
  const h = harness(log, { epoch: 'e1', seq: 5 });
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
  const h = harness(log, { epoch: 'e1', seq: 1 });
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
  const h = harness(log, { epoch: 'e1', seq: 0 });
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
  const h = harness(log, { epoch: 'e1', seq: 0 });
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
  const h = harness(log, { epoch: 'e1', seq: 0 });
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
  const h = harness(log, { epoch: 'e1', seq: 0 });
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
    const h = harness(log, { epoch: '', seq: 1 });
    await h.until('2, 3', () => h.events.length === 2);
    assert.deepEqual(h.texts(), ['2:b', '3:c']);
    assert.equal(h.events[0].pos, 'e1:2');
    await h.stop();
  });
  await t.test('above the head', async () => {
    const log = new FakeLog();
    log.append('a', 'b', 'c');
    const h = harness(log, { epoch: '', seq: 50 });
    await h.until('the reset, 1..3', () => h.events.length === 4);
    assert.deepEqual(h.texts(), ['reset rewound 1-50 after e1:0', '1:a', '2:b', '3:c']);
    await h.stop();
  });
  await t.test('a channel without history', async () => {
    const log = new FakeLog();
    log.epoch = '';
    const h = harness(log, { epoch: '', seq: 50 });
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
    const h = harness(log, { epoch: '', seq: 0 });
    await h.until('a', () => h.events.length === 1);
    assert.deepEqual(h.texts(), ['1:a']);
    await h.stop();
  });
});

test('idle head checks: all delivered confirms; a lost tail is caught up; twice in a row replaces the pub/sub connection', { timeout: 10000 }, async () => {
  const log = new FakeLog();
  log.append('a');
  const h = harness(log, { epoch: 'e1', seq: 0 });
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
  const h = harness(log, { epoch: 'e1', seq: 0 }, { bufferSize: 2, block: () => gate ?? Promise.resolve() });
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

// ---- The machine: the subscriber driven step by step (catch-up, a live envelope, an idle head
// read) over a log whose entries are named, as in the Go client's channel/machine_test.go. Each
// case there has its twin here, with the same expected events.

/** MemLog is a channel's log as fetch.lua reads it; message seq holds the text "<seq>". */
class MemLog {
  entries: Envelope[] = []; // in seq order; the head is the last one's last seq unless trimmed to nothing
  head = 0;
  constructor(public epoch = 'E') {}

  /** add appends an entry of n messages named id. */
  add(n: number, id: string): Envelope {
    const prev = this.entries.length > 0 ? this.entries[this.entries.length - 1].id : '';
    const env: Envelope = { epoch: this.epoch, first: this.head + 1, time: 1, id, prev, data: Array.from({ length: n }, (_, i) => Buffer.from(String(this.head + 1 + i))) };
    this.entries.push(env);
    this.head += n;
    return env;
  }

  /** rollback drops the entries after seq to, as a failover to a lagging replica does. */
  rollback(to: number): void {
    while (this.entries.length > 0 && this.entries[this.entries.length - 1].first > to) this.entries.pop();
    this.head = to;
  }

  /** trim drops the entries wholly below seq from. */
  trim(from: number): void {
    while (this.entries.length > 0 && lastOf(this.entries[0]) < from) this.entries.shift();
  }

  tip(): string {
    const n = this.entries.length;
    return n === 0 || lastOf(this.entries[n - 1]) !== this.head ? '' : this.entries[n - 1].id;
  }

  /** fetch answers as fetch.lua: the entry holding from (or the newest before it) and on. */
  fetch(from: number, count: number): Fetched {
    const f: Fetched = { epoch: this.epoch, head: this.head, tip: this.tip(), entries: [] };
    if (this.epoch === '' || count === 0) return f;
    let start = 0;
    this.entries.forEach((e, i) => {
      if (e.first <= from) start = i;
    });
    f.entries = this.entries.slice(start, start + count);
    return f;
  }
}

const lastOf = (e: Envelope) => e.first + e.data.length - 1;

/** Machine records what the subscriber delivers as "m<seq>" and "r<reason>:<from>-<to|on>@<position token>". */
class Machine {
  readonly got: string[] = [];
  readonly events: Event[] = [];
  readonly sub: Subscriber;
  private readonly signal = new AbortController().signal;

  constructor(readonly log: MemLog, start: Position) {
    this.sub = new Subscriber({
      fetch: async (from, count) => log.fetch(from, count),
      deliver: (ev) => {
        this.events.push(ev);
        if (ev.reset) {
          this.got.push(`r${ev.reset.reason}:${ev.reset.from}-${ev.reset.to ?? 'on'}@${formatToken(ev.position)}`);
          return;
        }
        if (ev.data.toString() !== String(ev.position.seq)) this.got.push(`BAD m${ev.position.seq}=${ev.data}`);
        this.got.push(`m${ev.position.seq}`);
      },
      reconnect: () => {},
      stats: newStats(),
      logger: silentLogger,
      name: 'c',
      fetchCount: 2,
      bufferSize: 16,
      rewindMemory: 1024,
    });
    this.sub.start(start);
  }

  catchUp(): Promise<void> {
    return this.sub['catchUp'](this.signal);
  }

  live(env: Envelope): Promise<void> {
    return this.sub['onEnvelope'](env, this.signal);
  }

  idle(): Promise<void> {
    return this.sub['onHead'](this.log.fetch(0, 0), this.signal);
  }
}

const machineCases: [name: string, run: (l: MemLog) => Promise<Machine>, want: string][] = [
  // Rewinds within what was delivered: the reset's position carries the entry the histories share.
  [
    'rewound with new messages under the same seqs, heard live',
    async (l) => {
      for (const id of ['a', 'b', 'c', 'd']) l.add(1, id);
      const m = new Machine(l, { epoch: 'E', seq: 0 });
      await m.catchUp();
      l.rollback(2);
      await m.live(l.add(1, 'x')); // seq 3 again: not a duplicate
      l.add(1, 'y');
      await m.live(l.add(1, 'z'));
      return m;
    },
    'm1 m2 m3 m4 rrewound:3-4@E:2:b m3 m4 m5',
  ],
  [
    'rewound, found by the idle check at the same head',
    async (l) => {
      for (const id of ['a', 'b', 'c']) l.add(1, id);
      const m = new Machine(l, { epoch: 'E', seq: 0 });
      await m.catchUp();
      l.rollback(1);
      l.add(1, 'x');
      l.add(1, 'y'); // head 3 again, another tip; no pub/sub copy heard
      await m.idle();
      return m;
    },
    'm1 m2 m3 rrewound:2-3@E:1:a m2 m3',
  ],
  [
    'rewound, and the head passed the subscriber before it caught up',
    async (l) => {
      for (const id of ['a', 'b', 'c', 'd']) l.add(1, id);
      const m = new Machine(l, { epoch: 'E', seq: 0 });
      await m.catchUp();
      l.rollback(2);
      for (const id of ['x', 'y', 'z']) l.add(1, id); // seqs 3, 4, 5: the first one past it claims to follow another entry
      await m.catchUp(); // after a reconnect
      return m;
    },
    'm1 m2 m3 m4 rrewound:3-4@E:2:b m3 m4 m5',
  ],
  [
    'rewound below the head and nothing followed',
    async (l) => {
      for (const id of ['a', 'b', 'c']) l.add(1, id);
      const m = new Machine(l, { epoch: 'E', seq: 0 });
      await m.catchUp();
      l.rollback(1);
      await m.idle();
      await m.live(l.add(1, 'x'));
      return m;
    },
    'm1 m2 m3 rrewound:2-3@E:1:a m2',
  ],
  // Starts checked against the log: the anchor, the entry the start position names.
  [
    'from now, on a history a failover then lost below the start',
    async (l) => {
      for (const id of ['a', 'b', 'c', 'd', 'e']) l.add(1, id);
      const m = new Machine(l, { epoch: 'E', seq: 5, entry: 'e' }); // the head and tip, read now
      await m.live(l.add(1, 'f'));
      l.rollback(3); // the new primary had 1..3
      l.add(1, 'x');
      await m.live(l.add(1, 'y')); // published after the start: must be delivered
      return m;
    },
    'm6 rrewound:1-6@E:0 m1 m2 m3 m4 m5',
  ],
  [
    'from now, nothing delivered, the new head below the start',
    async (l) => {
      for (const id of ['a', 'b', 'c', 'd', 'e']) l.add(1, id);
      const m = new Machine(l, { epoch: 'E', seq: 5, entry: 'e' });
      l.rollback(3);
      l.add(1, 'x');
      await m.idle();
      return m;
    },
    'rrewound:1-5@E:0 m1 m2 m3 m4',
  ],
  [
    'a resume from an entry the log lost, the new head past it',
    async (l) => {
      for (const id of ['a', 'b', 'c', 'd', 'e']) l.add(1, id);
      l.rollback(3);
      for (const id of ['x', 'y', 'z']) l.add(1, id);
      const m = new Machine(l, { epoch: 'E', seq: 5, entry: 'e' }); // delivered before the failover
      await m.catchUp();
      return m;
    },
    'rrewound:1-5@E:0 m1 m2 m3 m4 m5 m6',
  ],
  [
    'a resume inside an entry the log still holds',
    async (l) => {
      l.add(4, 'a');
      const m = new Machine(l, { epoch: 'E', seq: 2, entry: 'a' });
      await m.catchUp();
      await m.live(l.add(1, 'b'));
      return m;
    },
    'm3 m4 m5',
  ],
  [
    'a resume inside an entry the log replaced',
    async (l) => {
      l.add(1, 'a');
      l.add(4, 'b');
      const m = new Machine(l, { epoch: 'E', seq: 3, entry: 'lost' });
      await m.catchUp();
      return m;
    },
    'rrewound:1-3@E:0 m1 m2 m3 m4 m5',
  ],
  [
    'a resume from a trimmed log whose entry was lost',
    async (l) => {
      for (const id of ['a', 'b', 'c', 'd', 'e']) l.add(1, id);
      l.trim(3);
      l.rollback(4);
      l.add(1, 'x');
      const m = new Machine(l, { epoch: 'E', seq: 5, entry: 'e' });
      await m.catchUp();
      return m;
    },
    'rrewound:3-5@E:2 m3 m4 m5',
  ],
  [
    'the start entry survived, what followed it did not',
    async (l) => {
      for (const id of ['a', 'b', 'c']) l.add(1, id);
      const m = new Machine(l, { epoch: 'E', seq: 3, entry: 'c' });
      await m.live(l.add(1, 'd'));
      await m.live(l.add(1, 'e'));
      l.rollback(3);
      l.add(1, 'x');
      await m.live(l.add(1, 'y'));
      return m;
    },
    'm4 m5 rrewound:4-5@E:3:c m4 m5',
  ],
];

test('the machine: rewinds and starts checked against the log by entry ids, step by step', { timeout: 10000 }, async (t) => {
  for (const [name, run, want] of machineCases) {
    await t.test(name, async () => {
      const m = await run(new MemLog());
      assert.equal(m.got.join(' '), want);
    });
  }
});

test('events carry the id of their log entry; a start after a position with an entry takes it as tip and anchor', { timeout: 10000 }, async () => {
  const l = new MemLog();
  l.add(2, 'a');
  l.add(1, 'b');
  const m = new Machine(l, { epoch: 'E', seq: 1, entry: 'a' });
  assert.deepEqual([m.sub.tip, m.sub.anchor, m.sub.position], ['a', { seq: 1, id: 'a' }, { epoch: 'E', seq: 1, entry: 'a' }]);
  await m.catchUp();
  assert.deepEqual(m.events.map((e) => [e.pos, e.position]), [['E:2', { epoch: 'E', seq: 2, entry: 'a' }], ['E:3', { epoch: 'E', seq: 3, entry: 'b' }]]);
  assert.deepEqual(m.sub.position, { epoch: 'E', seq: 3, entry: 'b' });
  const bare = new Machine(l, { epoch: 'E', seq: 1 }); // no entry: trusted, no anchor
  assert.deepEqual([bare.sub.tip, bare.sub.anchor], ['', { seq: 0, id: '' }]);
});
