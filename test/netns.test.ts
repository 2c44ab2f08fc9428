// The netns harness (test/netns.ts) does what the cascade tests rely on: addresses, links that
// come and go, tbf rate limits, one redis-server every namespace reaches, nothing left behind.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { listNetns, processGone, sweepNetns, TestNet } from './netns.js';

const TOOL = fileURLToPath(new URL('./fixtures/netTool.js', import.meta.url));
const NETNS_JS = fileURLToPath(new URL('./netns.js', import.meta.url));

interface Listener {
  /** The next connection's {bytes, ms} over the listener's window. */
  next(): Promise<{ bytes: number; ms: number }>;
}

async function listen(net: TestNet, node: string, ip: string, port: number, windowMs = 1000): Promise<Listener> {
  const p = net.run(node, process.execPath, [TOOL, 'listen', ip, String(port), String(windowMs)]);
  const lines: string[] = [];
  const waiters: ((l: string) => void)[] = [];
  let buf = '';
  p.stdout!.on('data', (d: Buffer) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const w = waiters.shift();
      if (w) w(line);
      else lines.push(line);
    }
  });
  const nextLine = (): Promise<string> => (lines.length ? Promise.resolve(lines.shift()!) : new Promise((r) => waiters.push(r)));
  assert.equal(await nextLine(), 'listening');
  return { next: async () => JSON.parse(await nextLine()) as { bytes: number; ms: number } };
}

async function connect(net: TestNet, from: string, ip: string, port: number, flood = false): Promise<{ connected: boolean; error?: string }> {
  const r = await net.exec(from, process.execPath, [TOOL, 'connect', ip, String(port), ...(flood ? ['flood'] : [])]);
  return JSON.parse(r.stdout.trim()) as { connected: boolean; error?: string };
}

