// The subscriber algorithm of PROTOCOL.md section 5, with no Redis in it: it reads the log
// through an injected fetch, so that its gap, chain and reset logic can be tested against a
// log held in memory (test/subscriber.test.ts) as well as against Redis.
import { abortError } from './errors';
import { Envelope, lastSeq } from './envelope';
import { History } from './history';
import { Event, Position, Reset, at, formatPosition } from './position';
import type { Logger, Stats } from './stats';

/** Fetched is what fetch.lua returns: the channel's epoch, head and tip, and log entries from a seq on. */
export interface Fetched {
  epoch: string;
  head: number;
  /** The id of the newest entry; '' when unknown. */
  tip: string;
  entries: Envelope[];
}

/** Parted is where a subscription last found a channel's history parted (mark.lua: the meta hash's `parted` field). */
export interface Parted {
  epoch: string;
  /** The lowest seq of the epoch from which a subscription found delivered messages no longer in the log. */
  seq: number;
  /** When it was marked, by Redis's clock (ms since the Unix epoch). */
  at: number;
}

/**
 * PARTED_WINDOW_MS is how long a start after a position without an entry id heeds where a
 * subscription last found the channel's history parted (15 minutes, the Go client's
 * channel.PartedWindow): a client that delivered messages a failover lost, and resumes by seq
 * alone, does so within it.
 */
export const PARTED_WINDOW_MS = 15 * 60 * 1000;

export interface SubscriberDeps {
  /** fetch reads the log from seq `from` (COUNT `count`, 0 for the head alone), retrying transient failures until signal aborts. */
  fetch(from: number, count: number, signal: AbortSignal): Promise<Fetched>;
  /** deliver hands one event to the consumer; the subscription waits for it. */
  deliver(ev: Event, signal: AbortSignal): Promise<void> | void;
  /** reconnect replaces the pub/sub connection (a silent one: twice in a row, the idle check found messages it never brought). */
  reconnect(): void;
  /** mark records in Redis where the history parted (mark.lua), best effort and in the background; absent without Redis. */
  mark?(epoch: string, seq: number): void;
  /** parted reads that mark: undefined when there is none; it rejects when it cannot be read or does not parse. Absent without Redis. */
  parted?(signal: AbortSignal): Promise<Parted | undefined>;
  stats: Stats;
  logger: Logger;
  name: string;
  fetchCount: number;
  bufferSize: number;
  rewindMemory: number;
}

/** Subscriber is the state of one subscription; run owns it, the hub only offers envelopes and heads. */
export class Subscriber {
  epoch = '';
  next = 1;
  tip = '';
  /**
   * anchor is the log entry the subscription started in (its start position's entry): the one
   * entry it knows below what it delivered. seq 0 and id '' when not known.
   */
  anchor = { seq: 0, id: '' };
  since = 0; // the first seq delivered in this epoch, 0 before any
  missed = 0; // idle head reads in a row that found messages pub/sub never brought
  readonly hist: History;
  position: Position = { epoch: '', seq: 0 };
  /** When the subscription last knew it was current (ms), 0 for never. */
  confirmed = 0;
  /** When the subscription last finished handling anything (ms): the idle check's clock. */
  lastNews = Date.now();

  private live: Envelope[] = [];
  private resync = false;
  private head: Fetched | undefined;
  private waiter: (() => void) | undefined;

  constructor(private readonly d: SubscriberDeps) {
    this.hist = new History(d.rewindMemory);
  }

  /** offer queues a live envelope without blocking; when the queue is full it drops it and asks for a catch-up. */
  offer(env: Envelope): void {
    if (this.live.length >= this.d.bufferSize) {
      this.d.stats.overflows++;
      this.askResync();
      return;
    }
    this.live.push(env);
    this.poke();
  }

  /** askResync makes the subscription catch up from the log before trusting live envelopes again (a reconnect, an overflow). */
  askResync(): void {
    this.resync = true;
    this.poke();
  }

  /** offerHead hands the subscription its channel's head, read by the idle check; an unread one is replaced. */
  offerHead(f: Fetched): void {
    this.head = f;
    this.poke();
  }

