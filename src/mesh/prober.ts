import type { Logger } from '../obs/logger.js';
import type { MediaLinks } from './mediaLinks.js';
import type { Link, MeshNode, NodeRegistry } from './types.js';

interface PeerStats {
  rtts: number[]; // last results, NaN = lost
  jitter: number;
  lastRtt: number;
}

/**
 * Measures this node's links to others: every interval, up to `fanout` peers (least recently
 * probed first) get an HTTP probe (GET /internal/mesh/probe); RTT/2 is the link latency, the
 * share of the last 20 probes that failed its loss, RFC 3550-style smoothed jitter.
 */
export class Prober {
  private timer: NodeJS.Timeout | undefined;
  private readonly stats = new Map<string, PeerStats>();
  private readonly lastProbed = new Map<string, number>();
  private running = false;

  constructor(
    private readonly selfId: string,
    private readonly registry: NodeRegistry,
    private readonly opts: { intervalMs: number; fanout: number; timeoutMs: number },
    private readonly log: Logger,
    /** Loss the media itself sees on links to each peer (folded into the probe's). */
    private readonly media?: MediaLinks,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.round(), this.opts.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One probing round; resolves when its links are reported. */
  async round(): Promise<Link[]> {
    if (this.running) return [];
    this.running = true;
    try {
      const peers = [...this.registry.snapshot().nodes.values()]
        .filter((n) => n.id !== this.selfId && n.addresses.http)
        .sort((a, b) => (this.lastProbed.get(a.id) ?? 0) - (this.lastProbed.get(b.id) ?? 0))
        .slice(0, this.opts.fanout);
      const links = await Promise.all(peers.map((p) => this.probe(p)));
      const ok = links.filter((l): l is Link => l !== undefined);
      await this.registry.reportLinks(ok).catch((err: Error) => this.log.debug({ err: err.message }, 'link report failed'));
      return ok;
    } finally {
      this.running = false;
    }
  }

  private async probe(peer: MeshNode): Promise<Link | undefined> {
    this.lastProbed.set(peer.id, Date.now());
    const start = performance.now();
    let rtt = NaN;
    try {
      const res = await fetch(`${peer.addresses.http}/internal/mesh/probe`, { signal: AbortSignal.timeout(this.opts.timeoutMs) });
      await res.arrayBuffer();
      if (res.ok) rtt = performance.now() - start;
    } catch {
      /* lost */
    }
    let s = this.stats.get(peer.id);
    if (!s) this.stats.set(peer.id, (s = { rtts: [], jitter: 0, lastRtt: NaN }));
    s.rtts.push(rtt);
    if (s.rtts.length > 20) s.rtts.shift();
    if (!Number.isNaN(rtt) && !Number.isNaN(s.lastRtt)) s.jitter += (Math.abs(rtt - s.lastRtt) - s.jitter) / 16;
    if (!Number.isNaN(rtt)) s.lastRtt = rtt;
    const got = s.rtts.filter((x) => !Number.isNaN(x));
    if (got.length === 0) {
      // Nothing ever came back: report it as fully lossy so routes avoid it.
      return { from: this.selfId, to: peer.id, latencyMs: 1000, lossPct: 100, jitterMs: 0, bandwidthKbps: 0, updatedAt: Date.now(), source: 'probe' };
    }
    const mean = got.reduce((a, b) => a + b, 0) / got.length;
    const probeLoss = (s.rtts.length - got.length) / s.rtts.length;
    return {
      from: this.selfId,
      to: peer.id,
      latencyMs: Math.round((mean / 2) * 100) / 100,
      lossPct: Math.round(Math.max(probeLoss * 100, this.media?.lossTo(peer.id) ?? 0) * 100) / 100,
      jitterMs: Math.round(s.jitter * 100) / 100,
      bandwidthKbps: 0,
      updatedAt: Date.now(),
      source: 'probe',
    };
  }
}
