// SFU benchmark: R rooms x P participants, each a Node media client over the real signalling
// API with plain RTP transports (no WebRTC stack in Node here): it publishes one audio
// stream (50 packets/s) and consumes everyone else's. Prints
//   media-ready time: join start -> first forwarded RTP packet (participants joining a room
//                     where others already send), p50/p99
//   consumers per worker and their scores, packets delivered vs expected
//   server (control plane) CPU next to the mediasoup workers' CPU, steady state
// Usage: node dist/bench/sfu.js [--rooms 10] [--participants 8] [--workers 1] [--seconds 5]
import { createSocket, type Socket } from 'node:dgram';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { cpuSeconds, KEY, pct, SECRET, sleep, startAura } from './common.js';
import { createToken } from '../src/auth/token.js';
import { SignalClient, type WebSocketCtor } from '../src/client/signalClient.js';

const { values: args } = parseArgs({
  options: {
    rooms: { type: 'string', default: '10' },
    participants: { type: 'string', default: '8' },
    workers: { type: 'string', default: '1' },
    seconds: { type: 'string', default: '5' },
  },
});
const ROOMS = Number(args.rooms);
const PER_ROOM = Number(args.participants);
const srv = await startAura({
  log_level: 'info',
  signal: { rate_limit: { messages_per_s: 1e5, burst: 1e5 }, ip_connect_limit: { per_s: 1e5, burst: 1e5 } },
  sfu: { workers: Number(args.workers), allow_plain_transports: true, max_consumers_per_router: 10_000 },
});
const { port } = srv;
const server = srv.proc;
const http = `http://127.0.0.1:${port}`;
const OPUS = (ssrc: number): string =>
  JSON.stringify({
    codecs: [{ mimeType: 'audio/opus', payloadType: 111, clockRate: 48000, channels: 2 }],
    encodings: [{ ssrc }],
    rtcp: { cname: `b${ssrc}` },
  });

interface Participant {
  client: SignalClient;
  sendSock: Socket;
  recvSock: Socket;
  timer: NodeJS.Timeout;
  received: number;
  consumers: string[];
}
const participants: Participant[] = [];
const ready: number[] = [];
let ssrcSeq = 10_000;

async function joinOne(room: string, i: number): Promise<void> {
  const t0 = performance.now();
  const client = await SignalClient.connect(`ws://127.0.0.1:${port}`, createToken(KEY, SECRET, { identity: `${room}-p${i}`, video: { roomJoin: true, room } }), {
    WebSocket: WebSocket as unknown as WebSocketCtor,
    autoPing: false,
  });
  const caps = await client.routerCapabilities();
  const recvSock = createSocket('udp4');
  await new Promise<void>((r) => recvSock.bind(0, '127.0.0.1', () => r()));
  const p: Participant = { client, sendSock: createSocket('udp4'), recvSock, timer: setInterval(() => undefined, 1e9), received: 0, consumers: [] };
  let first = true;
  recvSock.on('message', (m) => {
    const pt = m[1]! & 0x7f;
    if (pt >= 72 && pt <= 76) return; // RTCP
    p.received++;
    if (first && i > 0) {
      first = false;
      ready.push(performance.now() - t0);
    }
  });
  const recv = (await client.request('createTransport', { consuming: true, plain: true })).transport!;
  await client.request('connectTransport', { transportId: recv.id, plainIp: '127.0.0.1', plainPort: recvSock.address().port });
  const consume = async (producerId: string): Promise<void> => {
    const c = (await client.request('consume', { producerId, transportId: recv.id, rtpCapabilities: caps })).consumer!;
    p.consumers.push(c.id);
    await client.request('resumeConsumer', { consumerId: c.id });
  };
  client.on('producerAdded', (pr) => void consume(pr.producerId).catch(() => undefined));
  await Promise.all([...client.producers.keys()].map(consume));
  const send = (await client.request('createTransport', { producing: true, plain: true })).transport!;
  const ssrc = ssrcSeq++;
  await client.request('produce', { transportId: send.id, kind: 'audio', rtpParameters: OPUS(ssrc) });
  let seq = 0;
  const pkt = Buffer.alloc(12 + 100, 1);
  pkt[0] = 0x80;
  pkt[1] = 111;
  pkt.writeUInt32BE(ssrc, 8);
  clearInterval(p.timer);
  p.timer = setInterval(() => {
    pkt.writeUInt16BE(seq++ & 0xffff, 2);
    pkt.writeUInt32BE((seq * 960) >>> 0, 4);
    p.sendSock.send(pkt, send.plainPort!, send.plainIp!);
  }, 20);
  participants.push(p);
}

