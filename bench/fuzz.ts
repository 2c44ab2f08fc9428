// Fuzz at scale (issue 16): seeded mutations of valid inputs against one server, bounded in
// frames and time, on every surface: signalling frames in the three encodings (every request
// kind, with real media ids so media requests reach mediasoup), RoomService (Twirp), the
// history API, the mesh API and STUN/TURN. Prints counts by outcome and the targets: 0 crashes,
// 0 INTERNAL, 0 5xx, nothing logged at error level, and a healthy room at the end.
// Usage: node dist/bench/fuzz.js [--frames 1000000] [--seconds 900] [--seed N] [--conns 4]
import dgram from 'node:dgram';
import { parseArgs } from 'node:util';
import { createToken, type VideoGrant } from '../src/auth/token.js';
import type { Encoding } from '../src/signal/codec.js';
import type { Response } from '../src/signal/messages.js';
import { corpus, counts, fuzzFrame, fuzzStun, MESH_POSTS, mutateBytes, mutateValue, pick, tally, twirpBodies } from '../test/fuzzers.js';
import { ENCODINGS, prng, RawClient } from '../test/helpers.js';
import { opus, DTLS } from '../test/media.js';
import { KEY, SECRET, startAura } from './common.js';

const { values: args } = parseArgs({
  options: {
    frames: { type: 'string', default: '1000000' },
    seconds: { type: 'string', default: '900' },
    seed: { type: 'string', default: '20261201' },
    conns: { type: 'string', default: '4' },
    http: { type: 'string', default: '20000' },
    stun: { type: 'string', default: '100000' },
  },
});
const FRAMES = Number(args.frames);
const SEED = Number(args.seed);
const CONNS = Number(args.conns);

// Ports of its own (below the ephemeral range), so it runs beside other servers; another
// block is tried when one is taken.
let base = 0;
let srv: Awaited<ReturnType<typeof startAura>> | undefined;
for (let attempt = 0; !srv; attempt++) {
  base = 20000 + Math.floor(Math.random() * 300) * 40;
  srv = await startAura({
    log_level: 'info',
    signal: {
      max_frame_bytes: 16384,
      rate_limit: { messages_per_s: 1e6, burst: 1e6, violations_before_close: 10 },
      ip_connect_limit: { per_s: 1e6, burst: 1e6 },
      resume_window_s: 0,
    },
    sfu: { workers: 1, webrtc_port: base, rtc_min_port: base + 4, rtc_max_port: base + 19 },
    turn: { port: base + 20, relay_min_port: base + 21, relay_max_port: base + 39 },
  }).catch((err: unknown) => {
    if (attempt >= 4) throw err;
    return undefined;
  });
}
const turnPort = base + 20;
const errorLines: string[] = [];
srv.proc.stdout!.on('data', (d: Buffer) => {
  for (const line of d.toString().split('\n')) if (/"level":(50|60)/.test(line)) errorLines.push(line.slice(0, 400));
});
const url = `ws://127.0.0.1:${srv.port}`;
const http = `http://127.0.0.1:${srv.port}`;
const token = (identity: string, room: string, video: Partial<VideoGrant> = {}): string =>
  createToken(KEY, SECRET, { identity, video: { roomJoin: true, room, ...video } });
const alive = (): boolean => srv.proc.exitCode === null && srv.proc.signalCode === null;

