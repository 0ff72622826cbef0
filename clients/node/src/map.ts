// Replicated maps: PROTOCOL.md section 7. A replica is a snapshot (HSCAN after reading the
// head) plus the map's channel followed from that head, applying a change only when it is
// newer than the key's version; writes go through write.lua with the publishing protocol.
import type { Client } from './client';
import { anySignal } from './client';
import { lastSeq } from './envelope';
import type { Fetched } from './subscriber';
import { sleep } from './retry';
import { ClosedError, ConflictError, InvalidWriteError, KindError, NotFoundError, NotReadyError, RedisError, WriteLostError } from './errors';
import { randomID } from './id';
import type { Event, From, Position, Reset } from './position';
import { at, formatPosition } from './position';
import { Digest, decodeRecord } from './record';
import { scripts } from './scripts';
import type { Subscription } from './subscription';
import { AbortError, abortError } from './errors';

/** Codec turns values into bytes and back. */
export interface Codec<V> {
  encode(v: V): Buffer;
  decode(b: Buffer): V;
}

/** Codecs: bytes as they are (the default), UTF-8 text, JSON. */
export const codecs = {
  bytes: { encode: (v: Buffer) => v, decode: (b: Buffer) => b } as Codec<Buffer>,
  utf8: { encode: (v: string) => Buffer.from(v, 'utf8'), decode: (b: Buffer) => b.toString('utf8') } as Codec<string>,
  json: { encode: (v: unknown) => Buffer.from(JSON.stringify(v), 'utf8'), decode: (b: Buffer) => JSON.parse(b.toString('utf8')) } as Codec<any>, // eslint-disable-line @typescript-eslint/no-explicit-any
};

export const DEFAULT_MAX_KEY_BYTES = 1 << 10;
export const DEFAULT_MAX_VALUE_BYTES = 1 << 20;
export const DEFAULT_SCAN_COUNT = 5000;
export const DEFAULT_VERIFY_EVERY_MS = 30_000;

/** MapOptions configure a map. An omitted field takes the default named in its comment. */
export interface MapOptions<V> {
  /** Default codecs.bytes: values are Buffers. */
  codec?: Codec<V>;
  /** Default DEFAULT_MAX_KEY_BYTES. */
  maxKeyBytes?: number;
  /** Default DEFAULT_MAX_VALUE_BYTES. */
  maxValueBytes?: number;
  /** Keys asked for per HSCAN while loading. Default DEFAULT_SCAN_COUNT. */
  scanCount?: number;
  /** How often the replica verifies itself against Redis while ready, in ms (a mismatch reloads it); negative disables. Default DEFAULT_VERIFY_EVERY_MS. */
  verifyEvery?: number;
  /** Writes return once Redis applied them, without waiting for this replica. Default false: read-your-writes. */
  noWaitOnWrite?: boolean;
  /** Called after the replica applies each change, in seq order; once with `reset` set after each reload. */
  onChange?: (ch: Change<V>) => void;
}

/** Change is one operation of a write, as watched or given to onChange. */
export interface Change<V> {
  /** The write's position; every operation of one write has the same. */
  position: Position;
  pos: string;
  key: string;
  /** The key's bytes (key is their UTF-8 reading). */
  keyBytes: Buffer;
  deleted: boolean;
  /** The new value of a set; undefined for a delete, or when raw does not decode (error is set). */
  value?: V;
  raw?: Buffer;
  /** The key's version before the write (0: absent). */
  oldVersion: number;
  /** The write's seq: the key's new version after a set. */
  version: number;
  error?: Error;
  /** Set for a change that stands for lost history (a reset of the watch) or, for onChange, a reload of the replica. */
  reset?: Reset | { reason: 'resnapshot' };
}

/**
 * Op is one operation of an atomic write: set key to value, or delete it. With ifVersion the
 * whole write applies only if key is at that version (0: absent); with mustExist, only if key
 * exists, whatever its version (the guard `e` of write.lua).
 */
export interface Op<V> {
  key: string;
  value?: V;
  delete?: boolean;
  ifVersion?: number;
  mustExist?: boolean;
}

/** Verification is the outcome of verify: Redis's and the replica's digests at one position. */
export interface Verification {
  position: Position;
  redis: string;
  replica: string;
  redisKeys: number;
  replicaKeys: number;
  match: boolean;
}

