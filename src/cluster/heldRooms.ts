import type { Held } from './clusterTypes.js';
import type { RoomDirectory } from './directory.js';

/**
 * The rooms this node holds in the cluster directory: each with its channel subscription and
 * its directory work run in order; and every piece of directory work in flight (close waits
 * for it). A failed piece goes to `failed` (Redis away).
 */
export class HeldRooms {
  private readonly held = new Map<string, Held>();
  private readonly work = new Set<Promise<unknown>>();

  constructor(
    private readonly dir: RoomDirectory,
    private readonly failed: (err: unknown) => void,
  ) {}

  get(name: string): Held | undefined {
    return this.held.get(name);
  }

  names(): string[] {
    return [...this.held.keys()];
  }

  get size(): number {
    return this.held.size;
  }

  /** The room's entry, subscribing to its channel the first time. */
  hold(name: string): Held {
    let h = this.held.get(name);
    if (!h) {
      h = { subscribed: this.dir.sub.subscribe(this.dir.roomChannel(name)), joining: 0, buffer: [], admitting: new Map(), chain: Promise.resolve(), reads: 0, gone: new Set(), synced: false };
      h.subscribed.catch(() => undefined);
      this.held.set(name, h);
    }
    return h;
  }

  /** Forgets the room (if `h` is still its entry) and unsubscribes. */
  async drop(name: string, h: Held): Promise<void> {
    if (this.held.get(name) !== h) return;
    this.held.delete(name);
    await this.dir.sub.unsubscribe(this.dir.roomChannel(name));
  }

  /** Directory work for one room runs in order (admissions, releases, resyncs). */
  serial<T>(h: Held, fn: () => Promise<T>): Promise<T> {
    const next = h.chain.then(fn, fn);
    h.chain = next.catch(() => undefined);
    return next;
  }

  /** Keeps `p` until it settles (close waits); a rejection goes to `failed`. */
  track<T>(p: Promise<T>): void {
    const w = p.catch((err: unknown) => this.failed(err)).finally(() => this.work.delete(w));
    this.work.add(w);
  }

  async drain(): Promise<void> {
    while (this.work.size > 0) await Promise.allSettled([...this.work]);
  }

  clear(): void {
    this.held.clear();
  }
}
