import type { types } from 'mediasoup';
import type { Room } from '../rooms/room.js';
import type { SfuRoom } from './sfuRoom.js';

/**
 * Producers published on other nodes of a room (the cluster's cascade serves this): asked for
 * when a subscriber here consumes a producer this node does not have, told of each consumer
 * of one (it keeps the producer here only while somebody consumes it).
 */
export interface RemoteProducers {
  /** Brings the producer here (into `sfuRoom.producers`); false if no node of the room has it. */
  fetch(room: Room, sfuRoom: SfuRoom, producerId: string): Promise<boolean>;
  consumed(room: Room, producerId: string, consumer: types.Consumer): void;
  /** Brings a data producer here (into `sfuRoom.remoteData`); false if no node of the room has it. */
  fetchData(room: Room, sfuRoom: SfuRoom, dataProducerId: string): Promise<boolean>;
  dataConsumed(room: Room, dataProducerId: string, dataConsumer: types.DataConsumer): void;
}

export const NO_REMOTE_PRODUCERS: RemoteProducers = {
  fetch: async () => false,
  consumed: () => undefined,
  fetchData: async () => false,
  dataConsumed: () => undefined,
};
