import type { DirectCallPolicy } from '../mesh/directCallPolicy.js';
import type { NodeRegistry } from '../mesh/types.js';
import type { WriteBehind } from './writeBehind.js';

/**
 * Mesh nodes as this node saw them come and go (each node writes what it sees: upserts), and
 * what direct calls got (route_performance), through the write-behind queue.
 */
export function recordMesh(reg: NodeRegistry, calls: DirectCallPolicy, writes: WriteBehind): void {
  reg.on('nodeOnline', (n) =>
    writes.enqueue(
      `INSERT INTO mesh_nodes (id, role, region, addresses, capacity, trust_score, version, first_seen, last_seen) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
       ON CONFLICT (id) DO UPDATE SET role = EXCLUDED.role, region = EXCLUDED.region, addresses = EXCLUDED.addresses, capacity = EXCLUDED.capacity,
         trust_score = EXCLUDED.trust_score, version = EXCLUDED.version, last_seen = EXCLUDED.last_seen`,
      [n.id, n.role, n.region, JSON.stringify(n.addresses), n.capacity, n.trust, n.version, new Date()],
    ),
  );
  reg.on('nodeOffline', (id) => writes.enqueue(`UPDATE mesh_nodes SET last_seen = $2 WHERE id = $1`, [id, new Date()]));
  reg.on('trustChanged', (id, trust) => writes.enqueue(`UPDATE mesh_nodes SET trust_score = $2 WHERE id = $1`, [id, trust]));
  calls.on('outcome', (o) =>
    writes.enqueue(
      `INSERT INTO route_performance (call_id, route_type, path, predicted_quality, actual_quality, latency_ms, packet_loss_percent, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [o.callId, o.tier, JSON.stringify(o.path), o.predictedQuality, o.connected ? o.observedQuality : 0, o.latencyMs, o.lossPct, new Date()],
    ),
  );
}
