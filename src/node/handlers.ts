import type { DirectCallPolicy } from '../mesh/directCallPolicy.js';
import type { RoomMessaging } from '../rooms/messaging.js';
import type { RoomManager } from '../rooms/roomManager.js';
import { SignalError } from '../signal/errors.js';
import type { Handler, HandlerTable } from '../signal/handlers.js';
import { OK, type RequestKind } from '../signal/rpc.js';
import type { PublishRequests } from '../sfu/publishRequests.js';
import type { SubscribeRequests } from '../sfu/subscribeRequests.js';
import type { TransportRequests } from '../sfu/transportRequests.js';

type MediaKind =
  | 'getRouterCapabilities' | 'createTransport' | 'connectTransport' | 'produce' | 'closeProducer' | 'pauseProducer'
  | 'resumeProducer' | 'consume' | 'resumeConsumer' | 'pauseConsumer' | 'closeConsumer' | 'setPreferredLayers'
  | 'setPriority' | 'trackSettings' | 'restartIce' | 'getStats' | 'produceData' | 'consumeData';
type Handlers<K extends RequestKind> = { readonly [P in K]: Handler<P> };

export interface MediaRequests {
  transports: TransportRequests;
  publish: PublishRequests;
  subscribe: SubscribeRequests;
}

/** The room requests: presence, metadata, data, relay, reports. */
function roomHandlers(rooms: RoomManager, messaging: RoomMessaging, calls: DirectCallPolicy): Handlers<Exclude<RequestKind, MediaKind>> {
  return {
    ping: ({ participant }, b) => ({ pong: rooms.ping(participant, b) }),
    sendData: ({ room, participant }, b) => (messaging.sendData(room, participant, b), OK),
    updateParticipant: ({ room, participant }, b) => (rooms.updateOwnParticipant(room, participant, b), OK),
    updateRoomMetadata: ({ room, participant }, b) => (rooms.updateRoomMetadataAsAdmin(room, participant, b.metadata), OK),
    relay: ({ room, participant }, b) => (messaging.relay(room, participant, b), OK),
    // Answered first: the leave closes the connection.
    leave: (ctx) => (ctx.afterResponse(() => rooms.leave(ctx.room, ctx.participant)), OK),
    listParticipants: ({ room, participant }) => ({ participants: { participants: rooms.listParticipants(room, participant) } }),
    linkReport: ({ room, participant }, b) => (rooms.linkReport(room, participant, b.rtts), OK),
    routeReport: ({ room, participant }, b) => (calls.report(room, participant, b), OK),
  };
}

function mediaHandlers({ transports, publish, subscribe }: MediaRequests): Handlers<MediaKind> {
  return {
    getRouterCapabilities: () => transports.routerCapabilities(),
    createTransport: ({ room, participant }, b) => transports.create(room, participant, b),
    connectTransport: async ({ room, participant }, b) => (await transports.connect(room, participant, b), OK),
    restartIce: ({ room, participant }, b) => transports.restartIce(room, participant, b.transportId),
    getStats: ({ room, participant }, b) => transports.stats(room, participant, b.id),
    produce: ({ room, participant }, b) => publish.produce(room, participant, b),
    closeProducer: ({ room, participant }, b) => (publish.close(room, participant, b.producerId), OK),
    pauseProducer: async ({ room, participant }, b) => (await publish.pause(room, participant, b.producerId, true), OK),
    resumeProducer: async ({ room, participant }, b) => (await publish.pause(room, participant, b.producerId, false), OK),
    produceData: ({ room, participant }, b) => publish.produceData(room, participant, b),
    consume: ({ room, participant }, b) => subscribe.consume(room, participant, b),
    pauseConsumer: async ({ room, participant }, b) => (await subscribe.pause(room, participant, b.consumerId, true), OK),
    resumeConsumer: async ({ room, participant }, b) => (await subscribe.pause(room, participant, b.consumerId, false), OK),
    closeConsumer: ({ room, participant }, b) => (subscribe.close(room, participant, b.consumerId), OK),
    setPreferredLayers: async ({ room, participant }, b) => (await subscribe.setPreferredLayers(room, participant, b), OK),
    setPriority: async ({ room, participant }, b) => (await subscribe.setPriority(room, participant, b), OK),
    consumeData: ({ room, participant }, b) => subscribe.consumeData(room, participant, b),
    trackSettings: ({ room, participant }, b) => (subscribe.trackSettings(room, participant, b), OK),
  };
}

/** Without an SFU every media kind is refused as unknown here (the session goes on). */
function disabledMediaHandlers(): Handlers<MediaKind> {
  const refuse = (kind: MediaKind) => (): never => {
    throw new SignalError('UNKNOWN_MESSAGE', 'the SFU is disabled on this server', kind);
  };
  return {
    getRouterCapabilities: refuse('getRouterCapabilities'), createTransport: refuse('createTransport'),
    connectTransport: refuse('connectTransport'), restartIce: refuse('restartIce'), getStats: refuse('getStats'),
    produce: refuse('produce'), closeProducer: refuse('closeProducer'), pauseProducer: refuse('pauseProducer'),
    resumeProducer: refuse('resumeProducer'), produceData: refuse('produceData'), consume: refuse('consume'),
    pauseConsumer: refuse('pauseConsumer'), resumeConsumer: refuse('resumeConsumer'), closeConsumer: refuse('closeConsumer'),
    setPreferredLayers: refuse('setPreferredLayers'), setPriority: refuse('setPriority'), trackSettings: refuse('trackSettings'), consumeData: refuse('consumeData'),
  };
}

/** Every request kind's handler for this node: the gateway looks kinds up here and nowhere else. */
export function requestHandlers(
  rooms: RoomManager,
  messaging: RoomMessaging,
  calls: DirectCallPolicy,
  media: MediaRequests | undefined,
): HandlerTable {
  return { ...roomHandlers(rooms, messaging, calls), ...(media ? mediaHandlers(media) : disabledMediaHandlers()) };
}
