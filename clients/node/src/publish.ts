// Publishing: PROTOCOL.md section 2. One script call per batch; tokens 1, 2, 3, … per producer
// and channel; LOWWATER the least token whose call may still reach Redis; retries of a call
// that failed without a definite answer with the same arguments, for at most IDEMTTL / 2.
import type { Client } from './client';
import { anySignal } from './client';
import { randomID } from './id';
import { AbortError, ClosedError, KindError, RedisError, UnknownOutcomeError } from './errors';
import type { Keys, Position } from './position';
import { at } from './position';
import { isReply, sleep, transient, wrongKind, backoff } from './retry';
import { packMessages } from './envelope';
import { Script, scripts } from './scripts';

interface PubReq {
  msgs: Buffer[];
  size: number;
  signal?: AbortSignal;
  resolve(p: Position): void;
  reject(err: unknown): void;
}

/** PubState is the publishing state of one channel: its idempotency tokens and its group commit. */
export class PubState {
  /** The last token issued: tokens run 1, 2, 3, … so that every 16th call (TOKEN mod 16 = 1) prunes. */
  token = 0;
  /** Tokens whose call may still reach Redis: in flight (0), or in doubt until the time (ms). */
  readonly unsettled = new Map<number, number>();
  private pending: PubReq[] = [];
  private flushing = false;
  /** The epoch and the last seq of the publishes acknowledged so far, to see one handed out again. */
  private ackEpoch = '';
  private ackSeq = 0;
  /** Calls acknowledged in ackEpoch, oldest first, as keepAck thins them: where the log parted from them is found among them (partedBelow). */
  private acks: AckedCall[] = [];
  /** Calls acknowledged in ackEpoch: the number of the newest. */
  private calls = 0;

  constructor(
    private readonly c: Client,
    readonly keys: Keys,
  ) {}

  /** issue returns a new token and the low-water mark to send with it. */
  issue(): { token: number; low: number } {
    const token = ++this.token;
    this.unsettled.set(token, 0);
    let low = token;
    const now = Date.now();
    for (const [t, until] of this.unsettled) {
      if (until !== 0 && now > until) {
        this.unsettled.delete(t);
        continue;
      }
      low = Math.min(low, t);
    }
    return { token, low };
  }

  /**
   * settle ends token's call. When an attempt of it may still be on its way to Redis (its
   * connection failed, or its caller gave up with no reply), the token holds LOWWATER down for
   * the idempotency window, so that a late attempt still finds it.
   */
  settle(token: number, inDoubt: boolean): void {
    if (inDoubt) this.unsettled.set(token, Date.now() + this.c.config.idempotencyWindow);
    else this.unsettled.delete(token);
  }

