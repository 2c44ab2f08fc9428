// One soak participant: a SignalClient (resumes on its own) with plain-RTP media: it may
// publish one opus-shaped stream (50 packets/s) and subscribes to every producer in its room
// on one plain receive transport. A worker kill (mediaReset) or a rejoin after a resume gap
// drops its media server-side: it builds it again.
import { createSocket, type Socket } from 'node:dgram';
import WebSocket from 'ws';
import { createToken } from '../../src/auth/token.js';
import { SignalClient, type WebSocketCtor } from '../../src/client/signalClient.js';
import { KEY, SECRET } from '../common.js';

export interface SoakCounters {
  /** Join responses that started a session (resumed=false): each is one call_participants row. */
  sessions: number;
  joinsRefused: Record<string, number>;
  resumes: { ok: number; gap: number };
  /** Sessions closed by the server or lost (no resume) without a leave or a removal, by close code. */
  unexpectedCloses: Record<string, number>;
  leaves: number;
  removedByApi: number;
  dataSent: number;
  dataReceived: number;
  rtpReceived: number;
  mediaRebuilds: number;
  mediaErrors: Record<string, number>;
}

export const newCounters = (): SoakCounters => ({
  sessions: 0,
  joinsRefused: {},
  resumes: { ok: 0, gap: 0 },
  unexpectedCloses: {},
  leaves: 0,
  removedByApi: 0,
  dataSent: 0,
  dataReceived: 0,
  rtpReceived: 0,
  mediaRebuilds: 0,
  mediaErrors: {},
});

const OPUS = (ssrc: number): string =>
  JSON.stringify({ codecs: [{ mimeType: 'audio/opus', payloadType: 111, clockRate: 48000, channels: 2 }], encodings: [{ ssrc }], rtcp: { cname: `s${ssrc}` } });

const isRtp = (m: Buffer): boolean => m.length >= 12 && ((m[1]! & 0x7f) < 72 || (m[1]! & 0x7f) > 76);

let ssrcSeq = 100_000;

export class Member {
  /** Gone: left, removed, or its session lost. */
  gone = false;
  /** RTP packets this member received (all its consumers). */
  received = 0;
  private leaving = false;
  private removed = false;
  private sendSock: Socket | undefined;
  private sendTimer: NodeJS.Timeout | undefined;
  private recvSock: Socket | undefined;
  private recvTransport: string | undefined;
  /** producerId → consumerId */
  readonly consumers = new Map<string, string>();
  producerId: string | undefined;
  /**
   * Transports and producers the server holds for this session, as its answers said: a reset
   * (worker died, or a fresh session after a resume gap) empties them, and an answer that
   * comes after the reset on the same socket was made on the new router.
   */
  held = { transports: 0, producers: 0 };
  /** Media setup runs one at a time (a reset during setup waits for it). */
  private media: Promise<void> = Promise.resolve();
  private generation = 0;

  private constructor(
    readonly identity: string,
    readonly room: string,
    readonly client: SignalClient,
    readonly publishes: boolean,
    private readonly n: SoakCounters,
    private readonly onGone: (m: Member) => void,
  ) {}

  static async join(url: string, identity: string, room: string, publishes: boolean, n: SoakCounters, onGone: (m: Member) => void): Promise<Member> {
    const token = createToken(KEY, SECRET, { identity, video: { roomJoin: true, room, canUpdateOwnMetadata: true } });
    const client = await SignalClient.connect(url, token, { WebSocket: WebSocket as unknown as WebSocketCtor });
    n.sessions++;
    const m = new Member(identity, room, client, publishes, n, onGone);
    client.on('data', () => void n.dataReceived++);
    client.on('reconnected', ({ resumed }) => {
      if (resumed) return void n.resumes.ok++;
      // A fresh session replaced the old one (replay gap): a new row, and new media.
      n.resumes.gap++;
      n.sessions++;
      m.rebuild();
    });
    client.on('mediaReset', () => m.rebuild());
    client.on('producerAdded', (p) => {
      if (p.participantIdentity !== identity) m.queue(() => m.consume(p.producerId));
    });
    client.on('producerRemoved', (p) => void m.consumers.delete(p.producerId));
    client.on('disconnect', (d) => {
      if (d.reason !== 'PARTICIPANT_REMOVED') return;
      m.removed = true;
      n.removedByApi++;
    });
    client.on('closed', ({ code }) => {
      if (m.leaving) return;
      if (!m.removed) n.unexpectedCloses[code] = (n.unexpectedCloses[code] ?? 0) + 1;
      m.generation++;
      m.stopMedia();
      m.markGone();
    });
    m.queue(() => m.setup(m.generation));
    return m;
  }

