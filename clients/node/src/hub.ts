// The hub owns the Client's pub/sub connection: one connection carrying every subscription.
// It subscribes each channel that has a local subscriber, decodes each envelope once and offers
// it to those subscribers without ever blocking. When the connection is lost (or replaced) it
// makes a new one, subscribes everything, waits for the replies, and only then asks every
// subscriber to catch up from the log: pub/sub dropped whatever was published meanwhile.
// One idle check per Client reads the heads of all quiet channels in one call (heads.lua).
import type { Client } from './client';
import { decodeEnvelope } from './envelope';
import { sleep, backoff } from './retry';
import type { Conn } from './scripts';
import type { Subscriber } from './subscriber';

export class Hub {
  /** pub/sub channel name → its local subscribers, with the meta key their idle check reads. */
  private readonly subs = new Map<string, { meta: string; set: Set<Subscriber> }>();
  private conn: Conn | undefined;
  private running: Promise<void> | undefined;
  private kick: (() => void) | undefined;
  private kicked = false;
  private wire: Promise<void> = Promise.resolve(); // serializes SUBSCRIBE and UNSUBSCRIBE
  private idleTimer: NodeJS.Timeout | undefined;
  private idleBusy = false;
  private junkLogged = 0;
  private closed = false;
  private stopWait: (() => void) | undefined;

  constructor(private readonly c: Client) {}

  get connected(): boolean {
    return this.conn !== undefined;
  }

  /** add registers s and subscribes its channel; it resolves once Redis answered the SUBSCRIBE (or the connection is down). */
  async add(s: Subscriber, pubsub: string, meta: string): Promise<void> {
    let e = this.subs.get(pubsub);
    if (!e) {
      e = { meta, set: new Set() };
      this.subs.set(pubsub, e);
    }
    e.set.add(s);
    if (!this.idleTimer && !this.closed) {
      this.idleTimer = setInterval(() => void this.checkIdle(), this.c.config.idleCheck);
    }
    if (!this.running && !this.closed) this.running = this.run();
    await this.sync(pubsub);
  }

  /** remove unregisters s, unsubscribing its channel when s was the last local subscriber. */
  async remove(s: Subscriber, pubsub: string): Promise<void> {
    const e = this.subs.get(pubsub);
    if (!e) return;
    e.set.delete(s);
    if (e.set.size === 0) {
      this.subs.delete(pubsub);
      await this.sync(pubsub);
    }
  }

  /** sync makes the connection's subscription to name match whether name has local subscribers. */
  private sync(name: string): Promise<void> {
    const p = this.wire.then(async () => {
      const conn = this.conn;
      if (!conn) return; // the next connection subscribes everything
      const want = this.subs.has(name);
      const sharded = this.c.config.sharded;
      try {
        if (want) await (sharded ? conn.ssubscribe(name) : conn.subscribe(name));
        else await (sharded ? conn.sunsubscribe(name) : conn.unsubscribe(name));
      } catch (err) {
        if (!this.closed) {
          this.c.config.logger.warn(`redisync: pub/sub subscription change failed; reconnecting: ${(err as Error).message}`);
          this.reconnect();
        }
      }
    });
    this.wire = p.catch(() => {});
    return p;
  }

  /** reconnect drops the pub/sub connection; run makes a new one. */
  reconnect(): void {
    this.kicked = true;
    this.kick?.();
  }

