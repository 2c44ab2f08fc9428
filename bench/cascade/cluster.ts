// Where bench/cascade's nodes run: our server per node inside a network namespace of a
// TestNet (real hosts: a node reaches another's media address only over a link, relays must
// relay), or, where `ip netns` is not available, every server on loopback with its own ports
// (then every node reaches every other, so no relay path can be forced). One plain-RTP agent
// per edge node, in its namespace. Everything started here is owned by the Cluster and goes
// with close(); `closeAll()` is for Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname } from 'node:path';
import { createToken } from '../../src/auth/token.js';
import { KEY, SECRET, startServer, type TestServer } from '../../test/helpers.js';
import { sweepNetns, TestNet } from '../../test/netns.js';
import { Agent, AGENT } from './agent.js';

export type NetMode = 'netns' | 'loopback';

export interface Topology {
  /** Node names; names starting with R are relays (`mesh.role: relay`), the others edges. */
  nodes: string[];
  /** Media links (netns only: on loopback every node reaches every other). */
  links: [string, string][];
}

/** Mesh and cascade timings (they decide how fast a dead relay is noticed). */
export interface Profile {
  heartbeatMs: number;
  probeIntervalMs: number;
  rerouteCheckMs: number;
  rerouteHoldMs: number;
  /** sfu.cascade_peer_timeout_ms: a node pipes come from that answers no probe this long is routed around (0: the mesh's expiry alone). */
  peerTimeoutMs: number;
}

export const PROFILES: Record<string, Profile> = {
  // test/cascadeHosts.test.ts's settings.
  test: { heartbeatMs: 200, probeIntervalMs: 300, rerouteCheckMs: 300, rerouteHoldMs: 1000, peerTimeoutMs: 1000 },
  // config/default.yaml's.
  defaults: { heartbeatMs: 1000, probeIntervalMs: 5000, rerouteCheckMs: 2000, rerouteHoldMs: 10_000, peerTimeoutMs: 1000 },
  // The defaults without the cascade's peer watch: a dead relay noticed by the mesh's expiry
  // only (what every node did before sfu.cascade_peer_timeout_ms): the failover baseline.
  'defaults-expiry': { heartbeatMs: 1000, probeIntervalMs: 5000, rerouteCheckMs: 2000, rerouteHoldMs: 10_000, peerTimeoutMs: 0 },
};

export interface ClusterOptions extends Profile {
  /** Wide: every plain transport and every pipe transport takes a port of the range. */
  rtcPorts: number;
}

export interface Route {
  room: string;
  producerId: string;
  path: string[];
}

const PORT = 7880;
const meshToken = createToken(KEY, SECRET, { identity: 'bench', video: {}, mesh: true });
const isRelay = (n: string): boolean => n.startsWith('R');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const live = new Set<Cluster>();
let seq = 0;

/** True when this process can make network namespaces (root, iproute2). */
export async function netnsAvailable(): Promise<boolean> {
  try {
    const net = await TestNet.create({ nodes: ['X'] });
    await net.close();
    return true;
  } catch {
    return false;
  }
}

export class Cluster {
  readonly servers: Record<string, TestServer> = {};
  readonly agents: Record<string, Agent> = {};
  private redisProc: ChildProcess | undefined;
  private redisUrl = '';
  private readonly loopPorts = new Map<string, { http: number; rtc: number }>();
  private readonly prefix = `bcas:${process.pid}:${seq++}:`;

  private constructor(
    readonly mode: NetMode,
    readonly topo: Topology,
    readonly opts: ClusterOptions,
    readonly net: TestNet | undefined,
  ) {}