  private markGone(): void {
    if (this.gone) return;
    this.gone = true;
    this.onGone(this);
  }

  private queue(step: () => Promise<void>): void {
    this.media = this.media.then(step).catch((err: { code?: string; message?: string }) => {
      const k = err.code ?? (err.message ?? 'error').slice(0, 40);
      this.n.mediaErrors[k] = (this.n.mediaErrors[k] ?? 0) + 1;
    });
  }

  private rebuild(): void {
    this.n.mediaRebuilds++;
    const gen = ++this.generation;
    this.stopMedia();
    this.queue(() => this.setup(gen));
  }

  private async setup(gen: number): Promise<void> {
    if (this.gone || gen !== this.generation) return;
    const c = this.client;
    const recvSock = createSocket('udp4');
    this.recvSock = recvSock;
    recvSock.on('message', (msg) => {
      if (!isRtp(msg)) return;
      this.n.rtpReceived++;
      this.received++;
    });
    await new Promise<void>((r) => recvSock.bind(0, '127.0.0.1', () => r()));
    const recv = (await c.request('createTransport', { consuming: true, plain: true })).transport!;
    this.held.transports++;
    await c.request('connectTransport', { transportId: recv.id, plainIp: '127.0.0.1', plainPort: recvSock.address().port });
    if (gen !== this.generation) return;
    this.recvTransport = recv.id;
    for (const [producerId, p] of c.producers) if (p.participantIdentity !== this.identity) await this.consume(producerId);
    if (!this.publishes || gen !== this.generation) return;
    const send = (await c.request('createTransport', { producing: true, plain: true })).transport!;
    this.held.transports++;
    const ssrc = ssrcSeq++;
    this.producerId = (await c.request('produce', { transportId: send.id, kind: 'audio', rtpParameters: OPUS(ssrc) })).id!;
    this.held.producers++;
    if (gen !== this.generation) return;
    const sock = createSocket('udp4');
    this.sendSock = sock;
    const pkt = Buffer.alloc(12 + 60, 1);
    pkt[0] = 0x80;
    pkt[1] = 111;
    pkt.writeUInt32BE(ssrc, 8);
    let seq = 0;
    this.sendTimer = setInterval(() => {
      pkt.writeUInt16BE(seq++ & 0xffff, 2);
      pkt.writeUInt32BE((seq * 960) >>> 0, 4);
      sock.send(pkt, send.plainPort!, send.plainIp!);
    }, 20);
  }

  private async consume(producerId: string): Promise<void> {
    const transportId = this.recvTransport;
    if (this.gone || !transportId || this.consumers.has(producerId)) return;
    const c = this.client;
    const consumer = (await c.request('consume', { producerId, transportId, rtpCapabilities: await c.routerCapabilities() })).consumer!;
    this.consumers.set(producerId, consumer.id);
    if (transportId !== this.recvTransport) return; // media was reset meanwhile
    await c.request('resumeConsumer', { consumerId: consumer.id });
  }

  private stopMedia(): void {
    clearInterval(this.sendTimer);
    this.sendTimer = undefined;
    this.sendSock?.close();
    this.sendSock = undefined;
    this.recvSock?.close();
    this.recvSock = undefined;
    this.recvTransport = undefined;
    this.consumers.clear();
    this.producerId = undefined;
    this.held = { transports: 0, producers: 0 };
  }

  /** Settles when the media steps queued so far are done. */
  mediaSettled(): Promise<void> {
    return this.media;
  }

  async sendData(bytes: Uint8Array): Promise<void> {
    await this.client.sendData(bytes, { topic: 'soak' });
    this.n.dataSent++;
  }

  /** Leave (or, with `abandon`, just close: the server drops the session after its resume window). */
  async leave(abandon = false): Promise<void> {
    if (this.leaving) return;
    this.leaving = true;
    this.generation++;
    this.stopMedia();
    if (abandon) this.client.close();
    else await Promise.race([this.client.leave(), new Promise((r) => setTimeout(r, 5000))]);
    this.client.close();
    this.n.leaves++;
    this.markGone();
  }
}
