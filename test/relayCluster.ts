import { randomUUID } from 'node:crypto';
import { after, before } from 'node:test';
import pino from 'pino';
import { createToken } from '../src/auth/token.js';
import { merge } from '../src/config/load.js';
import { RedisRegistry } from '../src/mesh/redisRegistry.js';
import type { Link } from '../src/mesh/types.js';
import { eventually, KEY, SECRET, startServer, type TestServer } from './helpers.js';

// Edges and relays on loopback with the mesh's links made by the test: every node reaches
// every other here, so the test reports the measured links itself (probes off), and the
// mesh's paths follow them.

export const meshToken = createToken(KEY, SECRET, { identity: 'test', video: {}, mesh: true });

export interface Route {
  room: string;
  producerId: string;
  path: string[];
}

/**
 * Our server per node (`role` relay for names starting with R, `config` merged over the
 * base) and the mesh's links between them as the test says (probes off; reported again every
 * second: a node that re-registers after a late heartbeat loses its links), for one describe;
 * closed after it.
 */
export function useCluster(
  redisUrl: () => string,
  tag: string,
  names: readonly string[],
  links: readonly [string, string, number][],
  heartbeatMs: number,
  config: Record<string, unknown> = {},
): { n: Record<string, TestServer>; id: (name: string) => string; open: { close(): void }[] } {
  const p = `test:${tag}:${randomUUID().slice(0, 8)}:`;
  const id = (name: string): string => `${tag}-${name.toLowerCase()}`;
  const n: Record<string, TestServer> = {};
  /** Clients and sockets a failed test left open (they would keep this process alive). */
  const open: { close(): void }[] = [];
  let registry: RedisRegistry | undefined;
  let relinker: NodeJS.Timeout | undefined;
  before(async () => {
    const cfg = (name: string): Record<string, unknown> =>
      merge(
        {
          node_id: id(name),
          redis: { url: redisUrl() },
          mesh: { role: name.startsWith('R') ? 'relay' : 'edge', redis_prefix: p, heartbeat_ms: heartbeatMs, probe_interval_ms: 0 },
          database: { url: 'postgres://postgres@127.0.0.1:5432/test' },
          turn: { mode: 'off' },
          sfu: { allow_plain_transports: true, cascade_linger_ms: 300, cascade_peer_timeout_ms: 1000 },
          room: { empty_timeout_s: 0.2 },
        },
        config,
      );
    // Settled, not all: a node that failed to start (a port taken by another test run) must
    // not leave the others running after the suite.
    const started = await Promise.allSettled(names.map((name) => startServer(cfg(name))));
    names.forEach((name, i) => {
      const s = started[i]!;
      if (s.status === 'fulfilled') n[name] = s.value;
    });
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    registry = new RedisRegistry(redisUrl(), p, 3 * heartbeatMs, pino({ level: 'silent' }));
    await registry.start();
    const link = (from: string, to: string, latencyMs: number): Link => ({ from, to, latencyMs, lossPct: 0, jitterMs: 1, bandwidthKbps: 0, updatedAt: Date.now(), source: 'probe' });
    const all = links.flatMap(([a, b, ms]) => [link(id(a), id(b), ms), link(id(b), id(a), ms)]);
    const report = (): Promise<void> => registry!.reportLinks(all);
    await report();
    relinker = setInterval(() => void report().catch(() => undefined), 1000);
    // Each node's view learns them through pub/sub: a pull made before would go direct (the
    // fallback when the mesh cannot cost a path), as it did once in CI.
    const want = all.map((l) => `${l.from}>${l.to}`).sort();
    for (const [name, s] of Object.entries(n)) {
      await eventually(async () => {
        const r = await fetch(`${s.http}/internal/mesh/links`, { headers: { authorization: `Bearer ${meshToken}` } });
        const have = new Set(((await r.json()) as { links: Link[] }).links.map((l) => `${l.from}>${l.to}`));
        return want.every((k) => have.has(k));
      }, 5000, `${name}'s mesh view holds the test's links`);
    }
  });
  after(async () => {
    for (const o of open) o.close();
    clearInterval(relinker);
    await registry?.close();
    await Promise.all(Object.values(n).map((s) => s.close()));
  });
  return { n, id, open };
}

export const routes = async (t: TestServer): Promise<Route[]> =>
  ((await (await fetch(`${t.http}/internal/mesh/routes`, { headers: { authorization: `Bearer ${meshToken}` } })).json()) as { routes: Route[] }).routes;

