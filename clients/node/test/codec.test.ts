// The wire formats, without Redis: envelopes, change records, the digest, positions and names,
// checked against the examples PROTOCOL.md gives, so that the document and this client cannot
// drift apart unnoticed.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { Digest, InvalidNameError, InvalidPositionError, checkName, decodeEnvelope, decodeRecord, encodeEnvelope, encodeRecord, formatPosition, formatToken, parsePosition } from '../src';
import { appendScript, scripts, scriptDir } from '../src/scripts';
import { repoRoot } from './helpers';

const protocol = readFileSync(path.join(repoRoot, 'PROTOCOL.md'), 'utf8');

/** example returns the first fenced line of PROTOCOL.md that starts with prefix, with its \n escapes turned into newlines. */
function example(prefix: string): Buffer {
  const line = protocol.split('\n').find((l) => l.startsWith(prefix));
  assert.ok(line, `PROTOCOL.md has an example starting with ${JSON.stringify(prefix)}`);
  return Buffer.from(line.replace(/\\n/g, '\n'), 'utf8');
}

test('the envelope example of PROTOCOL.md section 3 decodes to what the document says', () => {
  const env = decodeEnvelope(example('rs2 '));
  assert.ok(env);
  assert.equal(env.epoch, '9f86d081884c7d65');
  assert.equal(env.first, 7);
  assert.equal(env.id, 'c0ffee0000000002');
  assert.equal(env.prev, 'c0ffee0000000001');
  assert.deepEqual(env.data.map((d) => d.toString()), ['hello', 'hi']);
  assert.ok(encodeEnvelope(env).equals(example('rs2 ')), 'and encodes back to the same bytes');
});

test('the change record example of PROTOCOL.md section 7 decodes to what the document says', () => {
  const ops = decodeRecord(example('m1 '));
  assert.deepEqual(
    ops?.map((o) => [o.del ? 'd' : 's', o.old, o.key, o.value.toString()]),
    [['s', 0, 'a', '1'], ['d', 7, 'b', '']],
  );
  assert.ok(encodeRecord(ops!).equals(example('m1 ')));
});

test('envelopes: valid forms, version 1, and junk', async (t) => {
  const ok: [string, string | Buffer, object][] = [
    ['one message', 'rs2 e 1 5 id1 - 1 3\nabc', { epoch: 'e', first: 1, id: 'id1', prev: '', data: ['abc'] }],
    ['empty message', 'rs2 e 4 5 id1 id0 2 0 1\nx', { first: 4, prev: 'id0', data: ['', 'x'] }],
    ['version 1, no ids', 'rs1 e 3 5 2 1 1\nab', { first: 3, id: '', prev: '', data: ['a', 'b'] }],
    ['binary data with a newline', Buffer.concat([Buffer.from('rs2 e 1 5 i - 1 3\n'), Buffer.from([0xff, 0x0a, 0x00])]), { data: [Buffer.from([0xff, 0x0a, 0x00]).toString()] }],
  ];
  for (const [name, msg, want] of ok) {
    await t.test(name, () => {
      const env = decodeEnvelope(Buffer.isBuffer(msg) ? msg : Buffer.from(msg));
      assert.ok(env, 'parses');
      const got: Record<string, unknown> = { ...env, data: env.data.map((d) => d.toString()) };
      for (const [k, v] of Object.entries(want)) assert.deepEqual(got[k], v, k);
    });
  }
  const junk: [string, string][] = [
    ['another prefix', 'rs3 e 1 5 i - 1 3\nabc'],
    ['no newline', 'rs2 e 1 5 i - 1 3'],
    ['lengths short of the data', 'rs2 e 1 5 i - 1 2\nabc'],
    ['lengths beyond the data', 'rs2 e 1 5 i - 1 4\nabc'],
    ['a wrong count', 'rs2 e 1 5 i - 2 3\nabc'],
    ['an extra length', 'rs2 e 1 5 i - 1 3 0\nabc'],
    ['seq 0', 'rs2 e 0 5 i - 1 3\nabc'],
    ['no messages', 'rs2 e 1 5 i - 0\n'],
    ['no id', 'rs2 e 1 5 - - 1 3\nabc'],
    ['an empty epoch', 'rs2  1 5 i - 1 3\nabc'],
    ['a signed number', 'rs2 e +1 5 i - 1 3\nabc'],
    ['a trailing space', 'rs2 e 1 5 i - 1 3 \nabc'],
    ['not a number', 'rs2 e x 5 i - 1 3\nabc'],
    ['plain text', 'hello'],
  ];
  for (const [name, msg] of junk) {
    await t.test(`junk: ${name}`, () => assert.equal(decodeEnvelope(Buffer.from(msg)), undefined));
  }
});

test('change records: junk is not a record', () => {
  for (const msg of ['m2 1 s 0 1 1\nab', 'm1 1 x 0 1 1\nab', 'm1 1 s 0 1 1\nabc', 'm1 1 s 0 2 1\nab', 'm1 0\n', 'm1 2 s 0 1 1\nab', 'hello']) {
    assert.equal(decodeRecord(Buffer.from(msg)), undefined, msg);
  }
});