async function metric(name: string, label: string): Promise<number> {
  const text = await (await fetch(`${http}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name) && line.includes(label)) sum += Number(line.split(' ').pop());
  return sum;
}

// ---------- signalling frames ----------
const frameOutcomes = new Map<string, number>();
const closeCodes = new Map<number, number>();
let framesSent = 0;
let connections = 0;
let nextId = 1;

async function frameWorker(enc: Encoding, w: number, quota: number): Promise<void> {
  const rnd = prng(SEED + 101 * ENCODINGS.indexOf(enc) + w);
  const room = `fuzz-${enc}-${w}`;
  const grant = { roomAdmin: true, canPublish: true, canSubscribe: true, canPublishData: true, canUpdateOwnMetadata: true };
  // A publisher, so consume has a producer to ask for.
  const pub = await RawClient.open(url, token(`pub-${enc}-${w}`, room), 'proto');
  const ask = async (c: RawClient, body: Record<string, unknown>): Promise<Response> => {
    const id = nextId++;
    c.request({ id, ...body });
    return (await c.response(id)).response ?? { requestId: id };
  };
  const send = (await ask(pub, { createTransport: { producing: true } })).transport?.id ?? 'x';
  await ask(pub, { connectTransport: { transportId: send, dtlsParameters: DTLS } });
  const producer = (await ask(pub, { produce: { transportId: send, kind: 'audio', rtpParameters: opus(9000 + w * 7 + ENCODINGS.indexOf(enc)) } })).id ?? 'x';
  const caps = (await ask(pub, { getRouterCapabilities: {} })).json ?? '{}';
  let c: RawClient | undefined;
  let seeds: Record<string, unknown>[] = [];
  const drainMessages = (x: RawClient): void => {
    for (const m of x.messages) if (m.response?.error) tally(frameOutcomes, m.response.error.code);
    x.messages.length = 0;
  };
  for (let i = 0; i < quota && Date.now() < deadline && alive(); i++) {
    if (!c || c.closed) {
      if (c) {
        drainMessages(c);
        tally(closeCodes, c.closed!.code);
      }
      c = await RawClient.open(url, token(`fuzzer-${enc}-${w}`, room, grant), enc);
      connections++;
      const sendT = (await ask(c, { createTransport: { producing: true, sctp: true } })).transport?.id ?? 'x';
      const recvT = (await ask(c, { createTransport: { consuming: true, sctp: true } })).transport?.id ?? 'x';
      seeds = corpus({ send: sendT, recv: recvT, producer, caps });
      drainMessages(c);
    }
    c.send(fuzzFrame(enc, seeds, rnd));
    framesSent++;
    // A round trip every 200 frames: the server is serving, and the client does not outrun it.
    if (i % 200 === 199) {
      const id = nextId++;
      c.request({ id, ping: { timestamp: i } });
      await c.response(id).catch(() => undefined); // a fuzzed `leave` may have ended it
      drainMessages(c);
    }
  }
  if (c) {
    drainMessages(c);
    if (c.closed) tally(closeCodes, c.closed.code);
    c.ws.close();
  }
  pub.ws.close();
}

// ---------- HTTP surfaces ----------
const httpStatuses = new Map<string, number>();
let httpDone = 0;
async function httpFuzz(n: number): Promise<void> {
  const rnd = prng(SEED + 7);
  const room = 'api-fuzz';
  const admin = token('api-admin', room, { roomAdmin: true, roomCreate: true, roomList: true });
  const mesh = createToken(KEY, SECRET, { identity: 'fuzz-node', video: {}, mesh: true });
  const bodies = twirpBodies(room);
  const methods = Object.keys(bodies);
  const member = await RawClient.open(url, token('member', room), 'proto');
  const one = async (): Promise<void> => {
    const r = rnd();
    let res: globalThis.Response;
    let surface: string;
    if (r < 0.5) {
      surface = 'twirp';
      const known = pick(methods, rnd);
      const method = rnd() < 0.05 ? pick(['toString', 'constructor', '__proto__'], rnd) : known;
      const proto = rnd() < 0.2;
      const body = proto
        ? Uint8Array.from({ length: Math.floor(rnd() * 40) }, () => Math.floor(rnd() * 256))
        : rnd() < 0.75
          ? (JSON.stringify(mutateValue(bodies[known], rnd)) ?? 'null')
          : Buffer.from(mutateBytes(Buffer.from(JSON.stringify(bodies[known])), rnd)).toString('latin1');
      res = await fetch(`${http}/twirp/livekit.RoomService/${method}`, {
        method: 'POST',
        signal: AbortSignal.timeout(10_000),
        headers: { 'content-type': proto ? 'application/protobuf' : 'application/json', authorization: `Bearer ${admin}` },
        body: body as BodyInit,
      });
    } else if (r < 0.75) {
      surface = 'mesh';
      const [path, body] = pick(MESH_POSTS, rnd);
      const text = JSON.stringify(mutateValue(body, rnd)) ?? 'null';
      res = await fetch(`${http}${path}`, { method: 'POST', signal: AbortSignal.timeout(10_000), headers: { 'content-type': 'application/json', authorization: `Bearer ${mesh}` }, body: text });
    } else {
      surface = 'history';
      const q = new URLSearchParams();
      for (const k of ['room', 'status', 'from', 'to', 'limit', 'cursor', 'participant']) {
        if (rnd() < 0.4) q.set(k, String(pick([...['', 'x', '-1', '1e9', '2026-01-01', '%00', '\u0000', 'a'.repeat(300)], String(Math.floor(rnd() * 1e12))], rnd)));
      }
      const path = pick(['/api/v1/calls', '/api/v1/calls/1', '/api/v1/calls/abc/participants', '/api/v1/quality/metrics'], rnd);
      res = await fetch(`${http}${path}?${q}`, { signal: AbortSignal.timeout(10_000), headers: { authorization: `Bearer ${token('hist', room, { roomList: true })}` } });
    }
    await res.arrayBuffer();
    tally(httpStatuses, `${surface} ${res.status >= 500 ? '5xx' : res.status}`);
  };
  const inflight = new Set<Promise<void>>();
  for (let i = 0; i < n && Date.now() < deadline && alive(); i++) {
    // A request the server never answers (10 s) is a finding: counted as `error ... timeout`.
    const p = one().catch((err: unknown) => tally(httpStatuses, `error ${(err as Error).name}`));
    httpDone++;
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
    if (inflight.size >= 16) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  member.ws.close();
}

// ---------- STUN / TURN ----------
let stunSent = 0;
async function stunFuzz(n: number): Promise<boolean> {
  const rnd = prng(SEED + 13);
  const sock = dgram.createSocket('udp4');
  const send = (b: Uint8Array): Promise<void> => new Promise((r) => sock.send(b, turnPort, '127.0.0.1', () => r()));
  for (let i = 0; i < n && Date.now() < deadline && alive(); i++) {
    await send(fuzzStun(rnd));
    stunSent++;
    if (i % 1000 === 999) await new Promise((r) => setTimeout(r, 5)); // paced: a flood is a different test
  }
  // Still answers a binding request.
  const binding = Buffer.alloc(20);
  binding.writeUInt16BE(0x0001, 0);
  binding.writeUInt32BE(0x2112a442, 4);
  binding.writeUInt32BE(0xabcdef, 16);
  const ok = await new Promise<boolean>((resolve) => {
    const timer = setInterval(() => void send(binding), 200);
    sock.on('message', (m) => {
      if (m.length >= 20 && m.readUInt16BE(0) === 0x0101 && m.subarray(8, 20).equals(binding.subarray(8, 20))) {
        clearInterval(timer);
        resolve(true);
      }
    });
    setTimeout(() => {
      clearInterval(timer);
      resolve(false);
    }, 5000);
  });
  sock.close();
  return ok;
}

// ---------- run ----------
const internalBefore = await metric('auralink_signal_errors_total', 'code="INTERNAL"');
// The bound is on the fuzz itself, from here.
const deadline = Date.now() + Number(args.seconds) * 1000;
const t0 = performance.now();
const progress = setInterval(() => {
  console.error(`  ... ${((performance.now() - t0) / 1000).toFixed(0)} s: ${framesSent} frames, ${httpDone} HTTP, ${stunSent} STUN`);
}, 10_000);
const perWorker = Math.ceil(FRAMES / (ENCODINGS.length * CONNS));
const [, , stunOk] = await Promise.all([
  Promise.all(ENCODINGS.flatMap((enc) => Array.from({ length: CONNS }, (_, w) => frameWorker(enc, w, perWorker)))),
  httpFuzz(Number(args.http)),
  stunFuzz(Number(args.stun)),
]);
clearInterval(progress);
const seconds = (performance.now() - t0) / 1000;

// A healthy pair in a fresh room at the end.
let healthy = false;
if (alive()) {
  const a = await RawClient.open(url, token('after-a', 'after'), 'proto');
  const b = await RawClient.open(url, token('after-b', 'after'), 'json');
  await b.waitFor((m) => m.join !== undefined);
  a.request({ id: 1, sendData: { payload: new TextEncoder().encode('still here') } });
  healthy = !!(await b.waitFor((m) => m.data !== undefined, 5000).catch(() => undefined));
  a.ws.close();
  b.ws.close();
}
const internal = alive() ? (await metric('auralink_signal_errors_total', 'code="INTERNAL"')) - internalBefore : NaN;
const fivexx = [...httpStatuses].filter(([k]) => k.endsWith('5xx')).reduce((n, [, v]) => n + v, 0);

console.log(`fuzz at scale, seed ${SEED}: ${seconds.toFixed(0)} s on this machine`);
console.log(`  signalling frames: ${framesSent} (${(framesSent / seconds).toFixed(0)}/s) over ${connections} connections, ${CONNS} per encoding`);
console.log(`    typed errors: ${counts(frameOutcomes)}`);
console.log(`    connections ended by: ${counts(closeCodes)}`);
console.log(`  HTTP requests: ${counts(httpStatuses)}`);
console.log(`  STUN datagrams: ${stunSent}; a binding request answered afterwards: ${stunOk}`);
console.log(`  server crashed: ${!alive()}; INTERNAL errors: ${internal}; HTTP 5xx: ${fivexx}; error-level log lines: ${errorLines.length}; healthy room at the end: ${healthy}`);
for (const l of errorLines.slice(0, 5)) console.log(`    ${l}`);
const pass = alive() && internal === 0 && fivexx === 0 && errorLines.length === 0 && healthy && stunOk;
console.log(pass ? 'targets met' : 'TARGETS MISSED');
await srv.kill();
process.exit(pass ? 0 : 1);
