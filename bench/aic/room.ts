// The documented reference room (docs/AIC.md, README): N participants (9), each publishing a
// replayed simulcast VP8 camera (3 layers) and Opus over a producing plain transport, and
// viewing the N-1 others over a consuming plain transport, all over our signalling. Each
// viewer reports every tile as the SDK's adaptiveStream.ts does (trackSettings: device
// pixels, hidden = 0x0): the active speaker at 960x540 (the speaker itself shows the
// previous speaker there), the others at 240x135, of which the last 4 in its grid are
// scrolled out of view (hidden). Its own camera is the 9th small tile (local preview, not
// consumed).
import type { SignalClient } from '../../src/client/signalClient.js';
import type { RtpParser } from '../../src/aic/rtp/api.js';
import type { TestServer } from '../../test/helpers.js';
import type { Capture } from './capture.js';
import { ReplayPublisher } from './publisher.js';
import { Viewer, type Tile } from './viewer.js';

export const LARGE = { width: 960, height: 540 };
export const SMALL = { width: 240, height: 135 };
export const HIDDEN_PER_VIEWER = 4;
/** Participant 0 is the active speaker; participant 1 spoke before (what 0 shows large). */
export const SPEAKER = 0;

export interface TileSpec {
  publisher: number;
  width: number;
  height: number;
  hidden: boolean;
}

/** What viewer `v` of `n` shows: the large tile, then its grid in order (the last HIDDEN_PER_VIEWER scrolled out). */
export function layout(v: number, n: number): TileSpec[] {
  const large = v === SPEAKER ? 1 : SPEAKER;
  const small = [...Array(n).keys()].filter((p) => p !== v && p !== large).sort((a, b) => ((a - v + n) % n) - ((b - v + n) % n));
  const scrolledOut = (i: number): boolean => i >= small.length - HIDDEN_PER_VIEWER;
  return [
    { publisher: large, ...LARGE, hidden: false },
    ...small.map((p, i) => (scrolledOut(i) ? { publisher: p, width: 0, height: 0, hidden: true } : { publisher: p, ...SMALL, hidden: false })),
  ];
}

/**
 * Router capabilities without transport-cc, REMB and abs-send-time: a plain-RTP viewer sends
 * no congestion feedback, and with those negotiated mediasoup would run a bandwidth
 * estimator with nothing to feed it (its initial estimate would then cap every arm's
 * layers). Without them it forwards the layer asked for, as to a viewer on a fast link.
 */
export function plainCaps(json: string): string {
  const caps = JSON.parse(json) as { codecs: { rtcpFeedback?: { type: string }[] }[]; headerExtensions: { uri: string }[] };
  for (const c of caps.codecs) c.rtcpFeedback = (c.rtcpFeedback ?? []).filter((f) => f.type !== 'transport-cc' && f.type !== 'goog-remb');
  caps.headerExtensions = caps.headerExtensions.filter((h) => !/transport-wide-cc|abs-send-time/.test(h.uri));
  return JSON.stringify(caps);
}

export interface Participant {
  index: number;
  client: SignalClient;
  publisher: ReplayPublisher;
  videoProducerId: string;
  viewer: Viewer;
}

export class ReferenceRoom {
  readonly participants: Participant[] = [];
  private timer: NodeJS.Timeout | undefined;
  private t0 = 0;

  private constructor(
    readonly name: string,
    private readonly server: TestServer,
    private readonly capture: Capture,
    private readonly parser: RtpParser,
  ) {}

  /** Publishers first (sending at once, as cameras do), then every viewer subscribes and reports its tiles. */
  static async open(server: TestServer, name: string, n: number, capture: Capture, parser: RtpParser, ssrcBase: number): Promise<ReferenceRoom> {
    const room = new ReferenceRoom(name, server, capture, parser);
    try {
      room.t0 = performance.now();
      room.timer = setInterval(() => {
        const t = performance.now() - room.t0;
        for (const p of room.participants) p.publisher.tick(t);
      }, 4);
      for (let i = 0; i < n; i++) room.participants.push(await room.publish(i, n, ssrcBase + i * 16));
      for (const p of room.participants) await room.subscribe(p, n);
    } catch (err) {
      await room.close();
      throw err;
    }
    return room;
  }

