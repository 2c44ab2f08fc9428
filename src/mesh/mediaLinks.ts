/**
 * Loss seen by media on this node's outgoing links (the cascade's pipe consumers, from the
 * far side's RTCP receiver reports), by peer node. HTTP probes are a few bytes: they cannot
 * see that a link is too narrow for the media on it; the media can. The prober folds this
 * into the link's loss, so the route planner steers media off a starved link. A reading is
 * kept for `memoryMs` after the media left the link (so the planner does not move media back
 * onto it at once and flap).
 */
export class MediaLinks {
  private readonly loss = new Map<string, { pct: number; at: number }>();

  constructor(private readonly memoryMs: number) {}

  record(peer: string, lossPct: number, now = Date.now()): void {
    this.loss.set(peer, { pct: Math.max(0, Math.min(100, lossPct)), at: now });
  }

  lossTo(peer: string, now = Date.now()): number {
    const r = this.loss.get(peer);
    if (!r) return 0;
    if (now - r.at > this.memoryMs) {
      this.loss.delete(peer);
      return 0;
    }
    return r.pct;
  }
}
