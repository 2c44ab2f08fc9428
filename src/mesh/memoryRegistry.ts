import { EventEmitter } from 'node:events';
import { clampTrust } from './trust.js';
import type { Link, MeshNode, MeshSnapshot, NodeRegistry, RegistryEvents } from './types.js';
import { MeshView } from './view.js';

/** Single-node registry: the same contract as the Redis one, in this process. */
export class MemoryRegistry extends EventEmitter<RegistryEvents> implements NodeRegistry {
  readonly kind = 'memory';
  private readonly view = new MeshView(this);

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {
    super();
  }

  async register(node: MeshNode): Promise<void> {
    this.view.upsert({ ...node, lastSeen: this.now() });
  }

  async heartbeat(id: string, load: number): Promise<boolean> {
    if (!this.view.nodes.has(id)) return false;
    this.view.touch(id, load, this.now());
    return true;
  }

  async deregister(id: string): Promise<void> {
    this.view.drop(id);
  }

  async get(id: string): Promise<MeshNode | undefined> {
    return this.view.nodes.get(id);
  }

  async reportLinks(links: Link[]): Promise<void> {
    this.view.applyLinks(links);
  }

  async reportClientRtts(): Promise<void> {
    // One node: the participant keeps its own RTTs (Participant.nodeRtts); nobody to share with.
  }

  async adjustTrust(id: string, delta: number): Promise<number | undefined> {
    const n = this.view.nodes.get(id);
    if (!n) return undefined;
    this.view.setTrust(id, clampTrust(n.trust + delta));
    return n.trust;
  }

  async reap(): Promise<string[]> {
    const deadline = this.now() - this.ttlMs;
    const gone: string[] = [];
    for (const [id, n] of this.view.nodes) if (n.lastSeen < deadline) gone.push(id);
    for (const id of gone) this.view.drop(id);
    return gone;
  }

  async refresh(): Promise<void> {
    // Nothing to catch up on: this is the only copy.
  }

  snapshot(): MeshSnapshot {
    return this.view.snapshot();
  }

  async start(): Promise<void> {}

  async close(): Promise<void> {
    this.removeAllListeners();
  }
}
