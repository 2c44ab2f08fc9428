import type { EventEmitter } from 'node:events';

export type NodeRole = 'edge' | 'relay';

/** A mesh node as registered: static facts plus the load and trust that change. */
export interface MeshNode {
  id: string;
  role: NodeRole;
  region: string;
  /** Where to reach it: its HTTP API (probes, internal endpoints) and TURN URLs. */
  addresses: { http?: string; turn?: string[] };
  /** Sessions/streams it can carry, and how many it carries now (same unit). */
  capacity: number;
  load: number;
  /** 0-100; nodes under 20 are never routed through (see trust.ts). */
  trust: number;
  version: string;
  registeredAt: number;
  lastSeen: number;
}

export interface LinkMetrics {
  latencyMs: number; // one-way estimate (RTT / 2)
  lossPct: number;
  jitterMs: number;
  bandwidthKbps: number; // 0 = unknown
}

/** A measured directed link between two nodes (or a client and a node: from = 'client:<id>'). */
export interface Link extends LinkMetrics {
  from: string;
  to: string;
  updatedAt: number;
  source: 'probe' | 'client' | 'report';
}

export interface RegistryEvents {
  nodeOnline: [MeshNode];
  nodeOffline: [string];
  /** A link got clearly worse (routes over it must be recomputed). */
  linkDegraded: [Link];
  /** Trust of a node crossed a level boundary. */
  trustChanged: [string, number];
  /** The backing store came back after an outage (re-register, resync). */
  reconnected: [];
}

/**
 * Where nodes, links and trust live: Redis across a cluster, memory for a single node. All
 * writes are atomic per call; reads of the whole mesh go through snapshot() (the planner's
 * in-process view), kept current by the registry's own events.
 */
export interface NodeRegistry extends EventEmitter<RegistryEvents> {
  readonly kind: 'memory' | 'redis';
  /** Connects and subscribes to the other nodes' events (nothing to do in memory). */
  start(): Promise<void>;
  register(node: MeshNode): Promise<void>;
  /** false when the node is unknown (expired): the caller re-registers. */
  heartbeat(id: string, load: number): Promise<boolean>;
  deregister(id: string): Promise<void>;
  get(id: string): Promise<MeshNode | undefined>;
  reportLinks(links: Link[]): Promise<void>;
  /**
   * A client's measured RTTs to nodes, kept with their age where other nodes can read them
   * (Redis `clink:<identity>`, 10 minutes); nothing to share on a single node.
   */
  reportClientRtts(identity: string, rtts: { nodeId: string; rttMs: number; lossPct?: number }[]): Promise<void>;
  /** Adds `delta` to a node's trust, clamped to 0-100; returns the new value. */
  adjustTrust(id: string, delta: number): Promise<number | undefined>;
  /** Removes nodes silent for longer than the TTL; returns their ids (each published once). */
  reap(): Promise<string[]>;
  /** Catches the local picture up on what is not broadcast (others' loads and trust). */
  refresh(): Promise<void>;
  snapshot(): MeshSnapshot;
  close(): Promise<void>;
}

/** The in-process view the planner reads synchronously. */
export interface MeshSnapshot {
  nodes: ReadonlyMap<string, MeshNode>;
  /** key `${from}>${to}` */
  links: ReadonlyMap<string, Link>;
  /** Bumped on every change to nodes or links (the planner's graph cache key). */
  version: number;
}

export const linkKey = (from: string, to: string): string => `${from}>${to}`;

/** A link is degraded when latency grows by half (and 20 ms) or loss by 2 points. */
export function degraded(before: LinkMetrics | undefined, after: LinkMetrics): boolean {
  if (!before) return false;
  return (after.latencyMs > before.latencyMs * 1.5 && after.latencyMs - before.latencyMs > 20) || after.lossPct - before.lossPct >= 2;
}
