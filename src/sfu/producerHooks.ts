import type { types } from 'mediasoup';
import type { Room } from '../rooms/room.js';
import type { RouterSlot, SfuRoom } from './sfuRoom.js';

/**
 * Per-producer packet processing (AIC's RTP hook chain) as the SFU sees it: told of each
 * producer published on this node, and asked which producer a new consumer should consume
 * (the processed one while its chain runs). Without hooks it is NO_PRODUCER_HOOKS.
 */
export interface ProducerHooks {
  producerCreated(room: Room, sfuRoom: SfuRoom, producer: types.Producer, source: string): void;
  /** The id to consume for a subscriber on `slot` asking for `producerId`. */
  route(room: Room, sfuRoom: SfuRoom, producerId: string, slot: RouterSlot): Promise<string>;
}

export const NO_PRODUCER_HOOKS: ProducerHooks = {
  producerCreated: () => undefined,
  route: async (_room, _r, producerId) => producerId,
};
