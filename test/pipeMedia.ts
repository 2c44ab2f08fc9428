// Test-side drivers for the cross-host pipe spike: a mediasoup "host" process in a namespace
// (test/fixtures/msNode.ts), the UDP receiver (fixtures/udpSink.ts) and the VP8 source
// (ffmpeg, or the committed capture replayed when ffmpeg is not installed).
import { execFileSync, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { TestNet } from './netns.js';

export const fixture = (f: string): string => fileURLToPath(new URL(`./fixtures/${f}`, import.meta.url));

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** One mediasoup worker + router in its own process inside `node`'s namespace. */
export class MsHost extends EventEmitter {
  readonly proc: ChildProcess;
  /** Everything mediasoup logged (stderr). */
  log = '';
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: Json): void; reject(e: Error): void; timer: NodeJS.Timeout }>();

  constructor(
    net: TestNet,
    readonly node: string,
  ) {
    super();
    this.proc = net.run(node, process.execPath, [fixture('msNode.js')], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, DEBUG: 'mediasoup:WARN* mediasoup:ERROR* mediasoup:Channel' },
    });
    this.proc.stderr!.on('data', (d: Buffer) => (this.log += d));
    this.proc.stdin!.on('error', () => undefined); // a host killed mid-test: its requests reject below
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      const m = JSON.parse(line) as Json;
      if (m.event) return void this.emit(`${m.event}:${m.name}`, m);
      const p = this.pending.get(m.seq);
      if (!p) return;
      this.pending.delete(m.seq);
      clearTimeout(p.timer);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(`${this.node} ${m.error}`));
    });
    this.proc.once('exit', (code, sig) => {
      for (const p of this.pending.values()) p.reject(new Error(`${this.node}: host exited ${code ?? sig}`));
      this.pending.clear();
    });
  }

  request(op: string, body: Json = {}, timeoutMs = 10000): Promise<Json> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return Promise.reject(new Error(`${this.node} ${op}: host is gone`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.node} ${op}: no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.proc.stdin!.write(JSON.stringify({ ...body, seq: id, op }) + '\n');
    });
  }

  /** Resolves on the next `event` for object `name` (e.g. 'producerpause', 'bOut'). */
  next(event: string, name: string, timeoutMs = 5000): Promise<Json> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.node}: no ${event} for ${name} in ${timeoutMs} ms`)), timeoutMs);
      this.once(`${event}:${name}`, (m: Json) => {
        clearTimeout(timer);
        resolve(m);
      });
    });
  }

  async exit(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    await this.request('exit').catch(() => undefined);
    await exited;
  }
}

export interface SinkStats {
  rtp: number;
  bytes: number;
  rtcp: number;
  /** RTP packets per "ssrc:payloadType". */
  streams: Record<string, number>;
}

/** A UDP socket inside `node`'s namespace that counts what arrives. */
export class UdpSink {
  latest: SinkStats = { rtp: 0, bytes: 0, rtcp: 0, streams: {} };
  private constructor(
    readonly proc: ChildProcess,
    readonly port: number,
  ) {}

  static async start(net: TestNet, node: string, host = '127.0.0.1'): Promise<UdpSink> {
    const proc = net.run(node, process.execPath, [fixture('udpSink.js'), host, '0']);
    const lines = createInterface({ input: proc.stdout! });
    const port = await new Promise<number>((resolve, reject) => {
      lines.once('line', (l) => (l.startsWith('bound ') ? resolve(Number(l.slice(6))) : reject(new Error(l))));
      proc.once('exit', (c) => reject(new Error(`udpSink exited ${c}`)));
    });
    const sink = new UdpSink(proc, port);
    lines.on('line', (l) => (sink.latest = JSON.parse(l) as SinkStats));
    return sink;
  }

  /** RTP packets so far of one stream (ssrc, and payload type when given). */
  count(ssrc: number, pt?: number): number {
    let n = 0;
    for (const [k, v] of Object.entries(this.latest.streams)) {
      const [s, p] = k.split(':').map(Number);
      if (s === ssrc && (pt === undefined || p === pt)) n += v;
    }
    return n;
  }
}

/** ffmpeg on PATH (PIPE_SPIKE_SOURCE=replay forces the fallback, to check it). */
export const haveFfmpeg = ((): boolean => {
  if (process.env.PIPE_SPIKE_SOURCE === 'replay') return false;
  try {
    execFileSync('ffmpeg', ['-hide_banner', '-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** VP8 RTP (payload type 96, `ssrc`) to 127.0.0.1:`port` inside `node`'s namespace, until killed. */
export function startVp8Source(net: TestNet, node: string, port: number, ssrc: number): ChildProcess {
  if (!haveFfmpeg) return net.run(node, process.execPath, [fixture('rtpReplay.js'), '127.0.0.1', String(port), String(ssrc)]);
  // -ssrc is a signed int in ffmpeg's option table.
  const signed = ssrc | 0;
  return net.run(node, 'ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30',
    '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '400k', '-g', '30', '-auto-alt-ref', '0',
    '-payload_type', '96', '-ssrc', String(signed), '-rtpflags', 'skip_rtcp', '-f', 'rtp', `rtp://127.0.0.1:${port}?pkt_size=1200`,
  ]);
}