  /** enqueue adds a publish to the group commit and resolves with its position. */
  enqueue(msgs: Buffer[], size: number, signal?: AbortSignal): Promise<Position> {
    return new Promise<Position>((resolve, reject) => {
      if (signal?.aborted) return reject(new AbortError(signal.reason));
      this.pending.push({ msgs, size, signal, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        void this.flush();
      }
    });
  }

  /** flush commits pending requests, one script call at a time, as many per call as the batch limits allow. */
  private async flush(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.take();
        if (batch.length > 0) await this.commit(batch);
      }
    } finally {
      this.flushing = false;
    }
  }

  private take(): PubReq[] {
    const cfg = this.c.config;
    const batch: PubReq[] = [];
    let msgs = 0;
    let size = 0;
    let i = 0;
    for (; i < this.pending.length; i++) {
      const r = this.pending[i];
      if (r.signal?.aborted) {
        r.reject(new AbortError(r.signal.reason));
        continue;
      }
      if (batch.length > 0 && (msgs + r.msgs.length > cfg.maxBatchMessages || size + r.size > cfg.maxBatchBytes)) break;
      batch.push(r);
      msgs += r.msgs.length;
      size += r.size;
    }
    this.pending = this.pending.slice(i);
    return batch;
  }

  /**
   * acknowledged notes that a call appended n messages from pos on. A seq at or below one
   * already acknowledged in the same epoch means the log went back: a failover lost messages
   * that had been acknowledged, and their seqs now name other messages. That is counted
   * (stats.seqsReused) and logged; subscribers see it as a rewound reset.
   */
  private acknowledged(pos: Position, n: number, entry: string): void {
    const last = pos.seq + n - 1;
    if (pos.epoch !== this.ackEpoch) {
      this.acks = [];
      this.calls = 0;
    }
    if (pos.epoch === this.ackEpoch && pos.seq <= this.ackSeq) {
      this.c.stats.seqsReused++;
      this.c.config.logger.warn(
        `redisync: a publish got a seq already given to another; Redis lost acknowledged messages (a failover?): channel ${JSON.stringify(this.keys.name)} epoch ${pos.epoch} seq ${pos.seq} acknowledged before ${this.ackSeq}`,
      );
      // Mark where the history parted, as a subscription that sees the rewind does (PROTOCOL.md section 5).
      this.acks = this.acks.filter((a) => a.last < pos.seq);
      const before = [...this.acks];
      const any = anySignal([this.c.signal, AbortSignal.timeout(5000)]);
      partedBelow(this.c, this.keys, pos.epoch, before, any.signal)
        .then(
          (d) => this.c.markParted(this.keys, pos.epoch, d),
          (err) => {
            if (!this.c.closed) this.c.config.logger.debug?.(`redisync: could not find where the history of ${JSON.stringify(this.keys.name)} parted: ${(err as Error).message}`);
          },
        )
        .finally(() => any.dispose());
    }
    this.ackEpoch = pos.epoch;
    this.ackSeq = last;
    this.calls++;
    this.acks.push({ n: this.calls, first: pos.seq, last, entry });
    if (this.calls % ACKED_RECENT === 0) this.acks = this.acks.filter((a) => keepAck(a.n, this.calls));
  }

  /** commit appends batch in one script call while any caller in it still waits. */
  private async commit(batch: PubReq[]): Promise<void> {
    const ctl = new AbortController();
    const onClose = () => ctl.abort(new ClosedError());
    this.c.signal.addEventListener('abort', onClose);
    if (this.c.closed) onClose();
    let waiting = batch.length;
    const cleanups: (() => void)[] = [];
    for (const r of batch) {
      if (!r.signal) continue;
      const f = () => {
        r.reject(new AbortError(r.signal!.reason, true)); // the call is on its way: it may land
        if (--waiting === 0) ctl.abort(new AbortError());
      };
      r.signal.addEventListener('abort', f, { once: true });
      cleanups.push(() => r.signal!.removeEventListener('abort', f));
    }
    const msgs = batch.flatMap((r) => r.msgs);
    const entry = randomID(); // the id of the log entry the call appends (a retry answered from the idempotency set names the same)
    try {
      const vs = await execAppend(this.c, this, scripts().publish, [], packMessages(msgs), ctl.signal, entry);
      const pos = parsePublishReply(vs);
      this.c.stats.published += msgs.length;
      this.c.stats.publishCalls++;
      this.acknowledged(pos, msgs.length, entry);
      let seq = pos.seq;
      for (const r of batch) {
        r.resolve(at(pos.epoch, seq, entry));
        seq += r.msgs.length;
      }
    } catch (err) {
      const e = this.c.closed ? new ClosedError() : err;
      for (const r of batch) r.reject(e);
    } finally {
      this.c.signal.removeEventListener('abort', onClose);
      for (const f of cleanups) f();
    }
  }
}

/** AckedCall is a publish call that was acknowledged: its number in the epoch, its seqs and the id of its log entry. */
interface AckedCall {
  n: number;
  first: number;
  last: number;
  entry: string;
}

/** ACKED_RECENT is how many of its newest acknowledged calls a publisher remembers per channel, every one. */
const ACKED_RECENT = 32;

/**
 * keepAck reports whether call number n is still remembered once calls were acknowledged:
 * every one of the newest ACKED_RECENT, then one in 2, 4, 8, … the older it is, as the Go
 * client does (PROTOCOL.md section 5).
 */
export function keepAck(n: number, calls: number): boolean {
  const age = calls - n;
  if (age < ACKED_RECENT) return true;
  const k = Math.floor(age / ACKED_RECENT).toString(2).length; // bits.Len
  return n % 2 ** k === 0;
}

/**
 * partedBelow returns a seq at or below the one where the log of epoch parted from the history
 * in which acks (calls acknowledged there, oldest first) were made: one past the newest of them
 * the log still holds (it holds a prefix of them), or, when it holds none, the log's oldest seq.
 */
