// Shared by the benchmarks: starting servers as child processes, and reading /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
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
  /** With `inspect`: runs a full garbage collection in the server (inspector protocol). */
  fullGc(): Promise<void>;
}

/**
 * Runs a node script that logs {"msg":"listening","port":N}; resolves once it does. With
 * `inspect`, the inspector listens on a loopback port so the bench can ask for a full GC.
 */
export function startProc(cmd: string[], opts: { inspect?: boolean } = {}): Promise<Server> {
  const proc = spawn(process.execPath, opts.inspect ? ['--inspect=127.0.0.1:0', ...cmd] : cmd, {
    stdio: ['ignore', 'pipe', opts.inspect ? 'pipe' : 'inherit'],
  });
  let inspector: string | undefined;
  proc.stderr?.on('data', (d: Buffer) => {
    const text = d.toString();
    inspector ??= /ws:\/\/127\.0\.0\.1:\d+\/[\w-]+/.exec(text)?.[0];
    if (!/Debugger (listening|attached)|nodejs\.org\/en\/docs\/inspector|Waiting for the debugger/.test(text)) process.stderr.write(d);
  });
  const fullGc = async (): Promise<void> => {
    if (!inspector) throw new Error('server not started with inspect');
    const ws = new WebSocket(inspector);
    await new Promise((r, j) => ws.once('open', r).once('error', j));
    await new Promise<void>((r) => {
      ws.on('message', (m: Buffer) => (JSON.parse(m.toString()) as { id?: number }).id === 1 && r());
      ws.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' }));
    });
    ws.close();
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
            resolve({
              proc,
              port: j.port,
              kill: () =>
                new Promise((r) => {
                  proc.once('exit', () => r());
                  proc.kill('SIGKILL');
                }),
              fullGc,
            });
          }
        } catch {
          /* partial line */
        }
      }
    });
    proc.once('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
}

/** The AuraLink server (the CLI) with bench keys, its database in a temp dir, and `overrides`. */
export function startAura(overrides: Record<string, unknown>, opts: { inspect?: boolean } = {}): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), 'auralink-bench-'));
  const file = join(dir, 'config.yaml');
  const base = { keys: { [KEY]: SECRET }, port: 0, bind_address: '127.0.0.1', log_level: 'info', database: { data_dir: join(dir, 'pglite') } };
  writeFileSync(file, YAML.stringify(merge(base, overrides)));
  return startProc([fileURLToPath(new URL('../src/cli.js', import.meta.url)), 'serve', '--config', file], opts);
}

/** CPU seconds (user+sys) of a process, from /proc. */
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

// ---------- join storm (bench/signal's, against a running AuraLink server) ----------

let ipCounter = 0;
/** Spread connections over 127.0.0.1-127.0.0.8 so ephemeral ports never run out. */
const nextLocal = (): string => `127.0.0.${(ipCounter++ % 8) + 1}`;

/** Opens a WebSocket and resolves with the time to its first frame (the join response). */
export function connectTimed(url: string, protocol?: string): Promise<{ ws: WebSocket; t: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocol ? [protocol] : [], { localAddress: nextLocal(), perMessageDeflate: false });
    ws.once('message', () => resolve({ ws, t: performance.now() - t0 }));
    ws.once('error', reject);
  });
}

export const auraJoinUrl = (port: number, identity: string, room: string): string =>
  `ws://127.0.0.1:${port}/rtc?access_token=${createToken(KEY, SECRET, { identity, video: { roomJoin: true, room } })}`;

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
  const lat: number[] = [];
  const sockets: WebSocket[] = [];
  const pending: Promise<void>[] = [];
  // Tokens are signed before the storm (signing during it takes CPU from server and client).
  const urls = Array.from({ length: count }, (_, i) => auraJoinUrl(port, `${prefix}${i}`, `room${i % 100}`));
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const wait = t0 + (i * 1000) / rate - performance.now();
    if (wait > 1) await sleep(wait);
    pending.push(
      connectTimed(urls[i]!, SUBPROTOCOL.proto).then(({ ws, t }) => {
        lat.push(t);
        sockets.push(ws);
      }),
    );
  }
  await Promise.all(pending);
  const achieved = count / ((performance.now() - t0) / 1000);
  for (const ws of sockets) ws.terminate();
  return { p50: pct(lat, 50), p99: pct(lat, 99), achieved };
}