  static async start(mode: NetMode, topo: Topology, opts: ClusterOptions): Promise<Cluster> {
    const net = mode === 'netns' ? await TestNet.create({ nodes: topo.nodes, links: topo.links.map(([a, b]) => ({ a, b })) }) : undefined;
    const c = new Cluster(mode, topo, opts, net);
    live.add(c);
    try {
      await c.startRedis();
      // Distinct port blocks per node on loopback, below the ephemeral range (32768+).
      if (mode === 'loopback') {
        const span = Math.floor(12000 / topo.nodes.length);
        const base = 20000 + Math.floor(Math.random() * 4) * 100;
        topo.nodes.forEach((n, i) => c.loopPorts.set(n, { http: 17000 + Math.floor(Math.random() * 2000) + i, rtc: base + i * span }));
      }
      await Promise.all(topo.nodes.map((n) => c.startNode(n)));
      for (const n of topo.nodes.filter((x) => !isRelay(x))) c.agents[n] = new Agent(n, c.run(n, process.execPath, [AGENT]));
      await c.meshReady();
    } catch (e) {
      await c.close();
      throw e;
    }
    return c;
  }

  /** The address a node's media (its plain and pipe transports) listens on. */
  mediaIp(node: string): string {
    return this.net ? this.net.mediaIp(node) : '127.0.0.1';
  }

  private run(node: string, cmd: string, args: string[]): ChildProcess {
    if (this.net) return this.net.run(node, cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    return spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  }

  private async startRedis(): Promise<void> {
    if (this.net) {
      this.redisUrl = (await this.net.startRedis(6390)).url;
      return;
    }
    const port = 17400 + Math.floor(Math.random() * 500);
    this.redisProc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', '/tmp'], { stdio: 'ignore' });
    const deadline = Date.now() + 5000;
    while (!(await tcpOpen('127.0.0.1', port))) {
      if (this.redisProc.exitCode !== null || Date.now() > deadline) throw new Error('redis-server did not start');
      await sleep(50);
    }
    this.redisUrl = `redis://127.0.0.1:${port}`;
  }

  private config(node: string): Record<string, unknown> {
    const loop = this.loopPorts.get(node);
    const http = loop?.http ?? PORT;
    const rtc = loop?.rtc ?? 40000;
    const ip = this.mediaIp(node);
    return {
      node_id: node,
      bind_address: this.net ? '0.0.0.0' : '127.0.0.1',
      port: http,
      log_level: 'info',
      redis: { url: this.redisUrl },
      turn: { mode: 'off' },
      room: { empty_timeout_s: 0.2 },
      signal: {
        rate_limit: { messages_per_s: 1e6, burst: 1e6, violations_before_close: 1000 },
        ip_connect_limit: { per_s: 1e6, burst: 1e6 },
        max_backpressure_bytes: 4 * 1024 * 1024,
      },
      sfu: {
        workers: 1,
        listen_ip: ip,
        webrtc_port: rtc,
        rtc_min_port: rtc + 10,
        rtc_max_port: rtc + 10 + this.opts.rtcPorts,
        allow_plain_transports: true,
        max_consumers_per_router: 100_000,
        cascade_linger_ms: 1000,
        cascade_reroute_check_ms: this.opts.rerouteCheckMs,
        cascade_reroute_hold_ms: this.opts.rerouteHoldMs,
        cascade_peer_timeout_ms: this.opts.peerTimeoutMs,
      },
      // Probes go to the media address: the mesh measures the links media takes.
      mesh: { role: isRelay(node) ? 'relay' : 'edge', public_url: `http://${ip}:${http}`, redis_prefix: this.prefix, heartbeat_ms: this.opts.heartbeatMs, probe_interval_ms: this.opts.probeIntervalMs },
    };
  }

  async startNode(node: string): Promise<void> {
    this.servers[node] = await startServer(this.config(node), {}, this.net ? { netns: this.net.ns(node), host: this.net.controlIp(node) } : undefined);
  }

  /** Every node sees every other in the registry, then a few probe rounds measure the links. */
  async meshReady(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const n of this.topo.nodes) {
      for (;;) {
        const seen = await this.meshNodes(n).catch(() => [] as string[]);
        if (this.topo.nodes.every((x) => seen.includes(x))) break;
        if (Date.now() > deadline) throw new Error(`${n} does not see every node in the mesh (${seen.join(',')})`);
        await sleep(100);
      }
    }
    await sleep(Math.max(1500, 2 * this.opts.probeIntervalMs + 500));
  }

