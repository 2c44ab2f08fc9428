import type { ParticipantInfo } from '../signal/messages.js';
import type { DirEntry } from './directory.js';

/** A participant another node holds, as a room's roster keeps it (`Room.remote`). */
export interface RemoteEntry {
  node: string;
  info: ParticipantInfo;
}

/** What this node's participants must be told after the roster was brought in line. */
export interface RosterChange {
  joined: ParticipantInfo[];
  left: { identity: string; sid: string }[];
}

/** identity -> sid of the roster when a directory read was issued. */
export type RosterMark = Map<string, string>;

export const markRoster = (remote: ReadonlyMap<string, RemoteEntry>): RosterMark => new Map([...remote].map(([id, e]) => [id, e.info.sid]));

/**
 * Brings a room's roster of other nodes' participants in line with a directory snapshot.
 * The snapshot and the room's events travel on different Redis connections, so either may
 * be newer: an entry the events changed after the read was issued (it differs from `mark`)
 * is newer than the snapshot and kept; a session in `gone` (left while the read was in
 * flight) is never brought back. `removeMissing` is off right after an outage, when other
 * nodes may not have put their participants back yet: dropping them then would tell
 * clients they left and rejoined (a flap); a later pass, a lease on, removes for real.
 * Hidden participants change the roster but are never announced.
 */
export function reconcile(
  remote: Map<string, RemoteEntry>,
  snapshot: ReadonlyMap<string, DirEntry>,
  self: string,
  mark: RosterMark,
  gone: ReadonlySet<string>,
  removeMissing: boolean,
): RosterChange {
  const out: RosterChange = { joined: [], left: [] };
  const unchanged = (identity: string, cur: RemoteEntry | undefined): boolean => mark.get(identity) === cur?.info.sid;
  const drop = (identity: string, cur: RemoteEntry): void => {
    remote.delete(identity);
    if (!cur.info.permission.hidden) out.left.push({ identity, sid: cur.info.sid });
  };
  for (const [identity, e] of snapshot) {
    if (e.node === self || gone.has(e.sid)) continue;
    const cur = remote.get(identity);
    if (cur?.info.sid === e.sid) {
      if (unchanged(identity, cur)) remote.set(identity, { node: e.node, info: e.info });
      continue;
    }
    if (!unchanged(identity, cur)) continue; // an event since the read is newer
    if (cur) drop(identity, cur); // replaced by a session the events did not carry
    remote.set(identity, { node: e.node, info: e.info });
    if (!e.info.permission.hidden) out.joined.push(e.info);
  }
  if (removeMissing) {
    for (const [identity, cur] of [...remote]) {
      const s = snapshot.get(identity);
      if (s?.sid === cur.info.sid || !unchanged(identity, cur)) continue;
      // Moved to this node: its local join was announced already, so the old one goes quietly.
      if (s?.node === self) remote.delete(identity);
      else drop(identity, cur);
    }
  }
  return out;
}
