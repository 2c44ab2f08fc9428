import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { JoinGrant } from '../src/auth/token.js';
import { AdmissionState, type AdmissionLimits, type LoadReading } from '../src/node/admission.js';
import { AdmissionControl } from '../src/node/admissionControl.js';

// Overload admission's rules with injected load readings and time: no sockets, no workers.

const LIMITS: AdmissionLimits = { maxConsumersPerWorker: 100, maxEventLoopLagMs: 200, maxWorkerCpuPercent: 85, recoverRatio: 0.8, recoverMs: 5000 };
const load = (o: Partial<LoadReading> = {}): LoadReading => ({ consumersPerWorker: 0, eventLoopLagMs: 0, workerCpuPercent: 0, ...o });

describe('admission state', () => {
  test('any reading at its limit refuses; the reason is the reading furthest over', () => {
    const s = new AdmissionState(LIMITS);
    assert.equal(s.update(load({ consumersPerWorker: 99, eventLoopLagMs: 199, workerCpuPercent: 84 }), 0), false);
    assert.equal(s.reason, null, 'just under every limit: accepting');
    assert.equal(s.update(load({ consumersPerWorker: 100 }), 1000), true);
    assert.equal(s.reason, 'consumers', 'a count at its limit is at capacity');
    const t = new AdmissionState(LIMITS);
    t.update(load({ consumersPerWorker: 110, workerCpuPercent: 99 }), 0);
    assert.equal(t.reason, 'worker_cpu', '99/85 is further over than 110/100');
    const u = new AdmissionState(LIMITS);
    u.update(load({ eventLoopLagMs: 250 }), 0);
    assert.equal(u.reason, 'event_loop_lag');
  });

  test('hysteresis: accepting again only after every reading stayed under 0.8 × its limit for recover_ms', () => {
    const s = new AdmissionState(LIMITS);
    s.update(load({ consumersPerWorker: 120 }), 0);
    assert.equal(s.reason, 'consumers');
    // Back under the limit but over the recovery level (80): still refusing, however long.
    for (let t = 1000; t <= 20_000; t += 1000) s.update(load({ consumersPerWorker: 90 }), t);
    assert.equal(s.reason, 'consumers', 'between 80 and 100 the node stays refusing: no flapping at the limit');
    // Under 80 from t=21 s: not yet at 25.9 s, accepting at 26 s.
    s.update(load({ consumersPerWorker: 79 }), 21_000);
    s.update(load({ consumersPerWorker: 50 }), 25_900);
    assert.equal(s.reason, 'consumers');
    assert.equal(s.update(load({ consumersPerWorker: 50 }), 26_000), true);
    assert.equal(s.reason, null);
    // A blip over the recovery level restarts the calm period.
    s.update(load({ consumersPerWorker: 100 }), 30_000);
    s.update(load({ consumersPerWorker: 10 }), 31_000);
    s.update(load({ consumersPerWorker: 85 }), 34_000);
    s.update(load({ consumersPerWorker: 10 }), 35_000);
    s.update(load({ consumersPerWorker: 10 }), 39_000);
    assert.equal(s.reason, 'consumers', 'the calm period restarted at 35 s');
    s.update(load({ consumersPerWorker: 10 }), 40_000);
    assert.equal(s.reason, null);
  });

  test('a reason that calms hands over to another still high', () => {
    const s = new AdmissionState(LIMITS);
    s.update(load({ workerCpuPercent: 95 }), 0);
    s.update(load({ workerCpuPercent: 10, eventLoopLagMs: 170 }), 1000);
    assert.equal(s.reason, 'event_loop_lag', 'lag is over its recovery level (160): the node stays refusing, for lag');
  });

  test('a limit of 0 turns its check off', () => {
    const s = new AdmissionState({ ...LIMITS, maxConsumersPerWorker: 0, maxWorkerCpuPercent: 0 });
    s.update(load({ consumersPerWorker: 1e6, workerCpuPercent: 100 }), 0);
    assert.equal(s.reason, null);
  });
});

describe('admission control', () => {
  const grant = (identity: string): JoinGrant => ({ identity, room: 'r' }) as JoinGrant;

  test('refuses new joins with OVERLOADED and Retry-After while overloaded; resumes of sessions held here get in; metrics count both', async () => {
    let reading = load();
    let closed = false;
    const registry = new Registry();
    const ctl = new AdmissionControl(
      { sampleMs: 60_000, retryAfterS: 7, limits: LIMITS },
      { read: async () => reading, close: () => void (closed = true) },
      (g, token) => g.identity === 'alice' && token === 'alice-token',
      registry,
      pino({ level: 'silent' }),
    );
    try {
      await ctl.sample(0);
      assert.equal(ctl.refuse(grant('bob'), undefined), null, 'idle: admitted');
      reading = load({ consumersPerWorker: 150 });
      await ctl.sample(1000);
      assert.equal(ctl.overloaded, true);
      const r = ctl.refuse(grant('bob'), undefined);
      assert.equal(r?.code, 'OVERLOADED');
      assert.equal(r?.retryAfterS, 7);
      assert.match(r!.message, /consumers per worker 150, limit 100/);
      assert.equal(ctl.refuse(grant('alice'), { token: 'alice-token', lastSeq: 3 }), null, 'a resume of a session held here is not a new join');
      assert.notEqual(ctl.refuse(grant('alice'), { token: 'forged', lastSeq: 3 }), null, 'a resume token that is not the session\'s: a new join');
      assert.notEqual(ctl.refuse(grant('carol'), { token: 'alice-token', lastSeq: 3 }), null, 'someone else\'s token: a new join');
      const text = await registry.metrics();
      assert.match(text, /auralink_admission_refused_total\{reason="consumers"\} 3/);
      assert.match(text, /auralink_admission_resumes_admitted_total 1/);
      assert.match(text, /auralink_admission_overloaded\{reason="consumers"\} 1/);
      assert.match(text, /auralink_admission_consumers_per_worker 150/);
      reading = load();
      await ctl.sample(2000);
      await ctl.sample(7000);
      assert.equal(ctl.overloaded, false);
      assert.equal(ctl.refuse(grant('bob'), undefined), null);
      assert.match(await registry.metrics(), /auralink_admission_overloaded\{reason="consumers"\} 0/);
    } finally {
      ctl.close();
    }
    assert.equal(closed, true, 'close() closes the load source');
  });
});
