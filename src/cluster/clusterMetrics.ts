import { Gauge, type Registry } from 'prom-client';
import type { ClusterRooms } from './clusterRooms.js';

/** What the cluster part of a node holds, at scrape time (operators; tests check it drains to 0). */
export function registerClusterMetrics(registry: Registry, cluster: ClusterRooms): void {
  new Gauge({
    name: 'auralink_cluster_rooms_held',
    help: 'Rooms this node holds in the cluster directory (each with one Redis channel subscription)',
    registers: [registry],
    collect() {
      this.set(cluster.stats().held);
    },
  });
  new Gauge({
    name: 'auralink_cluster_remote_participants',
    help: "Participants on other nodes in this node's rooms, as its rosters know them",
    registers: [registry],
    collect() {
      this.set(cluster.stats().remote);
    },
  });
  new Gauge({
    name: 'auralink_cluster_pending_timers',
    help: 'Directory verify passes scheduled (after an outage or a subscriber reconnect)',
    registers: [registry],
    collect() {
      this.set(cluster.stats().timers);
    },
  });
  new Gauge({
    name: 'auralink_cluster_redis_up',
    help: '1 while the cluster directory is reachable; 0 while this node serves only its own participants',
    registers: [registry],
    collect() {
      this.set(cluster.isDown ? 0 : 1);
    },
  });
}
