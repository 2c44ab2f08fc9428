import { EventEmitter } from 'node:events';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
type RtpCapabilities = types.RtpCapabilities;
type RtpCodecCapability = types.RtpCodecCapability;
type WebRtcServer = types.WebRtcServer;
type Worker = types.Worker;
import type { Logger } from 'pino';

/**
 * The codecs a room router can offer, by the names config's `sfu.codecs` uses (mediasoup
 * adds RTX for the video ones). Order matters: it is the router's preference.
 */
export const CODECS: Record<string, RtpCodecCapability[]> = {
  opus: [{ kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 }],
  VP8: [{ kind: 'video', mimeType: 'video/VP8', clockRate: 90000, parameters: { 'x-google-start-bitrate': 1000 } }],
  VP9: [
    { kind: 'video', mimeType: 'video/VP9', clockRate: 90000, parameters: { 'profile-id': 0, 'x-google-start-bitrate': 1000 } },
    { kind: 'video', mimeType: 'video/VP9', clockRate: 90000, parameters: { 'profile-id': 2, 'x-google-start-bitrate': 1000 } },
  ],
  H264: [
    {
      kind: 'video', mimeType: 'video/H264', clockRate: 90000,
      parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f', 'level-asymmetry-allowed': 1, 'x-google-start-bitrate': 1000 },
    },
    {
      kind: 'video', mimeType: 'video/H264', clockRate: 90000,
      parameters: { 'packetization-mode': 1, 'profile-level-id': '4d0032', 'level-asymmetry-allowed': 1, 'x-google-start-bitrate': 1000 },
    },
  ],
};

export interface WorkerPoolOptions {
  workers: number;
  /** Names from CODECS, in preference order. */
  codecs: string[];
  logLevel: 'debug' | 'warn' | 'error' | 'none';
  listenIp: string;
  announcedIp: string;
  webrtcPort: number;
  rtcMinPort: number;
  rtcMaxPort: number;
}

/** One mediasoup worker process and its WebRtcServer (fixed UDP+TCP port). */
export class WorkerSlot {
  routers = 0;
  consumers = 0;
  constructor(
    readonly index: number,
    readonly worker: Worker,
    readonly webRtcServer: WebRtcServer,
  ) {}

  get pid(): number {
    return this.worker.pid;
  }
}

export interface WorkerPoolEvents {
  /** A worker died; its slot is already replaced (or replacement failed: `replacement` null). */
  workerDied: [dead: WorkerSlot, replacement: WorkerSlot | null];
}

/**
 * A worker per core, each with a WebRtcServer on webrtc_port + index, so every WebRTC
 * transport of the node uses a fixed, firewall-friendly port set. A worker that dies is
 * replaced on the same index (same port) and `workerDied` tells the owners of its routers.
 */
export class WorkerPool extends EventEmitter<WorkerPoolEvents> {
  readonly slots: WorkerSlot[] = [];
  rtpCapabilities!: RtpCapabilities;
  /** The router codec list built from config. */
  readonly mediaCodecs: RtpCodecCapability[];
  private closed = false;

  constructor(private readonly opts: WorkerPoolOptions, private readonly log: Logger) {
    super();
    this.mediaCodecs = opts.codecs.flatMap((name) => CODECS[name] ?? []);
  }

  async start(): Promise<void> {
    for (let i = 0; i < this.opts.workers; i++) this.slots.push(await this.spawn(i));
    // Router capabilities depend only on the codec list: compute them once, so a join
    // response can carry them before the room has a router.
    const probe = await this.slots[0]!.worker.createRouter({ mediaCodecs: this.mediaCodecs });
    this.rtpCapabilities = probe.rtpCapabilities;
    probe.close();
  }

  private async spawn(index: number): Promise<WorkerSlot> {
    const worker = await mediasoup.createWorker({
      logLevel: this.opts.logLevel,
      rtcMinPort: this.opts.rtcMinPort,
      rtcMaxPort: this.opts.rtcMaxPort,
    });
    let webRtcServer: WebRtcServer;
    try {
      const port = this.opts.webrtcPort + index;
      const announcedIp = this.opts.announcedIp || undefined;
      webRtcServer = await worker.createWebRtcServer({
        listenInfos: [
          { protocol: 'udp', ip: this.opts.listenIp, announcedIp, port },
          { protocol: 'tcp', ip: this.opts.listenIp, announcedIp, port },
        ],
      });
    } catch (err) {
      worker.close();
      throw err;
    }
    const slot = new WorkerSlot(index, worker, webRtcServer);
    worker.on('died', (err) => void this.replace(slot, err));
    this.log.info({ index, pid: worker.pid, port: this.opts.webrtcPort + index }, 'mediasoup worker started');
    return slot;
  }

  private async replace(dead: WorkerSlot, err: Error): Promise<void> {
    if (this.closed) return;
    this.log.error({ index: dead.index, pid: dead.pid, err }, 'mediasoup worker died; replacing it');
    let replacement: WorkerSlot | null = null;
    try {
      replacement = await this.spawn(dead.index);
      this.slots[dead.index] = replacement;
    } catch (e) {
      this.log.error({ index: dead.index, err: e }, 'could not replace mediasoup worker');
      this.slots.splice(this.slots.indexOf(dead), 1);
    }
    this.emit('workerDied', dead, replacement);
  }

  /** The live slot with the fewest consumers (then routers), optionally avoiding some. */
  leastLoaded(avoid: ReadonlySet<WorkerSlot> = new Set()): WorkerSlot | undefined {
    let best: WorkerSlot | undefined;
    for (const s of this.slots) {
      if (avoid.has(s) || s.worker.closed) continue;
      if (!best || s.consumers < best.consumers || (s.consumers === best.consumers && s.routers < best.routers)) best = s;
    }
    return best;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.slots) s.worker.close();
    this.slots.length = 0;
  }
}
