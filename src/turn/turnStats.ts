/**
 * What the TURN thread counts, as plain numbers (the relay path increments fields: no
 * allocation, no prom-client in the hot path), and the snapshot it sends the main thread,
 * which turns snapshots into metrics at scrape time (turnMetrics.ts).
 */
export const DROP_CAUSES = ['malformed', 'no_allocation', 'no_channel', 'no_permission', 'send_error'] as const;
export type DropCause = (typeof DROP_CAUSES)[number];
export const REFUSE_REASONS = ['credentials', 'quota', 'peer'] as const;
export type RefuseReason = (typeof REFUSE_REASONS)[number];

export class TurnStats {
  clientToPeerPackets = 0;
  clientToPeerBytes = 0;
  peerToClientPackets = 0;
  peerToClientBytes = 0;
  readonly dropped: Record<DropCause, number> = { malformed: 0, no_allocation: 0, no_channel: 0, no_permission: 0, send_error: 0 };
  readonly refused: Record<RefuseReason, number> = { credentials: 0, quota: 0, peer: 0 };
}

export interface TurnSnapshot {
  allocations: number;
  clientToPeerPackets: number;
  clientToPeerBytes: number;
  peerToClientPackets: number;
  peerToClientBytes: number;
  dropped: Record<DropCause, number>;
  refused: Record<RefuseReason, number>;
  /** Datagrams the kernel dropped on the TURN sockets (full receive buffer), since start. */
  socketDrops: { listen: number; relay: number };
  /** TURN thread event-loop delay since the previous snapshot, seconds. */
  lag: { p50: number; p99: number; max: number };
  /** Share of the time the TURN thread's event loop was busy since the previous snapshot. */
  utilization: number;
  /** Buffer sizes the kernel granted (bytes; Linux reports twice what was asked, capped). */
  buffers: { listenRecv: number; listenSend: number; relayRecv: number; relaySend: number };
}

export type CounterKey = 'clientToPeerPackets' | 'clientToPeerBytes' | 'peerToClientPackets' | 'peerToClientBytes';
