import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Packr } from 'msgpackr';
import { codecs, DecodeError, MAX_DEPTH } from '../src/signal/codec.js';
import { jsonDeeperThan, msgpackDeeperThan } from '../src/util/nesting.js';
import { prng } from './helpers.js';

const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

/** A value nested `depth` levels deep, alternating arrays and objects. */
function nested(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = i % 2 ? { k: v } : [v];
  return v;
}

function depthOf(v: unknown): number {
  if (v instanceof Uint8Array || v === null || typeof v !== 'object') return 0;
  const children = Array.isArray(v) ? v : Object.values(v);
  return 1 + Math.max(0, ...children.map(depthOf));
}

/** Random values of every MessagePack type and size class, up to `depth` deep, ~`budget.n` nodes. */
function randomValue(rnd: () => number, depth: number, budget = { n: 400 }): unknown {
  const pick = Math.floor(rnd() * (depth > 0 && --budget.n > 0 ? 12 : 9));
  const len = [0, 5, 31, 32, 255, 256, 70_000][Math.floor(rnd() * 7)]!;
  switch (pick) {
    case 0: return Math.floor(rnd() * 256) - 128;
    case 1: return [300, 70_000, 2 ** 33, -300, -70_000, -(2 ** 33)][Math.floor(rnd() * 6)];
    case 2: return rnd() * 1e6;
    case 3: return 'x'.repeat(len);
    case 4: return new Uint8Array(len);
    case 5: return null;
    case 6: return rnd() < 0.5;
    case 7: return '';
    case 8: return Math.floor(rnd() * 100);
    case 9: case 10: return Array.from({ length: [0, 3, 16, 17][Math.floor(rnd() * 4)]! }, () => randomValue(rnd, depth - 1, budget));
    default: return Object.fromEntries(Array.from({ length: [0, 2, 15, 16, 20][Math.floor(rnd() * 5)]! }, (_, i) => [`k${i}`, randomValue(rnd, depth - 1, budget)]));
  }
}

describe('request nesting: refused by an explicit depth limit before decoding', () => {
  test('the deepest legitimate request (linkReport, 4 levels) decodes in JSON and MessagePack', () => {
    const req = { id: 7, linkReport: { rtts: [{ nodeId: 'n1', rttMs: 12, lossPct: 0.5 }] } };
    assert.equal(depthOf(req), 4);
    assert.deepEqual(codecs.json.decodeRequest(JSON.stringify(req)), req);
    assert.deepEqual(codecs.msgpack.decodeRequest(packr.pack(req)), req);
  });

  test(`${MAX_DEPTH} levels pass the codec; ${MAX_DEPTH + 1} and 100k are a DecodeError saying so, not a stack overflow`, () => {
    for (const [name, encode] of [['json', (v: unknown) => JSON.stringify(v)], ['msgpack', (v: unknown) => packr.pack(v)]] as const) {
      const codec = codecs[name];
      assert.doesNotThrow(() => codec.decodeRequest(encode(nested(MAX_DEPTH))), name);
      for (const frame of [encode(nested(MAX_DEPTH + 1)), name === 'json' ? '['.repeat(100_000) : new Uint8Array(100_000).fill(0x91)]) {
        assert.throws(() => codec.decodeRequest(frame), (e: unknown) => e instanceof DecodeError && /^nesting deeper than 8 levels/.test(e.message), name);
      }
    }
  });

  test('brackets inside JSON strings are text, not nesting', () => {
    const req = { id: 1, sendData: { payload: '', topic: '[[[[[[[[[[{{{{{{{{\\"[[[[[' } };
    assert.deepEqual(codecs.json.decodeRequest(JSON.stringify(req)), req);
  });

  test('the MessagePack scan measures depth exactly, over every type and length class (seeded)', () => {
    const rnd = prng(1507);
    for (let i = 0; i < 300; i++) {
      const v = randomValue(rnd, 1 + Math.floor(rnd() * 10));
      const d = depthOf(v);
      const bytes = packr.pack(v);
      assert.equal(msgpackDeeperThan(bytes, d), false, `case ${i}: depth ${d} within ${d}`);
      if (d > 0) assert.equal(msgpackDeeperThan(bytes, d - 1), true, `case ${i}: depth ${d} over ${d - 1}`);
      const json = JSON.stringify(v);
      const dj = depthOf(JSON.parse(json)); // byte arrays become objects in JSON
      assert.equal(jsonDeeperThan(json, dj), false, `case ${i} (JSON)`);
      if (dj > 0) assert.equal(jsonDeeperThan(json, dj - 1), true, `case ${i} (JSON)`);
    }
  });
});
