// Retry rules shared by publishing, writing and reading (PROTOCOL.md section 2).
import { ReplyError } from 'ioredis';
import { AbortError, KindError, RedisyncError, abortError } from './errors';

/** Redis error replies that end on their own: the same call may pass when repeated. */
const TRANSIENT_REPLIES = ['LOADING', 'BUSY', 'TRYAGAIN', 'MASTERDOWN', 'READONLY', 'CLUSTERDOWN', 'NOREPLICAS'];

/** isReply reports whether err is an error reply of Redis (as opposed to a lost connection). */
export function isReply(err: unknown): boolean {
  return err instanceof ReplyError || (err instanceof Error && err.name === 'ReplyError');
}

/**
 * transient reports whether err may pass if the call is repeated: the connection failed (no
 * reply), or Redis answered with a state that ends on its own (loading, busy, failing over).
 */
export function transient(err: unknown): boolean {
  if (err instanceof AbortError || err instanceof KindError) return false;
  if (isReply(err)) {
    const msg = (err as Error).message;
    return TRANSIENT_REPLIES.some((p) => msg.startsWith(p));
  }
  // Anything else from the connection (closed, reset, refused, timed out) may pass; our own
  // errors and programming errors never do.
  if (err instanceof RedisyncError || err instanceof TypeError || err instanceof RangeError || err instanceof ReferenceError) return false;
  return err instanceof Error;
}

/** kindOf reads the kind out of a script's `WRONGKIND <kind>` error; undefined for other errors. */
export function wrongKind(err: unknown): string | undefined {
  if (!isReply(err)) return undefined;
  const m = /^WRONGKIND (\S+)/.exec((err as Error).message);
  return m ? m[1] : undefined;
}

/** sleep waits ms, or rejects with an AbortError (a ClosedError when closing aborted it) when signal aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal.reason));
    const onAbort = () => {
      clearTimeout(t);
      reject(abortError(signal?.reason));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** backoff is the wait before retry number attempt (0-based): 5 ms doubling up to 1 s, as the Go client. */
export function backoff(attempt: number): number {
  return Math.min(5 * 2 ** Math.min(attempt, 8), 1000);
}

/** abortable settles like p, or rejects with an AbortError when signal aborts first. */
export function abortable<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) {
    p.catch(() => {});
    return Promise.reject(abortError(signal.reason));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      p.catch(() => {});
      reject(abortError(signal.reason));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