interface Entry {
  raw: Buffer;
  ver: number;
}

interface Want {
  epoch: string;
  resolve(d: { ok: boolean; digest?: Digest; keys?: number }): void;
}

/** Applied is a change the replica applied: its seq, the id of its log entry, and the snapshot it was applied over (loadStart). */
interface Applied {
  seq: number;
  id: string;
  snap: number;
}

/** RECENT_MAX is how many applied changes the replica remembers for verdict (between it and twice it). */
const RECENT_MAX = 1024;

/** What the replica tells of a write it waits for: not yet, held, lost, or ask the log (awaitWrite). */
type Verdict = 'pending' | 'held' | 'lost' | 'ask';

class ResnapshotError extends Error {}

const bin = (key: string) => Buffer.from(key, 'utf8').toString('latin1');
const text = (b: string) => Buffer.from(b, 'latin1').toString('utf8');

/**
 * ReplicatedMap is a local replica of a replicated map, kept current from the map's channel,
 * and the way to write to it. Reads are served from memory.
 */
export class ReplicatedMap<V = Buffer> {
  readonly name: string;
  private readonly codec: Codec<V>;
  private readonly opts: Required<Omit<MapOptions<V>, 'codec' | 'onChange'>> & Pick<MapOptions<V>, 'onChange'>;
  private readonly meta: string;
  private readonly state: string;
  private readonly ctl = new AbortController();
  private entries = new Map<string, Entry>();
  private dig = new Digest();
  private epoch = '';
  private applied = 0;
  private appliedID = '';
  /** The changes applied since the snapshot, in seq order: the last RECENT_MAX to 2*RECENT_MAX of them. */
  private recent: Applied[] = [];
  /** How many snapshot reads have begun, and which of them the replica stands on. */
  private loadStarts = 0;
  private loadStart = 0;
  private readyAt = 0;
  private isReadyNow = false;
  private fault: Error | undefined;
  private waiters = new Set<() => void>();
  private wants = new Map<number, Want[]>();
  private resnap: (() => void) | undefined;
  private resnapAsked = false;
  private readonly running: Promise<void>;
  private verifyTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  private readonly onClientClose: () => void;
  /** Counters since open. */
  readonly stats = { changes: 0, snapshots: 0, resnapshots: 0, badRecords: 0, divergences: 0 };

  constructor(
    private readonly c: Client,
    name: string,
    options: MapOptions<V> = {},
  ) {
    const k = c.keys(name);
    this.name = name;
    this.meta = k.meta;
    this.state = k.state;
    this.codec = (options.codec ?? codecs.bytes) as Codec<V>;
    this.opts = {
      maxKeyBytes: options.maxKeyBytes ?? DEFAULT_MAX_KEY_BYTES,
      maxValueBytes: options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES,
      scanCount: options.scanCount ?? DEFAULT_SCAN_COUNT,
      verifyEvery: options.verifyEvery ?? DEFAULT_VERIFY_EVERY_MS,
      noWaitOnWrite: options.noWaitOnWrite ?? false,
      onChange: options.onChange,
    };
    this.onClientClose = () => this.ctl.abort(new ClosedError('client'));
    c.signal.addEventListener('abort', this.onClientClose, { once: true });
    this.running = this.run();
    if (this.opts.verifyEvery > 0) {
      this.verifyTimer = setInterval(() => {
        if (this.isReadyNow) this.verify().catch(() => {});
      }, this.opts.verifyEvery);
    }
  }

  // ---- replica ----

  private notify(): void {
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }

  /** waitUntil waits until cond holds, the replica fails for good (a KindError), or the map closes. */
  private async waitUntil(cond: () => boolean, signal?: AbortSignal): Promise<void> {
    for (;;) {
      if (cond()) return;
      if (this.fault) throw this.fault;
      if (this.ctl.signal.aborted) throw new ClosedError('map');
      if (signal?.aborted) throw abortError(signal.reason);
      await new Promise<void>((resolve) => {
        const done = () => {
          this.waiters.delete(done);
          this.ctl.signal.removeEventListener('abort', done);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        this.waiters.add(done);
        this.ctl.signal.addEventListener('abort', done, { once: true });
        signal?.addEventListener('abort', done, { once: true });
      });
    }
  }

  /** ready resolves once the replica has loaded a snapshot and caught up with the head read after it; a name that holds a channel rejects with a KindError. */
  ready(signal?: AbortSignal): Promise<void> {
    return this.waitUntil(() => this.isReadyNow, signal);
  }

  get isReady(): boolean {
    return this.isReadyNow;
  }

  /** waitFor resolves once the replica has applied seq of its current epoch (written elsewhere, say). */
  waitFor(seq: number, signal?: AbortSignal): Promise<void> {
    return this.waitUntil(() => this.isReadyNow && this.applied >= seq, signal);
  }

  private async run(): Promise<void> {
    const signal = this.ctl.signal;
    for (let attempt = 0; !signal.aborted; ) {
      let pos: Position;
      try {
        pos = await this.bootstrap();
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof KindError) {
          this.fault = err;
          this.notify();
        } else {
          this.c.config.logger.warn(`redisync: loading the snapshot of map ${JSON.stringify(this.name)} failed; retrying: ${(err as Error).message}`);
        }
        await sleep(Math.min(100 * 2 ** Math.min(attempt, 5), 3000), signal).catch(() => {});
        attempt++;
        continue;
      }
      attempt = 0;
      let sub: Subscription;
      try {
        sub = await this.c.subscribe(this.name, pos, (ev) => this.apply(ev), { kind: 'map', signal });
      } catch {
        return; // closed
      }
      const again = new Promise<void>((resolve) => (this.resnap = resolve));
      if (this.resnapAsked) this.resnap?.();
      this.resnapAsked = false;
      const ended = await Promise.race([sub.done, again.then(() => undefined)]);
      this.resnap = undefined;
      if (ended === undefined) await sub.close();
      else if (!(ended instanceof ResnapshotError) && !signal.aborted) {
        this.c.config.logger.warn(`redisync: following map ${JSON.stringify(this.name)} failed; loading a new snapshot: ${ended.message}`);
        await sleep(1000, signal).catch(() => {});
      }
    }
  }

  /** bootstrap loads a snapshot into a new replica state and returns the position to follow the channel from. */
  private async bootstrap(): Promise<Position> {
    const started = ++this.loadStarts;
    const kind = await this.c.kind(this.name);
    if (kind !== '' && kind !== 'map') throw new KindError(this.name, kind, 'map');
    const first = await this.c.head(this.name);
    const entries = new Map<string, Entry>();
    const digest = new Digest();
    let last = first;
    if (first.epoch !== '') {
      // Without an epoch the map has no history: any state left belongs to a lost one.
      let cursor = '0';
      do {
        const [next, elems] = await this.c.redis.hscanBuffer(this.state, cursor, 'COUNT', this.opts.scanCount);
        cursor = next.toString();
        for (let i = 0; i + 1 < elems.length; i += 2) {
          const key = elems[i].toString('latin1');
          const v = elems[i + 1];
          const colon = v.indexOf(0x3a);
          const ver = colon > 0 ? Number(v.toString('latin1', 0, colon)) : NaN;
          if (!Number.isSafeInteger(ver) || ver < 1) {
            throw new RedisError(`key ${JSON.stringify(text(key))} of map ${JSON.stringify(this.name)} holds ${JSON.stringify(v.toString('latin1', 0, 40))}, not "<version>:<value>"`);
          }
          entries.set(key, { raw: Buffer.from(v.subarray(colon + 1)), ver }); // HSCAN may repeat a key: the later copy wins
        }
      } while (cursor !== '0');
      for (const [k, e] of entries) digest.add(k, e.ver);
      last = await this.c.head(this.name);
      if (last.epoch !== first.epoch) throw new Error(`map ${JSON.stringify(this.name)} changed epoch during its snapshot`);
    }
    this.stats.snapshots++;
    this.fault = undefined;
    this.entries = entries;
    this.dig = digest;
    this.epoch = first.epoch;
    this.applied = first.seq;
    this.appliedID = first.entry ?? '';
    this.recent = [];
    this.loadStart = started;
    this.readyAt = last.seq;
    this.isReadyNow = this.applied >= this.readyAt;
    for (const [seq, ws] of this.wants) {
      for (const w of ws) w.resolve({ ok: false }); // the replica was replaced: those digests cannot be taken
      this.wants.delete(seq);
    }
    this.notify();
    if (this.stats.snapshots > 1) {
      this.stats.resnapshots++;
      this.c.config.logger.warn(`redisync: map ${JSON.stringify(this.name)} reloaded from a new snapshot (${entries.size} keys, seq ${first.seq})`);
      this.opts.onChange?.({ position: first, pos: formatPosition(first), key: '', keyBytes: Buffer.alloc(0), deleted: false, oldVersion: 0, version: 0, reset: { reason: 'resnapshot' } });
    }
    return first;
  }

