import type { Client, Handler } from './client';
import { AbortError, ClosedError } from './errors';
import type { Event, Keys, Kind, Position } from './position';
import type { Subscriber } from './subscriber';

/**
 * Subscription is a running subscription. It always ends, and says why: `done` resolves with
 * the reason (a ClosedError after close(), the handler's error, a KindError, a RedisError).
 */
export class Subscription {
  /** The position the subscription started after: the head read for 'now' (with its entry), the position given, or seq 0 for 'start'. */
  readonly start: Position;
  /** Resolves, never rejects, with why the subscription ended. */
  readonly done: Promise<Error>;
  private readonly ctl = new AbortController();
  private readonly sub: Subscriber;
  private closedByUser = false;

  constructor(c: Client, k: Keys, kind: Kind, start: Position, handler: Handler, signal?: AbortSignal) {
    this.start = { ...start };
    const ctl = this.ctl;
    const onAbort = () => ctl.abort(new ClosedError('subscription'));
    c.signal.addEventListener('abort', onAbort, { once: true });
    signal?.addEventListener('abort', onAbort, { once: true });
    if (c.signal.aborted || signal?.aborted) onAbort(); // an aborted signal fires no event
    const sub = c.newSubscriber(k, kind, (ev, sig) => handler(ev, sig));
    this.sub = sub;
    this.done = (async (): Promise<Error> => {
      try {
        await c.hubAdd(sub, k.pubsub, k.meta);
        await sub.run(start, ctl.signal);
      } catch (err) {
        if (ctl.signal.aborted && (err instanceof AbortError || this.closedByUser || c.closed)) {
          return c.closed && !this.closedByUser ? new ClosedError('client') : new ClosedError('subscription');
        }
        return err instanceof Error ? err : new Error(String(err));
      } finally {
        ctl.abort(new ClosedError('subscription'));
        c.signal.removeEventListener('abort', onAbort);
        signal?.removeEventListener('abort', onAbort);
        await c.hubRemove(sub, k.pubsub).catch(() => {});
      }
      return new ClosedError('subscription'); // not reached: run only ends by throwing
    })();
  }

  /** position is the position of the last event delivered (for a reset, the position it continues after). */
  get position(): Position {
    return this.sub.position;
  }

  /** confirmed is when the subscription last knew it had everything (ms since the Unix epoch), 0 for never. */
  get confirmed(): number {
    return this.sub.confirmed;
  }

  /** close ends the subscription and waits until its handler has returned. Idempotent. (byClient: Client.close is closing it.) */
  async close(byClient = false): Promise<void> {
    if (!byClient) this.closedByUser = true;
    this.ctl.abort(new ClosedError('subscription'));
    await this.done;
  }
}

/**
 * EventStream is a subscription as an async iterator. The consumer's pace is the
 * subscription's: the next event is read only when the last one was taken.
 */
export class EventStream implements AsyncIterableIterator<Event> {
  private sub!: Subscription;
  private queued: { ev: Event; taken: () => void } | undefined;
  private waiter: (() => void) | undefined;
  private ended: Error | undefined;
  private returned = false;

  /** The position the stream started after (see Subscription.start). */
  get start(): Position {
    return this.sub.start;
  }

  attach(sub: Subscription): void {
    this.sub = sub;
    void sub.done.then((err) => {
      this.ended = err;
      this.wake();
    });
  }

  /** push is the subscription's handler: it resolves when the consumer has taken ev. */
  push(ev: Event, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const onAbort = () => {
        if (this.queued?.ev === ev) this.queued = undefined;
        resolve();
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.queued = {
        ev,
        taken: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  async next(): Promise<IteratorResult<Event>> {
    for (;;) {
      const q = this.queued;
      if (q) {
        this.queued = undefined;
        q.taken();
        return { value: q.ev, done: false };
      }
      if (this.ended) {
        if (this.returned) return { value: undefined, done: true };
        throw this.ended;
      }
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  /** return closes the subscription (a `break` out of for await). */
  async return(): Promise<IteratorResult<Event>> {
    this.returned = true;
    const q = this.queued;
    this.queued = undefined;
    q?.taken();
    await this.sub.close();
    return { value: undefined, done: true };
  }

  /** close ends the stream; a pending next() then reports done. */
  async close(): Promise<void> {
    await this.return();
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Event> {
    return this;
  }
}