const tJoin = performance.now();
for (let i = 0; i < PER_ROOM; i++) {
  await Promise.all(Array.from({ length: ROOMS }, (_, r) => joinOne(`room${r}`, i)));
}
const joinSecs = (performance.now() - tJoin) / 1000;
await sleep(1000);
type Health = { sfu: { workers: { index: number; pid: number; routers: number; consumers: number }[] } };
const h0 = (await (await fetch(`${http}/health`)).json()) as Health;
const workerPids = h0.sfu.workers.map((w) => w.pid);
const cpu0 = { server: cpuSeconds(server.pid!), workers: workerPids.map(cpuSeconds) };
for (const p of participants) p.received = 0;
const S = Number(args.seconds);
await sleep(S * 1000);
const cpu1 = { server: cpuSeconds(server.pid!), workers: workerPids.map(cpuSeconds) };
const received = participants.reduce((n, p) => n + p.received, 0);
const expected = ROOMS * PER_ROOM * (PER_ROOM - 1) * 50 * S;
// Every consumer's current score, as mediasoup reports it in its stats.
const scores: number[] = [];
for (const p of participants) {
  for (const id of p.consumers) {
    const stats = JSON.parse((await p.client.request('getStats', { id })).json!) as { type: string; score?: number }[];
    const out = stats.find((x) => x.type === 'outbound-rtp');
    if (out?.score !== undefined) scores.push(out.score);
  }
}
const serverCpu = cpu1.server - cpu0.server;
const workerCpu = cpu1.workers.reduce((n, c, i) => n + c - cpu0.workers[i]!, 0);

console.log(`SFU: ${ROOMS} rooms x ${PER_ROOM} participants, ${h0.sfu.workers.length} worker(s), plain-RTP audio at 50 pkt/s each`);
console.log(`  joins + media setup: ${(ROOMS * PER_ROOM / joinSecs).toFixed(0)} participants/s`);
console.log(`  media-ready (join -> first forwarded RTP): p50 ${pct(ready, 50).toFixed(1)} ms, p99 ${pct(ready, 99).toFixed(1)} ms (n=${ready.length}; target p99 < 150 ms)`);
for (const w of h0.sfu.workers) console.log(`  worker ${w.index}: ${w.consumers} consumers, ${w.routers} routers`);
console.log(`  consumer scores (getStats): ${scores.length} consumers, min ${scores.length ? Math.min(...scores) : '-'}, at >= 9: ${scores.filter((s) => s >= 9).length}; target >= 500 consumers per worker at score >= 9`);
console.log(`  delivered ${received} of ${expected} expected RTP packets in ${S} s (${((100 * received) / expected).toFixed(1)}%)`);
console.log(`  CPU over ${S} s steady state: server (control plane) ${serverCpu.toFixed(2)} s, workers ${workerCpu.toFixed(2)} s: ratio ${(serverCpu / workerCpu).toFixed(3)} (target < 0.10)`);
for (const p of participants) {
  clearInterval(p.timer);
  p.sendSock.close();
  p.recvSock.close();
  p.client.close(1000);
}
await srv.kill();
process.exit(0);