  /** apply applies one message of the map's channel. A reset makes the replica load a new snapshot. */
  private apply(ev: Event): void {
    if (ev.reset) {
      this.c.config.logger.warn(`redisync: map ${JSON.stringify(this.name)} channel reset (${ev.reset.reason}); not ready until it has loaded a new snapshot`);
      this.isReadyNow = false;
      this.notify();
      throw new ResnapshotError('new snapshot needed');
    }
    const ops = decodeRecord(ev.data);
    if (!ops) {
      // Not a change record (only a client that bypassed write.lua could append one): skipped,
      // counted; the seq still counts as applied, so that digests compare at the same seq.
      this.stats.badRecords++;
      this.c.config.logger.warn(`redisync: skipped message ${ev.pos} of map ${JSON.stringify(this.name)}: not a change record`);
    }
    const changes: Change<V>[] = [];
    this.epoch = ev.position.epoch;
    for (const o of ops ?? []) {
      const cur = this.entries.get(o.key);
      if (cur && cur.ver >= ev.position.seq) continue; // the snapshot already holds this change or a newer one
      if (cur) this.dig.remove(o.key, cur.ver);
      if (o.del) {
        this.entries.delete(o.key);
      } else {
        this.entries.set(o.key, { raw: o.value, ver: ev.position.seq });
        this.dig.add(o.key, ev.position.seq);
      }
      this.stats.changes++;
      if (this.opts.onChange) changes.push(this.change(ev, o.key, o.del, o.old, o.value));
    }
    this.applied = ev.position.seq;
    this.appliedID = ev.position.entry ?? '';
    this.remember(ev.position);
    if (!this.isReadyNow && this.applied >= this.readyAt) this.isReadyNow = true;
    this.answerWants();
    this.notify();
    for (const ch of changes) this.opts.onChange!(ch);
  }

  /** remember records that the replica applied the change at p. */
  private remember(p: Position): void {
    if (!p.entry) return;
    if (this.recent.length >= 2 * RECENT_MAX) this.recent = this.recent.slice(this.recent.length - RECENT_MAX);
    this.recent.push({ seq: p.seq, id: p.entry, snap: this.loadStart });
  }

