import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One registry per server instance (not prom-client's global), so several servers can run in
 * one process (tests, benches) without clashing.
 */
export class Metrics {
  readonly registry = new Registry();
  // prom-client hashes a label object on every inc(): per-message counters keep their
  // labelled children instead (bench/PROFILE-join.md item 6).
  private readonly children = new Map<string, { inc(): void }>();

  /** The messages-out counter for one kind and encoding (cached child). */
  out(type: string, encoding: string): { inc(): void } {
    return this.child(`o/${type}/${encoding}`, () => this.messagesOut.labels(type, encoding));
  }

  /** The messages-in counter for one kind and encoding (cached child). */
  in(type: string, encoding: string): { inc(): void } {
    return this.child(`i/${type}/${encoding}`, () => this.messagesIn.labels(type, encoding));
  }

  private child(key: string, make: () => { inc(): void }): { inc(): void } {
    let c = this.children.get(key);
    if (!c) this.children.set(key, (c = make()));
    return c;
  }
  readonly connections = new Gauge({
    name: 'auralink_signal_connections',
    help: 'Open signalling WebSocket connections',
    labelNames: ['encoding'] as const,
    registers: [this.registry],
  });
  private sources = { participants: () => 0, rooms: () => 0 };
  readonly participants: Gauge = new Gauge({
    name: 'auralink_participants',
    help: 'Participants in rooms on this node (including those inside their resume window)',
    registers: [this.registry],
    collect: (): void => this.participants.set(this.sources.participants()),
  });
  readonly rooms: Gauge = new Gauge({
    name: 'auralink_rooms',
    help: 'Rooms on this node',
    registers: [this.registry],
    collect: (): void => this.rooms.set(this.sources.rooms()),
  });
  readonly messagesIn = new Counter({
    name: 'auralink_signal_messages_in_total',
    help: 'Signalling requests received, by kind and encoding',
    labelNames: ['type', 'encoding'] as const,
    registers: [this.registry],
  });
  readonly messagesOut = new Counter({
    name: 'auralink_signal_messages_out_total',
    help: 'Signalling messages encoded for sending, by kind and encoding (a broadcast counts once per encoding)',
    labelNames: ['type', 'encoding'] as const,
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: 'auralink_signal_errors_total',
    help: 'Typed errors returned to clients or upgrade refusals, by code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly slowConsumers = new Counter({
    name: 'auralink_signal_slow_consumers_dropped_total',
    help: 'Connections closed because their send buffer passed the backpressure limit',
    registers: [this.registry],
  });
  readonly resumes = new Counter({
    name: 'auralink_signal_resumes_total',
    help: 'Reconnects that restored a session, by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  // From the start of the event-loop turn that read the upgrade (signal/loopTurn.ts), so a
  // join waiting behind others in the loop shows; the handler-only time is the next one.
  readonly joinSeconds = new Histogram({
    name: 'auralink_signal_join_seconds',
    help: 'Join time in the server: from the start of the event-loop turn that read the WebSocket upgrade request (the wait behind earlier callbacks included) to the join response sent',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly joinHandlerSeconds = new Histogram({
    name: 'auralink_signal_join_handler_seconds',
    help: 'Join handling time alone: from the upgrade handler starting to the join response sent',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1],
    registers: [this.registry],
  });
  readonly clientRtt = new Histogram({
    name: 'auralink_signal_client_rtt_seconds',
    help: 'Signalling RTT reported by clients in Ping',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  /** Gauges read at scrape time from their owner, so nothing has to keep them in step. */
  bindSources(sources: { participants: () => number; rooms: () => number }): void {
    this.sources = sources;
  }

  constructor() {
    // Includes nodejs_eventloop_lag_seconds and the process' memory/CPU.
    collectDefaultMetrics({ register: this.registry, prefix: 'auralink_' });
  }
}
