import Redis, { Cluster, RedisOptions } from 'ioredis';
import { ClientOptions, Config, withDefaults } from './config';
import { decodeEnvelope, chainID, Envelope } from './envelope';
import { AbortError, ClosedError, EmptyBatchError, KindError, RedisError, RedisyncError, TooLargeError, abortError } from './errors';
import { Hub } from './hub';
import { Event, From, Keys, Kind, Position, at, checkName, formatPosition, keysFor, parsePosition } from './position';
import { PubState, execAppend } from './publish';
import { abortable, backoff, sleep, transient, wrongKind } from './retry';
import { Conn, Script, scripts } from './scripts';
import { Fetched, Parted, Subscriber } from './subscriber';
import { Stats, consoleLogger, newStats } from './stats';
import { EventStream, Subscription } from './subscription';
import { randomID } from './id';
import { MapOptions, ReplicatedMap } from './map';


/** SubscribeOptions tune one subscription. */
export interface SubscribeOptions {
  /** Ends the subscription (and, before it started, the subscribe call) when aborted. */
  signal?: AbortSignal;
  /** The kind of name followed: 'channel' (default), or 'map' for a map's change log. */
  kind?: Kind;
}

/** Handler handles one event; calls are sequential, and a subscription waits for each to settle. Throwing ends the subscription with that error. signal aborts when the subscription is closed. */
export type Handler = (ev: Event, signal: AbortSignal) => void | Promise<void>;

/** Retention is how much of a channel's log Redis keeps (PROTOCOL.md section 6): 0 means no limit. */
export interface Retention {
  maxLen: number;
  /** In ms. */
  maxAge: number;
}

/**
 * Client publishes to and subscribes to redisync channels on one Redis, wire-compatible with
 * the Go implementation (PROTOCOL.md). It holds one command connection and, once something is
 * subscribed, one pub/sub connection carrying every subscription. close() ends everything it
 * opened.
 */
export class Client {
  readonly config: Config;
  /** The producer id of this client's idempotency sets (PROTOCOL.md section 1). */
  readonly producer = randomID();
  readonly stats: Stats = newStats();
  /** The command connection (ioredis), for callers that need Redis beside the protocol. */
  readonly redis: Conn;
  /** Times the command connection was lost: a call in flight then is in doubt. */
  cmdCloses = 0;

  private readonly pubs = new Map<string, PubState>();
  private readonly hub: Hub;
  private readonly closer = new AbortController();
  private readonly subs = new Set<Subscription>();
  private readonly maps = new Set<ReplicatedMap<unknown>>();
  /** Marks of where a history parted still being written (markParted): close() waits for them. */
  private readonly marks = new Set<Promise<void>>();
  private closing: Promise<void> | undefined;

  constructor(options: ClientOptions = {}) {
    this.config = withDefaults(options, consoleLogger);
    this.redis = this.connect('command');
    this.redis.on('close', () => this.cmdCloses++);
    this.hub = new Hub(this);
  }

  /** connect makes a connection for purpose, with the retry options the protocol needs. */
  connect(purpose: 'command' | 'pubsub'): Conn {
    // With Sentinel (redisOptions.sentinels) and no url, ioredis asks the sentinels for the primary.
    const url = this.config.url ?? (this.config.redisOptions?.sentinels ? undefined : 'redis://127.0.0.1:6379');
    const make = (o: RedisOptions) => (url === undefined ? new Redis(o) : new Redis(url, o));
    const conn = this.config.connect
      ? this.config.connect(purpose)
      : make({
          ...this.config.redisOptions,
          lazyConnect: purpose === 'pubsub',
          ...(purpose === 'command'
            ? {
                // Commands wait for a reconnect; a command cut off in flight is sent again on
                // the new connection (the same arguments, so the same idempotency token).
                maxRetriesPerRequest: null,
                autoResendUnfulfilledCommands: true,
                retryStrategy: (n: number) => Math.min(50 * 2 ** Math.min(n, 5), 1000),
              }
            : {
                // The hub makes a new pub/sub connection itself, subscribes, then catches up.
                retryStrategy: () => null,
                autoResubscribe: false,
                enableOfflineQueue: false,
                maxRetriesPerRequest: 0,
              }),
        });
    conn.on('error', () => {}); // failures are seen by the calls that hit them
    return conn;
  }

