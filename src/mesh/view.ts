import type { EventEmitter } from 'node:events';
import { trustLevel } from './trust.js';
import { degraded, linkKey, type Link, type MeshNode, type MeshSnapshot, type RegistryEvents } from './types.js';

/**
 * A registry's in-process picture of the mesh (the in-memory registry's whole state, the Redis
 * registry's mirror): nodes and links, a version bumped on every change the planner cares
 * about, and the registry events those changes mean, emitted on the owner's emitter.
 */
export class MeshView {
  readonly nodes = new Map<string, MeshNode>();
  readonly links = new Map<string, Link>();
  version = 0;

  constructor(private readonly events: EventEmitter<RegistryEvents>) {}

  snapshot(): MeshSnapshot {
    return { nodes: this.nodes, links: this.links, version: this.version };
  }

  /** Adds or replaces a node; nodeOnline when it was not known. */
  upsert(node: MeshNode): void {
    const had = this.nodes.has(node.id);
    this.nodes.set(node.id, node);
    this.version++;
    if (!had) this.events.emit('nodeOnline', node);
  }

  /** Removes a node and its links; nodeOffline (once) when it was known. */
  drop(id: string): boolean {
    if (!this.nodes.delete(id)) return false;
    for (const [k, l] of this.links) if (l.from === id || l.to === id) this.links.delete(k);
    this.version++;
    this.events.emit('nodeOffline', id);
    return true;
  }

  /** Records link measurements; linkDegraded for each that got clearly worse. */
  applyLinks(links: readonly Link[]): void {
    for (const l of links) {
      const k = linkKey(l.from, l.to);
      const before = this.links.get(k);
      this.links.set(k, l);
      if (degraded(before, l)) this.events.emit('linkDegraded', l);
    }
    this.version++;
  }

  /** Sets a known node's trust; trustChanged when it crosses a level. */
  setTrust(id: string, trust: number): void {
    const n = this.nodes.get(id);
    if (!n || n.trust === trust) return;
    const before = n.trust;
    n.trust = trust;
    this.version++;
    if (trustLevel(before) !== trustLevel(trust)) this.events.emit('trustChanged', id, trust);
  }

  /**
   * A heartbeat's news: load and last-seen. The version moves only when the load does (the
   * planner's relay graph is rebuilt per version).
   */
  touch(id: string, load: number, lastSeen: number): void {
    const n = this.nodes.get(id);
    if (!n) return;
    n.lastSeen = lastSeen;
    if (n.load !== load) {
      n.load = load;
      this.version++;
    }
  }
}
