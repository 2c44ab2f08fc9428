import { Gauge, type Registry } from 'prom-client';
import type { PipeRouter } from './pipeRouter.js';

/** The cascade at scrape time: links (pipe transport pairs), producers carried, bytes per peer node. */
export function registerCascadeMetrics(registry: Registry, cascade: PipeRouter): void {
  new Gauge({
    name: 'auralink_cascade_links',
    help: "Pipe transports to other nodes (one per room and node pair), by the far node",
    labelNames: ['peer'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const l of cascade.linkList()) this.inc({ peer: l.node });
    },
  });
  new Gauge({
    name: 'auralink_cascade_producers',
    help: "Producers carried over pipe links: 'in' piped here from another node, 'out' sent from here",
    labelNames: ['direction', 'peer'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const l of cascade.linkList()) {
        this.inc({ direction: 'in', peer: l.node }, l.in.size);
        this.inc({ direction: 'out', peer: l.node }, l.out.size);
      }
    },
  });
  new Gauge({
    name: 'auralink_cascade_data_producers',
    help: "Data producers (SCTP) carried over pipe links: 'in' piped here from another node, 'out' sent from here",
    labelNames: ['direction', 'peer'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const l of cascade.linkList()) {
        this.inc({ direction: 'in', peer: l.node }, l.dataIn.size);
        this.inc({ direction: 'out', peer: l.node }, l.dataOut.size);
      }
    },
  });
  new Gauge({
    name: 'auralink_cascade_sctp_links',
    help: "Pipe links by the state of their SCTP association (data producers cross only 'connected' ones)",
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const l of cascade.linkList()) this.inc({ state: l.transport.sctpState ?? 'none' });
    },
  });
  new Gauge({
    name: 'auralink_cascade_loss_percent',
    help: "Loss on this node's outgoing media to each peer node (the far side's RTCP receiver reports, worst stream)",
    labelNames: ['peer'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [peer, pct] of cascade.lossByPeer) this.set({ peer }, pct);
    },
  });
  new Gauge({
    name: 'auralink_cascade_packets',
    help: "RTP packets over the pipe links to each peer node: 'sent' by this node's pipe consumers, 'received' by its pipe producers (mediasoup stats)",
    labelNames: ['direction', 'peer'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      type S = { type: string; packetCount?: number };
      const count = (stats: S[], type: string): number => stats.filter((x) => x.type === type).reduce((n, x) => n + (x.packetCount ?? 0), 0);
      for (const l of cascade.linkList()) {
        for (const c of l.out.values()) this.inc({ direction: 'sent', peer: l.node }, count((await c.getStats().catch(() => [])) as S[], 'outbound-rtp'));
        for (const p of l.in.values()) this.inc({ direction: 'received', peer: l.node }, count((await p.getStats().catch(() => [])) as S[], 'inbound-rtp'));
      }
    },
  });
  new Gauge({
    name: 'auralink_cascade_bytes',
    help: 'Bytes through the pipe transports to each peer node (sent / received), from mediasoup',
    labelNames: ['direction', 'peer'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const l of cascade.linkList()) {
        const [s] = (await l.transport.getStats().catch(() => [])) as { bytesSent?: number; bytesReceived?: number }[];
        if (!s) continue;
        this.inc({ direction: 'sent', peer: l.node }, s.bytesSent ?? 0);
        this.inc({ direction: 'received', peer: l.node }, s.bytesReceived ?? 0);
      }
    },
  });
}
