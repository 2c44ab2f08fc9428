// Simulcast layer geometry: which spatial layer covers a displayed size. Pure, shared by the
// server's controller and the SDK (no Node or DOM imports).

export interface Layer {
  width: number;
  height: number;
  /** Estimated bits per second of this layer (measured when known, else the encoding's maxBitrate). */
  bitrate: number;
}

/** A displayed video: element size in device pixels (CSS px × devicePixelRatio). */
export interface Displayed {
  width: number;
  height: number;
}

// A layer within 5% of the displayed size covers it (scaling that little is invisible, and
// 1280×720 / 4 = 320×180 must cover a 320×180 tile whatever the rounding).
const SLACK = 0.95;

/** The source's size as displayed in an element (object-fit: contain, the video default). */
export function shownSize(sourceW: number, sourceH: number, d: Displayed): Displayed {
  if (sourceW <= 0 || sourceH <= 0) return d;
  const s = Math.min(d.width / sourceW, d.height / sourceH);
  return { width: sourceW * s, height: sourceH * s };
}

/**
 * The smallest layer (index, 0 = lowest) whose resolution covers the displayed size; the top
 * layer when none does, or when the size is unknown (0: not laid out yet, or not reported).
 */
export function coveringLayer(layers: readonly Layer[], d: Displayed | undefined): number {
  const top = layers.length - 1;
  if (!d || d.width <= 0 || d.height <= 0 || top < 0) return Math.max(0, top);
  const src = layers[top]!;
  const shown = shownSize(src.width, src.height, d);
  for (let i = 0; i <= top; i++) {
    const l = layers[i]!;
    if (l.width >= shown.width * SLACK && l.height >= shown.height * SLACK) return i;
  }
  return top;
}

/**
 * The layers of a simulcast source of `width`×`height` from its encodings (mediasoup's
 * rtpParameters.encodings, lowest first): scaleResolutionDownBy each (default halving per layer).
 */
export function layersOf(width: number, height: number, encodings: readonly { scaleResolutionDownBy?: number; maxBitrate?: number }[]): Layer[] {
  const n = encodings.length;
  return encodings.map((e, i) => {
    const scale = e.scaleResolutionDownBy ?? 2 ** (n - 1 - i);
    return { width: Math.round(width / scale), height: Math.round(height / scale), bitrate: e.maxBitrate ?? 0 };
  });
}

/** Temporal layer for a wanted frame rate, with the usual three layers (¼, ½, full rate). */
export function temporalFor(wantedFps: number, sourceFps: number, maxTemporal = 2): number {
  if (wantedFps <= 0 || sourceFps <= 0) return maxTemporal;
  for (let t = 0; t < maxTemporal; t++) if (sourceFps / 2 ** (maxTemporal - t) >= wantedFps * SLACK) return t;
  return maxTemporal;
}

/**
 * Temporal layers of a stream, from its consumer's scalabilityMode (mediasoup writes
 * `L<spatial>T<temporal>`; absent or unparsable: 1, as mediasoup reads it).
 */
export function temporalLayersOf(scalabilityMode: string | undefined): number {
  const m = /^[LS]\d{1,2}T(\d{1,2})/.exec(scalabilityMode ?? '');
  return m ? Math.max(1, Number(m[1])) : 1;
}

/** Frames per second forwarded at `temporalLayer` of a stream with `temporalLayers` (each layer below the top halves the rate). */
export function forwardedFps(temporalLayer: number, temporalLayers: number, sourceFps: number): number {
  const top = Math.max(0, temporalLayers - 1);
  return sourceFps / 2 ** (top - Math.min(Math.max(0, temporalLayer), top));
}
