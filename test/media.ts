import type { SignalClient } from '../src/client/signalClient.js';
import type { TransportInfo } from '../src/signal/messages.js';

// Media steps as a client SDK performs them over signalling, for tests without a WebRTC
// stack: the server accepts these parameters; no media flows on WebRTC transports here.

export const DTLS = JSON.stringify({
  role: 'client',
  fingerprints: [{ algorithm: 'sha-256', value: Array.from({ length: 32 }, (_, i) => (i + 16).toString(16).toUpperCase()).join(':') }],
});

export const opus = (ssrc: number): string =>
  JSON.stringify({
    codecs: [{ mimeType: 'audio/opus', payloadType: 111, clockRate: 48000, channels: 2, parameters: { useinbandfec: 1 }, rtcpFeedback: [] }],
    headerExtensions: [],
    encodings: [{ ssrc }],
    rtcp: { cname: `c${ssrc}` },
  });

/** A connected WebRTC transport of the given direction. */
export async function transport(c: SignalClient, dir: 'producing' | 'consuming', sctp = false): Promise<TransportInfo> {
  const r = await c.request('createTransport', { [dir]: true, sctp });
  await c.request('connectTransport', { transportId: r.transport!.id, dtlsParameters: DTLS });
  return r.transport!;
}

/** Publishes an opus producer on a new send transport; resolves with the producer id. */
export async function publishAudio(c: SignalClient, ssrc = 5555): Promise<string> {
  const tr = await transport(c, 'producing');
  return (await c.request('produce', { transportId: tr.id, kind: 'audio', rtpParameters: opus(ssrc) })).id!;
}

/** Consumes a producer on a new receive transport; resolves with the consumer id. */
export async function subscribe(c: SignalClient, producerId: string): Promise<string> {
  const tr = await transport(c, 'consuming');
  return (await c.request('consume', { producerId, transportId: tr.id, rtpCapabilities: await c.routerCapabilities() })).consumer!.id;
}