  /** verdict is what the replica, as it stands, tells of the write at pos (awaitWrite). */
  private verdict(pos: Position, replied: number): Verdict {
    if (!this.isReadyNow) return 'pending';
    if (this.epoch !== pos.epoch) return this.loadStart > replied ? 'lost' : 'pending';
    if (this.applied < pos.seq) return 'pending';
    if (!pos.entry) return 'held'; // nothing to check it by
    let lo = 0;
    let hi = this.recent.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.recent[mid].seq < pos.seq) lo = mid + 1;
      else hi = mid;
    }
    const a = this.recent[lo];
    if (!a || a.seq !== pos.seq) return 'ask';
    if (a.id === pos.entry) return 'held';
    return a.snap > replied ? 'lost' : 'pending';
  }

  /**
   * askLog reads which entry of the map's log holds pos.seq, after the write's reply: the write
   * is lost if the log is of another epoch, stands below pos.seq (it was rewound), or holds
   * another entry there, and held otherwise. A log that no longer holds pos.seq (trimmed by
   * retention meanwhile) cannot tell; the write then counts as held.
   */
  private async askLog(pos: Position, signal?: AbortSignal): Promise<'held' | 'lost'> {
    const any = anySignal(signal ? [signal, this.ctl.signal] : [this.ctl.signal]);
    let f: Fetched;
    try {
      f = await this.c.fetchRetrying(this.c.keys(this.name), 'map', pos.seq, 1, any.signal);
    } catch (err) {
      if (this.ctl.signal.aborted && !signal?.aborted) throw new ClosedError('map');
      throw err;
    } finally {
      any.dispose();
    }
    if (f.epoch !== pos.epoch || f.head < pos.seq) return 'lost';
    const e = f.entries[0];
    if (!e || e.first > pos.seq) return 'held';
    return lastSeq(e) >= pos.seq && e.id !== '' && e.id !== pos.entry ? 'lost' : 'held';
  }

  /**
   * awaitWrite waits until the replica holds the write at pos (read-your-writes), or finds that
   * the current history does not hold it: a WriteLostError. replied is the count of snapshot
   * reads begun when the write's reply came; a snapshot begun later reads the history after the
   * reply.
   * A replica at or past pos.seq holds the write only if it applied this very entry there: after
   * a failover that lost writes, it may stand on the lost history, under the same seqs, until it
   * finds out and reloads. The write is lost once the replica applies another entry at pos.seq
   * over a snapshot read after the reply, or holds such a snapshot of another epoch (Redis lost
   * its data). A replica that stands past pos.seq without a record of what it applied there (it
   * reloaded past it, or applied more than it remembers since) cannot tell: the log in Redis is
   * asked which entry holds pos.seq.
   */
  private async awaitWrite(pos: Position, replied: number, signal?: AbortSignal): Promise<void> {
    let v = 'pending' as Verdict;
    await this.waitUntil(() => (v = this.verdict(pos, replied)) !== 'pending', signal);
    if (v === 'ask') v = await this.askLog(pos, signal);
    if (v === 'lost') throw new WriteLostError(pos);
  }

  private change(ev: Event, key: string, del: boolean, old: number, raw: Buffer): Change<V> {
    const ch: Change<V> = { position: ev.position, pos: ev.pos, key: text(key), keyBytes: Buffer.from(key, 'latin1'), deleted: del, oldVersion: old, version: ev.position.seq };
    if (!del) {
      ch.raw = raw;
      try {
        ch.value = this.codec.decode(raw);
      } catch (err) {
        ch.error = err as Error;
      }
    }
    return ch;
  }

  // ---- reads ----

  /** get returns a key's value and version from local memory, or undefined when absent. Throws a NotReadyError before the first snapshot has loaded (and while a reload is under way). */
  get(key: string): { value: V; version: number } | undefined {
    if (!this.isReadyNow) throw this.fault ?? new NotReadyError(this.name);
    const e = this.entries.get(bin(key));
    if (!e) return undefined;
    return { value: this.codec.decode(e.raw), version: e.ver };
  }

  /** size is the number of keys in the replica. */
  get size(): number {
    return this.entries.size;
  }

  /** keys lists the replica's keys. */
  keys(): string[] {
    return [...this.entries.keys()].map(text);
  }

  /** position is that of the last change the replica applied (or of its snapshot). */
  get position(): Position {
    return at(this.epoch, this.applied, this.appliedID);
  }

  /** digest returns the replica's digest (24 hex digits) and key count at its position. */
  digest(): { digest: string; keys: number; position: Position } {
    return { digest: this.dig.toString(), keys: this.entries.size, position: this.position };
  }

  /**
   * verify compares the replica with Redis at the same seq: it reads dx, dy and n with the
   * head (one HMGET), then takes the replica's digest when it has applied exactly that seq;
   * if it has moved past it, it reads Redis again. A mismatch makes the replica reload.
   */
  async verify(signal?: AbortSignal): Promise<Verification> {
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) await sleep(10, signal);
      if (this.ctl.signal.aborted) throw new ClosedError('map');
      const f = await this.c.redis.hmget(this.meta, 'epoch', 'seq', 'dx', 'dy', 'n');
      const position = { epoch: f[0] ?? '', seq: Number(f[1] ?? 0) };
      const redis = new Digest(Number(f[2] ?? 0), Number(f[3] ?? 0));
      const redisKeys = Number(f[4] ?? 0);
      const got = await this.digestAt(position, signal);
      if (!got.ok) continue; // the replica moved past that seq, or was reloaded
      const match = got.digest!.equals(redis) && got.keys === redisKeys;
      if (!match) {
        this.stats.divergences++;
        this.c.config.logger.warn(`redisync: map ${JSON.stringify(this.name)} replica disagrees with Redis at seq ${position.seq}; reloading`);
        this.reload();
      }
      return { position, redis: redis.toString(), replica: got.digest!.toString(), redisKeys, replicaKeys: got.keys!, match };
    }
  }

  private digestAt(pos: Position, signal?: AbortSignal): Promise<{ ok: boolean; digest?: Digest; keys?: number }> {
    if (this.isReadyNow && this.epoch === pos.epoch && this.applied === pos.seq) {
      return Promise.resolve({ ok: true, digest: this.dig.clone(), keys: this.entries.size });
    }
    if (this.isReadyNow && this.epoch === pos.epoch && this.applied > pos.seq) return Promise.resolve({ ok: false });
    if (this.ctl.signal.aborted) return Promise.reject(new ClosedError('map'));
    if (signal?.aborted) return Promise.reject(new AbortError(signal.reason));
    return new Promise((resolve, reject) => {
      const off = () => {
        this.ctl.signal.removeEventListener('abort', onAbort);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        off();
        reject(this.ctl.signal.aborted ? new ClosedError('map') : new AbortError(signal?.reason));
      };
      const l = this.wants.get(pos.seq) ?? [];
      l.push({
        epoch: pos.epoch,
        resolve: (d) => {
          off(); // answered: the listeners go, or every wait would leave two behind
          resolve(d);
        },
      });
      this.wants.set(pos.seq, l);
      this.ctl.signal.addEventListener('abort', onAbort, { once: true });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private answerWants(): void {
    for (const [seq, ws] of this.wants) {
      if (seq > this.applied) continue;
      for (const w of ws) {
        if (seq === this.applied && this.isReadyNow && w.epoch === this.epoch) w.resolve({ ok: true, digest: this.dig.clone(), keys: this.entries.size });
        else w.resolve({ ok: false });
      }
      this.wants.delete(seq);
    }
  }

  /** reload marks the replica not ready and loads a new snapshot. */
  reload(): void {
    this.isReadyNow = false;
    this.notify();
    if (this.resnap) this.resnap();
    else this.resnapAsked = true; // asked while loading: once the replica follows again
  }

  // ---- writes ----

  /** set sets key to value and returns the new version (the write's seq). */
  set(key: string, value: V, opts: { signal?: AbortSignal } = {}): Promise<number> {
    return this.write([{ key, value }], opts);
  }

  /** delete deletes key and returns the write's seq; an absent key writes nothing and throws a NotFoundError. */
  delete(key: string, opts: { signal?: AbortSignal } = {}): Promise<number> {
    return this.write([{ key, delete: true }], opts);
  }

  /** compareAndSet sets key only if it is at version (0: absent); otherwise throws a ConflictError. */
  compareAndSet(key: string, value: V, version: number, opts: { signal?: AbortSignal } = {}): Promise<number> {
    return this.write([{ key, value, ifVersion: version }], opts);
  }

  /** update sets key only if it exists, whatever its version; otherwise throws a ConflictError (expectedExists set, actual 0). */
  update(key: string, value: V, opts: { signal?: AbortSignal } = {}): Promise<number> {
    return this.write([{ key, value, mustExist: true }], opts);
  }

  /** compareAndDelete deletes key only if it is at version. */
  compareAndDelete(key: string, version: number, opts: { signal?: AbortSignal } = {}): Promise<number> {
    return this.write([{ key, delete: true, ifVersion: version }], opts);
  }

  /**
   * write applies ops atomically as one change with one seq. A key may appear once per write.
   * A guarded op whose key is not at its version makes the whole write a ConflictError; a
   * delete of an absent key is left out, and a write left with nothing throws a NotFoundError
   * (nothing is appended). Returns once Redis applied it and, unless noWaitOnWrite, once this
   * replica holds this very write too (not another one at its seq, on a history a failover
   * lost). A write Redis acknowledged and then lost throws a WriteLostError with its seq, once
   * the new history shows it: the log holds another write at that seq, or stands below it, or
   * Redis lost the map's history (a new epoch). Retries follow the publishing
   * protocol: never applied twice.
   */
  async write(ops: Op<V>[], opts: { signal?: AbortSignal } = {}): Promise<number> {
    if (this.ctl.signal.aborted) throw new ClosedError('map');
    if (ops.length === 0) throw new InvalidWriteError('no operations');
    const args: (string | Buffer)[] = [];
    const seen = new Set<string>();
    let size = 0;
    for (const o of ops) {
      const kb = Buffer.from(o.key ?? '', 'utf8');
      if (kb.length === 0) throw new InvalidWriteError('empty key');
      if (kb.length > this.opts.maxKeyBytes) throw new InvalidWriteError(`key of ${kb.length} bytes, the limit is ${this.opts.maxKeyBytes}`);
      const b = kb.toString('latin1');
      if (seen.has(b)) throw new InvalidWriteError(`key ${JSON.stringify(o.key)} appears twice in one write`);
      seen.add(b);
      let value: Buffer = Buffer.alloc(0);
      if (!o.delete) {
        value = this.codec.encode(o.value as V);
        if (value.length > this.opts.maxValueBytes) throw new InvalidWriteError(`value of key ${JSON.stringify(o.key)} is ${value.length} bytes, the limit is ${this.opts.maxValueBytes}`);
      }
      if (o.ifVersion !== undefined && (!Number.isSafeInteger(o.ifVersion) || o.ifVersion < 0)) throw new InvalidWriteError(`version ${o.ifVersion} of key ${JSON.stringify(o.key)}`);
      if (o.ifVersion !== undefined && o.mustExist) throw new InvalidWriteError(`key ${JSON.stringify(o.key)} has both ifVersion and mustExist`);
      size += kb.length + value.length;
      args.push(o.delete ? 'd' : 's', kb, value, o.mustExist ? 'e' : o.ifVersion === undefined ? '' : String(o.ifVersion));
    }
    if (size > this.c.config.maxBatchBytes) throw new InvalidWriteError(`${size} bytes in one write, the limit is ${this.c.config.maxBatchBytes}`);
    const entry = randomID(); // the id of the log entry the write appends: the replica tells it from a lost one at the same seq
    const vs = await this.c.execAppend(this.name, scripts().write, [this.state], args, opts.signal, entry);
    const replied = this.loadStarts; // snapshot reads begun later are of the history after the reply
    const s = vs.map((v) => v.toString('latin1'));
    const seq = Number(s[1]);
    const bad = () => new RedisError(`write script returned ${JSON.stringify(s)}`);
    switch (s[2]) {
      case 'ok':
      case 'dup':
        if (!Number.isSafeInteger(seq) || seq < 1) throw bad();
        break;
      case 'notfound':
        throw new NotFoundError(ops.map((o) => o.key));
      case 'conflict': {
        const i = Number(s[3]);
        if (s.length !== 5 || !Number.isSafeInteger(i) || i < 1 || i > ops.length) throw bad();
        throw new ConflictError(ops[i - 1].key, ops[i - 1].ifVersion ?? 0, Number(s[4]), ops[i - 1].mustExist ?? false);
      }
      default:
        throw bad();
    }
    // Read-your-writes: the replica holds this very write, or the history after the reply does not.
    if (!this.opts.noWaitOnWrite) await this.awaitWrite(at(s[0], seq, entry), replied, opts.signal);
    return seq;
  }

  // ---- watch ----

  /**
   * watch streams the map's changes after from, in seq order, each once, from the map's channel
   * (no replica needed). With 'now' the start is fixed when the promise resolves. A reset of the
   * channel comes as a Change with reset set; messages that are not change records are skipped.
   */
  async watch(from: From, opts: { signal?: AbortSignal } = {}): Promise<AsyncIterableIterator<Change<V>> & { start: Position }> {
    const stream = await this.c.events(this.name, from, { kind: 'map', signal: opts.signal });
    const self = this;
    async function* changes(): AsyncGenerator<Change<V>> {
      for await (const ev of stream) {
        if (ev.reset) {
          yield { position: ev.position, pos: ev.pos, key: '', keyBytes: Buffer.alloc(0), deleted: false, oldVersion: 0, version: 0, reset: ev.reset };
          continue;
        }
        for (const o of decodeRecord(ev.data) ?? []) yield self.change(ev, o.key, o.del, o.old, o.value);
      }
    }
    const it = changes() as AsyncGenerator<Change<V>> & { start: Position };
    it.start = stream.start;
    const ret = it.return.bind(it);
    it.return = async (v) => {
      await stream.close(); // also when the loop never started
      return ret(v);
    };
    return it;
  }

  /** close stops the replica (the client stays open). Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.verifyTimer) clearInterval(this.verifyTimer);
      this.c.signal.removeEventListener('abort', this.onClientClose);
      this.ctl.abort(new ClosedError('map'));
      this.notify();
      await this.running;
    })();
    return this.closing;
  }
}
