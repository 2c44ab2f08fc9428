// Dynacast: per producer, the highest spatial layer any subscriber needs; the publisher is
// told so it stops encoding the rest. Raised at once, lowered only after a hold-down (a
// viewer resizing or scrolling back should not restart an encoder it just stopped).

interface ProducerWants {
  top: number;
  /** consumer id → the layer it needs (-1: none, e.g. paused). */
  wants: Map<string, number>;
  /** What the publisher was told last (starts at top: publishers start with every layer on). */
  told: number;
  timer: NodeJS.Timeout | undefined;
}

export type TellPublisher = (producerId: string, maxSpatialLayer: number) => void;

export class Dynacast {
  private readonly producers = new Map<string, ProducerWants>();

  constructor(
    private readonly holdDownMs: number,
    private readonly tell: TellPublisher,
  ) {}

  /** A simulcast producer with `layers` spatial layers. With no subscriber it needs none. */
  addProducer(producerId: string, layers: number): void {
    if (layers < 2 || this.producers.has(producerId)) return;
    this.producers.set(producerId, { top: layers - 1, wants: new Map(), told: layers - 1, timer: undefined });
    this.update(producerId);
  }

  removeProducer(producerId: string): void {
    const p = this.producers.get(producerId);
    if (p?.timer) clearTimeout(p.timer);
    this.producers.delete(producerId);
  }

  want(producerId: string, consumerId: string, layer: number): void {
    const p = this.producers.get(producerId);
    if (!p || p.wants.get(consumerId) === layer) return;
    p.wants.set(consumerId, layer);
    this.update(producerId);
  }

  drop(producerId: string, consumerId: string): void {
    const p = this.producers.get(producerId);
    if (p?.wants.delete(consumerId)) this.update(producerId);
  }

  /** The layer the publisher was last told (undefined: not a simulcast producer we track). */
  told(producerId: string): number | undefined {
    return this.producers.get(producerId)?.told;
  }

  private needed(p: ProducerWants): number {
    // While anyone subscribes, even with every tile hidden, the lowest layer stays on: with
    // every encoding off, Chromium took tens of seconds to ramp the top layer up again when
    // a tile came back (its send estimate had nothing to grow on; Chromium test). Off
    // entirely only with no subscriber.
    let max = p.wants.size > 0 ? 0 : -1;
    for (const l of p.wants.values()) max = Math.max(max, Math.min(l, p.top));
    return max;
  }

  private update(producerId: string): void {
    const p = this.producers.get(producerId);
    if (!p) return;
    const need = this.needed(p);
    if (need >= p.told) {
      if (p.timer) clearTimeout(p.timer);
      p.timer = undefined;
      if (need > p.told) this.send(producerId, p, need);
      return;
    }
    if (p.timer) return; // already counting down; the value is read again when it fires
    p.timer = setTimeout(() => {
      p.timer = undefined;
      const now = this.needed(p);
      if (now < p.told) this.send(producerId, p, now);
    }, this.holdDownMs);
  }

  private send(producerId: string, p: ProducerWants, layer: number): void {
    p.told = layer;
    this.tell(producerId, layer);
  }

  close(): void {
    for (const p of this.producers.values()) if (p.timer) clearTimeout(p.timer);
    this.producers.clear();
  }
}
