// Real hosts on one machine for tests: one network namespace per node, made with iproute2.
//
// Two networks, kept apart:
// - Media: every node has one media address (a /32 on its loopback, `mediaIp(node)`), and
//   reaches another node's media address only while a link between the two exists. A link is
//   a veth pair with a /30 and a host route to the peer's media address on each side. Nodes
//   do not forward (ip_forward stays 0 in a new namespace), so A reaches B through R only if
//   an application on R relays, as between real hosts. veth pairs rather than one shared
//   bridge segment because each pair can then be added, removed or rate-limited on its own
//   (tc tbf on both ends) while the others stay as they are; a shared segment cannot give
//   "A and B both reach R1 but not each other" without filtering (no iptables/ebtables here).
// - Control: a bridge ("hub", in a namespace of its own) that every node and the test's
//   root namespace join, for Redis and whatever else the test says goes there
//   (`controlIp(node)`). With `hub: { isolated: true }` node ports are bridge-isolated: a node
//   reaches the hub and the root namespace but no other node over it. Without it nodes reach
//   each other over the hub too, so a test that wants media between nodes to follow the
//   links must advertise media addresses, never control ones, for media and for any probe
//   that is meant to measure the media path.
//
// Everything is named with a prefix holding the test's pid (`aln-<pid>-<seq>-`; root-side
// interfaces `aln<pid36><seq>r`), so `sweepNetns()` can remove what a test process that
// died left behind without touching a live one's.
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface NetSpec {
  /** Node names: letters and digits, at most 10. */
  nodes: string[];
  /** Links made at start. */
  links?: LinkSpec[];
  hub?: { isolated?: boolean };
}

export interface LinkSpec {
  a: string;
  b: string;
  /** tc tbf rate on both ends (each direction), kbit/s; none = unlimited. */
  rateKbit?: number;
}

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const NODE_NAME = /^[A-Za-z0-9]{1,10}$/;
const NS_PATTERN = /^aln-(\d+)-[0-9a-z]+-/;
const ROOT_LINK_PATTERN = /^aln([0-9a-z]{5})[0-9a-z]r$/;
let seq = 0;

async function ip(...args: string[]): Promise<string> {
  try {
    return (await execFileP('ip', args)).stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')}: ${err.stderr?.trim() || err.message}`);
  }
}

