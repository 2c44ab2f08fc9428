import type { types } from 'mediasoup';
import type { Logger } from 'pino';
import type { PeerConsumer } from '../sfu/peerConsumer.js';
import { trackIdOf } from '../sfu/trackId.js';
import type { Arm } from './arm.js';
import type { AicMetrics } from './aicMetrics.js';
import { qualityFloor, temporalFloor, type AdviceResponse, type FeatureSubscriber, type FeatureTrack, type TrackAdvice } from './advice.js';
import { decide, type Decision, type LinkInput, type Policy, type TrackInput, type ViewerSettings } from './controller.js';
import { Dynacast } from './dynacast.js';
import { forwardedFps, layersOf, temporalLayersOf, type Layer } from './layers.js';
import { qualityScore, resolutionFactor } from './quality.js';

// Assumed when the publisher does not say (mediasoup knows neither size nor frame rate).
const DEFAULT_SIZE = { width: 1280, height: 720 };
const SOURCE_FPS = 30;

interface ProducerModel {
  producer: types.Producer;
  publisherSid: string;
  source: string;
  layers: Layer[];
  /** Bits/s forwarding the top layer costs (EWMA while the top layer is sent; kept while it is paused). */
  topBitrate: number;
}

interface ConsumerState {
  pc: PeerConsumer;
  settings: ViewerSettings | undefined;
  applied: Decision | undefined;
  /** When the last settings arrived (for the reaction histogram), until a decision change is applied. */
  settingsAt: bigint | undefined;
  lastBytes: number | undefined;
  /** The controller gave up on it (fallback): forwarded as without AIC. */
  fallback: boolean;
  quality: number | undefined;
}

interface Subscriber {
  link: LinkInput;
  consumers: Map<string, ConsumerState>;
}

/** What one room session's AIC did, written when it ends (aic_call_summaries, docs/AIC.md). */
export interface AicCallSummary {
  callId: string;
  room: string;
  arm: Arm;
  startedAt: Date;
  endedAt: Date;
  bytesForwarded: number;
  forwardAllBytes: number;
  /** 100 × (1 − forwarded / forward-all); null: nothing measured. */
  reductionPercent: number | null;
  /** compression.target_reduction_percent while the room ran: what reduction_percent is held to. */
  targetReductionPercent: number;
  qualitySamples: number;
  qualityMean: number | null;
  qualityMin: number | null;
  belowThreshold: number;
  decisions: number;
  dynacastUpdates: number;
  adviceApplied: number;
}

interface ConsumerCap {
  maxSpatial?: number;
  maxTemporal?: number;
}

interface SubscriberAdvice {
  maxBitrate: number | undefined;
  consumers: Map<string, ConsumerCap>;
}

/** The AI core's answer for this room, until it lapses. */
interface RoomAdvice {
  expiresAt: number;
  subscribers: Map<string, SubscriberAdvice>;
}

export interface AicRoomOptions {
  policy: Policy;
  holdDownMs: number;
  minQuality: number;
  fallback: boolean;
}

/** One room's AIC state: its producers' layers, each subscriber's consumers and link, dynacast. */
export class AicRoom {
  readonly producers = new Map<string, ProducerModel>();
  readonly subscribers = new Map<string, Subscriber>();
  readonly dynacast: Dynacast;
  private advice: RoomAdvice | undefined;
  private readonly startedAt = new Date();
  private readonly totals = { fwd: 0, all: 0, qSum: 0, qCount: 0, qMin: Number.POSITIVE_INFINITY, below: 0, decisions: 0, dynacast: 0, advice: 0 };

  constructor(
    readonly name: string,
    /** The room session (calls.id). */
    readonly sid: string,
    readonly arm: Arm,
    private readonly opts: AicRoomOptions,
    tellPublisher: (publisherSid: string, producerId: string, maxSpatialLayer: number) => void,
    private readonly metrics: AicMetrics,
    private readonly log: Logger,
  ) {
    this.dynacast = new Dynacast(opts.holdDownMs, (producerId, layer) => {
      const p = this.producers.get(producerId);
      if (!p) return;
      metrics.dynacast.inc({ arm, direction: layer < p.layers.length - 1 ? 'down' : 'up' });
      this.totals.dynacast++;
      tellPublisher(p.publisherSid, producerId, layer);
    });
  }