  /** run keeps one pub/sub connection up until close. */
  private async run(): Promise<void> {
    let connected = false;
    for (let attempt = 0; !this.closed; ) {
      this.kicked = false;
      const conn = this.c.connect('pubsub');
      let lost!: () => void;
      const down = new Promise<void>((resolve) => (lost = resolve));
      conn.on('close', () => lost());
      conn.on('end', () => lost());
      conn.on('messageBuffer', (ch: Buffer, msg: Buffer) => this.onMessage(ch.toString(), msg));
      conn.on('smessageBuffer', (ch: Buffer, msg: Buffer) => this.onMessage(ch.toString(), msg));
      try {
        await conn.connect();
        await conn.ping();
        const p = this.wire.then(async () => {
          const names = [...this.subs.keys()];
          if (names.length > 0) {
            if (this.c.config.sharded) for (const n of names) await conn.ssubscribe(n);
            else await conn.subscribe(...names);
          }
          this.conn = conn;
        });
        this.wire = p.catch(() => {});
        await p;
      } catch (err) {
        conn.disconnect();
        if (this.closed) break;
        if (attempt === 0 || attempt % 10 === 0) this.c.config.logger.warn(`redisync: pub/sub connection failed; retrying: ${(err as Error).message}`);
        await this.pause(backoff(attempt + 4));
        attempt++;
        continue;
      }
      attempt = 0;
      if (connected) this.c.stats.reconnects++;
      connected = true;
      this.resyncAll();
      const wake = new Promise<void>((resolve) => {
        this.kick = resolve;
        this.stopWait = resolve;
      });
      if (!this.closed && !this.kicked) await Promise.race([down, wake]);
      this.kick = undefined;
      this.conn = undefined;
      conn.disconnect();
      if (!this.closed) this.c.config.logger.warn(this.kicked ? 'redisync: replacing a silent pub/sub connection' : 'redisync: pub/sub connection lost; reconnecting');
    }
  }

  /** pause sleeps, ending early on close. */
  private async pause(ms: number): Promise<void> {
    const ctl = new AbortController();
    this.stopWait = () => ctl.abort();
    await sleep(ms, ctl.signal).catch(() => {});
  }

  private resyncAll(): void {
    for (const { set } of this.subs.values()) for (const s of set) s.askResync();
  }

  /** onMessage runs for each pub/sub message: it must not block. */
  private onMessage(channel: string, msg: Buffer): void {
    const e = this.subs.get(channel);
    if (!e) return;
    const env = msg.length <= this.c.config.maxEnvelopeBytes ? decodeEnvelope(msg) : undefined;
    if (!env) {
      this.c.stats.junk++;
      const now = Date.now();
      if (now - this.junkLogged >= 1000) {
        this.junkLogged = now;
        this.c.config.logger.warn(`redisync: ignored a pub/sub message on ${channel} that is not a redisync envelope (${msg.length} bytes; ${this.c.stats.junk} so far)`);
      }
      return;
    }
    for (const s of e.set) s.offer(env);
  }

  /** checkIdle reads the heads of the channels whose subscriptions heard nothing for half the idle period, in one call, and hands them over. */
  private async checkIdle(): Promise<void> {
    if (this.idleBusy || this.closed) return;
    const due = Date.now() - this.c.config.idleCheck / 2;
    const byMeta = new Map<string, Subscriber[]>();
    for (const { meta, set } of this.subs.values()) {
      for (const s of set) {
        if (s.lastNews > due) continue;
        const l = byMeta.get(meta);
        if (l) l.push(s);
        else byMeta.set(meta, [s]);
      }
    }
    if (byMeta.size === 0) return;
    this.idleBusy = true;
    const metas = [...byMeta.keys()];
    const ctl = new AbortController();
    const t = setTimeout(() => ctl.abort(), this.c.config.idleCheck);
    const onClose = () => ctl.abort();
    this.c.signal.addEventListener('abort', onClose);
    try {
      const heads = await this.c.readHeads(metas, ctl.signal);
      metas.forEach((m, i) => byMeta.get(m)!.forEach((s) => s.offerHead(heads[i])));
    } catch (err) {
      if (!this.closed && !this.c.signal.aborted) this.c.config.logger.warn(`redisync: idle check could not read the channels' heads; retrying: ${(err as Error).message}`);
    } finally {
      clearTimeout(t);
      this.c.signal.removeEventListener('abort', onClose);
      this.idleBusy = false;
    }
  }

  /** close stops the idle check and the connection. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.idleTimer) clearInterval(this.idleTimer);
    this.stopWait?.();
    this.kick?.();
    await this.running;
    this.conn?.disconnect();
  }
}
