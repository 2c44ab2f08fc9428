import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RateLimit } from '../src/util/rateLimit.js';
import { ResumeTokens } from '../src/rooms/resumeTokens.js';

/** Events allowed at `times` (ms), starting from a fresh state. */
function allowed(limit: RateLimit, times: number[]): boolean[] {
  let state = 0;
  return times.map((t) => {
    const next = limit.take(state, t);
    if (next < 0) return false;
    state = next;
    return true;
  });
}

describe('RateLimit (GCRA)', () => {
  test('a fresh state allows the burst at once, then one event per interval', () => {
    const limit = new RateLimit(10, 5); // 10/s, burst 5: one token per 100 ms
    const t0 = 1_000_000;
    assert.deepEqual(allowed(limit, [t0, t0, t0, t0, t0, t0]), [true, true, true, true, true, false]);
    assert.deepEqual(allowed(limit, [t0, t0, t0, t0, t0, t0 + 50, t0 + 100, t0 + 150]), [true, true, true, true, true, false, true, false]);
  });

  test('a long quiet spell refills to the burst, not beyond', () => {
    const limit = new RateLimit(10, 3);
    const t0 = 1_000_000;
    const later = t0 + 60_000;
    assert.deepEqual(allowed(limit, [t0, later, later, later, later]), [true, true, true, true, false]);
  });

  test('refusals do not use up capacity (the state only moves on allowed events)', () => {
    const limit = new RateLimit(1, 1);
    const t0 = 1_000_000;
    assert.deepEqual(allowed(limit, [t0, t0 + 10, t0 + 20, t0 + 999, t0 + 1000]), [true, false, false, false, true]);
  });
});

describe('ResumeTokens', () => {
  test('a token verifies for its sid only, and only on the instance (process) that issued it', () => {
    const a = new ResumeTokens();
    const b = new ResumeTokens();
    const token = a.issue('PA_one');
    assert.equal(a.issue('PA_one'), token, 'stable for a sid');
    assert.ok(a.verify('PA_one', token));
    assert.ok(!a.verify('PA_two', token));
    assert.ok(!b.verify('PA_one', token));
    assert.ok(!a.verify('PA_one', token.slice(0, -1)));
    assert.ok(!a.verify('PA_one', ''));
  });
});
