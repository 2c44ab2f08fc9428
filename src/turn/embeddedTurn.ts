import { createHmac, randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo } from 'node:dgram';
import { createRequire } from 'node:module';
import { LRUCache } from 'lru-cache';
import type { TurnCredentials } from './credentials.js';
import { ipLiteralLookup, ownedAllocations, patchNodeTurn } from './nodeTurnPatches.js';
import type { PeerFilter } from './peerFilter.js';
import { RelayPath, setBuffers, type RelayedAllocation } from './relayPath.js';
import type { TurnStats } from './turnStats.js';

const require = createRequire(import.meta.url);

export interface EmbeddedTurnOptions {
  listenIp: string;
  port: number;
  /** Address relay sockets bind to (and announce, unless externalIp is set). */
  relayIp: string;
  externalIp: string;
  minPort: number;
  maxPort: number;
  realm: string;
  maxAllocationsPerUser: number;
  /** Receive and send buffer asked for on the listening socket and on each relay socket. */
  listenBufferBytes: number;
  relayBufferBytes: number;
}

/** The logging this layer does (in the TURN thread, records go to the main thread's logger). */
export interface TurnLog {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

interface TurnMsg {
  getAttribute(name: string): unknown;
  getAttributes(name: string): unknown[];
  allocation?: { user?: { username: string } };
}
interface TurnReply {
  reject(code: number, reason: string): void;
  resolve(): void;
  addAttribute(name: string, value?: unknown): void;
}
interface NodeTurnServer {
  allocations: Record<string, unknown>;
  authentification: {
    credentials: Record<string, string>;
    generateNonce(): string;
    checkNonce(n: unknown): boolean;
    auth(msg: TurnMsg, cb: (err: Error | null, reply?: TurnReply) => void): void;
  };
  allocate: { allocate(msg: TurnMsg, reply: TurnReply): void; allocateUdpEven(msg: TurnMsg, rBit: boolean): Promise<unknown[]> };
  createPermission: { createPermission(msg: TurnMsg, reply: TurnReply): void };
  channelBind: { channelBind(msg: TurnMsg, reply: TurnReply): void };
  network: { sockets: import('node:dgram').Socket[] };
  defaultLifetime: number;
  maxAllocateTimeout: number;
  start(): void;
  stop(): void;
}

/**
 * The embedded TURN server (node-turn, UDP) with what it lacks added at this layer: TURN REST
 * credentials checked for expiry and signature, a peer filter (no relaying into the host's own
 * networks), a per-user allocation quota, relay sockets closed when allocations end, its own
 * ChannelData path (relayPath.ts), counters. It runs in the TURN thread (turnWorker.ts).
 * Production deployments use coturn (turn.mode external) with the same secret.
 */
export class EmbeddedTurn {
  private server: NodeTurnServer | undefined;
  private relay: RelayPath | undefined;
  private allocations = 0;
  private readonly allocationsByUser = new Map<string, number>();

  constructor(
    private readonly opts: EmbeddedTurnOptions,
    private readonly creds: TurnCredentials,
    private readonly filter: PeerFilter,
    private readonly stats: TurnStats,
    private readonly log: TurnLog,
    /** Called with the live allocation count whenever it changes. */
    private readonly onAllocations: (count: number) => void = () => {},
  ) {}

  get allocationCount(): number {
    return this.allocations;
  }

  /** Local ports of the live relay sockets. */
  relayPorts(): Set<number> {
    const ports = new Set<number>();
    for (const s of this.relay?.sockets() ?? []) {
      try {
        ports.add(s.address().port);
      } catch {
        /* closed */
      }
    }
    return ports;
  }

  /** What the kernel granted: the listening socket's buffers, and one relay socket's. */
  bufferSizes(): { listenRecv: number; listenSend: number; relayRecv: number; relaySend: number } {
    const size = (s: import('node:dgram').Socket | undefined): [number, number] => {
      try {
        return s ? [s.getRecvBufferSize(), s.getSendBufferSize()] : [0, 0];
      } catch {
        return [0, 0];
      }
    };
    const [listenRecv, listenSend] = size(this.server?.network.sockets[0]);
    const [relayRecv, relaySend] = size(this.relay?.sockets()[0]);
    return { listenRecv, listenSend, relayRecv, relaySend };
  }

