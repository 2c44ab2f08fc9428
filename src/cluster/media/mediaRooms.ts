import type { Logger } from '../../obs/logger.js';
import type { SfuRoomOptions } from '../../sfu/sfuRoom.js';
import { SfuRoom } from '../../sfu/sfuRoom.js';
import type { SfuService } from '../../sfu/sfuService.js';
import type { WorkerPool } from '../../sfu/workerPool.js';
import { NodeCallError } from '../nodeChannel.js';

/** Where the pipe router finds (or makes) a room's router and its producers. */
export interface MediaRooms {
  get(room: string): SfuRoom | undefined;
  /** Another node asks for a link: an edge serves the rooms it has media for; a relay makes a router. */
  forLink(room: string): Promise<SfuRoom>;
  /** No link of the room is left here: a relay closes the router it made. */
  unused(room: string): void;
}

/** An edge: the SFU's own rooms (made by its participants' media requests). */
export function edgeRooms(sfu: SfuService): MediaRooms {
  return {
    get: (room) => sfu.rooms.get(room),
    forLink: async (room) => {
      const r = sfu.rooms.get(room);
      if (!r || r.closed) throw new NodeCallError('not_found', `no media for room ${JSON.stringify(room)} here`);
      return r;
    },
    unused: () => undefined,
  };
}

/**
 * A relay (`--role relay`): per room, a router of its own with nothing but pipe transports;
 * made for the first link, closed with the last.
 */
export class RelayRooms implements MediaRooms {
  readonly rooms = new Map<string, SfuRoom>();
  private readonly making = new Map<string, Promise<SfuRoom>>();

  constructor(
    private readonly pool: WorkerPool,
    private readonly opts: SfuRoomOptions,
    private readonly log: Logger,
  ) {}

  get(room: string): SfuRoom | undefined {
    return this.rooms.get(room);
  }

  async forLink(room: string): Promise<SfuRoom> {
    const have = this.rooms.get(room);
    if (have) return have;
    let p = this.making.get(room);
    if (!p) {
      p = SfuRoom.create(room, '', this.pool, this.opts, { activeSpeaker: () => undefined, audioLevels: () => undefined }, this.log).then((r) => {
        this.rooms.set(room, r);
        return r;
      });
      p.finally(() => this.making.delete(room)).catch(() => undefined);
      this.making.set(room, p);
    }
    return p;
  }

  unused(room: string): void {
    const r = this.rooms.get(room);
    if (!r) return;
    this.rooms.delete(room);
    r.close();
  }

  close(): void {
    for (const r of this.rooms.values()) r.close();
    this.rooms.clear();
  }
}
