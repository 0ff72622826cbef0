import { InvalidNameError, InvalidPositionError } from './errors';

/**
 * Position is a point in a channel's history: message `seq` of the log identified by `epoch`,
 * and `entry`, the id of the log entry that holds that message, when known.
 *
 * The seq alone is not enough to resume: when Redis loses a channel's log, numbering starts
 * again at 1 under a new epoch. An empty epoch means "not known" (a bare seq, or a channel
 * without history). The epoch is not enough either: a failover that loses acknowledged writes
 * keeps the epoch and hands the lost seqs out again to other messages; `entry` tells them
 * apart. A subscription started after a position with an entry checks that the log still holds
 * that entry at `seq`, and if it does not, announces the messages up to `seq` as rewound
 * (PROTOCOL.md section 5). Events, `Subscription.start`, `head` and `publish` fill it in; a
 * position built by hand, or read from its `EPOCH:SEQ` form, has none and cannot be checked:
 * a start after it heeds where a subscription last found the history parted (see From), and
 * is otherwise trusted. `formatToken` writes a position with its entry.
 */
export interface Position {
  epoch: string;
  seq: number;
  /** The id of the log entry holding the message at seq; absent (or '') when not known. */
  entry?: string;
}

/** at builds a position, with entry only when it is known. */
export function at(epoch: string, seq: number, entry = ''): Position {
  return entry === '' ? { epoch, seq } : { epoch, seq, entry };
}

/**
 * formatPosition writes `EPOCH:SEQ`, or the bare `SEQ` when the epoch is empty (PROTOCOL.md
 * section 1): the form positions take wherever users see them (event ids, the CLI). It leaves
 * the entry out; formatToken keeps it.
 */
export function formatPosition(p: Position): string {
  return p.epoch === '' ? String(p.seq) : `${p.epoch}:${p.seq}`;
}

/**
 * formatToken writes `EPOCH:SEQ:ENTRY`, or what formatPosition writes when the entry or the
 * epoch is empty: the form to store when a resume must be checked against the log.
 */
export function formatToken(p: Position): string {
  if (!p.entry || p.epoch === '') return formatPosition(p);
  return `${formatPosition(p)}:${p.entry}`;
}

/**
 * parsePosition reads `EPOCH:SEQ`, `EPOCH:SEQ:ENTRY` or a bare `SEQ`, as the Go CLI's --from
 * does (what formatPosition and formatToken write).
 */
export function parsePosition(s: string): Position {
  const i = s.indexOf(':');
  const epoch = i < 0 ? '' : s.slice(0, i);
  const rest = i < 0 ? s : s.slice(i + 1);
  const j = rest.indexOf(':');
  const seqText = j < 0 ? rest : rest.slice(0, j);
  const entry = j < 0 ? '' : rest.slice(j + 1);
  if (!/^[0-9]+$/.test(seqText) || !Number.isSafeInteger(Number(seqText))) {
    throw new InvalidPositionError(`${JSON.stringify(s)}: want EPOCH:SEQ, EPOCH:SEQ:ENTRY or SEQ, with SEQ a whole number`);
  }
  if (i >= 0) checkIDText(s, 'epoch', epoch);
  if (j >= 0) checkIDText(s, 'entry', entry);
  return at(epoch, Number(seqText), entry);
}

/** checkIDText checks the epoch or entry part of position text s: not empty, no spaces, controls or colons. */
function checkIDText(s: string, what: string, v: string): void {
  if (v === '') throw new InvalidPositionError(`${JSON.stringify(s)}: the ${what} is empty`);
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x20\x7f:]/.test(v)) throw new InvalidPositionError(`${JSON.stringify(s)}: the ${what} holds a space, a colon or a control character`);
}

/**
 * From says where a subscription starts: `'now'` (after the head read when subscribe returns),
 * `'start'` (everything the log holds: after the bare seq 0), a Position, or its text. A
 * position with an entry (any an event or `Subscription.start` gave, or `EPOCH:SEQ:ENTRY`) is
 * checked against the log: if a failover lost that entry, the subscription announces every seq
 * from the oldest message of the log up to the position as rewound and delivers the log from
 * there. A position with an epoch but no entry (`EPOCH:SEQ`) cannot be checked: if a
 * subscription found within PARTED_WINDOW_MS that this epoch's history parted at a seq D at or
 * below it (a subscription leaves that mark in Redis when its user may write), the subscription
 * announces D to the position's seq as rewound and delivers the log from D; otherwise it trusts
 * the position.
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
  /** Where the event is; for a message, `position.entry` is the id of its log entry (absent for a version 1 entry). */
  position: Position;
  /** `position` as text, `EPOCH:SEQ`: what `From` accepts to resume after this event (`formatToken(position)` keeps the entry). */
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
  if (Buffer.from(name, 'utf8').toString('utf8') !== name) throw new InvalidNameError(`${JSON.stringify(name)} is not UTF-8: it holds a lone surrogate`);
  // eslint-disable-next-line no-control-regex
  if (/[{}\x00-\x1f\x7f-\x9f]/.test(name)) throw new InvalidNameError(`${JSON.stringify(name)} holds a brace or a control character`);
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
