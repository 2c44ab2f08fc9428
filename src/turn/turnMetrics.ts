import { Counter, Gauge, type Registry } from 'prom-client';
import { DROP_CAUSES, REFUSE_REASONS, type TurnSnapshot } from './turnStats.js';

type Totals = Pick<TurnSnapshot, 'clientToPeerPackets' | 'clientToPeerBytes' | 'peerToClientPackets' | 'peerToClientBytes' | 'dropped' | 'refused' | 'socketDrops'>;

const zero = (): Totals => ({
  clientToPeerPackets: 0,
  clientToPeerBytes: 0,
  peerToClientPackets: 0,
  peerToClientBytes: 0,
  dropped: { malformed: 0, no_allocation: 0, no_channel: 0, no_permission: 0, send_error: 0 },
  refused: { credentials: 0, quota: 0, peer: 0 },
  socketDrops: { listen: 0, relay: 0 },
});

function add(a: Totals, b: Totals): Totals {
  const r = zero();
  for (const k of ['clientToPeerPackets', 'clientToPeerBytes', 'peerToClientPackets', 'peerToClientBytes'] as const) r[k] = a[k] + b[k];
  for (const c of DROP_CAUSES) r.dropped[c] = a.dropped[c] + b.dropped[c];
  for (const c of REFUSE_REASONS) r.refused[c] = a.refused[c] + b.refused[c];
  r.socketDrops.listen = a.socketDrops.listen + b.socketDrops.listen;
  r.socketDrops.relay = a.socketDrops.relay + b.socketDrops.relay;
  return r;
}

/** Where the main thread reads the TURN thread's figures (turnThread.ts). */
export interface TurnMetricsSource {
  /** A fresh snapshot from the running thread, or undefined when none is running. */
  snapshot(): Promise<TurnSnapshot | undefined>;
  readonly allocationCount: number;
  readonly up: boolean;
}

/**
 * The TURN thread's figures as metrics of the server's registry, read at scrape time. Counters
 * stay monotonic across thread restarts: a thread's last totals are kept when it dies.
 */
export class TurnMetrics {
  private retired = zero();
  private last: TurnSnapshot | undefined;
  private inflight: Promise<TurnSnapshot | undefined> | undefined;
  private readonly restarts: Counter;

  constructor(registry: Registry, private readonly source: TurnMetricsSource) {
    // Every metric's collect() runs at each scrape, concurrently: one snapshot serves them all.
    const fresh = (): Promise<TurnSnapshot | undefined> =>
      (this.inflight ??= source.snapshot().then(
        (s) => {
          this.inflight = undefined;
          if (s) this.last = s;
          return s;
        },
        () => (this.inflight = undefined),
      ));
    const totals = async (): Promise<Totals> => {
      const s = await fresh();
      return s ? add(this.retired, s) : this.retired;
    };
    const counter = (name: string, help: string, labelNames: string[], fill: (c: Counter, t: Totals) => void): Counter =>
      new Counter({
        name,
        help,
        labelNames,
        registers: [registry],
        async collect() {
          const t = await totals();
          this.reset();
          fill(this, t);
        },
      });
    new Gauge({
      name: 'auralink_turn_allocations',
      help: 'Live TURN allocations on the embedded server',
      registers: [registry],
      collect() {
        this.set(source.allocationCount);
      },
    });
    counter('auralink_turn_refused_total', 'TURN requests refused by the embedded server, by reason', ['reason'], (c, t) => {
      for (const r of REFUSE_REASONS) c.inc({ reason: r }, t.refused[r]);
    });
    counter('auralink_turn_relayed_packets_total', 'ChannelData packets relayed by the embedded TURN server, by direction', ['direction'], (c, t) => {
      c.inc({ direction: 'client_to_peer' }, t.clientToPeerPackets);
      c.inc({ direction: 'peer_to_client' }, t.peerToClientPackets);
    });
    counter('auralink_turn_relayed_bytes_total', 'Payload bytes relayed as ChannelData by the embedded TURN server, by direction', ['direction'], (c, t) => {
      c.inc({ direction: 'client_to_peer' }, t.clientToPeerBytes);
      c.inc({ direction: 'peer_to_client' }, t.peerToClientBytes);
    });
    counter(
      'auralink_turn_dropped_packets_total',
      'Packets the embedded TURN server did not relay, by cause (listen_buffer_full / relay_buffer_full: dropped by the kernel, socket receive buffer full)',
      ['cause'],
      (c, t) => {
        for (const cause of DROP_CAUSES) c.inc({ cause }, t.dropped[cause]);
        c.inc({ cause: 'listen_buffer_full' }, t.socketDrops.listen);
        c.inc({ cause: 'relay_buffer_full' }, t.socketDrops.relay);
      },
    );
    const gauge = (name: string, help: string, labelNames: string[], fill: (g: Gauge, s: TurnSnapshot) => void): void => {
      new Gauge({
        name,
        help,
        labelNames,
        registers: [registry],
        async collect() {
          await fresh();
          this.reset();
          if (self.last && source.up) fill(this, self.last);
        },
      });
    };
    const self = this;
    gauge('auralink_turn_eventloop_lag_seconds', 'Event-loop delay of the TURN thread since the previous scrape', ['quantile'], (g, s) => {
      g.set({ quantile: '0.5' }, s.lag.p50);
      g.set({ quantile: '0.99' }, s.lag.p99);
      g.set({ quantile: 'max' }, s.lag.max);
    });
    gauge('auralink_turn_eventloop_utilization', 'Share of time the TURN thread was busy since the previous scrape (0-1)', [], (g, s) => g.set(s.utilization));
    gauge('auralink_turn_socket_buffer_bytes', 'Socket buffer sizes the kernel granted the TURN sockets (Linux reports twice what was set)', ['socket', 'direction'], (g, s) => {
      g.set({ socket: 'listen', direction: 'recv' }, s.buffers.listenRecv);
      g.set({ socket: 'listen', direction: 'send' }, s.buffers.listenSend);
      if (s.buffers.relayRecv) g.set({ socket: 'relay', direction: 'recv' }, s.buffers.relayRecv);
      if (s.buffers.relaySend) g.set({ socket: 'relay', direction: 'send' }, s.buffers.relaySend);
    });
    new Gauge({
      name: 'auralink_turn_thread_up',
      help: '1 while the TURN thread is running',
      registers: [registry],
      collect() {
        this.set(source.up ? 1 : 0);
      },
    });
    this.restarts = new Counter({ name: 'auralink_turn_thread_restarts_total', help: 'TURN thread restarts after it died', registers: [registry] });
  }

  /** The thread died: its last totals are kept (what it counted after that snapshot is lost). */
  threadDied(): void {
    if (this.last) this.retired = add(this.retired, this.last);
    this.last = undefined;
  }

  restarted(): void {
    this.restarts.inc();
  }
}
