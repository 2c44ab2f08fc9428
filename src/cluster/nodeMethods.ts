import type { Claims } from '../auth/token.js';
import type { MediaMethods } from './media/mediaMethods.js';

/** Every call one node makes on another (NodeChannel), and its answer. */
export type ClusterMethods = {
  /** A RoomService method run where the participant or room is (commands.ts). */
  roomService: { req: { method: string; claims: Claims; body: string }; res: { body: string } };
} & MediaMethods;