  private subscriber(sid: string): Subscriber {
    let s = this.subscribers.get(sid);
    if (!s) this.subscribers.set(sid, (s = { link: {}, consumers: new Map() }));
    return s;
  }

  addProducer(publisherSid: string, producer: types.Producer, source: string, size: { width: number; height: number }): void {
    if (producer.kind !== 'video') return;
    const w = size.width || DEFAULT_SIZE.width;
    const h = size.height || DEFAULT_SIZE.height;
    const layers = layersOf(w, h, producer.rtpParameters.encodings ?? [{}]);
    // By track: a re-routed copy of a piped-in track takes the place of the one before.
    const id = trackIdOf(producer);
    const entry = { producer, publisherSid, source, layers, topBitrate: layers.at(-1)?.bitrate ?? 0 };
    this.producers.set(id, entry);
    producer.observer.once('close', () => {
      if (this.producers.get(id) !== entry) return;
      this.producers.delete(id);
      this.dynacast.removeProducer(id);
    });
    if (this.arm === 'aic') this.dynacast.addProducer(id, layers.length);
  }

  addConsumer(subscriberSid: string, pc: PeerConsumer): void {
    if (pc.kind !== 'video' || !this.producers.has(pc.producerId)) return;
    const sub = this.subscriber(subscriberSid);
    sub.consumers.set(pc.id, { pc, settings: undefined, applied: undefined, settingsAt: undefined, lastBytes: undefined, fallback: false, quality: undefined });
    pc.once('closed', () => {
      sub.consumers.delete(pc.id);
      this.dynacast.drop(pc.producerId, pc.id);
      if (sub.consumers.size === 0 && sub.link.availableBitrate === undefined) this.subscribers.delete(subscriberSid);
    });
    pc.on('score', (s) => {
      const c = sub.consumers.get(pc.id);
      if (c && s.score < 5) void this.run(subscriberSid);
    });
    void this.run(subscriberSid);
  }

  settings(subscriberSid: string, pc: PeerConsumer, s: ViewerSettings): void {
    const c = this.subscribers.get(subscriberSid)?.consumers.get(pc.id);
    if (!c) return;
    c.settings = s;
    c.settingsAt = process.hrtime.bigint();
    void this.run(subscriberSid);
  }

  /** The send-side bandwidth estimate towards a subscriber (its transport's `bwe` trace). */
  bandwidth(subscriberSid: string, bps: number): void {
    const sub = this.subscriber(subscriberSid);
    const was = sub.link.availableBitrate;
    sub.link.availableBitrate = bps;
    // Re-decide on a 10% move: the estimate changes every few hundred ms by small steps.
    if (was === undefined || Math.abs(bps - was) > was * 0.1) void this.run(subscriberSid);
  }

  removeSubscriber(sid: string): void {
    this.subscribers.delete(sid);
  }

  private inputs(sub: Subscriber, advice: SubscriberAdvice | undefined): TrackInput[] {
    const out: TrackInput[] = [];
    for (const c of sub.consumers.values()) {
      const p = this.producers.get(c.pc.producerId);
      if (!p || c.fallback) continue;
      out.push({
        consumerId: c.pc.id,
        source: p.source,
        layers: p.layers,
        sourceFps: SOURCE_FPS,
        settings: c.settings,
        ...(c.applied ? { current: c.applied.spatialLayer } : {}),
        ...(c.pc.currentLayers ? { forwarded: c.pc.currentLayers.spatialLayer } : {}),
        ...(c.pc.score !== undefined ? { score: c.pc.score } : {}),
        ...(advice ? { advice: this.safeAdvice(p.layers, c.settings, advice.consumers.get(c.pc.id)) } : {}),
      });
    }
    return out;
  }

  /** Decide for one subscriber and apply what changed (AIC arm only). */
  async run(subscriberSid: string): Promise<void> {
    if (this.arm !== 'aic') return;
    const sub = this.subscribers.get(subscriberSid);
    if (!sub) return;
    const advice = this.currentAdvice()?.subscribers.get(subscriberSid);
    const link: LinkInput = advice?.maxBitrate !== undefined ? { ...sub.link, advisedBitrate: advice.maxBitrate } : sub.link;
    for (const d of decide(this.inputs(sub, advice), link, this.opts.policy)) {
      const c = sub.consumers.get(d.consumerId);
      if (c) await this.apply(c, d);
    }
  }

