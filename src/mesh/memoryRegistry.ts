import { EventEmitter } from 'node:events';
import { degraded, linkKey, type Link, type MeshNode, type MeshSnapshot, type NodeRegistry, type RegistryEvents } from './types.js';
import { clampTrust, trustLevel } from './trust.js';

/** Single-node registry: the same contract as the Redis one, in this process. */
export class MemoryRegistry extends EventEmitter<RegistryEvents> implements NodeRegistry {
  readonly kind = 'memory';
  private readonly nodes = new Map<string, MeshNode>();
  private readonly links = new Map<string, Link>();
  private version = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {
    super();
  }

  async register(node: MeshNode): Promise<void> {
    const fresh = !this.nodes.has(node.id);
    this.nodes.set(node.id, { ...node, lastSeen: this.now() });
    this.version++;
    if (fresh) this.emit('nodeOnline', this.nodes.get(node.id)!);
  }

  async heartbeat(id: string, load: number): Promise<boolean> {
    const n = this.nodes.get(id);
    if (!n) return false;
    n.lastSeen = this.now();
    n.load = load;
    return true;
  }

  async deregister(id: string): Promise<void> {
    if (this.remove(id)) this.emit('nodeOffline', id);
  }

  async get(id: string): Promise<MeshNode | undefined> {
    return this.nodes.get(id);
  }

  async reportLinks(links: Link[]): Promise<void> {
    for (const l of links) {
      const k = linkKey(l.from, l.to);
      const before = this.links.get(k);
      this.links.set(k, l);
      if (degraded(before, l)) this.emit('linkDegraded', l);
    }
    this.version++;
  }

  async adjustTrust(id: string, delta: number): Promise<number | undefined> {
    const n = this.nodes.get(id);
    if (!n) return undefined;
    const before = n.trust;
    n.trust = clampTrust(n.trust + delta);
    this.version++;
    if (trustLevel(before) !== trustLevel(n.trust)) this.emit('trustChanged', id, n.trust);
    return n.trust;
  }

  async reap(): Promise<string[]> {
    const deadline = this.now() - this.ttlMs;
    const gone: string[] = [];
    for (const [id, n] of this.nodes) if (n.lastSeen < deadline) gone.push(id);
    for (const id of gone) {
      this.remove(id);
      this.emit('nodeOffline', id);
    }
    return gone;
  }

  snapshot(): MeshSnapshot {
    return { nodes: this.nodes, links: this.links, version: this.version };
  }

  async close(): Promise<void> {
    this.removeAllListeners();
  }

  private remove(id: string): boolean {
    if (!this.nodes.delete(id)) return false;
    for (const [k, l] of this.links) if (l.from === id || l.to === id) this.links.delete(k);
    this.version++;
    return true;
  }
}
