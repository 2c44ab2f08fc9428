import type { Logger } from 'pino';
import type uWS from 'uWebSockets.js';
import type { Metrics } from '../obs/metrics.js';
import type { Participant } from '../rooms/participant.js';
import { CloseCode, type Fanout } from '../rooms/ports.js';
import type { Room } from '../rooms/room.js';
import { codecs, ENCODINGS, type Encoding } from './codec.js';
import { serverKind, type ServerMessage } from './messages.js';
import { WsConnection, type SendGuard } from './wsConnection.js';

const topic = (room: Room, enc: Encoding): string => `${room.sid}/${enc}`;

/**
 * Room fan-out over uWS pub/sub: one topic per room and encoding, so a room message is
 * encoded at most once per encoding in use. Also the send-buffer guard: a subscriber holding
 * more than max_backpressure_bytes is dropped (4005) and resumes.
 */
export class UwsFanout implements Fanout, SendGuard {
  /** Bytes published to a room since its subscribers' backpressure was last checked. */
  private readonly unchecked = new WeakMap<Room, number>();

  constructor(
    private readonly app: uWS.TemplatedApp,
    private readonly maxBackpressureBytes: number,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  subscribe(room: Room, p: Participant): void {
    const c = p.conn;
    if (c instanceof WsConnection && !c.closed) c.ws.subscribe(topic(room, c.encoding));
  }

  unsubscribe(room: Room, p: Participant): void {
    const c = p.conn;
    if (c instanceof WsConnection && !c.closed) c.ws.unsubscribe(topic(room, c.encoding));
  }

  publish(room: Room, msg: ServerMessage, except?: Participant): void {
    const ex = except?.conn;
    const exceptWs = ex instanceof WsConnection && !ex.closed ? ex.ws : undefined;
    let published = 0;
    const kind = serverKind(msg);
    for (const enc of ENCODINGS) {
      const t = topic(room, enc);
      if (this.app.numSubscribers(t) === 0) continue;
      const codec = codecs[enc];
      const data = codec.encodeServer(msg);
      published += typeof data === 'string' ? data.length * 3 : data.byteLength;
      this.countOut(kind, enc);
      // ws.publish skips the sender itself.
      if (exceptWs) exceptWs.publish(t, data, codec.binary);
      else this.app.publish(t, data, codec.binary);
    }
    const total = (this.unchecked.get(room) ?? 0) + published;
    if (total < this.maxBackpressureBytes / 4) {
      this.unchecked.set(room, total);
    } else {
      this.unchecked.set(room, 0);
      this.checkBackpressure(room);
    }
  }

  /**
   * Drops the room's subscribers holding more than the backpressure limit. Run every limit/4
   * bytes published to the room: O(subscribers) per limit/4 bytes, not per message.
   */
  private checkBackpressure(room: Room): void {
    for (const p of room.participants.values()) {
      const c = p.conn;
      if (c instanceof WsConnection) this.checkConnection(c);
    }
  }

  countOut(kind: string, encoding: Encoding): void {
    this.metrics.out(kind, encoding).inc();
  }

  /** After a direct send: the same rule as checkBackpressure, for one connection. */
  checkConnection(c: WsConnection): void {
    if (c.closed || c.ws.getBufferedAmount() <= this.maxBackpressureBytes) return;
    this.metrics.slowConsumers.inc();
    this.log.info({ buffered: c.ws.getBufferedAmount() }, 'dropping slow consumer');
    c.close(CloseCode.SLOW_CONSUMER, 'slow consumer: send buffer over limit');
  }
}