  async start(): Promise<void> {
    patchNodeTurn();
    // node-turn binds without reporting failure (its socket 'error' only logs): probe first so
    // a taken port fails the start with a clear message.
    await probeUdpPort(this.opts.listenIp, this.opts.port);
    const Turn = require('node-turn') as new (cfg: object) => NodeTurnServer;
    const o = this.opts;
    const server = new Turn({
      listeningIps: [o.listenIp],
      listeningPort: o.port,
      relayIps: [o.relayIp],
      externalIps: o.externalIp || null,
      minPort: o.minPort,
      maxPort: o.maxPort,
      authMech: 'long-term',
      realm: o.realm,
      // node-turn's own diagnostics (errors only unless NODE_TURN_DEBUG names a level).
      debugLevel: process.env.NODE_TURN_DEBUG ?? 'ERROR',
      log: (m: unknown) => this.log.debug({ nodeTurn: m instanceof Error ? m.message : String(m) }, 'node-turn'),
    });
    // node-turn reads these two under other names than it sets (Refresh computed NaN).
    server.defaultLifetime = 600;
    server.maxAllocateTimeout = 3600;
    // Credentials are computed per username (REST form): no table to keep in sync. node-turn
    // looks a username up twice per request (MESSAGE-INTEGRITY, then auth): a password is
    // computed once and remembered for a minute at most, never past the username's expiry.
    const creds = this.creds;
    const known = new LRUCache<string, string>({ max: 4096 });
    server.authentification.credentials = new Proxy({} as Record<string, string>, {
      get(_t, username) {
        if (typeof username !== 'string') return undefined;
        const hit = known.get(username);
        if (hit !== undefined) return hit;
        const pw = creds.passwordFor(username);
        if (pw) known.set(username, pw, { ttl: Math.max(1, Math.min(60_000, creds.msUntilExpiry(username))) });
        return pw;
      },
    });
    // Refusals are counted where node-turn refuses: a request that carried credentials and got
    // 401 (unknown or expired username, wrong password) or 441 (another user's allocation). The
    // first 401 of every allocation (the challenge: no MESSAGE-INTEGRITY yet) is not a refusal.
    const refused = this.stats.refused;
    const auth = server.authentification.auth.bind(server.authentification);
    server.authentification.auth = (msg, cb) =>
      auth(msg, (err, reply) => {
        if (err && msg.getAttribute('message-integrity') !== undefined && /^(Unauthorized|Wrong Credentials)$/.test(err.message)) {
          refused.credentials++;
        }
        cb(err, reply);
      });
    // node-turn keeps every nonce it hands out in a map with a one-hour timer each: a flood of
    // unauthenticated requests grew memory and kept the process alive. Stateless nonces instead:
    // issue time + HMAC, valid for an hour.
    const nonceKey = randomBytes(32);
    const sign = (t: string): string => createHmac('sha256', nonceKey).update(t).digest('hex').slice(0, 24);
    server.authentification.generateNonce = () => {
      const t = Date.now().toString(16);
      return `${t}.${sign(t)}`;
    };
    server.authentification.checkNonce = (nonce: unknown) => {
      if (typeof nonce !== 'string') return false;
      const [t, mac] = nonce.split('.');
      if (!t || !mac || sign(t) !== mac) return false;
      return Date.now() - parseInt(t, 16) < 3_600_000;
    };
    server.allocations = ownedAllocations((delta, a) => {
      const user = (a as { user?: { username: string } }).user?.username ?? '';
      const n = (this.allocationsByUser.get(user) ?? 0) + delta;
      if (n > 0) this.allocationsByUser.set(user, n);
      else this.allocationsByUser.delete(user);
      // node-turn registers an allocation before it attaches its relay socket listener: the
      // relay path takes the socket over once the constructor has finished.
      if (delta === 1) {
        const tuple = (a as { fiveTuple: string }).fiveTuple;
        queueMicrotask(() => server.allocations[tuple] === a && this.relay?.adopt(a as RelayedAllocation));
      }
      else this.relay?.release(a as RelayedAllocation);
      this.allocations += delta;
      this.onAllocations(this.allocations);
    });

    const allocate = server.allocate.allocate.bind(server.allocate);
    server.allocate.allocate = (msg, reply) => {
      const user = String(msg.getAttribute('username') ?? '');
      if (!msg.allocation && (this.allocationsByUser.get(user) ?? 0) >= o.maxAllocationsPerUser) {
        refused.quota++;
        return reply.reject(486, 'Allocation Quota Reached');
      }
      allocate(msg, reply);
    };
    // EVEN-PORT: node-turn tried to bind the *client's* source port (it fails whenever client
    // and relay share an address, as on loopback: 508). Pick an even port from the relay range
    // instead. The R bit's reservation of N+1 is not supported (node-turn's RESERVATION-TOKEN
    // path is broken), so no token is returned and a later request for N+1 is not guaranteed.
    server.allocate.allocateUdpEven = () => bindEvenPort(o.relayIp, o.minPort, o.maxPort);
    const peerAllowed = (msg: TurnMsg): boolean => {
      for (const p of msg.getAttributes('xor-peer-address') as ({ address?: string } | undefined)[]) {
        if (p?.address && !this.filter.permits(p.address)) {
          refused.peer++;
          this.log.debug({ peer: p.address, user: msg.allocation?.user?.username }, 'TURN peer refused');
          return false;
        }
      }
      return true;
    };
    const createPermission = server.createPermission.createPermission.bind(server.createPermission);
    server.createPermission.createPermission = (msg, reply) =>
      peerAllowed(msg) ? createPermission(msg, reply) : reply.reject(403, 'Forbidden');
    const channelBind = server.channelBind.channelBind.bind(server.channelBind);
    server.channelBind.channelBind = (msg, reply) => {
      if (!peerAllowed(msg)) return reply.reject(403, 'Forbidden');
      // node-turn's ChannelBind success carried no MESSAGE-INTEGRITY: clients (coturn's,
      // RFC 5389 §10.2.2) discard such responses.
      const resolve = reply.resolve.bind(reply);
      reply.resolve = () => {
        reply.addAttribute('message-integrity');
        const peer = msg.getAttribute('xor-peer-address') as { address: string; port: number };
        if (msg.allocation) this.relay?.bind(msg.allocation as unknown as RelayedAllocation, Number(msg.getAttribute('channel-number')), peer);
        resolve();
      };
      channelBind(msg, reply);
    };

    server.start();
    // One listening socket (one listening IP). ChannelData (first two bits 01) takes the relay
    // path in both directions; everything else goes to node-turn's STUN handler.
    const listen = server.network.sockets[0]!;
    // With the IP-literal lookup the bind completes inside start(): wait only if it has not.
    if (!isBound(listen)) {
      await new Promise<void>((resolve, reject) => {
        listen.once('listening', resolve);
        listen.once('error', reject);
      });
    }
    setBuffers(listen, o.listenBufferBytes);
    const relay = (this.relay = new RelayPath(listen, this.stats, o.relayBufferBytes));
    const stun = listen.listeners('message') as ((buf: Buffer, rinfo: RemoteInfo) => void)[];
    listen.removeAllListeners('message');
    listen.on('message', (buf: Buffer, rinfo: RemoteInfo) => {
      if (buf.length >= 4 && (buf[0]! & 0xc0) === 0x40) relay.fromClient(buf, rinfo);
      else for (const fn of stun) fn(buf, rinfo);
    });
    listen.on('error', () => this.stats.dropped.send_error++);
    this.server = server;
    const granted = this.bufferSizes();
    if (o.listenBufferBytes > 0 && granted.listenRecv < o.listenBufferBytes) {
      this.log.warn({ asked: o.listenBufferBytes, granted: granted.listenRecv }, 'TURN listening socket receive buffer capped by the kernel (net.core.rmem_max)');
    }
    this.log.info({ ip: o.listenIp, port: o.port, relay: `${o.relayIp}:${o.minPort}-${o.maxPort}`, listenRecvBuffer: granted.listenRecv, listenSendBuffer: granted.listenSend }, 'embedded TURN listening');
  }

