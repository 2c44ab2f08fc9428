import type { VideoGrant } from '../auth/token.js';
import type { ParticipantInfo, ParticipantPermission } from '../signal/messages.js';
import type { Connection } from './ports.js';
import { NO_TRACKS, type Track } from './track.js';

// Most participants carry one of a handful of grant sets: share one frozen object per set
// instead of one per participant (it is replaced, never mutated, on permission updates).
const interned = new Map<string, Readonly<ParticipantPermission>>();

export function permissionFromGrant(v: VideoGrant): ParticipantPermission {
  const p = buildPermission(v);
  // A key from the fields themselves (a JSON.stringify per join showed in the profile).
  const key = `${+p.canPublish}${+p.canSubscribe}${+p.canPublishData}${+p.canUpdateMetadata}${+p.hidden}${p.canPublishSources.join(',')}`;
  let shared = interned.get(key);
  if (!shared) {
    shared = Object.freeze({ ...p, canPublishSources: Object.freeze([...p.canPublishSources]) as string[] });
    if (interned.size < 1024) interned.set(key, shared);
  }
  return shared as ParticipantPermission;
}

/** Permissions are shared and kept in frozen infos: a caller's own object is copied and frozen. */
function frozenPermission(p: ParticipantPermission): ParticipantPermission {
  if (Object.isFrozen(p) && Object.isFrozen(p.canPublishSources)) return p;
  return Object.freeze({ ...p, canPublishSources: Object.freeze([...p.canPublishSources]) as string[] });
}

function buildPermission(v: VideoGrant): ParticipantPermission {
  return {
    // LiveKit's defaults: publish/subscribe/data allowed unless the grant says false.
    canPublish: v.canPublish ?? true,
    canSubscribe: v.canSubscribe ?? true,
    canPublishData: v.canPublishData ?? true,
    canUpdateMetadata: v.canUpdateOwnMetadata ?? false,
    hidden: v.hidden ?? false,
    canPublishSources: v.canPublishSources ?? [],
  };
}

export type ParticipantState = 'active' | 'disconnected';

/**
 * One per participant and alive for the whole session (connections come and go on resume),
 * so its fields are kept few: at 50k idle participants every word costs 400 KB.
 */
export class Participant {
  conn: Connection | null;
  /** Last RTT the client reported in a Ping, ms. */
  rttMs = 0;
  /** The client can take direct (P2P) routes: it connected with p2p=1. */
  p2p = false;
  /** The session came from another node (a drain's move): the room already knew it. */
  movedIn = false;
  /** RTT (ms) the client measured to mesh nodes, by node id (absent until it reports). */
  nodeRtts: Map<string, number> | undefined;

  setNodeRtt(nodeId: string, rttMs: number): void {
    (this.nodeRtts ??= new Map()).set(nodeId, rttMs);
    if (this.nodeRtts.size > 32) this.nodeRtts.delete(this.nodeRtts.keys().next().value!);
  }
  resumeTimer: NodeJS.Timeout | undefined;
  /** Published tracks by producer id; made on the first publish (most participants never do). */
  private published: Map<string, Track> | undefined;

  get tracks(): ReadonlyMap<string, Track> {
    return this.published ?? NO_TRACKS;
  }

  addTrack(t: Track): void {
    (this.published ??= new Map()).set(t.producerId, t);
  }

  removeTrack(producerId: string): Track | undefined {
    const t = this.published?.get(producerId);
    this.published?.delete(producerId);
    return t;
  }

  /**
   * The public info, made on first use and kept until name, metadata or permission change:
   * frozen, so the signal layer can keep its encoding with it (a join lists every other
   * participant: without this each one was encoded again for each newcomer).
   */
  private infoMemo: ParticipantInfo | undefined;
  private _name: string;
  private _metadata: string;
  private _permission: ParticipantPermission;

  constructor(
    readonly sid: string,
    readonly identity: string,
    name: string,
    metadata: string,
    permission: ParticipantPermission,
    readonly roomAdmin: boolean,
    conn: Connection,
    readonly joinedAt = Date.now(),
  ) {
    this.conn = conn;
    this._name = name;
    this._metadata = metadata;
    this._permission = frozenPermission(permission);
  }

  get name(): string {
    return this._name;
  }
  set name(v: string) {
    this._name = v;
    this.infoMemo = undefined;
  }
  get metadata(): string {
    return this._metadata;
  }
  set metadata(v: string) {
    this._metadata = v;
    this.infoMemo = undefined;
  }
  get permission(): ParticipantPermission {
    return this._permission;
  }
  set permission(v: ParticipantPermission) {
    this._permission = frozenPermission(v);
    this.infoMemo = undefined;
  }

  /** Connected, or waiting (within the resume window) for the client to resume. */
  get state(): ParticipantState {
    return this.conn ? 'active' : 'disconnected';
  }

  get hidden(): boolean {
    return this.permission.hidden;
  }

  info(): ParticipantInfo {
    return (this.infoMemo ??= Object.freeze({
      sid: this.sid,
      identity: this.identity,
      name: this._name,
      metadata: this._metadata,
      joinedAt: this.joinedAt,
      permission: this._permission,
    }));
  }

  clearResumeTimer(): void {
    if (this.resumeTimer) clearTimeout(this.resumeTimer);
    this.resumeTimer = undefined;
  }
}
