import type { Message, MessageType } from '@bufbuild/protobuf';
import type { Logger } from 'pino';
import type uWS from 'uWebSockets.js';
import { TokenError, type Claims, type TokenVerifier } from '../auth/token.js';
import type { Metrics } from '../obs/metrics.js';
import { BodyTooLarge, ByteBudget, readBody } from './body.js';
import { STATUS_TEXT } from './http.js';
import { findUnstorableText } from './protoText.js';

export type TwirpCode =
  | 'invalid_argument'
  | 'malformed'
  | 'unauthenticated'
  | 'permission_denied'
  | 'not_found'
  | 'bad_route'
  | 'internal'
  | 'unavailable'
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
  unavailable: 503,
};

/**
 * The request encoding from an exact Content-Type: `application/protobuf`, or
 * `application/json` with at most `charset=utf-8` (livekit-server-sdk sends
 * "application/json;charset=UTF-8"). Anything else (application/jsonx, charset=utf-16) is
 * undefined.
 */
export function twirpEncoding(contentType: string): 'json' | 'protobuf' | undefined {
  const [type, ...params] = contentType.split(';').map((p) => p.trim().toLowerCase());
  if (type === 'application/protobuf') return params.length === 0 ? 'protobuf' : undefined;
  if (type !== 'application/json') return undefined;
  if (params.length === 0) return 'json';
  return params.length === 1 && /^charset\s*=\s*"?utf-8"?$/.test(params[0]!) ? 'json' : undefined;
}

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

// charset=utf-8 is what the Content-Type promised: invalid bytes are malformed, not U+FFFD.
const utf8 = new TextDecoder('utf-8', { fatal: true });

export interface TwirpDeps {
  verifier: TokenVerifier;
  metrics: Metrics;
  log: Logger;
  /** Most body bytes per method (twirpLimits.ts); `defaultBodyBytes` for others. */
  bodyLimits: Record<string, number>;
  defaultBodyBytes: number;
  /** Most body bytes all requests in progress may hold at once. */
  maxInflightBytes: number;
}

/**
 * Serves a Twirp service at /twirp/<package>.<Service>/<Method>: POST with JSON
 * (application/json, proto3 JSON mapping) or protobuf (application/protobuf) bodies,
 * Bearer JWT auth, answers in the request's encoding, errors in Twirp's JSON form.
 *
 * Nothing of a body is read before the route, the exact Content-Type and the token are
 * checked, and then only up to the method's limit and while the in-flight budget lasts:
 * over it the answer is 503 `unavailable` with Retry-After (the server is busy, not this
 * caller over a quota of its own, which 429 would say). Decoded requests whose text cannot
 * be stored are `invalid_argument` naming the field, before any handler runs.
 */
export function registerTwirp(
  app: uWS.TemplatedApp,
  service: string,
  methods: Record<string, TwirpMethod>,
  deps: TwirpDeps,
): void {
  const budget = new ByteBudget(deps.maxInflightBytes);
  app.any(`/twirp/${service}/*`, (res, req) => {
    const method = req.getUrl().slice(`/twirp/${service}/`.length);
    const verb = req.getMethod().toUpperCase();
    const contentType = req.getHeader('content-type').toLowerCase();
    const auth = req.getHeader('authorization');
    const declared = req.getHeader('content-length');
    let aborted = false;
    let release = (): void => undefined;
    res.onAborted(() => {
      aborted = true;
      release();
    });
    const reply = (status: number, type: string, body: string | Uint8Array, headers: Record<string, string> = {}): void => {
      release();
      if (aborted) return;
      aborted = true; // answered: a second reply would write to a finished response
      res.cork(() => {
        res.writeStatus(STATUS_TEXT[status] ?? `${status} Status`).writeHeader('content-type', type);
        for (const [k, v] of Object.entries(headers)) res.writeHeader(k, v);
        res.end(body);
      });
    };
    const fail = (err: TwirpError, headers?: Record<string, string>): void => {
      deps.metrics.errors.inc({ code: `twirp_${err.code}` });
      reply(HTTP_STATUS[err.code], 'application/json', JSON.stringify({ code: err.code, msg: err.message }), headers);
    };
    // Own properties only: /twirp/.../toString must be a bad route, not Object.prototype's.
    const m = Object.hasOwn(methods, method) ? methods[method] : undefined;
    if (verb !== 'POST' || !m) {
      fail(new TwirpError('bad_route', `no such method: ${verb} ${service}/${method}`));
      return;
    }
    const encoding = twirpEncoding(contentType);
    if (!encoding) {
      fail(new TwirpError('bad_route', `unexpected Content-Type ${JSON.stringify(contentType)}: use application/json or application/protobuf`));
      return;
    }
    const binary = encoding === 'protobuf';
    let claims: Claims;
    try {
      claims = deps.verifier.verify(auth.startsWith('Bearer ') ? auth.slice(7) : undefined);
    } catch (err) {
      fail(new TwirpError('unauthenticated', err instanceof TokenError ? `${err.code}: ${err.message}` : 'invalid token'));
      return;
    }
    const limit = Object.hasOwn(deps.bodyLimits, method) ? deps.bodyLimits[method]! : deps.defaultBodyBytes;
    const length = declared === '' ? undefined : Number(declared);
    if (length !== undefined && !(Number.isSafeInteger(length) && length >= 0)) {
      fail(new TwirpError('malformed', 'bad Content-Length'));
      return;
    }
    if (length !== undefined && length > limit) {
      fail(new TwirpError('invalid_argument', `body of ${length} bytes is over ${method}'s limit of ${limit}`));
      return;
    }
    const reserved = budget.reserve(length ?? limit);
    if (!reserved) {
      fail(new TwirpError('unavailable', 'too many request bodies in flight: retry shortly'), { 'retry-after': '1' });
      return;
    }
    release = reserved;
    readBody(res, limit)
      .then(async (body) => {
        let request: AnyMessage;
        try {
          request = binary
            ? m.req.fromBinary(body)
            : m.req.fromJson(JSON.parse(body.length ? utf8.decode(body) : '{}'), { ignoreUnknownFields: true });
        } catch (err) {
          throw new TwirpError('malformed', `could not decode ${m.req.typeName}: ${(err as Error).message}`);
        }
        const bad = findUnstorableText(request);
        if (bad) throw new TwirpError('invalid_argument', `${bad.field}: ${bad.reason}`);
        const result = await m.handle(request, claims);
        if (binary) reply(200, 'application/protobuf', result.toBinary());
        else reply(200, 'application/json', JSON.stringify(result.toJson({ emitDefaultValues: false })));
      })
      .catch((err: unknown) => {
        if (err instanceof TwirpError) return fail(err);
        if (err instanceof BodyTooLarge) return fail(new TwirpError('invalid_argument', `${method}: ${err.message}`));
        deps.log.error({ err, method }, 'twirp handler failed');
        fail(new TwirpError('internal', 'internal error'));
      });
  });
}
