// bench/cascade's plain-RTP client, one process per node (inside the node's network
// namespace): sends RTP whose payload carries the send time, and receives on sockets it binds,
// counting packets per stream and timing them. Every process on the machine reads the same
// CLOCK_MONOTONIC (process.hrtime), whatever its namespace, so arrival - send is the one-way
// latency without clock sync.
//
// Payload: "ALCB" magic, u32 stream id, u64 send time (ns). mediasoup forwards the payload
// as is (it rewrites SSRC, sequence number, timestamp, payload type, header extensions).
//
// Driven over JSON lines: stdin {seq, op, ...}; stdout {seq, ok, result | error} and events
// {ev: 'first', sock, stream, t} (first packet of a stream at a socket) and
// {ev: 'after', sock, t, sent} (first packet sent after a mark, see op 'after').
import dgram from 'node:dgram';
import { createInterface } from 'node:readline';

const MAGIC = 0x414c4342; // "ALCB"
const now = (): bigint => process.hrtime.bigint();
const out = (msg: unknown): void => void process.stdout.write(JSON.stringify(msg) + '\n');

interface Recv {
  sock: dgram.Socket;
  port: number;
  counts: Map<number, number>;
  /** One-way latency samples (µs) while `sampling`, and each packet's send time (ns, as a number: unique per packet). */
  lat: number[];
  sent: number[];
  sampling: boolean;
  /** A pending 'after' mark: the first packet sent after it is reported. */
  after: bigint | undefined;
}

interface Stream {
  id: number;
  ssrc: number;
  pt: number;
  seq: number;
  next: bigint;
  sent: number;
}

interface Sender {
  sock: dgram.Socket;
  streams: Stream[];
  timer: NodeJS.Timeout;
  size: number;
  intervalNs: bigint;
}

const recvs = new Map<number, Recv>();
const senders = new Map<number, Sender>();
let nextId = 1;

/** Where the payload starts (after CSRCs and the header extension mediasoup may add). */
function payloadOffset(m: Buffer): number {
  let o = 12 + 4 * (m[0]! & 0x0f);
  if (m[0]! & 0x10) {
    if (m.length < o + 4) return -1;
    o += 4 + 4 * m.readUInt16BE(o + 2);
  }
  return o;
}

function onPacket(r: Recv, id: number, m: Buffer): void {
  const t = now();
  if (m.length < 12 || m[0]! >> 6 !== 2) return;
  const pt = m[1]! & 0x7f;
  if (pt >= 72 && pt <= 78) return; // RTCP (RFC 5761)
  const o = payloadOffset(m);
  if (o < 0 || m.length < o + 16 || m.readUInt32BE(o) !== MAGIC) return; // probation padding etc.
  const stream = m.readUInt32BE(o + 4);
  const sent = m.readBigUInt64BE(o + 8);
  const n = r.counts.get(stream) ?? 0;
  r.counts.set(stream, n + 1);
  if (n === 0) out({ ev: 'first', sock: id, stream, t: String(t) });
  if (r.sampling) {
    r.lat.push(Number(t - sent) / 1000);
    r.sent.push(Number(sent));
  }
  if (r.after !== undefined && sent > r.after) {
    r.after = undefined;
    out({ ev: 'after', sock: id, t: String(t), sent: String(sent) });
  }
}

async function bind(n: number, host: string): Promise<{ ids: number[]; ports: number[] }> {
  const ids: number[] = [];
  const ports: number[] = [];
  for (let i = 0; i < n; i++) {
    const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 1 << 20 });
    await new Promise<void>((res, rej) => {
      sock.once('error', rej);
      sock.bind(0, host, () => res());
    });
    const id = nextId++;
    const r: Recv = { sock, port: sock.address().port, counts: new Map(), lat: [], sent: [], sampling: false, after: undefined };
    sock.on('message', (m) => onPacket(r, id, m));
    recvs.set(id, r);
    ids.push(id);
    ports.push(r.port);
  }
  return { ids, ports };
}

