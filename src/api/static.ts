import { readFileSync } from 'node:fs';
import type uWS from 'uWebSockets.js';
import { createToken } from '../auth/token.js';
import { send } from './http.js';

const PUBLIC = new URL('../../public/', import.meta.url);

function load(name: string): Buffer | null {
  try {
    return readFileSync(new URL(name, PUBLIC));
  } catch {
    return null;
  }
}

/** The demo page at "/" (bundled by `npm run build`), and in --dev mode a token endpoint for it. */
export function registerStatic(app: uWS.TemplatedApp, dev: { key: string; secret: string; now: () => number } | null): void {
  const files: [string, string, string][] = [
    ['/', 'index.html', 'text/html; charset=utf-8'],
    ['/demo.js', 'demo.js', 'text/javascript; charset=utf-8'],
    ['/demo.js.map', 'demo.js.map', 'application/json'],
  ];
  for (const [route, file, type] of files) {
    const body = load(file);
    app.get(route, (res) => {
      if (!body) return send(res, { status: 404, body: { code: 'NOT_FOUND', message: `${file} not built: run npm run build` } });
      res.writeHeader('content-type', type).end(body);
    });
  }
  if (!dev) return;
  // Development only: anyone who can reach the server can join any room.
  app.get('/dev/token', (res, req) => {
    const q = new URLSearchParams(req.getQuery() ?? '');
    const room = q.get('room');
    const identity = q.get('identity');
    if (!room || !identity) return send(res, { status: 400, body: { code: 'INVALID_FIELD', message: 'room and identity are required' } });
    const token = createToken(dev.key, dev.secret, { identity, name: identity, video: { roomJoin: true, room }, nowMs: dev.now() });
    send(res, { status: 200, body: { token } });
  });
}
