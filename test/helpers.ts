import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import YAML from 'yaml';
import { createToken, type VideoGrant } from '../src/auth/token.js';
import { SignalClient, type SignalClientOptions, type WebSocketCtor } from '../src/client/signalClient.js';
import { merge } from '../src/config/load.js';
import { codecs, SUBPROTOCOL, type Encoding } from '../src/signal/codec.js';
import type { ServerMessage } from '../src/signal/messages.js';

export const KEY = 'testkey';
export const SECRET = 'test-secret-that-is-at-least-32-characters-long';
export const ENCODINGS: Encoding[] = ['proto', 'msgpack', 'json'];

export interface TestServer {
  url: string;
  http: string;
  proc: ChildProcess;
  /** The config the server was started with (defaults are not filled in). */
  config: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Everything the server logged (pino JSON lines). */
  logs: string[];
  token(identity: string, room?: string, grant?: Partial<VideoGrant> & { name?: string; metadata?: string }): string;
  client(identity: string, room?: string, opts?: SignalClientOptions & { grant?: Partial<VideoGrant> & { name?: string; metadata?: string } }): Promise<SignalClient>;
  /** Value of a metric sample in /metrics (sum over labels matching `labels`). */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  health(): Promise<{
    rooms: number;
    participants: number;
    connections: number;
    draining: boolean;
    sfu?: { workers: { index: number; pid: number; routers: number; consumers: number }[] };
  }>;
  /** SIGTERM (once) and wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
  close(): Promise<void>;
}

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));

/**
 * Starts the real server as a child process (the CLI, as an operator runs it) on a free
 * port, with `overrides` written to a config file. Tests talk to it only over the network:
 * WebSocket, HTTP, /metrics. (In one process, uWS's sockets and Node's client sockets share
 * the libuv loop, and a reused file descriptor can hit a stale uWS poll; see the README.)
 */
/** Where a test server runs: by default here on 127.0.0.1; or inside a network namespace, reached at `host`. */
export interface ServerPlace {
  netns: string;
  host: string;
}

/** 40-port blocks (media, TURN) held by this process's live test servers. */
const portBlocks = new Set<number>();
function pickPortBlock(): number {
  for (;;) {
    const b = 20000 + Math.floor(Math.random() * 300) * 40;
    if (!portBlocks.has(b)) {
      portBlocks.add(b);
      return b;
    }
  }
}

export async function startServer(overrides: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}, place?: ServerPlace): Promise<TestServer> {
  // Each test server gets its own media ports (WebRtcServer ports are fixed per worker).
  // Below the kernel's ephemeral range (32768+), where outgoing connections take ports. Blocks
  // in use by this process's live servers are not picked again (suites start 3-4 at once).
  const base = pickPortBlock();
  const dir = mkdtempSync(join(tmpdir(), 'auralink-test-'));
  const cfg = merge(
    {
      keys: { [KEY]: SECRET },
      port: 0,
      bind_address: '127.0.0.1',
      log_level: 'info',
      drain: { timeout_s: 2 },
      sfu: { workers: 1, webrtc_port: base, rtc_min_port: base + 4, rtc_max_port: base + 19 },
      turn: { port: base + 20, relay_min_port: base + 21, relay_max_port: base + 39 },
      database: { data_dir: join(dir, 'pglite') },
    },
    overrides,
  );
  const file = join(dir, 'config.yaml');
  writeFileSync(file, YAML.stringify(cfg));
  const argv = [CLI, 'serve', '--config', file];
  // `ip netns exec` execs the command: the child is the server itself (signals reach it).
  const proc = spawn(place ? 'ip' : process.execPath, place ? ['netns', 'exec', place.netns, process.execPath, ...argv] : argv, {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // A test process that dies (an uncaught error in a script) must not leave its server
  // holding ports that the next run's random blocks may pick.
  const orphanGuard = (): void => {
    proc.kill('SIGKILL');
  };
  process.once('exit', orphanGuard);
  proc.once('exit', () => process.off('exit', orphanGuard));
  proc.once('exit', () => portBlocks.delete(base));
  const logs: string[] = [];
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve((exitCode = code))));
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        logs.push(line);
        try {
          const j = JSON.parse(line) as { msg?: string; port?: number };
          if (j.msg === 'listening' && j.port) resolve(j.port);
        } catch {
          /* not JSON */
        }
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
    // 'close': after its output is read ('exit' can come first, and the reason with it).
    proc.once('close', (code) => reject(new Error(`server exited (${code}) before listening:\n${logs.join('\n')}`)));
  });
  const host = place?.host ?? '127.0.0.1';
  const url = `ws://${host}:${port}`;
  const http = `http://${host}:${port}`;
  const token: TestServer['token'] = (identity, room = 'room1', grant = {}) => {
    const { name, metadata, ...video } = grant;
    return createToken(KEY, SECRET, { identity, name, metadata, video: { roomJoin: true, room, ...video } });
  };
  const clients: SignalClient[] = [];
  let signalled = false;
  const stop = (): Promise<number | null> => {
    if (exitCode === undefined && !signalled) {
      signalled = true;
      proc.kill('SIGTERM');
    }
    return exited;
  };
  return {
    url,
    http,
    proc,
    config: cfg,
    logs,
    token,
    async client(identity, room = 'room1', opts = {}) {
      const { grant, ...rest } = opts;
      const c = await SignalClient.connect(url, await token(identity, room, grant), {
        WebSocket: WebSocket as unknown as WebSocketCtor,
        autoPing: false,
        ...rest,
      });
      clients.push(c);
      return c;
    },
    async metric(name, labels = {}) {
      const text = await (await fetch(`${http}/metrics`)).text();
      let sum = 0;
      for (const line of text.split('\n')) {
        if (!line.startsWith(name)) continue;
        const m = /^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
        if (!m || m[1] !== name) continue;
        const lbl = m[2] ?? '';
        if (Object.entries(labels).every(([k, v]) => lbl.includes(`${k}="${v}"`))) sum += Number(m[3]);
      }
      return sum;
    },
    async health() {
      return (await (await fetch(`${http}/health`)).json()) as Awaited<ReturnType<TestServer['health']>>;
    },
    stop,
    async close() {
      for (const c of clients) c.close();
      const code = await stop();
      rmSync(dir, { recursive: true, force: true });
      if (code !== 0) throw new Error(`server exited with ${code}:\n${logs.slice(-20).join('\n')}`);
    },
  };
}

