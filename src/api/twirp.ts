import type { Message, MessageType } from '@bufbuild/protobuf';
import type { Logger } from 'pino';
import type uWS from 'uWebSockets.js';
import { TokenError, type Claims, type TokenVerifier } from '../auth/token.js';
import type { Metrics } from '../obs/metrics.js';
import { BodyTooLarge, readBody } from './body.js';
import { STATUS_TEXT } from './http.js';

export type TwirpCode =
  | 'invalid_argument'
  | 'malformed'
  | 'unauthenticated'
  | 'permission_denied'
  | 'not_found'
  | 'bad_route'
  | 'internal'
  | 'already_exists';

const HTTP_STATUS: Record<TwirpCode, number> = {
  invalid_argument: 400,
  malformed: 400,
  unauthenticated: 401,
  permission_denied: 403,
  not_found: 404,
  bad_route: 404,
  already_exists: 409,
  internal: 500,
};

/** An error in Twirp's wire form: HTTP status by code, body {"code","msg"}. */
export class TwirpError extends Error {
  constructor(readonly code: TwirpCode, msg: string) {
    super(msg);
    this.name = 'TwirpError';
  }
}

// Methods hold LiveKit's message classes; `any` here is the type-erased registry of them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyMessage = Message<any>;

export interface TwirpMethod<Req extends AnyMessage = AnyMessage, Res extends AnyMessage = AnyMessage> {
  req: MessageType<Req>;
  res: MessageType<Res>;
  handle(req: Req, claims: Claims): Res | Promise<Res>;
}

export const twirpMethod = <Req extends AnyMessage, Res extends AnyMessage>(m: TwirpMethod<Req, Res>): TwirpMethod =>
  m as unknown as TwirpMethod;

/**
 * Serves a Twirp service at /twirp/<package>.<Service>/<Method>: POST with JSON
 * (application/json, proto3 JSON mapping) or protobuf (application/protobuf) bodies,
 * Bearer JWT auth, answers in the request's encoding, errors in Twirp's JSON form.
 */
export function registerTwirp(
  app: uWS.TemplatedApp,
  service: string,
  methods: Record<string, TwirpMethod>,
  deps: { verifier: TokenVerifier; metrics: Metrics; log: Logger; maxBodyBytes: number },
): void {
  app.any(`/twirp/${service}/*`, (res, req) => {
    const method = req.getUrl().slice(`/twirp/${service}/`.length);
    const verb = req.getMethod().toUpperCase();
    const contentType = req.getHeader('content-type').toLowerCase();
    const auth = req.getHeader('authorization');
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    const reply = (status: number, type: string, body: string | Uint8Array): void => {
      if (aborted) return;
      res.cork(() => res.writeStatus(STATUS_TEXT[status] ?? `${status} Status`).writeHeader('content-type', type).end(body));
    };
    const fail = (err: TwirpError): void => {
      deps.metrics.errors.inc({ code: `twirp_${err.code}` });
      reply(HTTP_STATUS[err.code], 'application/json', JSON.stringify({ code: err.code, msg: err.message }));
    };
    // Own properties only: /twirp/.../toString must be a bad route, not Object.prototype's.
    const m = Object.hasOwn(methods, method) ? methods[method] : undefined;
    if (verb !== 'POST' || !m) {
      fail(new TwirpError('bad_route', `no such method: ${verb} ${service}/${method}`));
      return;
    }
    const binary = contentType.startsWith('application/protobuf');
    if (!binary && !contentType.startsWith('application/json')) {
      fail(new TwirpError('bad_route', `unexpected Content-Type ${JSON.stringify(contentType)}`));
      return;
    }
    readBody(res, deps.maxBodyBytes)
      .then(async (body) => {
        let claims: Claims;
        try {
          claims = deps.verifier.verify(auth.startsWith('Bearer ') ? auth.slice(7) : undefined);
        } catch (err) {
          throw new TwirpError('unauthenticated', err instanceof TokenError ? `${err.code}: ${err.message}` : 'invalid token');
        }
        let request: AnyMessage;
        try {
          request = binary
            ? m.req.fromBinary(body)
            : m.req.fromJson(JSON.parse(body.length ? body.toString('utf8') : '{}'), { ignoreUnknownFields: true });
        } catch (err) {
          throw new TwirpError('malformed', `could not decode ${m.req.typeName}: ${(err as Error).message}`);
        }
        const result = await m.handle(request, claims);
        if (binary) reply(200, 'application/protobuf', result.toBinary());
        else reply(200, 'application/json', JSON.stringify(result.toJson({ emitDefaultValues: false })));
      })
      .catch((err: unknown) => {
        if (err instanceof TwirpError) return fail(err);
        if (err instanceof BodyTooLarge) return fail(new TwirpError('invalid_argument', err.message));
        deps.log.error({ err, method }, 'twirp handler failed');
        fail(new TwirpError('internal', 'internal error'));
      });
  });
}