  /** poke wakes run (also to notice an abort). */
  poke(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /**
   * start sets the subscription to deliver what follows p (epoch '' for a bare seq). The entry
   * holding p.seq, when known, is the tip too (an entry of the same history that starts at next
   * has it as its prev, or holds p.seq itself), and the anchor.
   */
  start(p: Position): void {
    const entry = p.entry ?? '';
    this.epoch = p.epoch;
    this.next = p.seq + 1;
    this.tip = entry;
    if (entry !== '' && p.epoch !== '') this.anchor = { seq: p.seq, id: entry };
    this.position = at(p.epoch, p.seq, entry);
  }

  /** run is the subscription loop, started after start: it returns (rejects) only with why it ended. */
  async run(start: Position, signal: AbortSignal): Promise<never> {
    const onAbort = () => this.poke();
    signal.addEventListener('abort', onAbort);
    try {
      this.start(start);
      await this.checkBareStart(start, signal);
      await this.catchUp(signal);
      for (;;) {
        this.lastNews = Date.now();
        while (!signal.aborted && this.live.length === 0 && !this.resync && this.head === undefined) {
          await new Promise<void>((resolve) => (this.waiter = resolve));
        }
        if (signal.aborted) throw abortError(signal.reason);
        if (this.resync) {
          this.live.length = 0; // whatever is queued, the log decides
          await this.catchUp(signal);
        } else if (this.live.length > 0) {
          await this.onEnvelope(this.live.shift()!, signal);
        } else if (this.head !== undefined) {
          const f = this.head;
          this.head = undefined;
          await this.onHead(f, signal);
        }
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** onEnvelope delivers a live envelope that continues the sequence and falls back to the log for anything else. */
  private async onEnvelope(env: Envelope, signal: AbortSignal): Promise<void> {
    if (this.epoch === '' || env.epoch !== this.epoch) return this.catchUp(signal);
    if (lastSeq(env) < this.next) {
      if (!this.knows(env)) return this.catchUp(signal); // the same seqs, other messages: the log was rewound
      this.d.stats.duplicates += env.data.length;
      return;
    }
    if (env.first > this.next) {
      this.d.stats.gapsFilled++;
      return this.catchUp(signal);
    }
    if (!this.continues(env)) return this.catchUp(signal);
    this.d.stats.duplicates += this.next - env.first;
    for (let seq = this.next; seq <= lastSeq(env); seq++) {
      await this.emitMessage(env, seq, false, signal);
    }
    this.deliveredEntry(env);
    this.missed = 0;
    this.confirm();
  }

  /**
   * onHead handles the channel's head read by the idle check: all delivered (confirm), the log
   * went back (catch up: a rewind), or messages pub/sub never brought (catch up; the second
   * such finding in a row replaces the pub/sub connection).
   */
  private async onHead(f: Fetched, signal: AbortSignal): Promise<void> {
    if (f.epoch === this.epoch && f.head + 1 === this.next && (this.tip === '' || f.tip === '' || f.tip === this.tip)) {
      this.missed = 0;
      this.confirm();
      return;
    }
    if (f.epoch === this.epoch && f.head < this.next) return this.catchUp(signal);
    if (f.epoch !== '' || this.epoch !== '') {
      this.d.stats.tailLosses++;
      if (++this.missed >= 2) {
        this.d.logger.warn(`redisync: pub/sub brought nothing while the log of ${JSON.stringify(this.d.name)} grew; reconnecting`);
        this.d.reconnect();
        this.missed = 0;
      }
    }
    return this.catchUp(signal);
  }

  /**
   * checkBareStart handles a start after p when p has an epoch but no entry id, so that the log
   * cannot tell whether the message at p.seq is the one the caller delivered. If a subscription
   * found, within PARTED_WINDOW_MS, that this epoch's history parted at a seq D at or below
   * p.seq, the caller may have delivered messages from D on that the log no longer holds: they
   * are announced as rewound (D to p.seq), and the log is delivered from D (PROTOCOL.md section 5).
   */
  private async checkBareStart(p: Position, signal: AbortSignal): Promise<void> {
    if (p.epoch === '' || (p.entry ?? '') !== '' || p.seq === 0 || !this.d.parted) return;
    let m: Parted | undefined;
    try {
      m = await this.d.parted(signal);
    } catch {
      return; // the catch-up that follows fails too if the subscription was closed
    }
    if (!m || m.epoch !== p.epoch || m.seq < 1 || m.seq > p.seq || Date.now() - m.at > PARTED_WINDOW_MS) {
      return; // no mark, or one that does not concern p: trust p, as before
    }
    this.d.stats.rewinds++;
    this.next = m.seq;
    this.tip = '';
    await this.reset({ reason: 'rewound', from: m.seq, to: p.seq, oldEpoch: p.epoch, newEpoch: p.epoch }, at(p.epoch, m.seq - 1), signal);
  }

  /** catchUp delivers from the log until it has reached the head, with a reset for anything the log can no longer give. */
  private async catchUp(signal: AbortSignal): Promise<void> {
    for (;;) {
      this.resync = false;
      const f = await this.d.fetch(this.next, this.d.fetchCount, signal);
      if (f.epoch === '' && this.epoch === '') {
        if (this.next > 1) {
          await this.beyondHead(f, signal); // started after a bare seq; the channel has no history at all
        }
        this.confirm();
        return;
      }
      if (f.epoch === '') {
        // The log is gone and nothing was published since: whatever comes next is new history.
        await this.reset({ reason: 'epoch-changed', from: this.next, to: null, oldEpoch: this.epoch, newEpoch: '' }, { epoch: '', seq: 0 }, signal);
        this.newEpoch('');
        continue;
      }
      if (this.epoch === '') {
        if (f.head + 1 < this.next) {
          await this.beyondHead(f, signal); // a bare seq above the current history's head
          continue;
        }
        this.epoch = f.epoch;
      } else if (f.epoch !== this.epoch) {
        await this.reset({ reason: 'epoch-changed', from: this.next, to: null, oldEpoch: this.epoch, newEpoch: f.epoch }, { epoch: f.epoch, seq: 0 }, signal);
        this.newEpoch(f.epoch);
        continue;
      }
      if (f.head + 1 < this.next || (f.head + 1 === this.next && this.tip !== '' && f.tip !== '' && f.tip !== this.tip)) {
        await this.rewind(f.head, signal); // the log is behind what was delivered, or holds other messages under its seqs
        continue;
      }
      // Whether the result holds any message at or above next (COUNT and BUDGET may end it early: then fetch again).
      const holdsNext = f.entries.some((e) => lastSeq(e) >= this.next);
      let rewound = false;
      for (const env of f.entries) {
        if (lastSeq(env) < this.next) continue;
        if (env.first > this.next) await this.trimmed(env.first - 1, signal);
        if (!this.continues(env)) {
          await this.rewind(f.head, signal);
          rewound = true;
          break;
        }
        for (let seq = this.next; seq <= lastSeq(env); seq++) {
          await this.emitMessage(env, seq, true, signal);
        }
        this.deliveredEntry(env);
      }
      if (rewound) continue;
      // No entry holds next or anything above it, yet the head is at or above next: next..head were trimmed.
      if (!holdsNext && f.head >= this.next) {
        await this.trimmed(f.head, signal);
      }
      if (this.next > f.head && !this.resync) {
        this.confirm();
        return;
      }
    }
  }

  /**
   * beyondHead handles a start after a bare seq above the head of the current history f: every
   * seq up to it is announced as rewound, and the current history is delivered from seq 1.
   */
  private async beyondHead(f: Fetched, signal: AbortSignal): Promise<void> {
    const to = this.next - 1;
    this.newEpoch(f.epoch);
    await this.reset({ reason: 'rewound', from: 1, to, oldEpoch: '', newEpoch: f.epoch }, { epoch: f.epoch, seq: 0 }, signal);
  }

  private newEpoch(epoch: string): void {
    this.epoch = epoch;
    this.next = 1;
    this.tip = '';
    this.since = 0;
    this.anchor = { seq: 0, id: '' };
    this.hist.clear();
  }

  /** trimmed announces that next..to are no longer in the log and moves past them. */
  private async trimmed(to: number, signal: AbortSignal): Promise<void> {
    const from = this.next;
    this.next = to + 1;
    this.tip = ''; // the entry before next is gone: the next one cannot be checked
    await this.reset({ reason: 'trimmed', from, to, oldEpoch: this.epoch, newEpoch: this.epoch }, { epoch: this.epoch, seq: to }, signal);
  }

  /**
   * knows reports whether env, which holds seqs already delivered, is the entry delivered there
   * (or the entry the subscription started in): false means the log has changed under it.
   * Entries it cannot compare (version 1, or older than what it remembers) are taken to be the same.
   */
  private knows(env: Envelope): boolean {
    if (env.id === '') return true;
    const { d, covered } = this.hist.lookup(env.first);
    if (d) return d.id === env.id;
    const a = this.anchor;
    if (a.id !== '' && env.first <= a.seq && a.seq <= lastSeq(env)) return env.id === a.id;
    return !covered;
  }

  /** continues reports whether env, which starts at or before next and holds it, continues what was delivered. */
  private continues(env: Envelope): boolean {
    if (env.first < this.next) return this.knows(env);
    return this.tip === '' || env.prev === '' || env.prev === this.tip;
  }

  private deliveredEntry(env: Envelope): void {
    this.hist.add(env.first, lastSeq(env), env.id);
    this.tip = env.id;
  }

  /** parting finds the first seq where the log (whose head is head) no longer holds what was delivered; next when all remembered is there. */
  private async parting(head: number, signal: AbortSignal): Promise<number> {
    const hs = this.hist.ents;
    if (hs.length === 0) return this.below(head, signal);
    let i = 0;
    while (i < hs.length) {
      if (hs[i].first > head) {
        if (i === 0) return this.below(head, signal); // nothing remembered is left to compare
        return hs[i].first;
      }
      const f = await this.d.fetch(hs[i].first, this.d.fetchCount, signal);
      if (f.epoch !== this.epoch || f.entries.length === 0) return this.next; // the catch-up that follows sees what happened
      const es = f.entries;
      if (i === 0 && es[0].first > hs[0].first) {
        // The log no longer reaches back to the oldest entries remembered: trimmed, not parted.
        while (i < hs.length && hs[i].first < es[0].first) i++;
        continue;
      }
      const start = i;
      for (let j = 0; i < hs.length && j < es.length; ) {
        const h = hs[i];
        const e = es[j];
        if (lastSeq(e) < h.first) {
          j++; // an entry delivered without an id, or before the range compared
        } else if (e.first === h.first && e.id === h.id) {
          i++;
          j++;
        } else if (i === 0) {
          // Even the oldest entry remembered differs: the two histories part earlier than memory reaches.
          return this.below(head, signal);
        } else {
          return h.first;
        }
      }
      if (i === start) return this.next; // no progress (the log holds only older entries): nothing to compare
    }
    return this.next;
  }

  /**
   * below finds where the log parts from the delivered history when that is below every entry
   * remembered. The entry the subscription started in may still be there: the histories then
   * part after it. Otherwise nothing tells where they part, down to the oldest message the log
   * holds: every message delivered, and everything from there on, is suspect.
   */
  private async below(head: number, signal: AbortSignal): Promise<number> {
    const a = this.anchor;
    if (a.id !== '' && a.seq <= head) {
      const f = await this.d.fetch(a.seq, 1, signal);
      if (f.epoch === this.epoch && f.entries.length > 0 && f.entries[0].first <= a.seq && f.entries[0].id === a.id) return a.seq + 1;
    }
    let lo = this.next;
    if (this.since !== 0) lo = Math.min(lo, this.since);
    const f = await this.d.fetch(1, 1, signal);
    if (f.epoch === this.epoch && f.entries.length > 0) lo = Math.min(lo, f.entries[0].first);
    else lo = 1;
    return Math.max(lo, 1);
  }

  /** rewind announces the delivered messages the log no longer holds (rewound) and moves back to where the histories part. */
  private async rewind(head: number, signal: AbortSignal): Promise<void> {
    const d = Math.min(await this.parting(head, signal), head + 1);
    if (d >= this.next) {
      this.tip = ''; // nothing delivered was lost; the next entry cannot be checked
      return;
    }
    this.d.stats.rewinds++;
    const to = this.next - 1;
    let tip = this.hist.cut(d);
    if (tip === '' && this.anchor.seq === d - 1) tip = this.anchor.id;
    if (d <= this.anchor.seq) this.anchor = { seq: 0, id: '' }; // the log holds another entry there now
    this.tip = tip;
    this.next = d;
    const epoch = this.epoch;
    try {
      await this.reset({ reason: 'rewound', from: d, to, oldEpoch: epoch, newEpoch: epoch }, at(epoch, d - 1, tip), signal);
    } finally {
      this.d.mark?.(epoch, d); // for a later start after a position without an entry id (checkBareStart)
    }
  }

  private async reset(r: Reset, after: Position, signal: AbortSignal): Promise<void> {
    this.d.stats.resets++;
    this.d.logger.info?.(`redisync: subscription to ${JSON.stringify(this.d.name)} reset (${r.reason})`);
    await this.emit({ position: after, pos: formatPosition(after), time: 0, data: Buffer.alloc(0), reset: r }, signal);
  }

  private async emitMessage(env: Envelope, seq: number, fromLog: boolean, signal: AbortSignal): Promise<void> {
    const position = at(this.epoch, seq, env.id);
    await this.emit({ position, pos: formatPosition(position), time: env.time, data: env.data[seq - env.first] }, signal);
    this.next = seq + 1;
    this.d.stats.delivered++;
    if (fromLog) this.d.stats.fromLog++;
    if (this.since === 0) this.since = seq;
  }

  private async emit(ev: Event, signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw abortError(signal.reason);
    await this.d.deliver(ev, signal);
    this.position = ev.position;
  }

  private confirm(): void {
    this.confirmed = Date.now();
  }
}
