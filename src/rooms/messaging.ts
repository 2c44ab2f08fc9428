import { SignalError } from '../signal/errors.js';
import type { DataPacket } from '../signal/messages.js';
import type { ValidBody } from '../signal/rpc.js';
import type { Delivery } from './delivery.js';
import type { Participant } from './participant.js';
import type { Room } from './room.js';

/** Data between participants (and from the server API) and the P2P signalling relay. */
export class RoomMessaging {
  constructor(
    private readonly delivery: Delivery,
    private readonly opts: { maxDataBytes: number },
  ) {}

  sendData(room: Room, p: Participant, body: ValidBody<'sendData'>): void {
    if (!p.permission.canPublishData) throw new SignalError('PERMISSION_DENIED', 'token lacks canPublishData', 'sendData');
    if (body.payload.byteLength > this.opts.maxDataBytes) {
      throw new SignalError('TOO_LARGE', `payload is over ${this.opts.maxDataBytes} bytes`, 'sendData.payload');
    }
    const dests = body.destinationIdentities ?? [];
    const targets: string[] = [];
    for (const id of dests) {
      const sid = room.sidOf(id);
      if (!sid) throw new SignalError('NOT_FOUND', `no participant ${JSON.stringify(id)} in the room`, 'sendData.destinationIdentities');
      targets.push(sid);
    }
    const data = packet(p.sid, p.identity, body.payload, body.topic, dests);
    if (targets.length === 0) this.delivery.toRoom(room, { data }, p.sid);
    else this.delivery.toParticipants(room, targets, { data });
  }

  /** Data from the server (server API SendData): no sender; to the room or named identities. */
  sendServerData(room: Room, payload: Uint8Array, topic: string | undefined, identities: string[]): void {
    const data = packet('', '', payload, topic, identities);
    if (identities.length === 0) {
      this.delivery.toRoom(room, { data });
      return;
    }
    const sids = identities.flatMap((id) => room.sidOf(id) ?? []);
    this.delivery.toParticipants(room, sids, { data });
  }

  relay(room: Room, p: Participant, body: ValidBody<'relay'>): void {
    const target = room.sidOf(body.identity);
    if (!target) throw new SignalError('NOT_FOUND', `no participant ${JSON.stringify(body.identity)} in the room`, 'relay.identity');
    if (target === p.sid) throw new SignalError('INVALID_FIELD', 'cannot relay to yourself', 'relay.identity');
    this.delivery.toParticipants(room, [target], { relay: { ...body, identity: p.identity } });
  }
}

function packet(sid: string, identity: string, payload: Uint8Array, topic: string | undefined, dests: string[]): DataPacket {
  return {
    participantSid: sid,
    participantIdentity: identity,
    payload,
    timestamp: Date.now(),
    ...(topic ? { topic } : {}),
    ...(dests.length ? { destinationIdentities: dests } : {}),
  };
}
