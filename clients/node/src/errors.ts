// Typed errors. Each class has a stable `code` so that callers can test either `instanceof` or
// `err.code`, the way Node's own errors work.

/** RedisyncError is the base class of every error this package throws on purpose. */
export class RedisyncError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** ClosedError: a call on a closed Client, Map or Subscription; also ends their streams. */
export class ClosedError extends RedisyncError {
  constructor(what = 'client') {
    super('ERR_REDISYNC_CLOSED', `redisync: ${what} closed`);
  }
}

/** InvalidNameError: a channel or map name that is empty, too long, or holds a brace or a control character. */
export class InvalidNameError extends RedisyncError {
  constructor(message: string) {
    super('ERR_REDISYNC_INVALID_NAME', `redisync: invalid name: ${message}`);
  }
}

/** InvalidPositionError: text that is not a position (EPOCH:SEQ, EPOCH:SEQ:ENTRY or SEQ). */
export class InvalidPositionError extends RedisyncError {
  constructor(message: string) {
    super('ERR_REDISYNC_INVALID_POSITION', `redisync: invalid position: ${message}`);
  }
}

/** TooLargeError: a message or batch beyond the configured limits. Nothing was published. */
export class TooLargeError extends RedisyncError {
  constructor(message: string) {
    super('ERR_REDISYNC_TOO_LARGE', `redisync: too large: ${message}`);
  }
}

/** EmptyBatchError: publishBatch with no message. */
export class EmptyBatchError extends RedisyncError {
  constructor() {
    super('ERR_REDISYNC_EMPTY_BATCH', 'redisync: empty batch');
  }
}

/**
 * KindError: the name holds a channel where a map was wanted, or the reverse (the scripts'
 * `WRONGKIND <kind>` error, PROTOCOL.md section 1.1). Nothing was written.
 */
export class KindError extends RedisyncError {
  readonly channel: string;
  /** What the name is: "channel" or "map". */
  readonly kind: string;
  /** What the call wanted. */
  readonly want: string;
  constructor(name: string, kind: string, want: string) {
    super('ERR_REDISYNC_WRONG_KIND', `redisync: ${JSON.stringify(name)} is a ${kind}, not a ${want}`);
    this.channel = name;
    this.kind = kind;
    this.want = want;
  }
}

/**
 * UnknownOutcomeError: a publish or write could not be confirmed within half of the
 * idempotency window; it may or may not have been appended, and retrying it could append it twice.
 */
export class UnknownOutcomeError extends RedisyncError {
  constructor(message: string, cause?: unknown) {
    super('ERR_REDISYNC_UNKNOWN_OUTCOME', `redisync: outcome unknown: ${message}`, { cause });
  }
}

/** RedisError: Redis refused a call for good (a permission denied, say), or answered nonsense. */
export class RedisError extends RedisyncError {
  constructor(message: string, cause?: unknown) {
    super('ERR_REDISYNC_REDIS', `redisync: ${message}`, { cause });
  }
}

/** AbortError: the caller's AbortSignal ended the call. */
export class AbortError extends RedisyncError {
  /** The call had been sent to Redis: it may or may not have been applied (as with the Go client's context). */
  readonly inFlight: boolean;
  constructor(cause?: unknown, inFlight = false) {
    super('ABORT_ERR', inFlight ? 'redisync: aborted while the call was in flight: it may or may not have been applied' : 'redisync: aborted', { cause });
    this.inFlight = inFlight;
  }
}

/** abortError is the error of a wait cut off by a signal aborted with reason: the ClosedError that closing gives as its reason, else an AbortError. */
export function abortError(reason: unknown): RedisyncError {
  return reason instanceof ClosedError ? reason : new AbortError(reason);
}

/** NotFoundError: a map key that is absent; for a delete, nothing was written. */
export class NotFoundError extends RedisyncError {
  readonly keys: string[];
  constructor(keys: string[], wrote = false) {
    super('ERR_REDISYNC_NOT_FOUND', `redisync: key ${keys.map((k) => JSON.stringify(k)).join(', ')} not found${wrote ? '' : ' (nothing was written)'}`);
    this.keys = keys;
  }
}

/** NotReadyError: a map read before the replica has loaded its first snapshot. */
export class NotReadyError extends RedisyncError {
  constructor(name: string) {
    super('ERR_REDISYNC_NOT_READY', `redisync: replica of map ${JSON.stringify(name)} not ready`);
  }
}

/** ConflictError: a guarded write whose key was not at the expected version. Nothing was written. */
export class ConflictError extends RedisyncError {
  readonly key: string;
  /** The version the write required (0: absent). */
  readonly expected: number;
  /** The key's version in Redis (0: absent). */
  readonly actual: number;
  /** The write required the key to exist, whatever its version (mustExist). */
  readonly expectedExists: boolean;
  constructor(key: string, expected: number, actual: number, expectedExists = false) {
    super(
      'ERR_REDISYNC_CONFLICT',
      expectedExists
        ? `redisync: version conflict on key ${JSON.stringify(key)}: expected it to exist, found it absent`
        : `redisync: version conflict on key ${JSON.stringify(key)}: expected version ${expected}, found ${actual}`,
    );
    this.key = key;
    this.expected = expected;
    this.actual = actual;
    this.expectedExists = expectedExists;
  }
}

/**
 * WriteLostError: a write that Redis applied and acknowledged and then lost: a failover to a
 * replica that had not received it (asynchronous replication), which then gave seq to another
 * write or has not reached it, or a loss of the map's whole history (a new epoch). Nothing of
 * the write remains; write again if it still matters.
 */
export class WriteLostError extends RedisyncError {
  /** The seq Redis gave the write, which the current history does not hold. */
  readonly seq: number;
  constructor(pos: { epoch: string; seq: number }) {
    super('ERR_REDISYNC_WRITE_LOST', `redisync: write lost by a failover after it was acknowledged: ${pos.epoch}:${pos.seq}`);
    this.seq = pos.seq;
  }
}

/** InvalidWriteError: a write that cannot be made: no operation, an empty, repeated or oversized key, an oversized value. */
export class InvalidWriteError extends RedisyncError {
  constructor(message: string) {
    super('ERR_REDISYNC_INVALID_WRITE', `redisync: invalid write: ${message}`);
  }
}
