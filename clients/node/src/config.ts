import type { Cluster, Redis, RedisOptions } from 'ioredis';
import type { Logger } from './stats';

/** Defaults of the zero (undefined) fields of ClientOptions; the same as the Go client's channel.Default*. */
export const DEFAULT_PREFIX = 'redisync';
export const DEFAULT_MAX_LEN = 1_000_000;
export const DEFAULT_MAX_MESSAGE_BYTES = 1 << 20;
export const DEFAULT_MAX_BATCH_MESSAGES = 1000;
export const DEFAULT_MAX_BATCH_BYTES = 4 << 20;
export const DEFAULT_IDEMPOTENCY_WINDOW_MS = 5 * 60 * 1000;
export const DEFAULT_IDLE_CHECK_MS = 1000;
export const DEFAULT_FETCH_COUNT = 500;
export const DEFAULT_BUFFER_SIZE = 1024;
export const DEFAULT_MAX_ENVELOPE_BYTES = 8 << 20;
export const DEFAULT_REWIND_MEMORY = 1024;

/** ClientOptions configure a Client. An omitted field takes the default named in its comment. */
export interface ClientOptions {
  /** Redis URL: redis://[user:password@]host:port[/db], or rediss:// for TLS. Default redis://127.0.0.1:6379. */
  url?: string;
  /**
   * Options passed to ioredis for every connection (password, tls, or `sentinels` and `name`
   * to find the primary through Sentinel). The client sets the retry options itself.
   */
  redisOptions?: RedisOptions;
  /**
   * connect, when set, makes every connection instead of url and redisOptions: the command
   * connection first, then each pub/sub connection (the client reconnects pub/sub by making a
   * new one, so set retryStrategy to return null for 'pubsub'). For a Redis Cluster return an
   * ioredis Cluster and set `sharded` (SPUBLISH/SSUBSCRIBE), or leave it unset for PUBLISH.
   */
  connect?: (purpose: 'command' | 'pubsub') => Redis | Cluster;
  /** Prefix of every Redis key and pub/sub channel name. Default DEFAULT_PREFIX ("redisync"). */
  prefix?: string;
  /** Retention by length stored with the channels this client creates: keep at least this many newest messages; 0 or negative: no limit. Default DEFAULT_MAX_LEN. */
  maxLen?: number;
  /** Retention by age stored with the channels this client creates, in ms; 0: no limit (the default). */
  maxAge?: number;
  /** The largest message, in bytes. Default DEFAULT_MAX_MESSAGE_BYTES (1 MiB). */
  maxMessageBytes?: number;
  /** The most messages one script call appends (publishBatch, and grouped publishes). Default DEFAULT_MAX_BATCH_MESSAGES. */
  maxBatchMessages?: number;
  /** The most bytes of messages one script call appends. Default DEFAULT_MAX_BATCH_BYTES (4 MiB). */
  maxBatchBytes?: number;
  /** How long Redis remembers a publish call (IDEMTTL), in ms; a call is retried for at most half of it. Default DEFAULT_IDEMPOTENCY_WINDOW_MS (5 minutes). */
  idempotencyWindow?: number;
  /** How long a subscription waits without live envelopes before the channel's head is read, in ms. Default DEFAULT_IDLE_CHECK_MS. */
  idleCheck?: number;
  /** Log entries read per fetch when catching up. Default DEFAULT_FETCH_COUNT. */
  fetchCount?: number;
  /** Live envelopes queued per subscription; beyond it they are dropped and the subscription catches up from the log. Default DEFAULT_BUFFER_SIZE. */
  bufferSize?: number;
  /** A pub/sub envelope larger than this is junk; also the BUDGET of a fetch. Default DEFAULT_MAX_ENVELOPE_BYTES (8 MiB). */
  maxEnvelopeBytes?: number;
  /** Log entries a subscription remembers having delivered, to locate a rewind. Default DEFAULT_REWIND_MEMORY. */
  rewindMemory?: number;
  /** Publish with SPUBLISH and subscribe with SSUBSCRIBE (Redis Cluster sharded pub/sub). Default false. */
  sharded?: boolean;
  /** Receives warnings. Default: standard error. */
  logger?: Logger;
}

export type Config = Required<Omit<ClientOptions, 'url' | 'redisOptions' | 'connect'>> & Pick<ClientOptions, 'url' | 'redisOptions' | 'connect'>;

function positiveInt(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`redisync: ${name} ${v} is not a whole number of at least 1`);
}

/** withDefaults fills in the defaults and says which field cannot work. */
export function withDefaults(o: ClientOptions, logger: Logger): Config {
  const c: Config = {
    url: o.url,
    redisOptions: o.redisOptions,
    connect: o.connect,
    prefix: o.prefix || DEFAULT_PREFIX,
    maxLen: o.maxLen === undefined || o.maxLen === 0 ? DEFAULT_MAX_LEN : Math.max(o.maxLen, 0),
    maxAge: o.maxAge ?? 0,
    maxMessageBytes: o.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    maxBatchMessages: o.maxBatchMessages ?? DEFAULT_MAX_BATCH_MESSAGES,
    maxBatchBytes: o.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES,
    idempotencyWindow: o.idempotencyWindow ?? DEFAULT_IDEMPOTENCY_WINDOW_MS,
    idleCheck: o.idleCheck ?? DEFAULT_IDLE_CHECK_MS,
    fetchCount: o.fetchCount ?? DEFAULT_FETCH_COUNT,
    bufferSize: o.bufferSize ?? DEFAULT_BUFFER_SIZE,
    maxEnvelopeBytes: o.maxEnvelopeBytes ?? DEFAULT_MAX_ENVELOPE_BYTES,
    rewindMemory: o.rewindMemory ?? DEFAULT_REWIND_MEMORY,
    sharded: o.sharded ?? false,
    logger: o.logger ?? logger,
  };
  if (!Number.isSafeInteger(c.maxAge) || c.maxAge < 0) throw new RangeError(`redisync: maxAge ${c.maxAge} is not a whole number of ms`);
  positiveInt('maxMessageBytes', c.maxMessageBytes);
  positiveInt('maxBatchMessages', c.maxBatchMessages);
  positiveInt('maxBatchBytes', c.maxBatchBytes);
  positiveInt('idleCheck', c.idleCheck);
  positiveInt('fetchCount', c.fetchCount);
  positiveInt('bufferSize', c.bufferSize);
  positiveInt('rewindMemory', c.rewindMemory);
  positiveInt('maxEnvelopeBytes', c.maxEnvelopeBytes);
  if (!Number.isSafeInteger(c.idempotencyWindow) || c.idempotencyWindow < 1000) throw new RangeError(`redisync: idempotencyWindow ${c.idempotencyWindow} is below one second`);
  if (c.maxBatchBytes < c.maxMessageBytes) throw new RangeError(`redisync: maxBatchBytes ${c.maxBatchBytes} is below maxMessageBytes ${c.maxMessageBytes}`);
  if (c.maxEnvelopeBytes < c.maxBatchBytes) throw new RangeError(`redisync: maxEnvelopeBytes ${c.maxEnvelopeBytes} is below maxBatchBytes ${c.maxBatchBytes}`);
  return c;
}
