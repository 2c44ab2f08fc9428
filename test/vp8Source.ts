// A simulcast VP8 publisher for tests and benches: the committed ffmpeg capture
// (test/fixtures/rtp/vp8.rtpc, 30 fps, key frame every 30 frames) sent in real time on one
// SSRC per layer, the layer's index in the last payload byte (so a receiver can tell which
// layer it gets), and optionally the send time (performance.timeOrigin-based µs, 8 bytes)
// just before it.
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { SignalClient } from '../src/client/signalClient.js';

export function vp8Frames(): Buffer[][] {
  const data = readFileSync(fileURLToPath(new URL('../../test/fixtures/rtp/vp8.rtpc', import.meta.url)));
  const frames: Buffer[][] = [];
  for (let o = 8, i = 0; i < data.readUInt32BE(4); i++) {
    const len = data.readUInt16BE(o);
    const p = Buffer.from(data.subarray(o + 2, o + 2 + len));
    o += 2 + len;
    const last = frames.at(-1);
    if (last && last[0]!.readUInt32BE(4) === p.readUInt32BE(4)) last.push(p);
    else frames.push([p]);
  }
  return frames;
}

export const nowUs = (): number => Math.round((performance.timeOrigin + performance.now()) * 1000);

export interface Vp8Source {
  /** RTP packets sent per layer. */
  sent: number[];
  stop(): void;
}

/** Sends the capture to `port` on `ssrcs` (one per layer), 30 fps, until stopped. */
export function vp8Source(port: number, ssrcs: number[], opts: { pt?: number; stamp?: boolean; fps?: number } = {}): Vp8Source {
  const frames = vp8Frames();
  const sock = dgram.createSocket('udp4');
  const seq = ssrcs.map(() => 1);
  const sent = ssrcs.map(() => 0);
  let frame = 0;
  const timer = setInterval(() => {
    for (const p of frames[frame % frames.length]!) {
      ssrcs.forEach((ssrc, layer) => {
        if (p.length < 24) return;
        const out = Buffer.from(p);
        out[1] = (out[1]! & 0x80) | (opts.pt ?? 96);
        out.writeUInt16BE(seq[layer]!++ & 0xffff, 2);
        out.writeUInt32BE((frame * 3000) >>> 0, 4);
        out.writeUInt32BE(ssrc, 8);
        out[out.length - 1] = layer;
        if (opts.stamp) out.writeBigUInt64BE(BigInt(nowUs()), out.length - 9);
        sock.send(out, port, '127.0.0.1');
        sent[layer]!++;
      });
    }
    frame++;
  }, 1000 / (opts.fps ?? 30));
  return {
    sent,
    stop() {
      clearInterval(timer);
      sock.close();
    },
  };
}

/** VP8 simulcast parameters for a plain-RTP producer: one SSRC per layer, lowest first (¼, ½, full). */
export const vp8SimulcastParameters = (ssrcs: readonly number[], cname = 'vp8'): string =>
  JSON.stringify({
    codecs: [{ mimeType: 'video/VP8', payloadType: 96, clockRate: 90000, rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }] }],
    headerExtensions: [],
    encodings: ssrcs.map((ssrc, i) => ({ ssrc, scaleResolutionDownBy: 2 ** (ssrcs.length - 1 - i) })),
    rtcp: { cname },
  });

/** `c` publishes the capture as a 1280×720 simulcast camera over a plain transport; stop() ends the source. */
export async function publishVp8Simulcast(c: SignalClient, ssrcs: readonly number[]): Promise<{ producerId: string; stop(): void }> {
  const send = (await c.request('createTransport', { producing: true, plain: true })).transport!;
  // The source's size: the layers' sizes (and what forward-all counts) follow from it.
  const producerId = (await c.request('produce', { transportId: send.id, kind: 'video', rtpParameters: vp8SimulcastParameters(ssrcs), source: 'camera', width: 1280, height: 720 })).id!;
  const src = vp8Source(send.plainPort!, [...ssrcs]);
  return { producerId, stop: () => src.stop() };
}
