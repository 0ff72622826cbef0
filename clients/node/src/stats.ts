/** Stats are a Client's counters since it was created; they only grow. */
export interface Stats {
  /** Messages appended by this client. */
  published: number;
  /** Script calls that appended them (fewer when publishes were grouped). */
  publishCalls: number;
  /** Script calls repeated after a transient failure. */
  publishRetries: number;
  /** Messages handed to subscribers. */
  delivered: number;
  /** Reset events handed to subscribers. */
  resets: number;
  /** Messages delivered from the log rather than from pub/sub. */
  fromLog: number;
  /** Catch-ups started by a hole in the live sequence. */
  gapsFilled: number;
  /** Idle head reads that found messages pub/sub never brought. */
  tailLosses: number;
  /** Live messages dropped as already delivered. */
  duplicates: number;
  /** Live envelopes dropped because a subscription's queue was full. */
  overflows: number;
  /** Pub/sub messages that were not valid envelopes (or larger than maxEnvelopeBytes). */
  junk: number;
  /** Pub/sub connections re-established after one was lost or replaced. */
  reconnects: number;
  /** Rewound resets: the log no longer held messages a subscription delivered. */
  rewinds: number;
  /** Publishes given a seq at or below one this client was given before in the same epoch: a failover lost acknowledged messages. */
  seqsReused: number;
}

export function newStats(): Stats {
  return {
    published: 0, publishCalls: 0, publishRetries: 0, delivered: 0, resets: 0, fromLog: 0, gapsFilled: 0,
    tailLosses: 0, duplicates: 0, overflows: 0, junk: 0, reconnects: 0, rewinds: 0, seqsReused: 0,
  };
}

/** Logger receives warnings (junk, reconnects, failures being retried), resets when it has info, and best-effort failures (a mark of where a history parted not recorded) when it has debug. */
export interface Logger {
  warn(msg: string): void;
  info?(msg: string): void;
  debug?(msg: string): void;
}

/** The default logger: warnings to standard error, nothing else. */
export const consoleLogger: Logger = { warn: (m) => console.warn(m) };

/** A logger that says nothing. */
export const silentLogger: Logger = { warn: () => {} };
