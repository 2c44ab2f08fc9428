import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { IceWatch, type IceWatchOptions, type WatchedTransport } from '../src/client/iceWatch.js';

// The SDK's ICE watchdog, driven by a fake transport and a hand-turned clock.

class FakeTransport implements WatchedTransport {
  closed = false;
  connectionState = 'new';
  private listener: ((s: string) => void) | undefined;
  on(_e: 'connectionstatechange', l: (s: string) => void): void {
    this.listener = l;
  }
  set(state: string): void {
    this.connectionState = state;
    this.listener?.(state);
  }
}

class Clock {
  now = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  private next = 1;
  setTimer = (fn: () => void, ms: number): unknown => {
    const id = this.next++;
    this.timers.set(id, { at: this.now + ms, fn });
    return id;
  };
  clearTimer = (h: unknown): void => {
    this.timers.delete(h as number);
  };
  get pending(): number {
    return this.timers.size;
  }
  /** Moves time on, firing due timers in order; lets the restart promises settle between them. */
  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.now = due[1].at;
      due[1].fn();
      await settle();
    }
    this.now = end;
    await settle();
  }
}

const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

function setup(over: Partial<IceWatchOptions> = {}): { t: FakeTransport; clock: Clock; watch: IceWatch; restarts: number[]; signal: { up: boolean } } {
  const t = new FakeTransport();
  const clock = new Clock();
  const restarts: number[] = [];
  const signal = { up: true };
  const watch = new IceWatch(t, {
    restart: async () => {
      restarts.push(clock.now);
    },
    canRestart: () => signal.up,
    disconnectedGraceMs: 2000,
    connectTimeoutMs: 10_000,
    retryMs: [4000, 8000],
    setTimer: clock.setTimer,
    clearTimer: clock.clearTimer,
    ...over,
  });
  return { t, clock, watch, restarts, signal };
}

describe('ICE watchdog (SDK): a media transport that loses its path gets ICE restarted', () => {
  test('failed: restarted at once; again with backoff while it stays down; calm once connected', async () => {
    const { t, clock, restarts } = setup();
    t.set('connecting');
    t.set('connected');
    await clock.advance(60_000);
    assert.deepEqual(restarts, [], 'a healthy transport is left alone');
    t.set('failed');
    await settle();
    assert.deepEqual(restarts, [60_000]);
    await clock.advance(4000);
    assert.deepEqual(restarts, [60_000, 64_000], 'still not connected after 4 s: again');
    await clock.advance(8000);
    await clock.advance(8000);
    assert.deepEqual(restarts, [60_000, 64_000, 72_000, 80_000], 'then every 8 s (the last wait repeats)');
    t.set('connected');
    await clock.advance(60_000);
    assert.equal(restarts.length, 4, 'connected: no more');
    assert.equal(clock.pending, 0, 'no timer left running');
    t.set('failed');
    await settle();
    await clock.advance(4000);
    assert.deepEqual(restarts.slice(4), [140_000, 144_000], 'a later failure starts the backoff from the first wait again');
  });

  test('disconnected: a blip that heals within the grace is not restarted; one that lasts is', async () => {
    const { t, clock, restarts } = setup();
    t.set('connected');
    t.set('disconnected');
    await clock.advance(1500);
    t.set('connected');
    await clock.advance(10_000);
    assert.deepEqual(restarts, []);
    t.set('disconnected');
    await clock.advance(2000);
    assert.equal(restarts.length, 1, 'disconnected for the whole grace: restarted');
  });

  test('a transport that never connects is restarted after the connect timeout', async () => {
    const { t, clock, restarts } = setup();
    t.set('connecting');
    await clock.advance(9999);
    assert.deepEqual(restarts, []);
    await clock.advance(1);
    assert.deepEqual(restarts, [10_000]);
  });

  test('no restart while signalling is down (the resume restarts ICE); tried again after', async () => {
    const { t, clock, restarts, signal } = setup();
    t.set('connected');
    signal.up = false;
    t.set('failed');
    await clock.advance(4000);
    assert.deepEqual(restarts, [], 'nothing sent while the signal is down');
    signal.up = true;
    await clock.advance(8000);
    assert.deepEqual(restarts, [12_000], 'the next check restarts it');
  });

  test('a failing restart request does not stop the watch; a closed transport or stop() ends it', async () => {
    let calls = 0;
    const { t, clock, watch } = setup({
      restart: async () => {
        calls++;
        throw new Error('request timed out');
      },
    });
    t.set('failed');
    await settle();
    await clock.advance(4000);
    assert.equal(calls, 2, 'tried again after the rejected restart');
    assert.equal(watch.restarts, 2);
    t.closed = true;
    await clock.advance(60_000);
    assert.equal(calls, 2, 'closed: nothing more');
    assert.equal(clock.pending, 0);
    const b = setup();
    b.t.set('failed');
    await settle();
    b.watch.stop();
    await b.clock.advance(60_000);
    assert.equal(b.restarts.length, 1);
    assert.equal(b.clock.pending, 0);
  });

  test('restarts do not overlap: a failure while one is in flight waits for it', async () => {
    let release!: () => void;
    let calls = 0;
    const { t, clock } = setup({
      restart: () => {
        calls++;
        return new Promise<void>((r) => (release = r));
      },
    });
    t.set('failed');
    t.set('disconnected');
    t.set('failed');
    await clock.advance(3000);
    assert.equal(calls, 1);
    release();
    await settle();
    await clock.advance(4000);
    assert.equal(calls, 2, 'the next after the backoff');
  });
});
