import { randomBytes } from 'node:crypto';

/** randomID returns 16 random lower-case hex digits: producer ids and entry ids (PROTOCOL.md sections 1 and 2). */
export function randomID(): string {
  return randomBytes(8).toString('hex');
}
