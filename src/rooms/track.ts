/** A published media track as the room domain knows it (the SFU's producer, by its id). */
export interface Track {
  readonly producerId: string;
  readonly kind: string;
  readonly source: string;
  readonly mimeType: string;
  /** Paused by its publisher or muted by an admin (LiveKit's `muted`). */
  paused: boolean;
}

export const NO_TRACKS: ReadonlyMap<string, Track> = new Map();
