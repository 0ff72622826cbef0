import { InvalidNameError, InvalidPositionError } from './errors';

/**
 * Position is a point in a channel's history: message `seq` of the log identified by `epoch`.
 * The seq alone is not enough to resume: when Redis loses a channel's log, numbering starts
 * again at 1 under a new epoch. An empty epoch means "not known" (a bare seq, or a channel
 * without history).
 */
export interface Position {
  epoch: string;
  seq: number;
}

/** formatPosition writes `EPOCH:SEQ`, or the bare `SEQ` when the epoch is empty (PROTOCOL.md section 1). */
export function formatPosition(p: Position): string {
  return p.epoch === '' ? String(p.seq) : `${p.epoch}:${p.seq}`;
}

/** parsePosition reads `EPOCH:SEQ` or a bare `SEQ`, as the Go CLI's --from does. */
export function parsePosition(s: string): Position {
  const i = s.indexOf(':');
  const epoch = i < 0 ? '' : s.slice(0, i);
  const seqText = i < 0 ? s : s.slice(i + 1);
  if (!/^[0-9]+$/.test(seqText) || !Number.isSafeInteger(Number(seqText))) {
    throw new InvalidPositionError(`${JSON.stringify(s)}: want EPOCH:SEQ or SEQ, with SEQ a whole number`);
  }
  if (i >= 0) {
    if (epoch === '') throw new InvalidPositionError(`${JSON.stringify(s)}: the epoch before the colon is empty`);
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x20\x7f:]/.test(epoch)) throw new InvalidPositionError(`${JSON.stringify(s)}: the epoch holds a space, a colon or a control character`);
  }
  return { epoch, seq: Number(seqText) };
}

/**
 * From says where a subscription starts: `'now'` (after the head read when subscribe returns),
 * `'start'` (everything the log holds: after the bare seq 0), a Position, or its text.
 */
export type From = 'now' | 'start' | Position | string;

/** The kinds a name can hold (PROTOCOL.md section 1.1). */
export type Kind = 'channel' | 'map';

/** Reset reasons (PROTOCOL.md section 5). */
export type ResetReason = 'trimmed' | 'epoch-changed' | 'rewound';

/**
 * Reset describes messages a subscription cannot deliver: seqs `from` to `to` (inclusive) of
 * `oldEpoch`, or every seq from `from` on when `to` is null (epoch-changed: the old log is gone).
 */
export interface Reset {
  reason: ResetReason;
  from: number;
  to: number | null;
  oldEpoch: string;
  newEpoch: string;
}

/** resetText describes a reset in one line, as the Go client does. */
export function resetText(r: Reset): string {
  let s = `${r.reason}: `;
  if (r.to === null) s += `messages from ${r.from} on`;
  else if (r.from === r.to) s += `message ${r.from}`;
  else s += `messages ${r.from} to ${r.to}`;
  if (r.oldEpoch !== '') s += ` of epoch ${r.oldEpoch}`;
  if (r.reason === 'epoch-changed') s += r.newEpoch === '' ? '; the channel has no history now' : `; the new epoch is ${r.newEpoch}`;
  return s;
}

/**
 * Event is one step of a subscription: a message (`data` set), or a reset (`reset` set). For a
 * reset, `position` is where the subscription continues after, so that storing the position of
 * every event handled is always a valid place to resume from.
 */
export interface Event {
  position: Position;
  /** `position` as text, `EPOCH:SEQ`: what `From` accepts to resume after this event. */
  pos: string;
  /** When Redis accepted the message (milliseconds since the Unix epoch); 0 for a reset. */
  time: number;
  /** The message's bytes; empty for a reset. */
  data: Buffer;
  reset?: Reset;
}

/** The longest channel name, in bytes. */
export const MAX_NAME_BYTES = 256;

/** checkName throws an InvalidNameError for a name PROTOCOL.md section 1 does not allow. */
export function checkName(name: string): void {
  if (typeof name !== 'string' || name === '') throw new InvalidNameError('empty');
  const n = Buffer.byteLength(name, 'utf8');
  if (n > MAX_NAME_BYTES) throw new InvalidNameError(`${n} bytes, the limit is ${MAX_NAME_BYTES}`);
  // eslint-disable-next-line no-control-regex
  if (/[{}\x00-\x1f\x7f]/.test(name)) throw new InvalidNameError(`${JSON.stringify(name)} holds a brace or a control character`);
}

/** Keys are the Redis names of one channel (PROTOCOL.md section 1). */
export interface Keys {
  name: string;
  meta: string;
  log: string;
  idem: string;
  pubsub: string;
  /** `P:{N}:state`, used by maps. */
  state: string;
}

export function keysFor(prefix: string, name: string, producer: string): Keys {
  checkName(name);
  const base = `${prefix}:{${name}}:`;
  return { name, meta: base + 'meta', log: base + 'log', idem: base + 'idem:' + producer, pubsub: base + 'pub', state: base + 'state' };
}
