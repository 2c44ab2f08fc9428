// Shared by the benchmarks: starting servers as child processes, and reading /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { merge } from '../src/config/load.js';

export const KEY = 'benchkey';
export const SECRET = 'bench-secret-that-is-at-least-32-characters';

export interface Server {
  proc: ChildProcess;
  port: number;
  kill(): Promise<void>;
}

/** Runs a node script that logs {"msg":"listening","port":N}; resolves once it does. */
export function startProc(cmd: string[]): Promise<Server> {
  const proc = spawn(process.execPath, cmd, { stdio: ['ignore', 'pipe', 'inherit'] });
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
export function startAura(overrides: Record<string, unknown>): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), 'auralink-bench-'));
  const file = join(dir, 'config.yaml');
  const base = { keys: { [KEY]: SECRET }, port: 0, bind_address: '127.0.0.1', log_level: 'info', database: { data_dir: join(dir, 'pglite') } };
  writeFileSync(file, YAML.stringify(merge(base, overrides)));
  return startProc([fileURLToPath(new URL('../src/cli.js', import.meta.url)), 'serve', '--config', file]);
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