  private async apply(c: ConsumerState, d: Decision): Promise<void> {
    const was = c.applied;
    c.applied = d;
    const pc = c.pc;
    // Publishers encode what viewers display; each viewer's link limits are mediasoup's and
    // the controller's business (asking publishers for less starved the estimate of probes).
    this.dynacast.want(pc.producerId, pc.id, d.need);
    const count = (action: string): void => {
      this.metrics.decisions.inc({ arm: this.arm, action, reason: d.reason });
      this.totals.decisions++;
      if (d.reason === 'advice') this.totals.advice++;
    };
    try {
      let changed = false;
      if (!was || was.paused !== d.paused) {
        await pc.setControlPaused(d.paused);
        count(d.paused ? 'pause' : 'resume');
        changed = true;
      }
      if (!d.paused && (!was || was.spatialLayer !== d.spatialLayer || was.temporalLayer !== d.temporalLayer)) {
        await pc.setPreferredLayers({ spatialLayer: d.spatialLayer, temporalLayer: d.temporalLayer });
        count('layer');
        changed = true;
      }
      if (!was || was.priority !== d.priority) {
        await pc.setPriority(d.priority);
        count('priority');
      }
      if (changed && c.settingsAt !== undefined) {
        this.metrics.reaction.observe({ arm: this.arm }, Number(process.hrtime.bigint() - c.settingsAt) / 1e9);
        c.settingsAt = undefined;
      }
    } catch (err) {
      if (pc.closed) return;
      this.log.warn({ err, consumerId: pc.id }, 'AIC decision failed');
      if (!this.opts.fallback) throw err;
      // Forward as without AIC from now on: resumed (unless the subscriber paused it), every layer.
      c.fallback = true;
      count('fallback');
      this.dynacast.want(pc.producerId, pc.id, Number.MAX_SAFE_INTEGER);
      await pc.setControlPaused(false).catch(() => undefined);
      await pc.setPreferredLayers({ spatialLayer: 15, temporalLayer: 15 }).catch(() => undefined);
    }
  }

  /** Every stats interval: measured layer bitrates, bytes per arm, RTT/loss, quality; then re-decide. */
  async sample(dtS: number): Promise<void> {
    for (const p of this.producers.values()) await this.sampleProducer(p);
    for (const [sid, sub] of this.subscribers) {
      let rtt: number | undefined;
      let loss: number | undefined;
      for (const c of sub.consumers.values()) {
        const st = ((await c.pc.getStats().catch(() => [])) as { type: string; byteCount?: number; roundTripTime?: number; fractionLost?: number }[]).filter(
          (s) => s.type === 'outbound-rtp',
        );
        const bytes = st.reduce((n, s) => n + (s.byteCount ?? 0), 0);
        const p = this.producers.get(c.pc.producerId);
        // A consumer's first sample only sets its baseline (it did not exist for the whole interval).
        const first = c.lastBytes === undefined;
        const fwd = first ? 0 : Math.max(0, bytes - c.lastBytes!);
        c.lastBytes = bytes;
        const all = p && !first && !p.producer.paused ? (p.topBitrate / 8) * dtS : 0;
        this.metrics.bytes(this.arm, fwd, all);
        this.totals.fwd += fwd;
        this.totals.all += all;
        const s0 = st[0];
        const lossPct = s0?.fractionLost !== undefined ? (s0.fractionLost / 256) * 100 : 0;
        if (s0?.roundTripTime !== undefined) rtt = Math.max(rtt ?? 0, s0.roundTripTime);
        loss = Math.max(loss ?? 0, lossPct);
        c.quality = p ? this.score(c, p, lossPct, s0?.roundTripTime ?? 0) : undefined;
        if (c.quality !== undefined) {
          this.metrics.quality.observe({ arm: this.arm }, c.quality);
          this.totals.qSum += c.quality;
          this.totals.qCount++;
          this.totals.qMin = Math.min(this.totals.qMin, c.quality);
          if (c.quality < this.opts.minQuality) {
            this.metrics.belowThreshold.inc({ arm: this.arm });
            this.totals.below++;
          }
        }
      }
      if (rtt !== undefined) sub.link.rttMs = rtt;
      if (loss !== undefined) sub.link.lossPct = loss;
      await this.run(sid);
    }
  }

