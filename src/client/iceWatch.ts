/** What IceWatch needs of a mediasoup-client transport (its PeerConnection's connectionState). */
export interface WatchedTransport {
  readonly closed: boolean;
  readonly connectionState: string;
  on(event: 'connectionstatechange', listener: (state: string) => void): unknown;
}

export interface IceWatchOptions {
  /** Asks the server for new ICE parameters and restarts ICE on the transport. */
  restart: () => Promise<void>;
  /** False while signalling is down: the resume after it restarts ICE anyway. */
  canRestart: () => boolean;
  /** A short 'disconnected' often heals by itself (a lost burst, a Wi-Fi hiccup): wait this long first. */
  disconnectedGraceMs?: number;
  /** A transport that never connects (a TURN allocation lost on the way) is restarted after this long. */
  connectTimeoutMs?: number;
  /** After a restart that did not connect, the next one comes after these waits (the last repeats). */
  retryMs?: readonly number[];
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

export const ICE_DISCONNECTED_GRACE_MS = 2000;
export const ICE_CONNECT_TIMEOUT_MS = 10_000;
export const ICE_RETRY_MS = [4000, 8000, 15_000] as const;

/**
 * Keeps one media transport connected: when its ICE fails, stays disconnected past a grace, or
 * never connects, ICE is restarted (new ICE credentials from the server, fresh candidates: a
 * new TURN allocation), again with backoff until it connects. Chromium does not restart ICE
 * by itself: a call through a TURN server that lost its allocations stayed frozen (tested,
 * test/iceRestartBrowser.test.ts, 30 s without this).
 */
export class IceWatch {
  /** Restarts done (each a request to the server and an ICE restart on the transport). */
  restarts = 0;
  private timer: unknown = undefined;
  private attempt = 0;
  private restarting = false;
  private stopped = false;
  private readonly o: Required<IceWatchOptions>;

  constructor(
    private readonly transport: WatchedTransport,
    opts: IceWatchOptions,
  ) {
    this.o = {
      disconnectedGraceMs: ICE_DISCONNECTED_GRACE_MS,
      connectTimeoutMs: ICE_CONNECT_TIMEOUT_MS,
      retryMs: ICE_RETRY_MS,
      setTimer: (fn, ms) => setTimeout(fn, ms),
      clearTimer: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
      ...opts,
    };
    transport.on('connectionstatechange', (state) => this.onState(state));
  }

  stop(): void {
    this.stopped = true;
    this.cancel();
  }

  private onState(state: string): void {
    if (this.stopped || this.transport.closed) return this.stop();
    if (state === 'connected') {
      this.attempt = 0;
      this.cancel();
    } else if (state === 'failed') {
      this.cancel();
      void this.restart();
    } else if (state === 'disconnected') {
      this.schedule(this.o.disconnectedGraceMs);
    } else if (state === 'connecting' && this.timer === undefined) {
      this.schedule(this.o.connectTimeoutMs);
    }
  }

  private schedule(ms: number): void {
    this.cancel();
    this.timer = this.o.setTimer(() => {
      this.timer = undefined;
      if (this.stopped || this.transport.closed) return this.stop();
      if (this.transport.connectionState !== 'connected') void this.restart();
    }, ms);
  }

  private cancel(): void {
    if (this.timer !== undefined) this.o.clearTimer(this.timer);
    this.timer = undefined;
  }

  private async restart(): Promise<void> {
    if (this.restarting) return;
    const wait = this.o.retryMs[Math.min(this.attempt, this.o.retryMs.length - 1)]!;
    this.attempt++;
    if (this.o.canRestart()) {
      this.restarting = true;
      this.restarts++;
      try {
        await this.o.restart();
      } catch {
        /* the transport or the session is gone: the next check (or a mediaReset) decides */
      } finally {
        this.restarting = false;
      }
    }
    // Whatever the states in between, check again later: a restart that did not connect gets another.
    if (!this.stopped && !this.transport.closed && this.transport.connectionState !== 'connected') this.schedule(wait);
  }
}
