// Shared by the benchmarks: starting servers as child processes, clients, and reading /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import YAML from 'yaml';
import { createToken } from '../src/auth/token.js';
import { merge } from '../src/config/load.js';
import { SUBPROTOCOL } from '../src/signal/codec.js';

export const KEY = 'benchkey';
export const SECRET = 'bench-secret-that-is-at-least-32-characters';

export interface Server {
  proc: ChildProcess;
  port: number;
  kill(): Promise<void>;
  /** SIGTERM and wait for a clean exit (a server started with --cpu-prof writes its profile then). */
  stop(timeoutMs?: number): Promise<void>;
  /** With `inspect`: runs a full garbage collection in the server (inspector protocol). */
  fullGc(): Promise<void>;
  /** With `inspect`: evaluates `expression` in the server (inspector Runtime.evaluate), by value. */
  evaluate(expression: string): Promise<unknown>;
}

export interface ProcOptions {
  /** Inspector on a loopback port, so the bench can ask for a full GC. */
  inspect?: boolean;
  /** Extra node flags (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** CPU list for taskset (the server on one core, the clients on the other). */
  cpus?: string;
  /** Removed when the server is killed or stopped. */
  tmpDir?: string;
}

/** Every server started and not yet gone: killed when the bench exits, however it exits. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});
// A signal's default action skips 'exit' listeners: exit instead, so the servers go too.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => process.exit(130));

/**
 * Runs a node script that logs {"msg":"listening","port":N}; resolves once it does. With
 * `inspect`, the inspector listens on a loopback port so the bench can ask for a full GC.
 */
export function startProc(cmd: string[], opts: ProcOptions = {}): Promise<Server> {
  const nodeArgs = [...(opts.inspect ? ['--inspect=127.0.0.1:0'] : []), ...(opts.nodeArgs ?? []), ...cmd];
  // taskset execs node: the pid is node's, and its threads and children inherit the mask.
  const [file, argv] = opts.cpus ? ['taskset', ['-c', opts.cpus, process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
  const proc = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  void exited.then(() => {
    live.delete(proc);
    if (opts.tmpDir) rmSync(opts.tmpDir, { recursive: true, force: true });
  });
  let inspector: string | undefined;
  proc.stderr!.on('data', (d: Buffer) => {
    const text = d.toString();
    inspector ??= /ws:\/\/127\.0\.0\.1:\d+\/[\w-]+/.exec(text)?.[0];
    if (!/Debugger (listening|attached|ending)|nodejs\.org\/en\/docs\/inspector|Waiting for the debugger/.test(text)) process.stderr.write(d);
  });
  const inspectorCall = async (method: string, params: Record<string, unknown> = {}): Promise<unknown> => {
    if (!inspector) throw new Error('server not started with inspect');
    const ws = new WebSocket(inspector);
    await new Promise((r, j) => ws.once('open', r).once('error', j));
    const result = await new Promise<unknown>((r) => {
      ws.on('message', (m: Buffer) => {
        const msg = JSON.parse(m.toString()) as { id?: number; result?: unknown };
        if (msg.id === 1) r(msg.result);
      });
      ws.send(JSON.stringify({ id: 1, method, params }));
    });
    ws.close();
    return result;
  };
  const fullGc = async (): Promise<void> => void (await inspectorCall('HeapProfiler.collectGarbage'));
  const evaluate = async (expression: string): Promise<unknown> => {
    const r = (await inspectorCall('Runtime.evaluate', { expression, returnByValue: true })) as { result: { value?: unknown }; exceptionDetails?: { text: string } };
    if (r.exceptionDetails) throw new Error(`evaluate ${expression}: ${r.exceptionDetails.text}`);
    return r.result.value;
  };
  const kill = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  };
  const stop = async (timeoutMs = 20_000): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return exited;
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(t);
  };
  return new Promise((resolve, reject) => {
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      for (const line of buf.split('\n')) {
        try {
          const j = JSON.parse(line) as { msg?: string; port?: number };
          if (j.msg === 'listening' && j.port) {
            proc.stdout!.removeAllListeners('data');
            proc.stdout!.resume();
            resolve({ proc, port: j.port, kill, stop, fullGc, evaluate });
          }
        } catch {
          /* partial line */
        }
      }
    });
    proc.once('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
}

/**
 * The AuraLink server (the CLI) with bench keys, its database in a temp dir, and `overrides`.
 * Media and TURN ports are picked at random below the ephemeral range (as the tests do): the
 * defaults are fixed ports another server on this machine may hold.
 */
export function startAura(overrides: Record<string, unknown>, opts: ProcOptions = {}): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), 'auralink-bench-'));
  const file = join(dir, 'config.yaml');
  const b = 20000 + Math.floor(Math.random() * 300) * 40;
  const base = {
    keys: { [KEY]: SECRET },
    port: 0,
    bind_address: '127.0.0.1',
    log_level: 'info',
    database: { data_dir: join(dir, 'pglite') },
    sfu: { webrtc_port: b, rtc_min_port: b + 4, rtc_max_port: b + 19 },
    turn: { port: b + 20, relay_min_port: b + 21, relay_max_port: b + 39 },
  };
  writeFileSync(file, YAML.stringify(merge(base, overrides)));
  return startProc([fileURLToPath(new URL('../src/cli.js', import.meta.url)), 'serve', '--config', file], { ...opts, tmpDir: dir });
}

