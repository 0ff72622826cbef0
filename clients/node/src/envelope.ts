// The envelope: PROTOCOL.md section 3.
//
//   envelope = "rs2" SP epoch SP first SP time SP id SP prev SP n 1*(SP length) LF data
//
// Version 1 ("rs1" SP epoch SP first SP time SP n 1*(SP length) LF data) is read too, with id
// and prev unknown.

/** Envelope is a decoded log entry or pub/sub message: messages first..first+data.length-1. */
export interface Envelope {
  epoch: string;
  first: number;
  /** Redis time of the publish, ms since the Unix epoch. */
  time: number;
  /** The entry's own id; '' when unknown (version 1). */
  id: string;
  /** The id of the entry before it; '' when unknown ('-' on the wire, or version 1). */
  prev: string;
  data: Buffer[];
}

export function lastSeq(e: Envelope): number {
  return e.first + e.data.length - 1;
}

/** The most messages an envelope may claim, so that a forged header cannot make the decoder allocate much. */
const MAX_ENVELOPE_MESSAGES = 1 << 20;

const DIGITS = /^[0-9]{1,20}$/;

function uint(w: string | undefined): number | undefined {
  if (w === undefined || !DIGITS.test(w)) return undefined;
  const n = Number(w);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** chainID reads an entry id of the wire: "-" (unknown) is "". */
export function chainID(w: string): string {
  return w === '-' ? '' : w;
}

/**
 * decodeEnvelope parses msg, or returns undefined for anything that does not parse exactly
 * (junk: another prefix, a wrong count, lengths that do not add up). It never throws.
 */
export function decodeEnvelope(msg: Buffer): Envelope | undefined {
  const nl = msg.indexOf(0x0a);
  if (nl < 4) return undefined;
  const head = msg.toString('latin1', 0, nl);
  const v2 = head.startsWith('rs2 ');
  if (!v2 && !head.startsWith('rs1 ')) return undefined;
  const words = head.slice(4).split(' ');
  let i = 0;
  const epoch = words[i++];
  const first = uint(words[i++]);
  const time = uint(words[i++]);
  let id = '';
  let prev = '';
  if (v2) {
    id = chainID(words[i++] ?? '');
    prev = chainID(words[i++] ?? '');
    if (id === '') return undefined;
  }
  const n = uint(words[i++]);
  if (!epoch || first === undefined || time === undefined || n === undefined) return undefined;
  if (first === 0 || n < 1 || n > MAX_ENVELOPE_MESSAGES || time > 2 ** 62 || !Number.isSafeInteger(first + n)) return undefined;
  if (words.length !== i + n) return undefined;
  // Copied once: the data must not share memory with a buffer the Redis client may reuse.
  const body = Buffer.from(msg.subarray(nl + 1));
  const data: Buffer[] = new Array(n);
  let off = 0;
  for (let k = 0; k < n; k++) {
    const l = uint(words[i + k]);
    if (l === undefined || l > body.length - off) return undefined;
    data[k] = body.subarray(off, off + l);
    off += l;
  }
  if (off !== body.length) return undefined;
  return { epoch: epoch.toString(), first, time, id, prev, data };
}

/** encodeEnvelope writes an envelope of version 2 (for tests: publishing goes through the scripts). */
export function encodeEnvelope(e: Envelope): Buffer {
  const [counts, body] = packMessages(e.data);
  return Buffer.concat([Buffer.from(`rs2 ${e.epoch} ${e.first} ${e.time} ${e.id || '-'} ${e.prev || '-'} ${counts}\n`, 'latin1'), body]);
}

/**
 * packMessages encodes messages as the publish script takes them (PROTOCOL.md section 2):
 * COUNTS, the number of messages and the length of each as the envelope's header writes them
 * ("n l1 … ln"), and DATA, the messages concatenated.
 */
export function packMessages(msgs: (string | Buffer)[]): [string, Buffer] {
  const bufs = msgs.map((m) => (typeof m === 'string' ? Buffer.from(m) : m));
  return [[bufs.length, ...bufs.map((b) => b.length)].join(' '), Buffer.concat(bufs)];
}
