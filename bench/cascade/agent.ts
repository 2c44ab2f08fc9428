// The bench's side of bench/cascade/rtpAgent.ts: one agent process per node, requests over
// its stdin, events ('first', 'after') from its stdout.
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const AGENT = fileURLToPath(new URL('./rtpAgent.js', import.meta.url));

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface FirstPacket {
  sock: number;
  stream: number;
  /** Arrival, hrtime ns. */
  t: bigint;
}

export class Agent extends EventEmitter<{ first: [FirstPacket]; after: [{ sock: number; t: bigint; sent: bigint }] }> {
  private nextSeq = 1;
  private readonly pending = new Map<number, { resolve(v: Json): void; reject(e: Error): void }>();
  /** First arrival per "sock:stream" seen so far. */
  readonly firsts = new Map<string, bigint>();

  constructor(
    readonly node: string,
    readonly proc: ChildProcess,
  ) {
    super();
    this.setMaxListeners(0); // one waiter per (socket, stream) awaited at once
    proc.stdin!.on('error', () => undefined);
    proc.stderr!.on('data', (d: Buffer) => process.stderr.write(`[agent ${node}] ${d}`));
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      const m = JSON.parse(line) as Json;
      if (m.ev === 'first') {
        const f = { sock: m.sock as number, stream: m.stream as number, t: BigInt(m.t) };
        this.firsts.set(`${f.sock}:${f.stream}`, f.t);
        this.emit('first', f);
        return;
      }
      if (m.ev === 'after') return void this.emit('after', { sock: m.sock, t: BigInt(m.t), sent: BigInt(m.sent) });
      const p = this.pending.get(m.seq);
      if (!p) return;
      this.pending.delete(m.seq);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(`agent ${node}: ${m.error}`));
    });
    proc.once('exit', (code, sig) => {
      for (const p of this.pending.values()) p.reject(new Error(`agent ${node} exited ${code ?? sig}`));
      this.pending.clear();
    });
  }

  request(op: string, body: Json = {}): Promise<Json> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return Promise.reject(new Error(`agent ${this.node} is gone`));
    const seq = this.nextSeq++;
    return new Promise((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      this.proc.stdin!.write(JSON.stringify({ ...body, seq, op }) + '\n');
    });
  }

  async bind(n: number): Promise<{ ids: number[]; ports: number[] }> {
    return (await this.request('bind', { n })) as { ids: number[]; ports: number[] };
  }

  /** Resolves with the arrival (hrtime ns) of the first packet of `stream` at `sock`. */
  firstPacket(sock: number, stream: number, timeoutMs: number): Promise<bigint> {
    const have = this.firsts.get(`${sock}:${stream}`);
    if (have !== undefined) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('first', on);
        reject(new Error(`no packet of stream ${stream} at socket ${sock} on ${this.node} in ${timeoutMs} ms`));
      }, timeoutMs);
      const on = (f: FirstPacket): void => {
        if (f.sock !== sock || f.stream !== stream) return;
        clearTimeout(timer);
        this.off('first', on);
        resolve(f.t);
      };
      this.on('first', on);
    });
  }

  /** Resolves with the arrival of the first packet at `sock` sent after hrtime `ns`. */
  async firstSentAfter(sock: number, ns: bigint, timeoutMs: number): Promise<bigint> {
    const got = new Promise<bigint>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('after', on);
        reject(new Error(`no packet sent after the mark at socket ${sock} on ${this.node} in ${timeoutMs} ms`));
      }, timeoutMs);
      const on = (a: { sock: number; t: bigint }): void => {
        if (a.sock !== sock) return;
        clearTimeout(timer);
        this.off('after', on);
        resolve(a.t);
      };
      this.on('after', on);
    });
    await this.request('after', { sock, ns: String(ns) });
    return got;
  }

  async counts(socks?: number[]): Promise<Record<string, Record<string, number>>> {
    return (await this.request('counts', socks ? { socks } : {})) as Record<string, Record<string, number>>;
  }

  async exit(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const gone = new Promise((r) => this.proc.once('exit', r));
    await this.request('exit').catch(() => undefined);
    await Promise.race([gone, new Promise((r) => setTimeout(r, 2000))]);
    this.proc.kill('SIGKILL');
  }
}
