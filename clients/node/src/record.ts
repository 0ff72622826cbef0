// The change record of a map (PROTOCOL.md section 7) and the digest.
import { createHash } from 'node:crypto';

/** Op is one operation of a change record. Keys are kept as binary strings (one char per byte: 'latin1'). */
export interface RecordOp {
  del: boolean;
  /** The key's version before the write; 0 when absent. */
  old: number;
  key: string;
  value: Buffer;
}

const DIGITS = /^[0-9]{1,20}$/;

/**
 * decodeRecord parses `"m1" SP n 1*(SP kind SP oldversion SP keylength SP valuelength) LF
 * 1*(key value)`, or returns undefined for a message that is not a change record. Never throws.
 */
export function decodeRecord(msg: Buffer): RecordOp[] | undefined {
  const nl = msg.indexOf(0x0a);
  if (nl < 3) return undefined;
  const head = msg.toString('latin1', 0, nl);
  if (!head.startsWith('m1 ')) return undefined;
  const f = head.slice(3).split(' ');
  if (!DIGITS.test(f[0] ?? '')) return undefined;
  const n = Number(f[0]);
  if (n < 1 || f.length !== 1 + 4 * n) return undefined;
  const body = msg.subarray(nl + 1);
  const ops: RecordOp[] = [];
  let off = 0;
  for (let i = 0; i < n; i++) {
    const [kind, oldText, klText, vlText] = f.slice(1 + 4 * i, 5 + 4 * i);
    if ((kind !== 's' && kind !== 'd') || !DIGITS.test(oldText) || !DIGITS.test(klText) || !DIGITS.test(vlText)) return undefined;
    const kl = Number(klText);
    const vl = Number(vlText);
    if (kl > body.length - off || vl > body.length - off - kl) return undefined;
    ops.push({
      del: kind === 'd',
      old: Number(oldText),
      key: body.toString('latin1', off, off + kl),
      value: Buffer.from(body.subarray(off + kl, off + kl + vl)),
    });
    off += kl + vl;
  }
  if (off !== body.length) return undefined;
  return ops;
}

/** encodeRecord writes a change record (for tests: writes go through write.lua). */
export function encodeRecord(ops: RecordOp[]): Buffer {
  const heads = ops.map((o) => `${o.del ? 'd' : 's'} ${o.old} ${Buffer.byteLength(o.key, 'latin1')} ${o.value.length}`);
  return Buffer.concat([Buffer.from(`m1 ${ops.length} ${heads.join(' ')}\n`, 'latin1'), ...ops.flatMap((o) => [Buffer.from(o.key, 'latin1'), o.value])]);
}

const LANE = 2 ** 48;

/**
 * Digest is the order-independent summary of a map's (key, version) pairs: for each pair,
 * SHA-1(DECIMAL_VERSION ":" KEY), bytes 0–5 as lane x and 6–11 as lane y (48-bit big-endian),
 * summed modulo 2^48. 48-bit sums are exact in a JavaScript number.
 */
export class Digest {
  constructor(
    public x = 0,
    public y = 0,
  ) {}

  static lanes(binKey: string, version: number): [number, number] {
    const h = createHash('sha1').update(Buffer.from(`${version}:`, 'latin1')).update(Buffer.from(binKey, 'latin1')).digest();
    return [h.readUIntBE(0, 6), h.readUIntBE(6, 6)];
  }

  add(binKey: string, version: number): void {
    const [x, y] = Digest.lanes(binKey, version);
    this.x = (this.x + x) % LANE;
    this.y = (this.y + y) % LANE;
  }

  remove(binKey: string, version: number): void {
    const [x, y] = Digest.lanes(binKey, version);
    this.x = (this.x - x + LANE) % LANE;
    this.y = (this.y - y + LANE) % LANE;
  }

  equals(o: Digest): boolean {
    return this.x === o.x && this.y === o.y;
  }

  clone(): Digest {
    return new Digest(this.x, this.y);
  }

  /** 24 lower-case hex digits, x then y: the form redisync prints and the node registry stores. */
  toString(): string {
    return this.x.toString(16).padStart(12, '0') + this.y.toString(16).padStart(12, '0');
  }
}
