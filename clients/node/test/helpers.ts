// Test helpers: real redis-server processes on free loopback ports (never 6379), and the Go
// side of the interop tests, the redisync CLI built from this repository.
import { ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, ClientOptions, silentLogger } from '../src';

export const repoRoot = path.resolve(__dirname, '..', '..', '..', '..');

/** freePort asks the kernel for a free loopback port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** waitFor polls cond every 20 ms until it holds, or fails after ms with what. */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function which(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/** The redis-server processes started, killed when the test process ends, even by a signal. */
const servers = new Set<ChildProcess>();
/** trackServer makes sure a server process the test started dies with the test process. */
export function trackServer(p: ChildProcess): void {
  servers.add(p);
  p.on('exit', () => servers.delete(p));
}
/** The servers' directories, removed when the test process ends. */
const dirs = new Set<string>();
function killServers(): void {
  for (const p of servers) p.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
process.on('exit', killServers);
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    killServers();
    killGoCommands();
    removeGoBinary();
    process.exit(128 + (sig === 'SIGTERM' ? 15 : 2));
  });
}

/** RedisServer is a redis-server without persistence on a free loopback port. */
export class RedisServer {
  port = 0;
  private proc: ChildProcess | undefined;
  private dirPath: string | undefined;
  private get dir(): string {
    if (!this.dirPath) {
      const d = mkdtempSync(path.join(os.tmpdir(), 'redisync-node-redis-'));
      this.dirPath = d;
      dirs.add(d);
    }
    return this.dirPath;
  }

  static async start(): Promise<RedisServer> {
    if (!which('redis-server')) {
      throw new Error('redis-server is not on the PATH: the tests start their own (apt-get install redis-server redis-tools)');
    }
    const r = new RedisServer();
    r.port = await freePort();
    await r.launch();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  private async launch(): Promise<void> {
    const proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir], {
      stdio: 'ignore',
    });
    this.proc = proc;
    trackServer(proc);
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    let dead = false;
    void exited.then(() => (dead = true));
    await waitFor(`redis-server on port ${this.port}`, async () => {
      if (dead) throw new Error(`redis-server on port ${this.port} exited at start`);
      return (await this.cli('PING').catch(() => '')) === 'PONG';
    });
  }

  /** cli runs redis-cli against this server and returns its output, trimmed. */
  cli(...args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile('redis-cli', ['-p', String(this.port), ...args], { encoding: 'utf8' }, (err, out) => (err ? reject(err) : resolve(out.trim())));
    });
  }

  /** killPubSub cuts every pub/sub connection: CLIENT KILL TYPE pubsub. */
  killPubSub(): Promise<string> {
    return this.cli('CLIENT', 'KILL', 'TYPE', 'pubsub');
  }

  /** restart stops the server and starts it again on the same port: without persistence, every key is lost. */
  async restart(): Promise<void> {
    await this.stopProcess();
    await this.launch();
  }

  private async stopProcess(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
    p.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    await this.stopProcess();
    if (this.dirPath) {
      rmSync(this.dirPath, { recursive: true, force: true });
      dirs.delete(this.dirPath);
    }
  }
}

/** newClient opens a Client on r with a prefix of its own and no warnings printed. */
export function newClient(r: RedisServer, prefix: string, o: ClientOptions = {}): Client {
  return new Client({ url: r.url, prefix, logger: silentLogger, ...o });
}

/**
 * rollback makes a channel's log what a failover to a replica that had seqs 1..to leaves (to
 * ends an entry): the entries after it are gone, and the head and tip are back at it.
 */
export async function rollback(c: Client, name: string, to: number): Promise<void> {
  const k = c.keys(name);
  const f = await c.fetch(k, '', 1, 1 << 20);
  const tip = f.entries.find((e) => e.first + e.data.length - 1 === to);
  if (!tip) throw new Error(`no entry of ${JSON.stringify(name)} ends at seq ${to}: pick an entry boundary`);
  for (const e of f.entries) if (e.first > to) await c.redis.xdel(k.log, `${e.first}-0`);
  await c.redis.call('XSETID', k.log, `${to}-0`);
  await c.redis.hset(k.meta, 'seq', String(to), 'tip', tip.id);
}