  close(): void {
    const s = this.server;
    if (!s) return;
    this.server = undefined;
    for (const k of Object.keys(s.allocations)) delete s.allocations[k];
    s.stop();
  }
}

async function bindEvenPort(ip: string, min: number, max: number): Promise<unknown[]> {
  const first = min + (min % 2);
  const evens = Math.floor((max - first) / 2) + 1;
  if (evens <= 0) throw new Error('no even port in the relay range');
  const start = Math.floor(Math.random() * evens);
  for (let i = 0; i < evens; i++) {
    const port = first + ((start + i) % evens) * 2;
    const sock = createSocket({ type: ip.includes(':') ? 'udp6' : 'udp4', lookup: ipLiteralLookup });
    const ok = await new Promise<boolean>((resolve) => {
      sock.once('error', () => resolve(false));
      sock.bind({ address: ip, port, exclusive: true }, () => resolve(true));
    });
    if (ok) {
      sock.removeAllListeners('error');
      return [sock];
    }
    sock.close();
  }
  throw new Error('no available even port in the relay range');
}

function isBound(sock: import('node:dgram').Socket): boolean {
  try {
    sock.address();
    return true;
  } catch {
    return false;
  }
}

function probeUdpPort(ip: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = createSocket(ip.includes(':') ? 'udp6' : 'udp4');
    sock.once('error', (err) => {
      sock.close();
      reject(new Error(`TURN cannot bind UDP ${ip}:${port}: ${err.message}`));
    });
    sock.bind({ address: ip, port, exclusive: true }, () => sock.close(() => resolve()));
  });
}