  private async publish(i: number, n: number, ssrcBase: number): Promise<Participant> {
    const client = await this.server.client(`p${i}`, this.name);
    const t = (await client.request('createTransport', { producing: true, plain: true })).transport!;
    const frameMs = 1000 / this.capture.fps;
    const publisher = new ReplayPublisher(this.capture, ssrcBase, t.plainIp!, t.plainPort!, (i * frameMs) / n);
    await publisher.open();
    const rp = publisher.rtpParameters();
    const top = this.capture.layers.at(-1)!;
    const videoProducerId = (await client.request('produce', { transportId: t.id, kind: 'video', source: 'camera', rtpParameters: rp.video, width: top.width, height: top.height })).id!;
    await client.request('produce', { transportId: t.id, kind: 'audio', source: 'microphone', rtpParameters: rp.audio });
    client.on('layersWanted', (m) => {
      if (m.producerId === videoProducerId) publisher.setMaxLayer(m.maxSpatialLayer);
    });
    const viewer = new Viewer(i, this.parser);
    return { index: i, client, publisher, videoProducerId, viewer };
  }

  private async subscribe(p: Participant, n: number): Promise<void> {
    const port = await p.viewer.open();
    const c = p.client;
    const t = (await c.request('createTransport', { consuming: true, plain: true })).transport!;
    await c.request('connectTransport', { transportId: t.id, plainIp: '127.0.0.1', plainPort: port });
    const caps = plainCaps(await c.routerCapabilities());
    const deadline = Date.now() + 10_000;
    for (const spec of layout(p.index, n)) {
      const owner = this.participants[spec.publisher]!;
      // Every producer of the owner (video and audio): told by producerAdded.
      let ids: string[] = [];
      for (;;) {
        ids = [...c.producers.values()].filter((x) => x.participantIdentity === `p${owner.index}` && x.kind !== 'data').map((x) => x.producerId);
        if (ids.length >= 2 || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      if (ids.length < 2) throw new Error(`p${p.index} was not told of p${owner.index}'s producers`);
      for (const producerId of ids) {
        const info = (await c.request('consume', { producerId, transportId: t.id, rtpCapabilities: caps })).consumer!;
        await c.request('resumeConsumer', { consumerId: info.id });
        const rtp = JSON.parse(info.rtpParameters) as { encodings: { ssrc: number }[]; codecs: { payloadType: number }[] };
        const ssrc = rtp.encodings[0]!.ssrc;
        const video = info.kind === 'video';
        p.viewer.codec(rtp.codecs[0]!.payloadType, video ? 'vp8' : 'opus');
        p.viewer.add({ consumerId: info.id, producerId, publisher: owner.index, kind: video ? 'video' : 'audio', ssrc, width: spec.width, height: spec.height, hidden: spec.hidden });
        if (video) await this.report(p, info.id, spec);
      }
    }
  }

  /** trackSettings as adaptiveStream.ts sends it (hidden: 0x0). */
  async report(p: Participant, consumerId: string, s: { width: number; height: number; hidden: boolean }): Promise<void> {
    await p.client.request('trackSettings', { consumerId, width: s.hidden ? 0 : s.width, height: s.hidden ? 0 : s.height, hidden: s.hidden, fps: 0 });
    const tile = [...p.viewer.tiles.values()].find((x) => x.consumerId === consumerId);
    if (tile) Object.assign(tile, { width: s.width, height: s.height, hidden: s.hidden });
  }

  videoTiles(): { viewer: Participant; tile: Tile }[] {
    return this.participants.flatMap((viewer) => [...viewer.viewer.tiles.values()].filter((t) => t.kind === 'video').map((tile) => ({ viewer, tile })));
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all(this.participants.map((p) => p.client.leave().catch(() => p.client.close())));
    for (const p of this.participants) {
      p.publisher.close();
      p.viewer.close();
    }
  }
}