  private async sampleProducer(p: ProducerModel): Promise<void> {
    const stats = (await p.producer.getStats().catch(() => [])) as { type: string; rid?: string; ssrc?: number; bitrate?: number }[];
    const encodings = p.producer.rtpParameters.encodings ?? [];
    for (const s of stats) {
      if (s.type !== 'inbound-rtp' || !s.bitrate) continue;
      // Simulcast signalled by rid (browsers) or by SSRC (plain RTP, ssrc-group SIM): a layer
      // matched by rid only was never measured for the latter, and forward-all counted nothing.
      const i = encodings.length > 1 ? encodings.findIndex((e) => (e.rid !== undefined ? e.rid === s.rid : e.ssrc === s.ssrc)) : 0;
      const layer = p.layers[i];
      if (!layer) continue;
      layer.bitrate = s.bitrate;
      if (i === p.layers.length - 1) p.topBitrate = p.topBitrate > 0 ? 0.7 * p.topBitrate + 0.3 * s.bitrate : s.bitrate;
    }
  }

  /** The quality score of what this consumer is being sent, against how it is shown (undefined: hidden or paused by its viewer). */
  private score(c: ConsumerState, p: ProducerModel, lossPct: number, rttMs: number): number | undefined {
    if (c.settings?.hidden) return undefined;
    if (c.pc.paused && !c.applied?.paused) return undefined; // the subscriber paused it itself
    const l = c.pc.currentLayers;
    const layer = l ? p.layers[Math.min(l.spatialLayer, p.layers.length - 1)] : undefined;
    // The stream's own temporal layer count: without temporal layers, layer 0 is the full rate.
    const temporalLayers = temporalLayersOf(c.pc.consumer.rtpParameters.encodings?.[0]?.scalabilityMode);
    const top = p.layers.at(-1)!;
    return qualityScore({
      displayWidth: c.settings?.width || top.width,
      displayHeight: c.settings?.height || top.height,
      receivedWidth: layer?.width ?? 0,
      receivedHeight: layer?.height ?? 0,
      fps: layer ? forwardedFps(l?.temporalLayer ?? temporalLayers - 1, temporalLayers, SOURCE_FPS) : 0,
      sourceFps: SOURCE_FPS,
      freezeFraction: 0,
      lossPct,
      jitterMs: 0,
      rttMs,
    });
  }

  /** Per consumer of a subscriber: the last decision and score (health / debugging). */
  snapshot(): Record<string, { consumerId: string; decision?: Decision; quality?: number }[]> {
    const out: Record<string, { consumerId: string; decision?: Decision; quality?: number }[]> = {};
    for (const [sid, sub] of this.subscribers) {
      out[sid] = [...sub.consumers.values()].map((c) => ({
        consumerId: c.pc.id,
        ...(c.applied ? { decision: c.applied } : {}),
        ...(c.quality !== undefined ? { quality: c.quality } : {}),
      }));
    }
    return out;
  }

  /** The advice still in force, if any. */
  private currentAdvice(): RoomAdvice | undefined {
    return this.advice && this.advice.expiresAt > Date.now() ? this.advice : undefined;
  }

  /**
   * The local safety rules on the AI core's caps: never below the layer that keeps the tile at
   * min_quality_threshold by resolution (qualityFloor), the frame rate never below what keeps
   * it there at that layer; no cap means the top layer.
   */
  private safeAdvice(layers: readonly Layer[], s: ViewerSettings | undefined, cap: ConsumerCap | undefined): TrackAdvice {
    const top = Math.max(0, layers.length - 1);
    const floor = qualityFloor(layers, s?.width ?? 0, s?.height ?? 0, this.opts.minQuality);
    const fl = layers[floor];
    const res = fl && s && s.width > 0 && s.height > 0 ? resolutionFactor({ displayWidth: s.width, displayHeight: s.height, receivedWidth: fl.width, receivedHeight: fl.height }) : 1;
    return {
      maxSpatial: Math.min(cap?.maxSpatial ?? top, top),
      floor,
      maxTemporal: cap?.maxTemporal === undefined ? undefined : Math.max(cap.maxTemporal, temporalFloor(res, this.opts.minQuality)),
    };
  }