export const VP8_PRODUCER = (ssrc: number): Json => ({
  codecs: [
    {
      mimeType: 'video/VP8',
      payloadType: 96,
      clockRate: 90000,
      rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }, { type: 'ccm', parameter: 'fir' }],
    },
  ],
  encodings: [{ ssrc }],
});

export interface PipeEnd {
  host: MsHost;
  /** The pipe transport's name in that host. */
  name: string;
  /** The address it listens on (and announces): the node's media address. */
  ip: string;
}

/**
 * Router.pipeToRouter's transport half across two processes: a PipeTransport on each side
 * (SRTP + RTX), then each connects to the OTHER side's tuple with the OTHER side's
 * srtpParameters. `swapSrtp` passes each side its own parameters instead (the known mistake).
 */
export async function connectPipes(x: PipeEnd, y: PipeEnd, opts: { swapSrtp?: boolean } = {}): Promise<{ x: Json; y: Json }> {
  const make = (e: PipeEnd): Promise<Json> => e.host.request('createPipeTransport', { name: e.name, listenIp: e.ip, enableSrtp: true, enableRtx: true });
  const [tx, ty] = await Promise.all([make(x), make(y)]);
  await Promise.all([
    x.host.request('connectPipeTransport', { name: x.name, ip: ty.tuple.localIp, port: ty.tuple.localPort, srtpParameters: opts.swapSrtp ? tx.srtpParameters : ty.srtpParameters }),
    y.host.request('connectPipeTransport', { name: y.name, ip: tx.tuple.localIp, port: tx.tuple.localPort, srtpParameters: opts.swapSrtp ? ty.srtpParameters : tx.srtpParameters }),
  ]);
  return { x: tx, y: ty };
}

/**
 * Router.pipeToRouter's producer half: consume `producerId` on x's pipe transport, produce
 * it on y's with the pipe consumer's kind and rtpParameters, the same id and the producer's
 * paused state; then carry pause / resume / close from x's consumer to y's producer, as
 * pipeToRouter wires its observers (here across processes, by the test).
 */
export async function pipeProducer(
  x: Pick<PipeEnd, 'host' | 'name'>,
  y: Pick<PipeEnd, 'host' | 'name'>,
  producerId: string,
  names: { consumer: string; producer: string },
  opts: { keyFrameRequestDelay?: number; id?: string } = {},
): Promise<{ consumer: Json; producer: Json }> {
  const consumer = await x.host.request('consume', { transport: x.name, name: names.consumer, producerId });
  const producer = await y.host.request('produce', {
    transport: y.name,
    name: names.producer,
    id: opts.id ?? producerId,
    kind: consumer.kind,
    rtpParameters: consumer.rtpParameters,
    paused: consumer.producerPaused,
    keyFrameRequestDelay: opts.keyFrameRequestDelay,
  });
  const forward = (event: string, op: string): void =>
    void x.host.on(`${event}:${names.consumer}`, () => void y.host.request(op, { name: names.producer }).catch(() => undefined));
  forward('producerpause', 'pause');
  forward('producerresume', 'resume');
  forward('producerclose', 'close');
  return { consumer, producer };
}