/** Our signalling with the limits a load test needs lifted; PostgreSQL when `databaseUrl` is set. */
export const startAuraSignal = (o: ProcOptions & { databaseUrl?: string; overrides?: Record<string, unknown> } = {}): Promise<Server> =>
  startAura(
    merge(
      {
        ...(o.databaseUrl ? { database: { url: o.databaseUrl } } : {}),
        signal: {
          rate_limit: { messages_per_s: 1e6, burst: 1e6, violations_before_close: 1000 },
          ip_connect_limit: { per_s: 1e6, burst: 1e6 },
          max_backpressure_bytes: 4 * 1024 * 1024,
        },
      },
      o.overrides ?? {},
    ),
    o,
  );

export const auraUrl = (port: number, identity: string, room: string): string =>
  `ws://127.0.0.1:${port}/rtc?access_token=${createToken(KEY, SECRET, { identity, video: { roomJoin: true, room } })}`;

let ipCounter = 0;
/** Spread connections over 127.0.0.1-127.0.0.8 so ephemeral ports never run out. */
export const nextLocal = (): string => `127.0.0.${(ipCounter++ % 8) + 1}`;

/**
 * Opens a WebSocket and resolves at the first message for which `ready` is true (default: the
 * first message), with the time from the connect call to it in ms.
 */
export function connect(
  url: string,
  protocol?: string,
  ready: (ws: WebSocket, data: Buffer, isBinary: boolean) => boolean = () => true,
): Promise<{ ws: WebSocket; t: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocol ? [protocol] : [], { localAddress: nextLocal(), perMessageDeflate: false });
    const onMessage = (d: Buffer, isBinary: boolean): void => {
      if (!ready(ws, d, isBinary)) return;
      ws.off('message', onMessage);
      resolve({ ws, t: performance.now() - t0 });
    };
    ws.on('message', onMessage);
    ws.once('error', reject);
  });
}

/**
 * p50/p99 upper bounds (bucket edges, ms) of the server's own join-time histograms:
 * `auralink_signal_join_seconds` (from the start of the loop turn that read the upgrade: the
 * wait behind earlier joins included) and `_handler_seconds` (the upgrade handler alone).
 */
