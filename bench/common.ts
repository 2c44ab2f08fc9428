// Shared by the benchmarks: starting servers as child processes, and reading /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import YAML from 'yaml';
import { merge } from '../src/config/load.js';

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
