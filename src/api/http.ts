import type uWS from 'uWebSockets.js';
import { readBody } from './body.js';

const EMPTY_BODY = Promise.resolve(Buffer.alloc(0));

export const STATUS_TEXT: Record<number, string> = {
  200: '200 OK',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  403: '403 Forbidden',
  404: '404 Not Found',
  413: '413 Payload Too Large',
  421: '421 Misdirected Request',
  429: '429 Too Many Requests',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

export interface RouteRequest {
  url: string;
  query: string;
  headers: Record<string, string>;
  params: string[];
  /** The request body, when the route reads one (maxBodyBytes); rejects with BodyTooLarge. */
  body: Promise<Buffer>;
}

/**
 * Runs an async handler safely: onAborted registered first, the body (if asked for, up to
 * `maxBodyBytes`) collected from the start as uWS requires, the reply corked, errors 500.
 */
export function asyncRoute(
  handler: (req: RouteRequest) => Promise<Reply>,
  paramCount = 0,
  opts: { maxBodyBytes?: number } = {},
): (res: uWS.HttpResponse, req: uWS.HttpRequest) => void {
  return (res, req) => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    const headers: Record<string, string> = {};
    req.forEach((k, v) => {
      headers[k] = v;
    });
    const params = Array.from({ length: paramCount }, (_, i) => req.getParameter(i) ?? '');
    const body = opts.maxBodyBytes ? readBody(res, opts.maxBodyBytes) : EMPTY_BODY;
    body.catch(() => undefined); // a handler that never awaits it must not leave a rejection
    const info = { url: req.getUrl(), query: req.getQuery() ?? '', headers, params, body };
    handler(info)
      .catch((err: unknown): Reply => ({ status: 500, body: { code: 'INTERNAL', message: String(err) } }))
      .then((reply) => {
        if (!aborted) res.cork(() => send(res, reply));
      });
  };
}

export interface Reply {
  status: number;
  body: unknown;
  contentType?: string;
}

export function send(res: uWS.HttpResponse, reply: Reply): void {
  const text = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
  res
    .writeStatus(STATUS_TEXT[reply.status] ?? `${reply.status} Status`)
    .writeHeader('content-type', reply.contentType ?? 'application/json')
    .end(text);
}

/**
 * A HEAD request's response: the status and headers GET would send, Content-Length included,
 * and no body (RFC 9110 §9.3.2).
 */
function headResponse(res: uWS.HttpResponse): uWS.HttpResponse {
  const size = (b: unknown): number => (typeof b === 'string' ? Buffer.byteLength(b) : b ? (b as ArrayBuffer).byteLength : 0);
  let written = 0;
  const proxy: uWS.HttpResponse = new Proxy(res, {
    get(target, prop) {
      // endWithoutBody(length) aborts the process in this uWS build: write the header ourselves.
      const finish = (length: number): void => {
        target.writeHeader('content-length', String(length)).endWithoutBody();
      };
      if (prop === 'end') return (body?: uWS.RecognizedString) => (finish(written + size(body)), proxy);
      if (prop === 'tryEnd') return (_body: uWS.RecognizedString, total: number) => (finish(total), [true, true]);
      if (prop === 'write') return (chunk: uWS.RecognizedString) => ((written += size(chunk)), true);
      const v = Reflect.get(target, prop) as unknown;
      if (typeof v !== 'function') return v;
      // Chained calls (res.writeStatus(...).end(...)) must come back to the proxy.
      return (...args: unknown[]) => {
        const r = (v as (...a: unknown[]) => unknown).apply(target, args);
        return r === target ? proxy : r;
      };
    },
  });
  return proxy;
}

/**
 * uWS serves HEAD only on routes registered with app.head. This app registers every GET route
 * for HEAD too, and gives HEAD requests on `any` routes (the 404 fallback, Twirp) the same
 * bodiless response, so every route answers HEAD like GET in one place.
 */
export function withHead(app: uWS.TemplatedApp): uWS.TemplatedApp {
  type Handler = (res: uWS.HttpResponse, req: uWS.HttpRequest) => void | Promise<void>;
  const headed = (h: Handler): Handler => (res, req) => h(req.getMethod() === 'head' ? headResponse(res) : res, req);
  const proxy: uWS.TemplatedApp = new Proxy(app, {
    get(target, prop) {
      if (prop === 'get') {
        return (pattern: uWS.RecognizedString, h: Handler) => {
          target.get(pattern, h);
          target.head(pattern, (res, req) => h(headResponse(res), req));
          return proxy;
        };
      }
      if (prop === 'any') return (pattern: uWS.RecognizedString, h: Handler) => (target.any(pattern, headed(h)), proxy);
      const v = Reflect.get(target, prop) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        const r = (v as (...a: unknown[]) => unknown).apply(target, args);
        return r === target ? proxy : r;
      };
    },
  });
  return proxy;
}