/** A raw WebSocket in one encoding, for sending arbitrary frames and reading decoded replies. */
export class RawClient {
  readonly messages: ServerMessage[] = [];
  closed: { code: number; reason: string } | null = null;
  private waiters: (() => void)[] = [];

  private constructor(readonly ws: WebSocket, readonly encoding: Encoding) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.messages.push(codecs[encoding].decodeServer(isBinary ? new Uint8Array(data) : data.toString()));
      this.wake();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.wake();
    });
  }

  static open(url: string, token: string, encoding: Encoding, query = ''): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${url}/rtc?access_token=${token}${query}`, SUBPROTOCOL[encoding]);
      const c = new RawClient(ws, encoding);
      ws.once('open', () => resolve(c));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Waits for the first message (after index `from`) that matches. */
  async waitFor(pred: (m: ServerMessage) => boolean, timeoutMs = 3000, from = 0): Promise<ServerMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.messages.slice(from).find(pred);
      if (m) return m;
      if (this.closed && !pred({})) throw new Error(`closed (${this.closed.code}) before a matching message`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for message');
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  async waitClosed(timeoutMs = 3000): Promise<{ code: number; reason: string }> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('timed out waiting for close');
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.closed;
  }

  send(frame: string | Uint8Array | Buffer): void {
    this.ws.send(frame, { binary: typeof frame !== 'string' });
  }

  request(req: Record<string, unknown>): void {
    this.send(codecs[this.encoding].encodeRequest(req) as Uint8Array | string);
  }

  response(id: number): Promise<ServerMessage> {
    return this.waitFor((m) => m.response !== undefined && (m.response.requestId ?? 0) === id);
  }
}

/** HTTP status, JSON body and headers of a WebSocket upgrade attempt that is expected to fail. */
export function upgradeStatus(
  url: string,
  headers: Record<string, string> = {},
  protocol?: string,
): Promise<{ status: number; body: { code?: string; message?: string }; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocol, { headers });
    ws.on('open', () => {
      ws.close();
      resolve({ status: 101, body: {}, headers: {} });
    });
    ws.on('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text), headers: res.headers });
        } catch {
          resolve({ status: res.statusCode ?? 0, body: {}, headers: res.headers });
        }
      });
    });
    ws.on('error', (e) => reject(e));
  });
}

/** Deterministic PRNG (mulberry32): seeded tests and fuzzers reproduce exactly. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const text = (u8: Uint8Array): string => new TextDecoder().decode(u8);
export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A call's aic_call_summaries rows from the history API (a roomList token), once `count` are written. */
export async function aicSummaries<T>(t: TestServer, callId: string, count = 1): Promise<T[]> {
  const admin = createToken(KEY, SECRET, { identity: 'dash', video: { roomList: true } });
  let rows: T[] = [];
  await eventually(
    async () => {
      const r = await fetch(`${t.http}/api/v1/calls/${callId}/aic`, { headers: { authorization: `Bearer ${admin}` } });
      rows = ((await r.json()) as { summaries: T[] }).summaries;
      return rows.length === count;
    },
    8000,
    'the summary row',
  );
  return rows;
}