function addrsOf(json: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const l of JSON.parse(json) as { ifname: string; addr_info: { family: string; local: string; prefixlen: number }[] }[]) {
    out.set(l.ifname, l.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`));
  }
  return out;
}

const rootLinkNames = (): string[] => (JSON.parse(execFileSync('ip', ['-j', 'link', 'show']).toString()) as { ifname: string }[]).map((l) => l.ifname);

describe('netns harness', () => {
  let net: TestNet;
  // A and B: no direct link; both reach the relays R1 and R2.
  before(async () => {
    await sweepNetns();
    net = await TestNet.create({
      nodes: ['A', 'B', 'R1', 'R2'],
      links: [
        { a: 'A', b: 'R1' },
        { a: 'A', b: 'R2' },
        { a: 'B', b: 'R1' },
        { a: 'B', b: 'R2' },
      ],
      hub: { isolated: true },
    });
  });
  after(async () => {
    await net?.close();
    await sweepNetns();
  });

  test('each namespace has loopback up, its media /32 on lo, its control address and its links', async () => {
    for (const node of net.nodes) {
      const a = addrsOf((await net.exec(node, 'ip', ['-j', 'addr', 'show'])).stdout);
      assert.ok(a.get('lo')?.includes('127.0.0.1/8'), `${node}: loopback up`);
      assert.ok(a.get('lo')?.includes(`${net.mediaIp(node)}/32`), `${node}: media address`);
      assert.deepEqual(a.get('ctl0'), [`${net.controlIp(node)}/24`], `${node}: control address`);
    }
    const a = addrsOf((await net.exec('A', 'ip', ['-j', 'addr', 'show'])).stdout);
    assert.deepEqual(a.get('m-R1'), [`${net.linkIp('A', 'R1')}/30`]);
    assert.deepEqual(a.get('m-R2'), [`${net.linkIp('A', 'R2')}/30`]);
    assert.equal(a.has('m-B'), false, 'no A–B link yet');
    assert.equal(new Set(net.nodes.map((n) => net.mediaIp(n))).size, net.nodes.length, 'media addresses differ');
  });

  test('A reaches the relays, not B, until an A–B link is added; not after it is removed', async () => {
    await listen(net, 'B', net.mediaIp('B'), 7100);
    await listen(net, 'R1', '0.0.0.0', 7101);
    assert.equal((await connect(net, 'A', net.mediaIp('R1'), 7101)).connected, true, 'A → R1');
    assert.equal((await connect(net, 'B', net.mediaIp('R1'), 7101)).connected, true, 'B → R1');
    assert.equal((await connect(net, 'A', net.mediaIp('B'), 7100)).connected, false, 'A → B without a link');
    // R1 does not forward: B is one hop beyond it and still out of A's reach.
    assert.equal((await connect(net, 'A', net.controlIp('B'), 7100)).connected, false, 'A → B over the isolated hub');
    await net.addLink('A', 'B');
    assert.equal((await connect(net, 'A', net.mediaIp('B'), 7100)).connected, true, 'A → B over the new link');
    await net.removeLink('A', 'B');
    assert.equal((await connect(net, 'A', net.mediaIp('B'), 7100)).connected, false, 'A → B after removal');
    await net.setLinkUp('A', 'R1', false);
    assert.equal((await connect(net, 'A', net.mediaIp('R1'), 7101)).connected, false, 'A → R1 with the link down');
    await net.setLinkUp('A', 'R1', true);
    assert.equal((await connect(net, 'A', net.mediaIp('R1'), 7101)).connected, true, 'A → R1 with the link up again');
  });

  test('a tbf rate on a link cuts its throughput by orders of magnitude, and lifting it restores it', async () => {
    const sink = await listen(net, 'R2', net.mediaIp('R2'), 7200, 1000);
    const measure = async (): Promise<number> => {
      const [r] = await Promise.all([sink.next(), connect(net, 'A', net.mediaIp('R2'), 7200, true)]);
      return (r.bytes * 8) / r.ms; // kbit/s
    };
    const free = await measure();
    await net.setRate('A', 'R2', 1000);
    assert.equal(net.rate('A', 'R2'), 1000);
    const limited = await measure();
    await net.setRate('A', 'R2', undefined);
    const lifted = await measure();
    console.log(`# A→R2 TCP: unlimited ${Math.round(free)} kbit/s, tbf 1000 kbit ${Math.round(limited)} kbit/s, lifted ${Math.round(lifted)} kbit/s`);
    assert.ok(free > 10 * limited, `unlimited ${free} vs limited ${limited}`);
    assert.ok(lifted > 10 * limited, `lifted ${lifted} vs limited ${limited}`);
  });

  test('one redis-server the test starts is reachable from every namespace and the test', async () => {
    const r = await net.startRedis();
    for (const node of net.nodes) {
      const out = await net.exec(node, 'redis-cli', ['-h', r.host, '-p', String(r.port), 'set', `from:${node}`, net.mediaIp(node)]);
      assert.equal(out.stdout.trim(), 'OK', `${node}: ${out.stderr}`);
    }
    const redis = new Redis({ host: r.host, port: r.port, lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    try {
      for (const node of net.nodes) assert.equal(await redis.get(`from:${node}`), net.mediaIp(node));
    } finally {
      redis.disconnect();
    }
  });

  test('a shared (not isolated) hub is a direct path between nodes: media must not be advertised there', async () => {
    const shared = await TestNet.create({ nodes: ['A', 'B'] });
    try {
      await listen(shared, 'B', '0.0.0.0', 7300);
      assert.equal((await connect(shared, 'A', shared.controlIp('B'), 7300)).connected, true, 'control address reachable');
      assert.equal((await connect(shared, 'A', shared.mediaIp('B'), 7300)).connected, false, 'media address is not');
    } finally {
      await shared.close();
    }
  });

  test('kill(node) ends every process in that namespace only', async () => {
    const inA = net.run('A', 'sleep', ['60']);
    const inB = net.run('B', 'sleep', ['60']);
    await Promise.all([once(inA, 'spawn'), once(inB, 'spawn')]);
    // 'spawn' is ip's start; it enters the namespace just after (setns, then exec).
    for (let i = 0; i < 100 && !((await net.pids('A')).includes(inA.pid!) && (await net.pids('B')).includes(inB.pid!)); i++) await new Promise((r) => setTimeout(r, 20));
    const killed = await net.kill('A');
    assert.ok(killed.includes(inA.pid!));
    await once(inA, 'exit');
    assert.equal(inB.exitCode, null, 'B untouched');
    inB.kill('SIGKILL');
  });

  test('close() kills the processes and leaves no namespace, veth or redis-server', async () => {
    const other = await TestNet.create({ nodes: ['X', 'Y'], links: [{ a: 'X', b: 'Y', rateKbit: 500 }] });
    const sleeper = other.run('X', 'sleep', ['60']);
    await once(sleeper, 'spawn');
    const redis = (await other.startRedis()).proc;
    const pids = [sleeper.pid!, redis.pid!];
    assert.ok((await listNetns()).some((n) => n.startsWith(other.prefix)));
    await other.close();
    assert.deepEqual((await listNetns()).filter((n) => n.startsWith(other.prefix)), []);
    assert.equal(rootLinkNames().includes(other.rootLink), false, 'no root-side veth left');
    for (const pid of pids) assert.ok(processGone(pid), `process ${pid} gone`);
  });

  test('the sweeper removes what a test process that died left, and leaves a live one alone', async () => {
    const script = `import(${JSON.stringify(NETNS_JS)}).then(async (m) => { const n = await m.TestNet.create({ nodes: ['X'] }); const s = n.run('X', 'sleep', ['60']); s.once('spawn', () => console.log(n.prefix, s.pid)); })`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [line] = (await once(child.stdout!, 'data')) as [Buffer];
    const [prefix, sleepPid] = line.toString().trim().split(' ');
    child.kill('SIGKILL');
    await once(child, 'exit');
    assert.ok((await listNetns()).some((n) => n.startsWith(prefix!)), 'the dead process left its namespaces');
    const removed = await sweepNetns();
    assert.ok(removed.some((n) => n.startsWith(prefix!)), `swept: ${removed.join(', ')}`);
    assert.deepEqual((await listNetns()).filter((n) => n.startsWith(prefix!)), []);
    assert.ok(processGone(Number(sleepPid)), 'its process inside was killed');
    assert.ok((await listNetns()).some((n) => n.startsWith(net.prefix)), 'this live test’s namespaces are still there');
  });
});