  /** The client's own AbortSignal: aborted by close(). */
  get signal(): AbortSignal {
    return this.closer.signal;
  }

  get closed(): boolean {
    return this.closer.signal.aborted;
  }

  private check(): void {
    if (this.closed) throw new ClosedError();
  }

  /** keys returns the Redis names of channel name (PROTOCOL.md section 1); it throws an InvalidNameError for a bad name. */
  keys(name: string): Keys {
    return keysFor(this.config.prefix, name, this.producer);
  }

  // ---- publishing (PROTOCOL.md section 2) ----

  /** pubState returns the publishing state (tokens, group commit) of channel name. */
  pubState(name: string): PubState {
    this.check();
    let st = this.pubs.get(name);
    if (!st) {
      st = new PubState(this, this.keys(name));
      this.pubs.set(name, st);
    }
    return st;
  }

  /**
   * publish appends data to the channel's log and announces it, returning its position once
   * Redis has accepted it. Transient failures are retried with the same token for up to half
   * the idempotency window (never appended twice); concurrent calls on one channel are
   * committed together, each with its own seq.
   */
  async publish(name: string, data: Buffer | string, opts: { signal?: AbortSignal } = {}): Promise<Position> {
    return this.publishBatch(name, [data], opts);
  }

  /**
   * publishBatch appends msgs atomically in one script call: contiguous seqs, msgs[i] at the
   * returned seq + i, nothing between them. Returns the position of the first.
   */
  async publishBatch(name: string, msgs: (Buffer | string)[], opts: { signal?: AbortSignal } = {}): Promise<Position> {
    const st = this.pubState(name);
    if (!Array.isArray(msgs)) throw new TypeError(`redisync: publishBatch takes an array of messages, not ${typeof msgs}`);
    if (msgs.length === 0) throw new EmptyBatchError();
    const cfg = this.config;
    if (msgs.length > cfg.maxBatchMessages) throw new TooLargeError(`${msgs.length} messages in a batch, the limit is ${cfg.maxBatchMessages}`);
    // Checked here, for this caller alone: a message that is not bytes would fail the whole group commit.
    const bufs = msgs.map((m: unknown, i) => {
      if (typeof m === 'string') return Buffer.from(m, 'utf8');
      if (Buffer.isBuffer(m)) return m;
      if (m instanceof Uint8Array) return Buffer.from(m.buffer, m.byteOffset, m.byteLength);
      throw new TypeError(`redisync: message ${i} is ${m === null ? 'null' : typeof m}, not a string, Buffer or Uint8Array`);
    });
    let size = 0;
    for (const b of bufs) {
      if (b.length > cfg.maxMessageBytes) throw new TooLargeError(`${b.length} bytes, the limit is ${cfg.maxMessageBytes}`);
      size += b.length;
    }
    if (size > cfg.maxBatchBytes) throw new TooLargeError(`${size} bytes in a batch, the limit is ${cfg.maxBatchBytes}`);
    return st.enqueue(bufs, size, opts.signal);
  }

  /**
   * execAppend runs an appending script (lib.lua + its own file) on channel name with the
   * protocol of publishing: a fresh token, the low-water mark, retries with the same
   * arguments. Maps use it with write.lua. entry is the id of the log entry it appends (ID).
   */
  async execAppend(name: string, script: Script, extraKeys: string[], args: (string | Buffer)[], signal?: AbortSignal, entry = randomID()): Promise<Buffer[]> {
    const st = this.pubState(name);
    return execAppend(this, st, script, extraKeys, args, signal, entry);
  }

  /**
   * openMap opens a replica of the map called name (PROTOCOL.md section 7) and starts loading
   * it; `await map.ready()` waits for it. map.close() stops it; client.close() stops it too.
   */
  openMap<V = Buffer>(name: string, options: MapOptions<V> = {}): ReplicatedMap<V> {
    this.check();
    const m = new ReplicatedMap<V>(this, name, options);
    this.maps.add(m as ReplicatedMap<unknown>);
    return m;
  }