async function tc(ns: string, ...args: string[]): Promise<void> {
  try {
    await execFileP('tc', ['-n', ns, ...args]);
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`tc -n ${ns} ${args.join(' ')}: ${err.stderr?.trim() || err.message}`);
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** True once `pid` has exited (a zombie whose parent died and nobody reaps counts as exited). */
export function processGone(pid: number): boolean {
  if (!alive(pid)) return true;
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').startsWith('Z');
  } catch {
    return true;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function nsPids(ns: string): Promise<number[]> {
  const out = await ip('netns', 'pids', ns).catch(() => '');
  return out.split(/\s+/).filter(Boolean).map(Number);
}

/** SIGKILLs every process in `ns`, waits until they are gone, deletes the namespace. */
async function destroyNs(ns: string): Promise<void> {
  for (let round = 0; round < 50; round++) {
    const pids = await nsPids(ns);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await sleep(20);
  }
  await ip('netns', 'del', ns).catch(() => undefined);
}

async function rootLinks(): Promise<string[]> {
  const out = JSON.parse(await ip('-j', 'link', 'show')) as { ifname: string }[];
  return out.map((l) => l.ifname);
}

export async function listNetns(): Promise<string[]> {
  const out = await ip('netns', 'list').catch(() => '');
  return out.split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
}

/**
 * Removes namespaces and root-side links left by test processes that are no longer alive
 * (their pid is in the name; a zombie nobody reaps counts as dead). Returns what it removed.
 */
export async function sweepNetns(): Promise<string[]> {
  const removed: string[] = [];
  for (const ns of await listNetns()) {
    const m = NS_PATTERN.exec(ns);
    if (m && processGone(Number(m[1]))) {
      await destroyNs(ns);
      removed.push(ns);
    }
  }
  for (const name of await rootLinks()) {
    const m = ROOT_LINK_PATTERN.exec(name);
    if (m && processGone(parseInt(m[1]!, 36))) {
      await ip('link', 'del', name).catch(() => undefined);
      removed.push(name);
    }
  }
  return removed;
}

interface LinkState {
  index: number;
  rateKbit?: number;
  up: boolean;
}

/** One test's namespaces, links and processes; `close()` removes all of it. */
export class TestNet {
  readonly prefix: string;
  /** The hub bridge's address (in the hub namespace): Redis started by `startRedis` binds here. */
  readonly hubIp: string;
  /** The root namespace's address on the hub: the test process itself. */
  readonly rootIp: string;
  readonly nodes: readonly string[];
  /** The root namespace's end of its hub veth. */
  readonly rootLink: string;
  private readonly hubBase: string;
  private readonly links = new Map<string, LinkState>();
  private nextLink = 0;
  private readonly procs = new Set<ChildProcess>();
  private closed = false;

  private constructor(nodes: string[], hubSubnet: number) {
    const id = seq++;
    this.prefix = `aln-${process.pid}-${id.toString(36)}-`;
    this.rootLink = `aln${process.pid.toString(36).padStart(5, '0')}${(id % 36).toString(36)}r`;
    this.hubBase = `100.${64 + (hubSubnet >> 8)}.${hubSubnet & 255}.`;
    this.hubIp = `${this.hubBase}1`;
    this.rootIp = `${this.hubBase}2`;
    this.nodes = nodes;
  }

  /** Makes the namespaces, the hub and the spec's links. On failure removes what it made. */
  static async create(spec: NetSpec): Promise<TestNet> {
    const names = new Set(spec.nodes);
    if (names.size !== spec.nodes.length) throw new TypeError('node names must be unique');
    for (const n of spec.nodes) if (!NODE_NAME.test(n)) throw new TypeError(`bad node name ${JSON.stringify(n)}`);
    if (spec.nodes.length > 200) throw new TypeError('at most 200 nodes');
    const net = new TestNet(spec.nodes, await freeHubSubnet());
    try {
      await net.build(spec);
    } catch (e) {
      await net.close();
      throw e;
    }
    return net;
  }

  ns(node: string): string {
    if (node === 'hub') return `${this.prefix}hub`;
    this.check(node);
    return `${this.prefix}n-${node}`;
  }

  /** The node's one media address: reachable from a peer only while a link joins them. */
  mediaIp(node: string): string {
    return `10.77.0.${this.index(node) + 1}`;
  }

  /** The node's address on the hub (control network). */
  controlIp(node: string): string {
    return `${this.hubBase}${this.index(node) + 10}`;
  }

  /** `a`'s own address on the a–b link (undefined while there is none). */
  linkIp(a: string, b: string): string | undefined {
    const l = this.links.get(this.key(a, b));
    if (!l) return undefined;
    return this.linkAddr(l.index, this.sorted(a, b)[0] === a ? 1 : 2);
  }

  hasLink(a: string, b: string): boolean {
    return this.links.has(this.key(a, b));
  }

  /** Adds the a–b link: a veth pair, a /30, host routes to each other's media address. */
  async addLink(a: string, b: string, opts: { rateKbit?: number } = {}): Promise<void> {
    this.check(a);
    this.check(b);
    if (a === b) throw new TypeError('a link needs two nodes');
    const key = this.key(a, b);
    if (this.links.has(key)) throw new Error(`link ${key} exists`);
    const [x, y] = this.sorted(a, b);
    const index = this.nextLink++;
    const ifX = this.ifName(y);
    const ifY = this.ifName(x);
    await ip('link', 'add', ifX, 'netns', this.ns(x), 'type', 'veth', 'peer', 'name', ifY, 'netns', this.ns(y));
    this.links.set(key, { index, up: true });
    for (const [self, peer, dev, mine, theirs] of [
      [x, y, ifX, 1, 2],
      [y, x, ifY, 2, 1],
    ] as const) {
      const n = this.ns(self);
      await ip('-n', n, 'addr', 'add', `${this.linkAddr(index, mine)}/30`, 'dev', dev);
      await ip('-n', n, 'link', 'set', dev, 'up');
      // src: sockets bound to 0.0.0.0 (ping, probes) answer from the media address too.
      await ip('-n', n, 'route', 'add', `${this.mediaIp(peer)}/32`, 'via', this.linkAddr(index, theirs), 'dev', dev, 'src', this.mediaIp(self));
    }
    if (opts.rateKbit !== undefined) await this.setRate(a, b, opts.rateKbit);
  }

  /** Removes the a–b link (both veth ends, its routes go with it). */
  async removeLink(a: string, b: string): Promise<void> {
    const key = this.key(a, b);
    if (!this.links.has(key)) throw new Error(`no link ${key}`);
    const [x, y] = this.sorted(a, b);
    await ip('-n', this.ns(x), 'link', 'del', this.ifName(y));
    this.links.delete(key);
  }

  /** Takes the a–b link down or up (both ends) without removing it; routes return with up. */
  async setLinkUp(a: string, b: string, up: boolean): Promise<void> {
    const l = this.link(a, b);
    const [x, y] = this.sorted(a, b);
    for (const [self, peer] of [
      [x, y],
      [y, x],
    ] as const) {
      await ip('-n', this.ns(self), 'link', 'set', this.ifName(peer), up ? 'up' : 'down');
      if (up) {
        await ip('-n', this.ns(self), 'route', 'replace', `${this.mediaIp(peer)}/32`, 'via', this.linkAddr(l.index, self === x ? 2 : 1), 'dev', this.ifName(peer), 'src', this.mediaIp(self));
      }
    }
    l.up = up;
  }

  /** Sets (or with undefined removes) a tbf rate limit on both ends of the a–b link. */
  async setRate(a: string, b: string, rateKbit: number | undefined): Promise<void> {
    const l = this.link(a, b);
    if (rateKbit !== undefined && !(Number.isFinite(rateKbit) && rateKbit >= 8)) throw new RangeError('rateKbit must be >= 8');
    const [x, y] = this.sorted(a, b);
    for (const [self, peer] of [
      [x, y],
      [y, x],
    ] as const) {
      const dev = this.ifName(peer);
      if (rateKbit === undefined) {
        if (l.rateKbit !== undefined) await tc(this.ns(self), 'qdisc', 'del', 'dev', dev, 'root');
      } else {
        // burst: 20 ms at the rate, at least two full-size packets (tbf needs >= one MTU).
        const burst = Math.max(3000, Math.ceil((rateKbit * 1000) / 8 / 50));
        await tc(this.ns(self), 'qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate', `${rateKbit}kbit`, 'burst', String(burst), 'latency', '100ms');
      }
    }
    l.rateKbit = rateKbit;
  }

  rate(a: string, b: string): number | undefined {
    return this.link(a, b).rateKbit;
  }

  /** Spawns `cmd` inside the node's namespace (`ip netns exec`); `close()` kills it. */
  run(node: string, cmd: string, args: string[] = [], opts: SpawnOptions = {}): ChildProcess {
    if (this.closed) throw new Error('net closed');
    const child = spawn('ip', ['netns', 'exec', this.ns(node), cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    this.procs.add(child);
    child.once('exit', () => this.procs.delete(child));
    return child;
  }

  /** The processes in the node's namespace now (a child spawned by run() joins it a moment after 'spawn'). */
  pids(node: string): Promise<number[]> {
    return nsPids(this.ns(node));
  }

  /** Sends `signal` to every process in the node's namespace (a host dying: SIGKILL). */
  async kill(node: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<number[]> {
    const pids = await nsPids(this.ns(node));
    for (const pid of pids) {
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    }
    return pids;
  }

  /** Runs `cmd` in the node's namespace to completion; never rejects on a non-zero exit. */
  async exec(node: string, cmd: string, args: string[] = [], timeoutMs = 10000): Promise<ExecResult> {
    const child = this.run(node, cmd, args);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d));
    child.stderr?.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const code = await new Promise<number | null>((r) => child.once('close', (c) => r(c)));
    clearTimeout(timer);
    return { code, stdout, stderr };
  }

  /** Starts a redis-server in the hub namespace, bound to `hubIp`; reachable from every node and the test. */
  async startRedis(port = 6379): Promise<{ host: string; port: number; url: string; proc: ChildProcess }> {
    const proc = this.run('hub', 'redis-server', ['--port', String(port), '--bind', this.hubIp, '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--dir', '/tmp']);
    let log = '';
    proc.stdout?.on('data', (d: Buffer) => (log += d));
    const deadline = Date.now() + 5000;
    while (!(await tcpOpen(this.hubIp, port))) {
      if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`redis-server did not start: ${log.slice(-500)}`);
      await sleep(50);
    }
    return { host: this.hubIp, port, url: `redis://${this.hubIp}:${port}`, proc };
  }

  /** Kills every process in the namespaces, deletes them (veths go with them). Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.procs) p.kill('SIGKILL');
    const mine = (await listNetns()).filter((n) => n.startsWith(this.prefix));
    for (const ns of mine) await destroyNs(ns);
    await ip('link', 'del', this.rootLink).catch(() => undefined);
    // veth ends are freed once the namespace is; wait so a caller's `ip link` sees them gone.
    const deadline = Date.now() + 3000;
    while ((await rootLinks()).includes(this.rootLink) && Date.now() < deadline) await sleep(20);
  }

  private async build(spec: NetSpec): Promise<void> {
    const hub = this.ns('hub');
    await ip('netns', 'add', hub);
    await ip('-n', hub, 'link', 'set', 'lo', 'up');
    await ip('-n', hub, 'link', 'add', 'br0', 'type', 'bridge');
    await ip('-n', hub, 'addr', 'add', `${this.hubIp}/24`, 'dev', 'br0');
    await ip('-n', hub, 'link', 'set', 'br0', 'up');
    await this.hubPort('pr', this.rootLink, undefined, this.rootIp, false);
    for (const node of this.nodes) {
      const ns = this.ns(node);
      await ip('netns', 'add', ns);
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
      await ip('-n', ns, 'addr', 'add', `${this.mediaIp(node)}/32`, 'dev', 'lo');
      await this.hubPort(`p${this.index(node)}`, 'ctl0', ns, this.controlIp(node), spec.hub?.isolated === true);
    }
    for (const l of spec.links ?? []) await this.addLink(l.a, l.b, { rateKbit: l.rateKbit });
  }

  /** A veth from `ns` (root when undefined) into the hub bridge, with `addr`/24 on its far end. */
  private async hubPort(port: string, inside: string, ns: string | undefined, addr: string, isolated: boolean): Promise<void> {
    const hub = this.ns('hub');
    await ip('link', 'add', inside, ...(ns ? ['netns', ns] : []), 'type', 'veth', 'peer', 'name', port, 'netns', hub);
    await ip('-n', hub, 'link', 'set', port, 'master', 'br0', 'up');
    if (isolated) await execFileP('bridge', ['-n', hub, 'link', 'set', 'dev', port, 'isolated', 'on']);
    const at = ns ? ['-n', ns] : [];
    await ip(...at, 'addr', 'add', `${addr}/24`, 'dev', inside);
    await ip(...at, 'link', 'set', inside, 'up');
  }

  private check(node: string): void {
    if (!this.nodes.includes(node)) throw new TypeError(`unknown node ${JSON.stringify(node)}`);
  }

  private index(node: string): number {
    this.check(node);
    return this.nodes.indexOf(node);
  }

  private sorted(a: string, b: string): [string, string] {
    return this.index(a) < this.index(b) ? [a, b] : [b, a];
  }

  private key(a: string, b: string): string {
    return this.sorted(a, b).join('~');
  }

  private link(a: string, b: string): LinkState {
    const l = this.links.get(this.key(a, b));
    if (!l) throw new Error(`no link ${this.key(a, b)}`);
    return l;
  }

  /** Inside a node, the interface of its link to `peer`. */
  private ifName(peer: string): string {
    return `m-${peer}`;
  }

  /** Host `which` (1 or 2) of link `index`'s /30 in 10.78.0.0/16. */
  private linkAddr(index: number, which: 1 | 2): string {
    const base = index * 4;
    return `10.78.${base >> 8}.${(base & 255) + which}`;
  }
}

/** A /24 in 100.64.0.0/10 that no route in the root namespace uses yet (another test's hub). */
async function freeHubSubnet(): Promise<number> {
  const routes = JSON.parse(await ip('-j', 'route', 'show')) as { dst: string }[];
  const used = new Set(routes.map((r) => r.dst));
  const start = (process.pid * 7 + seq * 131) % 16384;
  for (let i = 0; i < 16384; i++) {
    const s = (start + i) % 16384;
    if (!used.has(`100.${64 + (s >> 8)}.${s & 255}.0/24`)) return s;
  }
  throw new Error('no free hub subnet');
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