export async function serverJoinQuantiles(port: number): Promise<{ p50: number; p99: number; handlerP50: number; handlerP99: number }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const quantiles = (name: string): [number, number] => {
    const buckets: [number, number][] = [];
    for (const m of text.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\d+)$`, 'gm'))) {
      buckets.push([m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2])]);
    }
    if (buckets.length === 0) return [NaN, NaN];
    const total = buckets[buckets.length - 1]![1];
    const q = (p: number): number => buckets.find(([, c]) => c >= p * total)![0] * 1000;
    return [q(0.5), q(0.99)];
  };
  const [p50, p99] = quantiles('auralink_signal_join_seconds');
  const [handlerP50, handlerP99] = quantiles('auralink_signal_join_handler_seconds');
  return { p50, p99, handlerP50, handlerP99 };
}

/** CPU seconds (user+sys) of a process, all its threads, from /proc. */
export function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

export const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 50 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`timed out: ${what}`);
}

/**
 * Opens `count` connections at `rate`/s on schedule (not waiting for earlier ones) and
 * resolves when all have joined: their client-measured join times (ms) and the sockets.
 */
export async function storm<T extends { t: number }>(count: number, rate: number, open: (i: number) => Promise<T>): Promise<{ lat: number[]; joined: T[]; secs: number }> {
  const lat: number[] = [];
  const joined: T[] = [];
  const pending: Promise<void>[] = [];
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const wait = t0 + (i * 1000) / rate - performance.now();
    if (wait > 1) await sleep(wait);
    pending.push(
      open(i).then((r) => {
        lat.push(r.t);
        joined.push(r);
      }),
    );
  }
  await Promise.all(pending);
  return { lat, joined, secs: (performance.now() - t0) / 1000 };
}

// ---------- UDP drop counters (bench/turn) ----------

/** This network namespace's UDP counters (/proc/net/snmp): where the kernel dropped datagrams. */
export function udpCounters(): Record<'InDatagrams' | 'InErrors' | 'RcvbufErrors' | 'SndbufErrors' | 'OutDatagrams', number> {
  const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
  const names = lines[0]!.split(/\s+/).slice(1);
  const values = lines[1]!.split(/\s+/).slice(1).map(Number);
  const get = (n: string): number => values[names.indexOf(n)] ?? 0;
  return { InDatagrams: get('InDatagrams'), InErrors: get('InErrors'), RcvbufErrors: get('RcvbufErrors'), SndbufErrors: get('SndbufErrors'), OutDatagrams: get('OutDatagrams') };
}

/**
 * Per-socket receive drops (/proc/net/udp's `drops` column) of the sockets whose local port
 * `ports` accepts, sampled while they exist (relay sockets close when a load ends): the highest
 * count seen per socket, summed. Call stop() for the total.
 */
export function socketDropSampler(ports: (port: number) => boolean, everyMs = 200): { stop(): number } {
  const maxByInode = new Map<string, number>();
  const sample = (): void => {
    for (const f of ['/proc/net/udp', '/proc/net/udp6']) {
      let text = '';
      try {
        text = readFileSync(f, 'utf8');
      } catch {
        continue;
      }
      for (const line of text.split('\n').slice(1)) {
        const c = line.trim().split(/\s+/);
        if (c.length < 13) continue;
        const port = parseInt(c[1]!.split(':')[1]!, 16);
        if (!ports(port)) continue;
        const drops = Number(c[12]);
        maxByInode.set(c[9]!, Math.max(drops, maxByInode.get(c[9]!) ?? 0));
      }
    }
  };
  sample();
  const base = new Map(maxByInode);
  const timer = setInterval(sample, everyMs);
  return {
    stop(): number {
      clearInterval(timer);
      sample();
      let sum = 0;
      for (const [inode, d] of maxByInode) sum += d - (base.get(inode) ?? 0);
      return sum;
    },
  };
}

// ---------- Prometheus text ----------

export async function metricsText(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

/** Sum of the samples of `name` whose labels include every one of `labels` (NaN if none). */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  let seen = false;
  for (const m of text.matchAll(/^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$/gm)) {
    if (m[1] !== name) continue;
    const lbl = m[2] ?? '';
    if (!Object.entries(labels).every(([k, v]) => lbl.includes(`${k}="${v}"`))) continue;
    sum += Number(m[3]);
    seen = true;
  }
  return seen ? sum : Number.NaN;
}


// ---------- join storm against a running AuraLink server (bench/turn) ----------

/** Signalling limits raised so a join storm measures the server, not its rate limiter. */
export const BENCH_SIGNAL_LIMITS = {
  rate_limit: { messages_per_s: 1e6, burst: 1e6, violations_before_close: 1000 },
  ip_connect_limit: { per_s: 1e6, burst: 1e6 },
  max_backpressure_bytes: 4 * 1024 * 1024,
};

/**
 * `count` joins at `rate`/s over 100 rooms against a running AuraLink server: client-measured
 * time to the join response (p50/p99 ms) and the rate achieved. Identities start with `prefix`.
 */
export async function joinStormOn(port: number, count: number, rate: number, prefix = 'j'): Promise<{ p50: number; p99: number; achieved: number }> {
  // Tokens are signed before the storm (signing during it takes CPU from server and client).
  const urls = Array.from({ length: count }, (_, i) => auraUrl(port, `${prefix}${i}`, `room${i % 100}`));
  const { lat, joined, secs } = await storm(count, rate, (i) => connect(urls[i]!, SUBPROTOCOL.proto));
  for (const { ws } of joined) ws.terminate();
  return { p50: pct(lat, 50), p99: pct(lat, 99), achieved: count / secs };
}

// ---------- fan-out pump (bench/signal, bench/peers) ----------

/**
 * Sends `frame` M times from `sender`, keeping at most 200 messages ahead of the slowest
 * receiver (so the server's buffers do not decide the result), until every receiver has all
 * M. Delivered messages per second and server CPU µs per delivery (server `pid`).
 */
export async function pumpFanout(
  sender: WebSocket,
  frame: Uint8Array | string,
  receivers: { got: number }[],
  M: number,
  pid: number,
): Promise<{ rate: number; cpuPerDeliveryUs: number }> {
  const WINDOW = 200;
  const minGot = (): number => receivers.reduce((m, r) => Math.min(m, r.got), Infinity);
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  let sent = 0;
  while (sent < M) {
    while (sent < M && sent - minGot() < WINDOW) {
      sender.send(frame);
      sent++;
    }
    await new Promise((r) => setImmediate(r));
  }
  while (minGot() < M) await new Promise((r) => setImmediate(r));
  const secs = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(pid) - cpu0;
  const n = M * receivers.length;
  return { rate: n / secs, cpuPerDeliveryUs: (cpu / n) * 1e6 };
}