/** `streams` at `pps` packets/s each, phases spread over the interval, from one socket to ip:port. */
async function send(ip: string, port: number, streams: { id: number; ssrc: number; pt?: number }[], pps: number, size: number): Promise<number> {
  const sock = dgram.createSocket({ type: 'udp4', sendBufferSize: 1 << 20 });
  await new Promise<void>((res, rej) => {
    sock.once('error', rej);
    sock.connect(port, ip, () => res());
  });
  const intervalNs = BigInt(Math.round(1e9 / pps));
  const t0 = now();
  const s: Sender = {
    sock,
    size: Math.max(12 + 16, size),
    intervalNs,
    streams: streams.map((x, i) => ({ id: x.id, ssrc: x.ssrc, pt: x.pt ?? 111, seq: 0, sent: 0, next: t0 + (intervalNs * BigInt(i)) / BigInt(streams.length) })),
    timer: setInterval(() => tick(s), 2),
  };
  const id = nextId++;
  senders.set(id, s);
  return id;
}

function tick(s: Sender): void {
  const t = now();
  for (const st of s.streams) {
    // Far behind (the process was descheduled): skip ahead rather than burst.
    if (t - st.next > s.intervalNs * 5n) st.next = t;
    while (st.next <= t) {
      const pkt = Buffer.alloc(s.size);
      pkt[0] = 0x80;
      pkt[1] = st.pt;
      pkt.writeUInt16BE(st.seq & 0xffff, 2);
      pkt.writeUInt32BE((st.seq * 960) >>> 0, 4);
      pkt.writeUInt32BE(st.ssrc >>> 0, 8);
      pkt.writeUInt32BE(MAGIC, 12);
      pkt.writeUInt32BE(st.id, 16);
      pkt.writeBigUInt64BE(now(), 20);
      s.sock.send(pkt);
      st.seq++;
      st.sent++;
      st.next += s.intervalNs;
    }
  }
}

type Req = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function recv(id: unknown): Recv {
  const r = recvs.get(Number(id));
  if (!r) throw new Error(`no socket ${String(id)}`);
  return r;
}

async function handle(m: Req): Promise<unknown> {
  switch (m.op) {
    case 'bind':
      return bind(Number(m.n ?? 1), String(m.host ?? '127.0.0.1'));
    case 'send':
      return { sender: await send(String(m.ip), Number(m.port), m.streams, Number(m.pps), Number(m.size ?? 76)) };
    case 'stopSend': {
      const s = senders.get(Number(m.sender));
      if (!s) return { sent: 0 };
      clearInterval(s.timer);
      s.sock.close();
      senders.delete(Number(m.sender));
      return { sent: s.streams.reduce((n, x) => n + x.sent, 0) };
    }
    case 'sent': {
      const s = senders.get(Number(m.sender));
      return { sent: s ? s.streams.reduce((n, x) => n + x.sent, 0) : 0 };
    }
    case 'counts': {
      // Per socket: {stream: packets}.
      const ids: number[] = m.socks ?? [...recvs.keys()];
      return Object.fromEntries(ids.map((id) => [id, Object.fromEntries(recv(id).counts)]));
    }
    case 'sample': {
      // Start (on: true) or stop and return the latency samples of a socket.
      const r = recv(m.sock);
      if (m.on) {
        r.lat = [];
        r.sent = [];
        r.sampling = true;
        return {};
      }
      r.sampling = false;
      const { lat, sent } = r;
      r.lat = [];
      r.sent = [];
      return { lat, sent };
    }
    case 'after':
      // Report the first packet at `sock` whose send time is after `ns` (the bench's clock).
      recv(m.sock).after = BigInt(m.ns);
      return {};
    case 'close': {
      for (const id of (m.socks ?? []) as number[]) {
        recvs.get(id)?.sock.close();
        recvs.delete(id);
      }
      return {};
    }
    case 'exit':
      setImmediate(() => process.exit(0));
      return {};
    default:
      throw new Error(`unknown op ${String(m.op)}`);
  }
}

createInterface({ input: process.stdin }).on('line', (line) => {
  let m: Req;
  try {
    m = JSON.parse(line) as Req;
  } catch {
    return;
  }
  handle(m).then(
    (result) => out({ seq: m.seq, ok: true, result }),
    (err: Error) => out({ seq: m.seq, ok: false, error: err.message }),
  );
});
// The bench went away (stdin closed): nothing left to do here.
process.stdin.once('end', () => process.exit(0));
