/**
 * Loss seen by media on this node's outgoing links (the cascade's pipe consumers, from the
 * far side's RTCP receiver reports), by peer node. HTTP probes are a few bytes: on an idle
 * link they cannot see that it is too narrow for media. The prober folds this into the
 * link's loss, and a reading is kept for `memoryMs` after the media left the link (so the
 * planner does not move media back onto it at once and flap). In the netns test of a starved
 * link the probes crossing it saw the media's congestion first; this path has no test of
 * its own.
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