  // ---- reading (PROTOCOL.md section 4) ----

  /** fetch runs fetch.lua once. A log entry that does not parse is an error (a transient one: see fetchRetrying). */
  async fetch(k: Keys, kind: Kind | '', from: number, count: number, signal?: AbortSignal): Promise<Fetched> {
    let reply: unknown;
    try {
      reply = await abortable(
        scripts().fetch.run(this.redis, [k.meta, k.log], [String(from), String(count), String(this.config.maxEnvelopeBytes), kind]),
        signal,
      );
    } catch (err) {
      const is = wrongKind(err);
      if (is !== undefined) throw new KindError(k.name, is, kind || (is === 'map' ? 'channel' : 'map'));
      throw err;
    }
    if (!Array.isArray(reply) || reply.length < 3 || !reply.every((v) => Buffer.isBuffer(v))) {
      throw new RedisError(`fetch script returned ${String(reply).slice(0, 80)}`);
    }
    const vs = reply as Buffer[];
    const head = Number(vs[1].toString('latin1'));
    if (!Number.isSafeInteger(head) || head < 0) throw new RedisError(`channel head ${JSON.stringify(vs[1].toString('latin1'))} is not a seq`);
    const entries: Envelope[] = [];
    for (const v of vs.slice(3)) {
      const env = decodeEnvelope(v);
      if (!env) throw new LogEntryError(k.name, v);
      entries.push(env);
    }
    return { epoch: vs[0].toString('latin1'), head, tip: chainID(vs[2].toString('latin1')), entries };
  }