/** goBinary builds the Go CLI once per test process into a temporary directory. */
let built: string | undefined;
export function goBinary(): string {
  if (built) return built;
  const goCandidates = ['go', '/usr/local/go/bin/go'];
  const go = goCandidates.find((g) => (g === 'go' ? which('go') : existsSync(g)));
  if (!go) throw new Error('go is not on the PATH nor at /usr/local/go/bin/go: the interop tests build the Go CLI (cmd/redisync)');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'redisync-go-'));
  const out = path.join(dir, 'redisync');
  const r = spawnSync(go, ['build', '-o', out, './cmd/redisync'], { cwd: repoRoot, encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`go build ./cmd/redisync failed:\n${r.stderr}`);
  }
  built = out;
  builtDir = dir;
  return out;
}

let builtDir: string | undefined;
/** removeGoBinary deletes the built CLI (in an after hook; also on exit). */
export function removeGoBinary(): void {
  if (builtDir) rmSync(builtDir, { recursive: true, force: true });
  builtDir = built = undefined;
}
process.on('exit', removeGoBinary);

/** The Go commands running, so that a test that failed or timed out leaves none behind. */
const running = new Set<ChildProcess>();
function track(p: ChildProcess): void {
  running.add(p);
  p.on('close', () => running.delete(p));
}

/** killGoCommands ends every Go command still running (in an after hook). */
export function killGoCommands(): void {
  for (const p of running) p.kill('SIGKILL');
}

/** GoResult is what a finished Go CLI command printed and its exit code. */
export interface GoResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** go runs the Go CLI with --redis and --namespace and waits for it. */
export function go(r: RedisServer, prefix: string, args: string[], input?: string): Promise<GoResult> {
  return new Promise((resolve) => {
    const p = spawn(goBinary(), ['--redis', r.url, '--namespace', prefix, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    track(p);
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    p.stdin.on('error', () => {}); // a command that exits before reading its input
    p.stdin.end(input ?? '');
  });
}

/**
 * GoStream is a long-running Go CLI command (sub, watch, pub from stdin): started() resolves
 * with the position of its "subscribed after POS" line; done resolves when it exits.
 */
export class GoStream {
  readonly proc: ChildProcess;
  stdout = '';
  stderr = '';
  readonly done: Promise<GoResult>;

  constructor(r: RedisServer, prefix: string, args: string[]) {
    this.proc = spawn(goBinary(), ['--redis', r.url, '--namespace', prefix, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    track(this.proc);
    this.proc.stdin!.on('error', () => {});
    this.proc.stdout!.setEncoding('utf8').on('data', (d) => (this.stdout += d));
    this.proc.stderr!.setEncoding('utf8').on('data', (d) => (this.stderr += d));
    this.done = new Promise((resolve) => this.proc.on('close', (code) => resolve({ code: code ?? -1, stdout: this.stdout, stderr: this.stderr })));
  }

  /** started waits for the "subscribed after POS" line and returns POS. */
  async started(ms = 20_000): Promise<string> {
    let pos = '';
    await waitFor('the Go command\'s "subscribed after" line', () => {
      const m = /^subscribed after (\S+)$/m.exec(this.stderr);
      if (m) pos = m[1];
      if (!m && this.proc.exitCode !== null) throw new Error(`the Go command exited: ${this.stderr}`);
      return !!m;
    }, ms);
    return pos;
  }

  /** lines are the JSON objects printed so far. */
  json(): Record<string, unknown>[] {
    return this.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
  }

  kill(): void {
    if (this.proc.exitCode === null) this.proc.kill('SIGTERM');
  }
}

/** goData reads the bytes of a Go CLI JSON line's "data" or "value" (base64 when the line says so). */
export function goBytes(line: Record<string, unknown>, field = 'data'): Buffer {
  const v = line[field] as string;
  return line.base64 ? Buffer.from(v, 'base64') : Buffer.from(v, 'utf8');
}

let prefixes = 0;
/** uniquePrefix gives each test its own key namespace. */
export function uniquePrefix(what: string): string {
  return `t${process.pid}-${++prefixes}-${what}`;
}