  private async meshNodes(node: string): Promise<string[]> {
    const r = await fetch(`${this.servers[node]!.http}/internal/mesh/nodes`, { headers: { authorization: `Bearer ${meshToken}` } });
    return ((await r.json()) as { nodes: { id: string }[] }).nodes.map((x) => x.id);
  }

  async routes(node: string): Promise<Route[]> {
    const r = await fetch(`${this.servers[node]!.http}/internal/mesh/routes`, { headers: { authorization: `Bearer ${meshToken}` } });
    return ((await r.json()) as { routes: Route[] }).routes;
  }

  metric(node: string, name: string, labels?: Record<string, string>): Promise<number> {
    return this.servers[node]!.metric(name, labels);
  }

  /** The node's mediasoup worker pids (from /health). */
  async workerPids(node: string): Promise<number[]> {
    return ((await this.servers[node]!.health()).sfu?.workers ?? []).map((w) => w.pid);
  }

  /** The node's UDP counters (/proc/net/snmp of its namespace; of the machine on loopback). */
  async udp(node: string): Promise<Record<'InDatagrams' | 'OutDatagrams' | 'RcvbufErrors' | 'InErrors', number>> {
    const text = this.net ? (await this.net.exec(node, 'cat', ['/proc/net/snmp'])).stdout : readFileSync('/proc/net/snmp', 'utf8');
    const [names, values] = text.split('\n').filter((l) => l.startsWith('Udp:')).map((l) => l.split(/\s+/).slice(1));
    const get = (n: string): number => Number(values?.[names?.indexOf(n) ?? -1] ?? Number.NaN);
    return { InDatagrams: get('InDatagrams'), OutDatagrams: get('OutDatagrams'), RcvbufErrors: get('RcvbufErrors'), InErrors: get('InErrors') };
  }

  /**
   * SIGKILL of every process of the node. `silent`: its links go down too, so nothing
   * answers at its addresses any more (a host that lost power), where a killed process on a
   * live host answers TCP with a reset (the probes fail at once). netns only.
   */
  async kill(node: string, silent = false): Promise<void> {
    if (!this.net) throw new Error('kill needs network namespaces');
    // Links first: from outside, the host is gone at once; then its processes.
    if (silent) await Promise.all(this.topo.links.filter((l) => l.includes(node)).map(([x, y]) => this.net!.setLinkUp(x, y, false)));
    await this.net.kill(node);
    // A killed server never runs its close(): its config and database directory go here.
    const dir = (this.servers[node]?.config as { database?: { data_dir?: string } } | undefined)?.database?.data_dir;
    if (dir) rmSync(dirname(dir), { recursive: true, force: true });
    delete this.servers[node];
  }

  /** Starts a killed node again (its links up first). */
  async revive(node: string): Promise<void> {
    for (const [x, y] of this.topo.links) if ((x === node || y === node) && this.net) await this.net.setLinkUp(x, y, true);
    await this.startNode(node);
  }

  async close(): Promise<void> {
    live.delete(this);
    await Promise.all(Object.values(this.agents).map((a) => a.exit().catch(() => undefined)));
    await Promise.all(Object.values(this.servers).map((s) => s.close().catch(() => undefined)));
    this.redisProc?.kill('SIGKILL');
    await this.net?.close();
  }
}

/** Closes every cluster still up (Ctrl-C, a fatal error), then sweeps namespaces of dead runs. */
export async function closeAll(): Promise<void> {
  await Promise.all([...live].map((c) => c.close().catch(() => undefined)));
  await sweepNetns().catch(() => undefined);
}

function tcpOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
