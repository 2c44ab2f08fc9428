// The config of a test cluster's edge node: a Redis of the test's own, the test's key prefix,
// fast heartbeats, no background probes (tests write or wait for what they need), the shared
// PostgreSQL (nodes start in seconds, not PGlite's tens) and no TURN. `extra` replaces
// top-level blocks (sfu, room, aic...).
export const PG = 'postgres://postgres@127.0.0.1:5432/test';

export function edgeConfig(redisUrl: string, prefix: string, id: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    node_id: id,
    redis: { url: redisUrl },
    mesh: { redis_prefix: prefix, heartbeat_ms: 200, probe_interval_ms: 0 },
    database: { url: PG },
    turn: { mode: 'off' },
    ...extra,
  };
}