  /** fetchRetrying is fetch, retrying transient failures (and log entries that do not parse) until signal aborts. */
  async fetchRetrying(k: Keys, kind: Kind | '', from: number, count: number, signal: AbortSignal): Promise<Fetched> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.fetch(k, kind, from, count, signal);
      } catch (err) {
        if (signal.aborted) throw abortError(signal.reason);
        if (!transient(err)) {
          if (err instanceof RedisyncError) throw err;
          throw new RedisError(`read channel ${JSON.stringify(k.name)}: ${(err as Error).message}`, err);
        }
        if (attempt === 3 || err instanceof LogEntryError) {
          this.config.logger.warn(`redisync: reading the log of ${JSON.stringify(k.name)} keeps failing; retrying: ${(err as Error).message}`);
        }
        await sleep(backoff(attempt), signal);
      }
    }
  }

  /**
   * markParted records, best effort and in the background, that the history of channel k's
   * epoch parted at seq (mark.lua, PROTOCOL.md section 5); a failure is only logged at debug.
   * A user that may not write (a read-only ACL user) leaves no mark.
   */
  markParted(k: Keys, epoch: string, seq: number): void {
    if (this.closed) return;
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(new Error('timed out after 5 s')), 5000);
    const any = anySignal([this.signal, timeout.signal]);
    const p: Promise<void> = abortable(scripts().mark.run(this.redis, [k.meta], [epoch, String(seq)]), any.signal)
      .then(
        () => {},
        (err) => {
          if (!this.closed) this.config.logger.debug?.(`redisync: could not record where the history of ${JSON.stringify(k.name)} parted: ${(err as Error).message}`);
        },
      )
      .finally(() => {
        clearTimeout(timer);
        any.dispose();
        this.marks.delete(p);
      });
    this.marks.add(p);
  }

  /**
   * readParted reads where channel k's history last parted (the meta hash's `parted` field,
   * "EPOCH SEQ MS"): undefined when there is no mark; it rejects when the mark does not parse.
   */
  async readParted(k: Keys, signal?: AbortSignal): Promise<Parted | undefined> {
    const v = await abortable(this.redis.hget(k.meta, 'parted'), signal);
    if (v === null) return undefined;
    const f = v.trim().split(/\s+/);
    if (f.length !== 3 || !/^[0-9]+$/.test(f[1]) || !/^[+-]?[0-9]+$/.test(f[2])) throw new RedisError(`parted mark ${JSON.stringify(v)}`);
    const seq = Number(f[1]);
    const ms = Number(f[2]);
    if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(ms)) throw new RedisError(`parted mark ${JSON.stringify(v)}`);
    return { epoch: f[0], seq, at: ms };
  }

  /** head returns the position of the newest message of a channel, with the id of its log entry when known (epoch '' and seq 0 without history). */
  async head(name: string): Promise<Position> {
    this.check();
    const f = await this.fetchRetrying(this.keys(name), '', 1, 0, this.signal);
    return at(f.epoch, f.head, f.tip);
  }

  /** kind returns what name holds: 'channel', 'map', or '' when nothing was written under it yet. */
  async kind(name: string): Promise<Kind | ''> {
    this.check();
    const v = await abortable(this.redis.hget(this.keys(name).meta, 'kind'), this.signal);
    return (v ?? '') as Kind | '';
  }

  /** retention returns the retention stored with a channel, or undefined when it has none yet (its first publish stores the publisher's). */
  async retention(name: string): Promise<Retention | undefined> {
    this.check();
    const [l, a] = await abortable(this.redis.hmget(this.keys(name).meta, 'maxlen', 'maxage'), this.signal);
    if (l === null || a === null) return undefined;
    return { maxLen: Number(l), maxAge: Number(a) };
  }

  /** setRetention stores a channel's retention; every later publish trims by it, whoever makes it. */
  async setRetention(name: string, r: Retention): Promise<void> {
    this.check();
    if (!Number.isSafeInteger(r.maxLen) || r.maxLen < 0 || !Number.isSafeInteger(r.maxAge) || r.maxAge < 0) {
      throw new RangeError('redisync: retention maxLen and maxAge are whole numbers, 0 for no limit');
    }
    await abortable(this.redis.hset(this.keys(name).meta, 'maxlen', String(r.maxLen), 'maxage', String(r.maxAge)), this.signal);
  }

  // ---- subscribing (PROTOCOL.md section 5) ----

  /**
   * start turns a From into a start position; 'now' reads the head (checking the kind) before
   * it returns, with the id of the newest entry (the subscription's tip and anchor).
   */
  private async start(k: Keys, from: From, kind: Kind, signal?: AbortSignal): Promise<Position> {
    if (from === 'now') {
      const any = anySignal(signal ? [signal, this.signal] : [this.signal]);
      try {
        const f = await this.fetchRetrying(k, kind, 1, 0, any.signal);
        return at(f.epoch, f.head, f.tip);
      } finally {
        any.dispose();
      }
    }
    if (from === 'start') return at('', 0);
    const p = typeof from === 'string' ? parsePosition(from) : from;
    if (!Number.isSafeInteger(p.seq) || p.seq < 0) throw new RangeError(`redisync: position seq ${p.seq} is not a whole number`);
    if (p.entry !== undefined && typeof p.entry !== 'string') throw new TypeError('redisync: position entry is not a string');
    return at(p.epoch, p.seq, p.entry ?? '');
  }

  /**
   * subscribe delivers the channel's messages after `from` to handler, each exactly once and in
   * seq order, until the subscription is closed, the handler throws, or Redis refuses a read
   * for good; messages that can no longer be delivered come as a reset event. With 'now', the
   * head is read before subscribe returns: every message whose publish begins after that is
   * delivered (subscription.start says which position was fixed).
   */
  async subscribe(name: string, from: From, handler: Handler, opts: SubscribeOptions = {}): Promise<Subscription> {
    this.check();
    if (opts.signal?.aborted) throw new AbortError(opts.signal.reason);
    const k = this.keys(name);
    const kind = opts.kind ?? 'channel';
    const start = await this.start(k, from, kind, opts.signal);
    this.check();
    const sub = new Subscription(this, k, kind, start, handler, opts.signal);
    this.subs.add(sub);
    sub.done.then(() => this.subs.delete(sub));
    return sub;
  }

  /**
   * events is subscribe as an async iterator: `for await (const ev of await client.events(...))`.
   * The start is fixed when the returned promise resolves. Breaking out of the loop closes the
   * subscription; any other end is thrown by the iterator (a KindError, a RedisError, a ClosedError).
   */
  async events(name: string, from: From, opts: SubscribeOptions = {}): Promise<EventStream> {
    const stream = new EventStream();
    stream.attach(await this.subscribe(name, from, (ev, sig) => stream.push(ev, sig), opts));
    return stream;
  }

  /** newSubscriber wires a Subscriber to this client's Redis and hub. */
  newSubscriber(k: Keys, kind: Kind, deliver: (ev: Event, signal: AbortSignal) => Promise<void> | void): Subscriber {
    return new Subscriber({
      fetch: (from, count, signal) => this.fetchRetrying(k, kind, from, count, signal),
      deliver,
      reconnect: () => this.hub.reconnect(),
      mark: (epoch, seq) => this.markParted(k, epoch, seq),
      parted: (signal) => this.readParted(k, signal),
      stats: this.stats,
      logger: this.config.logger,
      name: k.name,
      fetchCount: this.config.fetchCount,
      bufferSize: this.config.bufferSize,
      rewindMemory: this.config.rewindMemory,
    });
  }

  /** hubAdd registers a running subscriber with the pub/sub connection; it resolves once SUBSCRIBE was answered (or the connection is down, when the reconnect catches up). */
  hubAdd(s: Subscriber, pubsub: string, meta: string): Promise<void> {
    return this.hub.add(s, pubsub, meta);
  }

  hubRemove(s: Subscriber, pubsub: string): Promise<void> {
    return this.hub.remove(s, pubsub);
  }

  /** pubsubConnected reports whether the pub/sub connection is up (for tests and health checks). */
  get pubsubConnected(): boolean {
    return this.hub.connected;
  }

  /** readHeads reads epoch, head and tip of several channels with heads.lua: one call, or one per channel when sharded. */
  async readHeads(metas: string[], signal: AbortSignal): Promise<Fetched[]> {
    const calls = this.config.sharded ? metas.map((m) => [m]) : [metas];
    const out: Fetched[] = [];
    for (const keys of calls) {
      const reply = await abortable(scripts().heads.run(this.redis, keys, []), signal);
      if (!Array.isArray(reply) || reply.length !== 3 * keys.length) throw new RedisError(`heads script returned ${String(reply).slice(0, 80)}`);
      for (let i = 0; i < reply.length; i += 3) {
        const w = (reply as Buffer[]).slice(i, i + 3).map((b) => b.toString('latin1'));
        out.push({ epoch: w[0], head: Number(w[1]), tip: chainID(w[2]), entries: [] });
      }
    }
    return out;
  }

  /**
   * close ends every subscription (waiting for their handlers), the pub/sub connection and the
   * command connection. Calls in flight fail with a ClosedError. It is idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closer.abort(new ClosedError());
      await Promise.all([...this.maps].map((m) => m.close()));
      await Promise.all([...this.subs].map((s) => s.close(true)));
      await this.hub.close();
      await Promise.all([...this.marks]);
      this.redis.disconnect();
    })();
    return this.closing;
  }
}

/** LogEntryError: a log entry that does not parse as an envelope. The read is retried, never skipped (PROTOCOL.md section 4). */
export class LogEntryError extends Error {
  constructor(name: string, entry: Buffer) {
    super(`a log entry of ${JSON.stringify(name)} is not an envelope: ${JSON.stringify(entry.toString('latin1', 0, 40))}`);
    this.name = 'LogEntryError';
  }
}

/** anySignal aborts when any of signals does (AbortSignal.any needs Node 20.3); dispose removes its listeners. */
export function anySignal(signals: AbortSignal[]): { signal: AbortSignal; dispose(): void } {
  const c = new AbortController();
  const offs: (() => void)[] = [];
  for (const s of signals) {
    if (s.aborted) {
      c.abort(s.reason);
      break;
    }
    const f = () => c.abort(s.reason);
    s.addEventListener('abort', f, { once: true });
    offs.push(() => s.removeEventListener('abort', f));
  }
  return { signal: c.signal, dispose: () => offs.forEach((f) => f()) };
}

export { checkName, formatPosition, Cluster };
