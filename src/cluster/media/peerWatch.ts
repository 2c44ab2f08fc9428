import type { Logger } from '../../obs/logger.js';

export interface PeerWatchOptions {
  /** A peer that answered no probe for this long is gone for media (0: never probed). */
  timeoutMs: number;
}

/**
 * Notices a node this one receives pipes from (a relay, an origin) is gone faster than the
 * mesh's expiry (3 heartbeats; a SIGKILLed relay's media came back after 2.4–3.4 s at the
 * default heartbeat): a dead pipe tells nothing (mediasoup: no close, no score event on a pipe
 * producer), so each such peer gets an HTTP probe (the mesh's /internal/mesh/probe, on the
 * address the mesh probes links at: the media path's) every timeout/4, each allowed
 * timeout/2; no answer for `timeoutMs` (time this process itself was stalled not counted)
 * and at least two probes failed: it is reported down, once, until it answers again.
 * Watched only while something comes in from it, so the cost follows the pipes.
 */
export class PeerWatch {
  private readonly timer: NodeJS.Timeout | undefined;
  /** Per watched peer: when it last answered (or when watching began), failed probes since, probes in flight, reported. */
  private readonly peers = new Map<string, { lastOk: number; failed: number; inFlight: number; down: boolean }>();
  private readonly everyMs: number;
  private lastTick: number;

  constructor(
    /** The nodes this one receives pipes from now. */
    private readonly upstreams: () => Iterable<string>,
    /** Where the mesh reaches a node's HTTP API (undefined: not known, not watched). */
    private readonly addressOf: (node: string) => string | undefined,
    private readonly onDown: (node: string) => void,
    private readonly opts: PeerWatchOptions,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.everyMs = Math.max(10, Math.round(opts.timeoutMs / 4));
    this.lastTick = now();
    if (opts.timeoutMs > 0) {
      this.timer = setInterval(() => this.tick(), this.everyMs);
      this.timer.unref();
    }
  }

  private tick(): void {
    const now = this.now();
    // This process was stalled (a long GC, a busy loop): the peers were not heard meanwhile
    // because nothing here listened. That time does not count against them.
    const stalled = now - this.lastTick - this.everyMs;
    this.lastTick = now;
    if (stalled > this.everyMs) for (const p of this.peers.values()) p.lastOk += stalled;
    const watched = new Set(this.upstreams());
    for (const id of this.peers.keys()) if (!watched.has(id)) this.peers.delete(id);
    for (const id of watched) {
      const url = this.addressOf(id);
      if (!url) continue;
      let p = this.peers.get(id);
      if (!p) this.peers.set(id, (p = { lastOk: now, failed: 0, inFlight: 0, down: false }));
      // Silent that long, and at least two probes failed (not only unanswered yet).
      if (!p.down && now - p.lastOk > this.opts.timeoutMs && p.failed >= 2) {
        p.down = true;
        this.log.warn({ peer: id, silentMs: now - p.lastOk }, 'cascade: a node media comes from answers no probe; re-routing around it');
        this.onDown(id);
        continue;
      }
      // At most two probes in flight: a peer that stopped answering is not flooded.
      if (p.inFlight >= 2) continue;
      p.inFlight++;
      const entry = p;
      fetch(`${url}/internal/mesh/probe`, { signal: AbortSignal.timeout(Math.max(20, Math.round(this.opts.timeoutMs / 2))) })
        .then(async (res) => {
          await res.arrayBuffer();
          if (!res.ok) throw new Error(`probe answered ${res.status}`);
          entry.lastOk = this.now();
          entry.failed = 0;
          entry.down = false;
        })
        .catch(() => entry.failed++)
        .finally(() => entry.inFlight--);
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.peers.clear();
  }
}
