import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { types } from 'mediasoup';
import type { SrtpParams } from './mediaMethods.js';

/**
 * One end of a room's media link to another node: a mediasoup PipeTransport on the room's
 * main router, connected to the far node's one (SRTP, RTX, SCTP). It carries this node's
 * producers and data producers out (pipe consumers, pipe data consumers) and the far node's
 * in (pipe producers, pipe data producers), each once. Closing
 * the transport closes both (mediasoup), and the link says so once.
 */
export class PipeLink extends EventEmitter<{ closed: [] }> {
  /** This node's producers sent to the far node, by producer id. */
  readonly out = new Map<string, types.Consumer>();
  /** The far node's producers, here, by track id (the origin's producer id; see trackIdOf). */
  readonly in = new Map<string, types.Producer>();
  /** This node's data producers sent to the far node (SCTP over the pipe), by data producer id. */
  readonly dataOut = new Map<string, types.DataConsumer>();
  /** The far node's data producers, here, by data producer id (the origin's id). */
  readonly dataIn = new Map<string, types.DataProducer>();
  /** What the far node last said it needs of each producer sent out (highest spatial layer). */
  readonly demand = new Map<string, number>();
  private connected: Promise<void> | undefined;
  private settleKnown!: () => void;
  private readonly known = new Promise<void>((r) => (this.settleKnown = r));
  closed = false;
  /**
   * The far node is gone (or unreachable): nothing goes out any more, and what came in is kept,
   * silent, only until its subscribers here have been moved to a copy over another path.
   */
  dead = false;
  /** This end's id, and the far end's (messages name the end they were sent from). */
  readonly id = randomUUID();
  farId: string | undefined;

  constructor(
    readonly room: string,
    readonly node: string,
    readonly transport: types.PipeTransport,
  ) {
    super();
    transport.observer.once('close', () => this.close());
  }

  get local(): { link: string; ip: string; port: number; srtp: SrtpParams } {
    const p = this.transport.srtpParameters;
    if (!p) throw new Error('pipe transport made without SRTP');
    return { link: this.id, ip: this.transport.tuple.localIp, port: this.transport.tuple.localPort, srtp: { cryptoSuite: p.cryptoSuite, keyBase64: p.keyBase64 } };
  }

  /** Settles when the far end's id is known, the link closes, or after `ms`. */
  async whenKnown(ms: number): Promise<void> {
    if (this.farId !== undefined || this.closed) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.known, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
  }

  /** A message from the far node names this link's far end (not an earlier link's). */
  isFrom(farLink: string): boolean {
    return this.farId === farLink;
  }

  /**
   * Connects to the far end, once: both nodes may ask for the link at the same time, and
   * then each connects its one transport to the other's (each with the other's SRTP key).
   */
  connect(far: { link: string; ip: string; port: number; srtp: SrtpParams }): Promise<void> {
    this.farId ??= far.link;
    this.settleKnown();
    this.connected ??= this.transport.connect({
      ip: far.ip,
      port: far.port,
      srtpParameters: { cryptoSuite: far.srtp.cryptoSuite as types.SrtpCryptoSuite, keyBase64: far.srtp.keyBase64 },
    });
    return this.connected;
  }

  /** Marks the link dead: what went out and the data both ways close now; what came in stays until released. */
  markDead(): void {
    this.dead = true;
    for (const c of [...this.out.values()]) c.close();
    for (const p of [...this.dataIn.values()]) p.close();
    for (const c of [...this.dataOut.values()]) c.close();
  }

  get idle(): boolean {
    return this.out.size === 0 && this.in.size === 0 && this.dataOut.size === 0 && this.dataIn.size === 0;
  }

  /** In a fixed order: what came in (its local consumers follow), what went out, the transport. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.settleKnown();
    for (const p of this.in.values()) p.close();
    this.in.clear();
    for (const c of this.out.values()) c.close();
    this.out.clear();
    for (const p of this.dataIn.values()) p.close();
    this.dataIn.clear();
    for (const c of this.dataOut.values()) c.close();
    this.dataOut.clear();
    this.transport.close();
    this.emit('closed');
    this.removeAllListeners();
  }
}
