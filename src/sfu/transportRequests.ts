import type { types } from 'mediasoup';
import type { Participant } from '../rooms/participant.js';
import type { Room } from '../rooms/room.js';
import { SignalError } from '../signal/errors.js';
import type { IceServer, TransportInfo } from '../signal/messages.js';
import type { ValidBody } from '../signal/rpc.js';
import type { MediaControl } from './mediaControl.js';
import { media } from './mediaErrors.js';
import type { SfuService } from './sfuService.js';
import type { WorkerPool } from './workerPool.js';

export interface TransportOptions {
  initialAvailableOutgoingBitrate: number;
  allowPlainTransports: boolean;
  listenIp: string;
  announcedIp: string;
}

/** Transports: create (WebRTC or plain RTP), connect, ICE restart, stats, capabilities. */
export class TransportRequests {
  private capsJson = '';

  constructor(
    private readonly sfu: SfuService,
    private readonly pool: WorkerPool,
    private readonly opts: TransportOptions,
    /** TURN servers with fresh credentials for one identity. */
    private readonly iceServers: (identity: string) => IceServer[],
    private readonly control: MediaControl,
  ) {}

  /** JSON of the routers' RTP capabilities (the same for every router: one codec list). */
  routerCapabilities(): { json: string } {
    return { json: (this.capsJson ||= JSON.stringify(this.pool.rtpCapabilities)) };
  }

  async create(room: Room, p: Participant, body: ValidBody<'createTransport'>): Promise<{ transport: TransportInfo }> {
    const producing = !!body.producing;
    const consuming = !!body.consuming;
    if (producing === consuming) {
      throw new SignalError('INVALID_FIELD', 'a transport is either producing or consuming', 'createTransport');
    }
    if (producing && !p.permission.canPublish) throw new SignalError('PERMISSION_DENIED', 'token lacks canPublish', 'createTransport');
    if (consuming && !p.permission.canSubscribe) throw new SignalError('PERMISSION_DENIED', 'token lacks canSubscribe', 'createTransport');
    if (body.plain && !this.opts.allowPlainTransports) {
      throw new SignalError('PERMISSION_DENIED', 'plain RTP transports are disabled on this server', 'createTransport.plain');
    }
    const sfuRoom = await this.sfu.ensureRoom(room);
    const slot = producing ? sfuRoom.main : await sfuRoom.slotForSubscriber();
    this.sfu.peerFor(room, p, sfuRoom);
    if (body.plain) {
      const transport = await media('createTransport', () =>
        slot.router.createPlainTransport({
          listenIp: { ip: this.opts.listenIp, ...(this.opts.announcedIp ? { announcedIp: this.opts.announcedIp } : {}) },
          rtcpMux: true,
          comedia: producing, // a sender's address is learnt from its first packet
          appData: { participantSid: p.sid },
        }),
      );
      // A producing plain transport needs no connect (comedia).
      this.sfu.keep(room, p, transport).addTransport({ transport, slot, producing, consuming, connected: producing, plain: true });
      return {
        transport: {
          id: transport.id, iceParameters: '', iceCandidates: '', dtlsParameters: '',
          plainIp: transport.tuple.localIp, plainPort: transport.tuple.localPort,
        },
      };
    }
    const transport = await media('createTransport', () => slot.router.createWebRtcTransport({
      webRtcServer: slot.worker.webRtcServer,
      enableUdp: true,
      enableTcp: true,
      preferUdp: true,
      enableSctp: !!body.sctp,
      numSctpStreams: { OS: 1024, MIS: 1024 },
      initialAvailableOutgoingBitrate: this.opts.initialAvailableOutgoingBitrate,
      appData: { participantSid: p.sid },
    }));
    this.sfu.keep(room, p, transport).addTransport({ transport, slot, producing, consuming, connected: false, plain: false });
    this.control.transportCreated(room, p.sid, transport, consuming);
    return {
      transport: {
        id: transport.id,
        iceParameters: JSON.stringify(transport.iceParameters),
        iceCandidates: JSON.stringify(transport.iceCandidates),
        dtlsParameters: JSON.stringify(transport.dtlsParameters),
        ...(transport.sctpParameters ? { sctpParameters: JSON.stringify(transport.sctpParameters) } : {}),
        iceServers: this.iceServers(p.identity),
      },
    };
  }

  async connect(room: Room, p: Participant, body: ValidBody<'connectTransport'>): Promise<void> {
    const t = this.sfu.ownPeer(room, p).transport(body.transportId, 'connectTransport.transportId');
    if (t.connected) throw new SignalError('INVALID_FIELD', 'transport is already connected', 'connectTransport.transportId');
    const { plainIp, plainPort, dtlsParameters } = body;
    t.connected = true;
    try {
      if (t.plain) {
        if (!plainIp || !plainPort) throw new SignalError('INVALID_FIELD', 'plainIp and plainPort are required', 'connectTransport');
        const plain = t.transport as types.PlainTransport;
        await media('connectTransport', () => plain.connect({ ip: plainIp, port: plainPort }));
      } else {
        if (!dtlsParameters) throw new SignalError('INVALID_FIELD', 'dtlsParameters is required', 'connectTransport');
        const webrtc = t.transport as types.WebRtcTransport;
        await media('connectTransport', () => webrtc.connect({ dtlsParameters: dtlsParameters as unknown as types.DtlsParameters }));
      }
    } catch (err) {
      t.connected = false;
      throw err;
    }
  }

  async restartIce(room: Room, p: Participant, transportId: string): Promise<{ json: string }> {
    const t = this.sfu.ownPeer(room, p).transport(transportId, 'restartIce.transportId');
    if (!('restartIce' in t.transport)) throw new SignalError('INVALID_FIELD', 'not an ICE transport', 'restartIce.transportId');
    return { json: JSON.stringify(await t.transport.restartIce()) };
  }

  async stats(room: Room, p: Participant, id: string): Promise<{ json: string }> {
    const src = this.sfu.ownPeer(room, p).statsSource(id);
    if (!src) throw new SignalError('NOT_FOUND', `no transport, producer or consumer ${id} of yours`, 'getStats.id');
    return { json: JSON.stringify(await src.getStats()) };
  }
}
