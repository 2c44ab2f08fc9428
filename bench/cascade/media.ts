// Publishers and subscribers as a plain-RTP client does them over our signalling: a
// publisher is a producing plain transport (comedia) with audio producers fed by its node's
// agent; a subscriber is a consuming plain transport aimed at a socket of its node's agent.
import type { SignalClient } from '../../src/client/signalClient.js';
import type { TestServer } from '../../test/helpers.js';
import type { Agent } from './agent.js';

let nextStream = 1;
let nextSsrc = 100_000;

const OPUS = (ssrc: number): string =>
  JSON.stringify({
    codecs: [{ mimeType: 'audio/opus', payloadType: 111, clockRate: 48000, channels: 2, rtcpFeedback: [] }],
    headerExtensions: [],
    encodings: [{ ssrc }],
    rtcp: { cname: `bc${ssrc}` },
  });

export interface Publisher {
  client: SignalClient;
  /** Producer ids, and the stream id each carries in its payload. */
  producers: { producerId: string; stream: number }[];
  sender: number;
  agent: Agent;
  stop(): Promise<number>;
}

/** `n` audio producers on one plain transport, each sending `pps` packets of `size` bytes. */
export async function publish(server: TestServer, agent: Agent, identity: string, room: string, n: number, pps: number, size: number): Promise<Publisher> {
  const client = await server.client(identity, room);
  const t = (await client.request('createTransport', { producing: true, plain: true })).transport!;
  const streams: { id: number; ssrc: number }[] = [];
  const producers: { producerId: string; stream: number }[] = [];
  for (let i = 0; i < n; i++) {
    const ssrc = nextSsrc++;
    const stream = nextStream++;
    const producerId = (await client.request('produce', { transportId: t.id, kind: 'audio', rtpParameters: OPUS(ssrc) })).id!;
    streams.push({ id: stream, ssrc });
    producers.push({ producerId, stream });
  }
  const { sender } = (await agent.request('send', { ip: t.plainIp, port: t.plainPort, streams, pps, size })) as { sender: number };
  return {
    client,
    producers,
    sender,
    agent,
    async stop() {
      const r = (await agent.request('stopSend', { sender }).catch(() => ({ sent: 0 }))) as { sent: number };
      return r.sent;
    },
  };
}

export interface Subscriber {
  client: SignalClient;
  node: string;
  agent: Agent;
  sock: number;
  transportId: string;
  caps: string;
  /** Consumer ids by producer id (the latest, after a re-consume). */
  consumers: Map<string, string>;
}

/** A participant on `server` with a consuming plain transport towards a fresh agent socket. */
export async function subscriber(server: TestServer, node: string, agent: Agent, identity: string, room: string): Promise<Subscriber> {
  const [client, { ids, ports }] = await Promise.all([server.client(identity, room), agent.bind(1)]);
  const t = (await client.request('createTransport', { consuming: true, plain: true })).transport!;
  await client.request('connectTransport', { transportId: t.id, plainIp: '127.0.0.1', plainPort: ports[0]! });
  return { client, node, agent, sock: ids[0]!, transportId: t.id, caps: await client.routerCapabilities(), consumers: new Map() };
}

/** Leaves the room and closes the agent socket. */
export async function dispose(s: Subscriber): Promise<void> {
  await s.client.leave().catch(() => s.client.close());
  await s.agent.request('close', { socks: [s.sock] }).catch(() => undefined);
}

/** consume + resumeConsumer (consumers are created paused). */
export async function consume(s: Subscriber, producerId: string): Promise<string> {
  const c = (await s.client.request('consume', { producerId, transportId: s.transportId, rtpCapabilities: s.caps })).consumer!;
  await s.client.request('resumeConsumer', { consumerId: c.id });
  s.consumers.set(producerId, c.id);
  return c.id;
}

/** Waits until the subscriber's client has been told of `producerId` (producerAdded). */
export async function knows(s: Subscriber, producerId: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!s.client.producers.has(producerId)) {
    if (Date.now() > deadline) throw new Error(`${s.node}: never told of producer ${producerId}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const hr = (): bigint => process.hrtime.bigint();
export const msSince = (t0: bigint, t1: bigint): number => Number(t1 - t0) / 1e6;