async function partedBelow(c: Client, k: Keys, epoch: string, acks: AckedCall[], signal: AbortSignal): Promise<number> {
  let lo = 0;
  let hi = acks.length; // acks[:lo] are held, acks[hi:] are not
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const f = await c.fetch(k, '', acks[mid].first, 1, signal);
    const e = f.entries[0];
    if (f.epoch === epoch && e !== undefined && e.first === acks[mid].first && e.id === acks[mid].entry) lo = mid + 1;
    else hi = mid;
  }
  if (lo > 0) return acks[lo - 1].last + 1;
  const f = await c.fetch(k, '', 1, 1, signal);
  return f.epoch === epoch && f.entries.length > 0 ? Math.max(f.entries[0].first, 1) : 1;
}

/** parsePublishReply reads publish.lua's [epoch, FIRST, "0"|"1"]. */
export function parsePublishReply(vs: Buffer[]): Position {
  if (vs.length !== 3) throw new RedisError(`publish script returned ${vs.length} values, want 3`);
  const seq = Number(vs[1].toString('latin1'));
  if (!Number.isSafeInteger(seq) || seq < 1) throw new RedisError(`publish script returned seq ${JSON.stringify(vs[1].toString('latin1'))}`);
  return { epoch: vs[0].toString('latin1'), seq };
}

/**
 * execAppend runs an appending script with the protocol of publishing: KEYS meta, log, idem,
 * then extraKeys; ARGV PUBCHAN PUBCMD ID TOKEN LOWWATER IDEMTTL MAXLEN MAXAGE, then args (ID is
 * entry, the id the log entry gets). A call that fails without a definite answer is repeated
 * with the very same arguments until it gets one, for at most half the idempotency window.
 */
export async function execAppend(c: Client, st: PubState, script: Script, extraKeys: string[], args: (string | Buffer)[], signal?: AbortSignal, entry = randomID()): Promise<Buffer[]> {
  const cfg = c.config;
  const { token, low } = st.issue();
  const k = st.keys;
  const argv: (string | Buffer)[] = [
    k.pubsub, cfg.sharded ? 'SPUBLISH' : 'PUBLISH', entry,
    String(token), String(low), String(cfg.idempotencyWindow), String(cfg.maxLen), String(cfg.maxAge),
    ...args,
  ];
  const keys = [k.meta, k.log, k.idem, ...extraKeys];
  const start = Date.now();
  const deadline = start + cfg.idempotencyWindow / 2;
  let inDoubt = false;
  try {
    for (let attempt = 0; ; attempt++) {
      const closes = c.cmdCloses;
      try {
        const reply = await withDeadline(script.run(c.redis, keys, argv), deadline, signal);
        if (c.cmdCloses !== closes) inDoubt = true; // sent again after a lost connection: the first copy may still arrive
        if (!Array.isArray(reply) || !reply.every((v) => Buffer.isBuffer(v))) throw new RedisError(`append script returned ${String(reply).slice(0, 80)}`);
        return reply as Buffer[];
      } catch (err) {
        if (err instanceof AbortError || err instanceof DeadlineError || !isReply(err) || c.cmdCloses !== closes) inDoubt = true;
        if (err instanceof AbortError) throw new AbortError(err.cause, true);
        if (err instanceof ClosedError) throw err;
        const is = wrongKind(err);
        if (is !== undefined) throw new KindError(k.name, is, is === 'map' ? 'channel' : 'map');
        if (err instanceof DeadlineError) throw new UnknownOutcomeError(`append to ${JSON.stringify(k.name)} not confirmed within ${cfg.idempotencyWindow / 2} ms`);
        if (err instanceof RedisError) throw err;
        if (!transient(err)) throw new RedisError(`append to ${JSON.stringify(k.name)}: ${(err as Error).message}`, err);
        if (Date.now() > deadline) throw new UnknownOutcomeError(`append to ${JSON.stringify(k.name)}: ${(err as Error).message}`, err);
        await sleep(backoff(attempt), signal);
        c.stats.publishRetries++;
      }
    }
  } finally {
    st.settle(token, inDoubt);
  }
}

class DeadlineError extends Error {}

/** withDeadline settles like p, or rejects with a DeadlineError at deadline, or an AbortError when signal aborts. */
function withDeadline<T>(p: Promise<T>, deadline: number, signal?: AbortSignal): Promise<T> {
  p.catch(() => {}); // a call given up on may still fail later: not an unhandled rejection
  return new Promise<T>((resolve, reject) => {
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = () => {
      done();
      reject(new AbortError(signal?.reason));
    };
    const t = setTimeout(() => {
      done();
      reject(new DeadlineError());
    }, Math.max(deadline - Date.now(), 0));
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        done();
        resolve(v);
      },
      (e) => {
        done();
        reject(e);
      },
    );
  });
}
