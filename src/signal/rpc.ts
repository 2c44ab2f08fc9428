import type { z } from 'zod';
import type { Response } from './messages.js';
import type { requestBodies, RequestKind } from './schema.js';

export type { RequestKind };

// The request → response map shared by the server's handlers and the client's request():
// each request kind is answered in exactly one Response field. The `satisfies` below makes
// the compiler refuse a kind without one. (Type-only imports: the browser bundle gets no zod.)

/** What a client sends (JSON-able wire shape: bytes may be base64 text, JSON fields strings). */
export type RequestBody<K extends RequestKind> = z.input<(typeof requestBodies)[K]>;
/** What a handler receives, after schema.ts has validated and parsed it. */
export type ValidBody<K extends RequestKind> = z.output<(typeof requestBodies)[K]>;

type ResponseField = Exclude<keyof Response, 'requestId' | 'error'>;

export const RESPONSE_FIELD = {
  ping: 'pong',
  sendData: 'ok',
  updateParticipant: 'ok',
  updateRoomMetadata: 'ok',
  relay: 'ok',
  leave: 'ok',
  listParticipants: 'participants',
  getRouterCapabilities: 'json',
  createTransport: 'transport',
  connectTransport: 'ok',
  produce: 'id',
  closeProducer: 'ok',
  pauseProducer: 'ok',
  resumeProducer: 'ok',
  consume: 'consumer',
  resumeConsumer: 'ok',
  pauseConsumer: 'ok',
  closeConsumer: 'ok',
  setPreferredLayers: 'ok',
  setPriority: 'ok',
  trackSettings: 'ok',
  restartIce: 'json',
  getStats: 'json',
  produceData: 'id',
  consumeData: 'dataConsumer',
  linkReport: 'ok',
  routeReport: 'ok',
} as const satisfies { readonly [K in RequestKind]: ResponseField };

/** The answer to a request of kind K: its one Response field, present. */
export type ResponseFor<K extends RequestKind> = {
  [F in (typeof RESPONSE_FIELD)[K]]-?: NonNullable<Response[F]>;
};

export const OK: { ok: Record<string, never> } = Object.freeze({ ok: {} });

/** A request whose single body field names kind K (the client's request() argument). */
export type RequestOf<K extends RequestKind> = { [P in K]: RequestBody<P> };

/** Whether a Response carries the field kind K is answered in (a server honouring the map). */
export function answers<K extends RequestKind>(kind: K, r: Response): r is Response & ResponseFor<K> {
  return r[RESPONSE_FIELD[kind]] !== undefined;
}
