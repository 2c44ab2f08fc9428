import type { Claims } from '../auth/token.js';
import { TwirpError, type TwirpCode, type TwirpMethod } from '../api/twirp.js';
import { NodeCallError, type NodeClient, type NodeHandlers } from './nodeChannel.js';
import type { ClusterMethods } from './nodeMethods.js';

const TWIRP_CODES = new Set<string>(['invalid_argument', 'malformed', 'unauthenticated', 'permission_denied', 'not_found', 'bad_route', 'internal', 'unavailable', 'already_exists']);

/**
 * RoomService calls forwarded to the node holding a participant or room (NodeChannel). The
 * target runs its own local handler with the caller's (already verified) claims, so the
 * answer and errors are what that node would give.
 */
export class ClusterCommands {
  constructor(private readonly client: NodeClient<ClusterMethods>) {}

  /** Runs `method` on `node`; rejects with the node's TwirpError, or unavailable. */
  async call(node: string, method: string, req: { toBinary(): Uint8Array }, claims: Claims): Promise<Uint8Array> {
    try {
      const r = await this.client.call(node, 'roomService', { method, claims, body: Buffer.from(req.toBinary()).toString('base64') });
      return Buffer.from(r.body, 'base64');
    } catch (err) {
      if (err instanceof NodeCallError) throw new TwirpError((TWIRP_CODES.has(err.code) ? err.code : 'internal') as TwirpCode, err.message);
      throw err;
    }
  }
}

/** The answering side: this node's own (local) RoomService methods. */
export function roomServiceHandler(local: Record<string, TwirpMethod>): NodeHandlers<ClusterMethods>['roomService'] {
  return async ({ method, claims, body }) => {
    const m = Object.hasOwn(local, method) ? local[method] : undefined;
    if (!m) throw new TwirpError('bad_route', `no such method ${method}`);
    const res = await m.handle(m.req.fromBinary(Buffer.from(body, 'base64')), claims);
    return { body: Buffer.from(res.toBinary()).toString('base64') };
  };
}
