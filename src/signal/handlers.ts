import type { Participant } from '../rooms/participant.js';
import type { Room } from '../rooms/room.js';
import type { RequestKind, ResponseFor, ValidBody } from './rpc.js';

/** Who sent a request, as the domain knows them. */
export interface RequestContext {
  readonly room: Room;
  readonly participant: Participant;
  /** Runs once the response has been sent (a Leave closes the connection after its answer). */
  afterResponse(fn: () => void): void;
}

/** Serves one request kind: a call onto the domain; throws SignalError to refuse. */
export type Handler<K extends RequestKind> = (ctx: RequestContext, body: ValidBody<K>) => ResponseFor<K> | Promise<ResponseFor<K>>;

/**
 * Every request kind's handler, built where the node is composed (src/node/handlers.ts). A
 * mapped type over RequestKind: a kind without a handler does not compile.
 */
export type HandlerTable = { readonly [K in RequestKind]: Handler<K> };

/** Looks the kind's handler up and calls it (K correlates the table entry with the body). */
export function dispatch<K extends RequestKind>(
  table: HandlerTable,
  kind: K,
  ctx: RequestContext,
  body: ValidBody<K>,
): ResponseFor<K> | Promise<ResponseFor<K>> {
  const handler: Handler<K> = table[kind];
  return handler(ctx, body);
}
