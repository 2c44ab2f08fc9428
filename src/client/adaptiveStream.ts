// Adaptive stream (AIC, viewer side): each attached video element's displayed size ×
// devicePixelRatio and visibility (IntersectionObserver + document.visibilityState) are
// reported to the server (trackSettings), throttled (the first change at once, then at most
// one report per quiet period), so it forwards the layer the tile needs and pauses hidden ones.

export interface TrackReport {
  consumerId: string;
  width: number;
  height: number;
  hidden: boolean;
  fps: number;
}

interface Watched {
  consumerId: string;
  el: HTMLElement;
  intersecting: boolean;
  fps: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  last: string;
  /** When a report was last sent (performance.now()). */
  sentAt: number;
}

export interface AdaptiveStreamOptions {
  /** A change is reported at once if nothing was for this long, else at its end (default 100 ms). */
  debounceMs?: number;
}

/**
 * One per Room: shared observers over every attached element. A tab that is hidden reports
 * every tile hidden; shown again, every tile is measured afresh and reported at once (the
 * LiveKit bugs, livekit#3742 / client-sdk-js#1555, were tiles left paused because nothing
 * re-reported them after the tab came back).
 */
export class AdaptiveStream {
  private readonly watched = new Map<HTMLElement, Watched>();
  private readonly io: IntersectionObserver;
  private readonly ro: ResizeObserver;
  private readonly debounceMs: number;
  private readonly onVisibility = (): void => {
    // Immediately, no debounce: the way back from a hidden tab is what users notice.
    for (const w of this.watched.values()) this.report(w);
  };

  constructor(
    private readonly send: (r: TrackReport) => void,
    opts: AdaptiveStreamOptions = {},
  ) {
    this.debounceMs = opts.debounceMs ?? 100;
    this.io = new IntersectionObserver((entries) => {
      for (const e of entries) {
        const w = this.watched.get(e.target as HTMLElement);
        if (!w) continue;
        w.intersecting = e.isIntersecting;
        this.schedule(w);
      }
    });
    this.ro = new ResizeObserver((entries) => {
      for (const e of entries) {
        const w = this.watched.get(e.target as HTMLElement);
        if (w) this.schedule(w);
      }
    });
    document.addEventListener('visibilitychange', this.onVisibility);
  }

  /** Starts reporting how `el` shows the consumer; the returned function stops it. */
  attach(consumerId: string, el: HTMLElement, fps = 0): () => void {
    this.detach(el);
    const w: Watched = { consumerId, el, intersecting: true, fps, timer: undefined, last: '', sentAt: Number.NEGATIVE_INFINITY };
    this.watched.set(el, w);
    this.io.observe(el);
    this.ro.observe(el);
    this.report(w);
    return () => {
      if (this.watched.get(el) === w) this.detach(el);
    };
  }

  /** The consumer was replaced (consumerSwitched): its elements report for the new one, at once. */
  rename(consumerId: string, to: string): void {
    for (const w of this.watched.values()) {
      if (w.consumerId !== consumerId) continue;
      w.consumerId = to;
      w.last = '';
      this.report(w);
    }
  }

  /** Stops reporting for every element showing this consumer (it closed). */
  forget(consumerId: string): void {
    for (const w of [...this.watched.values()]) if (w.consumerId === consumerId) this.detach(w.el);
  }

  private detach(el: HTMLElement): void {
    const w = this.watched.get(el);
    if (!w) return;
    if (w.timer) clearTimeout(w.timer);
    this.watched.delete(el);
    this.io.unobserve(el);
    this.ro.unobserve(el);
  }

  /**
   * A tile enlarged waits for its layer (the publisher may even have to turn it back on):
   * the first change after a quiet period goes at once; changes during a resize are folded
   * into one report at the period's end.
   */
  private schedule(w: Watched): void {
    if (w.timer) return; // the period's end reports what the element shows then
    const wait = w.sentAt + this.debounceMs - performance.now();
    if (wait <= 0) {
      this.report(w);
      w.sentAt = performance.now();
      // Changes that follow at once (the rest of a resize) are reported at the period's end.
      w.timer = setTimeout(() => {
        w.timer = undefined;
        this.report(w);
      }, this.debounceMs);
      return;
    }
    w.timer = setTimeout(() => {
      w.timer = undefined;
      this.report(w);
      w.sentAt = performance.now();
    }, wait);
  }

  /** What the element shows now; sent only when it changed. */
  private report(w: Watched): void {
    const r = w.el.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const width = Math.round(r.width * dpr);
    const height = Math.round(r.height * dpr);
    const hidden = document.visibilityState === 'hidden' || !w.intersecting || width === 0 || height === 0;
    const rep: TrackReport = { consumerId: w.consumerId, width: hidden ? 0 : width, height: hidden ? 0 : height, hidden, fps: w.fps };
    const key = `${rep.width}x${rep.height}:${rep.hidden}:${rep.fps}`;
    if (key === w.last) return;
    w.last = key;
    this.send(rep);
  }

  close(): void {
    for (const el of [...this.watched.keys()]) this.detach(el);
    this.io.disconnect();
    this.ro.disconnect();
    document.removeEventListener('visibilitychange', this.onVisibility);
  }
}
