// The Lua scripts of the protocol, run as-is (PROTOCOL.md: "a client in another language
// should run those same scripts"). The build copies them from the repository's
// internal/wire/scripts into dist/scripts; nothing here rewrites them.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Redis, Cluster } from 'ioredis';

export type Conn = Redis | Cluster;

/** scriptDir is where the build put the scripts. */
export const scriptDir = path.resolve(__dirname, '..', 'scripts');

function read(name: string): string {
  return readFileSync(path.join(scriptDir, name), 'utf8');
}

/** Script is one script's text and SHA-1, run with EVALSHA and, on NOSCRIPT, EVAL. */
export class Script {
  readonly text: string;
  readonly sha: string;
  private readonly readOnly: boolean;

  constructor(text: string, readOnly = false) {
    this.text = text;
    this.sha = createHash('sha1').update(text, 'utf8').digest('hex');
    this.readOnly = readOnly;
  }

  /**
   * run executes the script with keys and args and returns its reply with bulk strings as
   * Buffers. Read-only scripts use EVALSHA_RO / EVAL_RO, as the Go client does, so that a
   * read-only ACL user may subscribe.
   */
  async run(conn: Conn, keys: string[], args: (string | Buffer)[]): Promise<unknown> {
    const sha = this.readOnly ? 'evalsha_ro' : 'evalsha';
    const ev = this.readOnly ? 'eval_ro' : 'eval';
    try {
      return await conn.callBuffer(sha, this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return await conn.callBuffer(ev, this.text, keys.length, ...keys, ...args);
    }
  }
}

/**
 * An appending script is sent as the text of lib.lua followed by its own file, joined with
 * nothing in between (PROTOCOL.md section 2): its SHA-1 is that of the concatenation.
 */
export function appendScript(own: string): Script {
  return new Script(read('lib.lua') + read(own));
}

let cache: Scripts | undefined;

/** Scripts are the protocol's scripts, loaded once. */
export interface Scripts {
  publish: Script;
  fetch: Script;
  heads: Script;
  write: Script;
  get: Script;
  /** mark.lua: records where a channel's history parted (PROTOCOL.md section 5). Writes. */
  mark: Script;
}

export function scripts(): Scripts {
  cache ??= {
    publish: appendScript('publish.lua'),
    fetch: new Script(read('fetch.lua'), true),
    heads: new Script(read('heads.lua'), true),
    write: appendScript('write.lua'),
    get: new Script(read('get.lua'), true),
    mark: new Script(read('mark.lua')),
  };
  return cache;
}
