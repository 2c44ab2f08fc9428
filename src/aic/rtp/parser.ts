/**
 * Loads the RTP parser: the native addon (native/rtp, built by scripts/setup.sh) when it
 * loads and its record layout matches layout.ts, otherwise the TypeScript twin. Either way
 * the caller gets the same interface and records; `impl` says which one runs, and the
 * choice is logged once, here.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { withParseOne, type ParseBatch, type RtpParser } from './api.js';
import { F, MAX_EXT, RECORD_SIZE } from './layout.js';
import { tsBatchParser } from './tsParser.js';

/** Where node-gyp puts the addon, from dist/src/aic/rtp/ (the compiled location of this file). */
export const DEFAULT_ADDON_PATH = fileURLToPath(new URL('../../../../native/rtp/build/Release/auralink_rtp.node', import.meta.url));

export interface ParserLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface LoadParserOptions {
  logger: ParserLogger;
  /** The compiled addon; DEFAULT_ADDON_PATH unless given (tests pass a missing one). */
  addonPath?: string;
  /** 'ts' forces the TypeScript parser (benchmarks, A/B); 'auto' (default) prefers native. */
  prefer?: 'auto' | 'ts';
  /** Batches smaller than this go to the TypeScript parser even when the addon loaded. */
  nativeMinBatch?: number;
}

/**
 * Below this batch size the N-API boundary costs more than C saves: each typed-array
 * argument costs about 75 ns to unwrap (napi_get_typedarray_info), five of them per call.
 * bench/rtpParser.ts: TS faster at batch 1, ranges overlap at 4, native faster from 8 on.
 */
export const NATIVE_MIN_BATCH = 8;

interface AddonExports {
  parseBatch: ParseBatch;
  layout: { fields: Record<string, number>; recordSize: number; maxExt: number };
}

/** Why an addon's compiled layout differs from layout.ts, or null if it is the same. */
export function layoutMismatch(layout: AddonExports['layout'] | undefined): string | null {
  if (!layout || typeof layout !== 'object') return 'addon exports no layout';
  if (layout.recordSize !== RECORD_SIZE || layout.maxExt !== MAX_EXT) {
    return `record size ${layout.recordSize}/${layout.maxExt} ext, layout.ts has ${RECORD_SIZE}/${MAX_EXT}`;
  }
  const names = new Set([...Object.keys(F), ...Object.keys(layout.fields ?? {})]);
  for (const name of names) {
    const ts = (F as Record<string, number>)[name];
    const c = layout.fields?.[name];
    if (ts !== c) return `field ${name}: addon ${c}, layout.ts ${ts}`;
  }
  return null;
}

/** Loads the addon at `path`; returns it or the reason it cannot be used. */
export function loadAddon(path: string): { addon: AddonExports } | { error: string } {
  let addon: AddonExports;
  try {
    addon = createRequire(import.meta.url)(path) as AddonExports;
  } catch (err) {
    return { error: (err as Error).message.split('\n')[0]! };
  }
  if (typeof addon?.parseBatch !== 'function') return { error: 'addon exports no parseBatch' };
  const mismatch = layoutMismatch(addon.layout);
  return mismatch ? { error: `layout mismatch: ${mismatch}` } : { addon };
}

export function loadRtpParser(opts: LoadParserOptions): RtpParser {
  const path = opts.addonPath ?? DEFAULT_ADDON_PATH;
  if (opts.prefer === 'ts') {
    opts.logger.info({ impl: 'ts' }, 'rtp parser: TypeScript (asked for)');
    return withParseOne(tsBatchParser);
  }
  const loaded = loadAddon(path);
  if ('error' in loaded) {
    opts.logger.warn({ impl: 'ts', addonPath: path, reason: loaded.error }, 'rtp parser: native addon unavailable, using the TypeScript parser');
    return withParseOne(tsBatchParser);
  }
  const min = opts.nativeMinBatch ?? NATIVE_MIN_BATCH;
  const nativeBatch = loaded.addon.parseBatch;
  const ts = tsBatchParser.parseBatch;
  const parseBatch: ParseBatch = min <= 0 ? nativeBatch : (buf, offsets, lengths, count, out, codecs) => (count < min ? ts : nativeBatch)(buf, offsets, lengths, count, out, codecs);
  opts.logger.info({ impl: 'native', addonPath: path, nativeMinBatch: min }, 'rtp parser: native addon');
  return withParseOne({ impl: 'native', parseBatch, nativeMinBatch: min });
}