test('the digest: SHA-1 of "VERSION:KEY", two 48-bit lanes summed mod 2^48, 24 lower-case hex digits, order-independent', () => {
  const h = createHash('sha1').update('42:key').digest('hex');
  const d = new Digest();
  d.add('key', 42);
  assert.equal(d.toString(), h.slice(0, 24), 'one pair: the first 12 bytes of its SHA-1');
  const a = new Digest();
  const b = new Digest();
  const pairs: [string, number][] = Array.from({ length: 200 }, (_, i) => [`k${i}`, i * 7 + 1]);
  pairs.forEach(([k, v]) => a.add(k, v));
  [...pairs].reverse().forEach(([k, v]) => b.add(k, v));
  assert.equal(a.toString(), b.toString());
  assert.match(a.toString(), /^[0-9a-f]{24}$/);
  pairs.forEach(([k, v]) => a.remove(k, v));
  assert.equal(a.toString(), '0'.repeat(24), 'removing every pair gives the empty digest');
  const wrap = new Digest(2 ** 48 - 1, 0);
  wrap.add('key', 42);
  assert.ok(wrap.x < 2 ** 48 && wrap.x === parseInt(h.slice(0, 12), 16) - 1, 'sums wrap modulo 2^48');
});

test('positions are EPOCH:SEQ, EPOCH:SEQ:ENTRY or a bare SEQ', () => {
  assert.deepEqual(parsePosition('9f86d081884c7d65:42'), { epoch: '9f86d081884c7d65', seq: 42 });
  assert.deepEqual(parsePosition('7'), { epoch: '', seq: 7 });
  const withEntry = parsePosition('9d1c9a97561c2466:5:0a1b2c3d4e5f6a7b');
  assert.deepEqual(withEntry, { epoch: '9d1c9a97561c2466', seq: 5, entry: '0a1b2c3d4e5f6a7b' });
  const documented = /`(9f86d081884c7d65:42:[0-9a-f]+)`/.exec(readFileSync(path.join(repoRoot, 'PROTOCOL.md'), 'utf8'));
  assert.ok(documented, 'PROTOCOL.md section 1 has an EPOCH:SEQ:ENTRY example');
  assert.equal(formatToken(parsePosition(documented[1])), documented[1]);
  assert.equal(formatPosition({ epoch: 'e', seq: 3 }), 'e:3');
  assert.equal(formatPosition({ epoch: '', seq: 0 }), '0');
  assert.equal(formatPosition(withEntry), '9d1c9a97561c2466:5', 'formatPosition leaves the entry out');
  assert.equal(formatToken(withEntry), '9d1c9a97561c2466:5:0a1b2c3d4e5f6a7b');
  assert.equal(formatToken({ epoch: 'e', seq: 3 }), 'e:3');
  assert.equal(formatToken({ epoch: 'e', seq: 3, entry: '' }), 'e:3');
  assert.equal(formatToken({ epoch: '', seq: 3, entry: 'x' }), '3', 'no epoch: the bare seq');
  for (const p of ['e:5', '12', '0', 'e:0', 'e:5:x']) assert.equal(formatToken(parsePosition(p)), p);
  for (const bad of ['', ':1', 'e:', 'e:x', 'e:-1', 'e:+1', 'a b:1', 'e:5:', 'e:5:a:b', 'e:5:a b', '5:a', 'e:5:a\x7f']) {
    assert.throws(() => parsePosition(bad), InvalidPositionError, bad);
  }
});

test('names: 1 to 256 bytes of UTF-8, no braces, no control characters', () => {
  checkName('orders');
  checkName('x'.repeat(256));
  checkName('ünïcode');
  for (const bad of ['', 'x'.repeat(257), 'a{b', 'a}b', 'a\nb', 'a\x7fb', 'a\u0085b', 'a\ud800b', 'é'.repeat(129)]) assert.throws(() => checkName(bad), InvalidNameError, JSON.stringify(bad));
});

test('an appending script is lib.lua and its own file joined with nothing between, run as-is', () => {
  const lib = readFileSync(path.join(repoRoot, 'internal/wire/scripts/lib.lua'), 'utf8');
  const pub = readFileSync(path.join(repoRoot, 'internal/wire/scripts/publish.lua'), 'utf8');
  const write = readFileSync(path.join(repoRoot, 'internal/wire/scripts/write.lua'), 'utf8');
  assert.equal(scripts().publish.text, lib + pub);
  assert.equal(scripts().write.text, lib + write);
  assert.equal(scripts().publish.sha, createHash('sha1').update(lib + pub).digest('hex'));
  assert.equal(scripts().fetch.text, readFileSync(path.join(repoRoot, 'internal/wire/scripts/fetch.lua'), 'utf8'));
  assert.equal(appendScript('publish.lua').sha, scripts().publish.sha);
  assert.ok(scriptDir.endsWith(path.join('dist', 'scripts')));
});