  /** What the AI core is sent about this room (docs/AIC.md, "AI core advice"). */
  features(): { tracks: FeatureTrack[]; subscribers: FeatureSubscriber[] } {
    const tracks: FeatureTrack[] = [...this.producers.values()].map((p) => ({
      producer_id: trackIdOf(p.producer),
      publisher_sid: p.publisherSid,
      source: p.source,
      layers: p.layers.map((l) => ({ width: l.width, height: l.height, bitrate_bps: Math.round(l.bitrate) })),
      paused: p.producer.paused,
    }));
    const subscribers: FeatureSubscriber[] = [...this.subscribers].map(([sid, sub]) => ({
      sid,
      available_bitrate_bps: sub.link.availableBitrate ?? null,
      rtt_ms: sub.link.rttMs ?? null,
      loss_percent: sub.link.lossPct ?? null,
      consumers: [...sub.consumers.values()].map((c) => ({
        consumer_id: c.pc.id,
        producer_id: c.pc.producerId,
        width: c.settings?.width ?? 0,
        height: c.settings?.height ?? 0,
        hidden: c.settings?.hidden ?? false,
        fps: c.settings?.fps ?? 0,
        spatial_layer: c.applied?.spatialLayer ?? -1,
        temporal_layer: c.applied?.temporalLayer ?? -1,
        paused: c.pc.paused,
        quality: c.quality ?? null,
        score: c.pc.score ?? null,
      })),
    }));
    return { tracks, subscribers };
  }

  /** The AI core's answer: held for ttlMs, applied to every subscriber it names (and to those it no longer names). */
  applyAdvice(a: AdviceResponse, ttlMs: number): void {
    const before = this.currentAdvice();
    const subscribers = new Map<string, SubscriberAdvice>();
    for (const s of a.subscribers) {
      if (!this.subscribers.has(s.sid)) continue;
      const consumers = new Map<string, ConsumerCap>();
      for (const c of s.consumers) {
        consumers.set(c.consumer_id, {
          ...(c.max_spatial_layer !== undefined ? { maxSpatial: c.max_spatial_layer } : {}),
          ...(c.max_temporal_layer !== undefined ? { maxTemporal: c.max_temporal_layer } : {}),
        });
      }
      subscribers.set(s.sid, { maxBitrate: s.max_bitrate_bps, consumers });
    }
    this.advice = { expiresAt: Date.now() + ttlMs, subscribers };
    for (const sid of new Set([...subscribers.keys(), ...(before?.subscribers.keys() ?? [])])) void this.run(sid);
  }

  /** Advice past its ttl: back to the local policy for the subscribers it named. */
  expireAdvice(): void {
    if (!this.advice || this.advice.expiresAt > Date.now()) return;
    const named = [...this.advice.subscribers.keys()];
    this.advice = undefined;
    for (const sid of named) void this.run(sid);
  }

  /** 100 × (1 − forwarded / forward-all) so far; null before any video was measured. */
  reductionPercent(): number | null {
    return this.totals.all > 0 ? 100 * (1 - this.totals.fwd / this.totals.all) : null;
  }

  summary(targetReductionPercent: number): AicCallSummary {
    const t = this.totals;
    return {
      callId: this.sid,
      room: this.name,
      arm: this.arm,
      startedAt: this.startedAt,
      endedAt: new Date(),
      bytesForwarded: t.fwd,
      forwardAllBytes: t.all,
      reductionPercent: this.reductionPercent(),
      targetReductionPercent,
      qualitySamples: t.qCount,
      qualityMean: t.qCount > 0 ? t.qSum / t.qCount : null,
      qualityMin: t.qCount > 0 ? t.qMin : null,
      belowThreshold: t.below,
      decisions: t.decisions,
      dynacastUpdates: t.dynacast,
      adviceApplied: t.advice,
    };
  }

  close(): void {
    this.advice = undefined;
    this.dynacast.close();
    this.producers.clear();
    this.subscribers.clear();
  }
}
