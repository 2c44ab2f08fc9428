import type uWS from 'uWebSockets.js';
import { z } from 'zod';
import { TokenError, type TokenVerifier } from '../auth/token.js';
import type { MeshService } from '../mesh/meshService.js';
import { TIERS } from '../mesh/planner.js';
import { INITIAL_TRUST, trustLevel } from '../mesh/trust.js';
import { BodyTooLarge } from './body.js';
import { asyncRoute, type Reply } from './http.js';

const MAX_BODY = 256 * 1024;
const id = z.string().min(1).max(128).regex(/^[\w.:-]+$/, 'letters, digits and . _ : - only');
const ms = z.number().finite().nonnegative();
const endpoint = z.strictObject({
  identity: z.string().min(1).max(256),
  region: z.string().max(64).optional(),
  rtts: z.record(id, ms).optional(),
  nat: z.enum(['open', 'cone', 'symmetric', 'unknown']).optional(),
});
const metrics = z.strictObject({
  latencyMs: ms,
  lossPct: z.number().min(0).max(100),
  jitterMs: ms,
  hops: z.number().int().nonnegative(),
  maxLoad: z.number().nonnegative(),
});
const schemas = {
  register: z.strictObject({
    id,
    role: z.enum(['edge', 'relay']),
    region: z.string().min(1).max(64),
    addresses: z.strictObject({ http: z.url().optional(), turn: z.array(z.string().regex(/^turns?:/)).max(8).optional() }),
    capacity: z.number().int().positive(),
    load: z.number().nonnegative().default(0),
    version: z.string().max(64).default(''),
  }),
  heartbeat: z.strictObject({ load: z.number().nonnegative() }),
  query: z.strictObject({
    from: endpoint,
    to: endpoint.optional(),
    participants: z.number().int().min(1).max(100_000),
    edgeId: id.optional(),
    policy: z.enum(['auto', 'sfu', 'p2p', 'quality']).optional(),
  }),
  feedback: z.strictObject({
    tier: z.enum(TIERS),
    path: z.array(id).max(16),
    metrics,
    observedQuality: z.number().min(0).max(100),
    connected: z.boolean(),
  }),
  links: z.strictObject({
    links: z
      .array(
        z.strictObject({
          from: z.string().min(1).max(300),
          to: id,
          latencyMs: ms,
          lossPct: z.number().min(0).max(100),
          jitterMs: ms,
          bandwidthKbps: ms.default(0),
        }),
      )
      .min(1)
      .max(1000),
  }),
};

/**
 * The internal mesh API (the seeds' endpoints), for relay nodes and tools that are not on the
 * cluster's Redis. Authenticated with a JWT from a configured API key carrying `mesh: true`
 * (`auralink token create --mesh`). GET /internal/mesh/probe is open: it is what peers time.
 */
/** A producer carried to this node over other nodes (the cascade): the path it takes, origin first. */
export interface MediaRoute {
  room: string;
  producerId: string;
  path: string[];
}

export function registerMeshApi(app: uWS.TemplatedApp, mesh: MeshService, verifier: TokenVerifier, nodeId: string, mediaRoutes: () => MediaRoute[]): void {
  // Browsers measure it too (from another node's page): allow any origin, it says nothing.
  const probeBody = JSON.stringify({ node: nodeId });
  app.get('/internal/mesh/probe', (res) => {
    res.cork(() => {
      res.writeHeader('content-type', 'application/json').writeHeader('access-control-allow-origin', '*').writeHeader('cache-control', 'no-store').end(probeBody);
    });
  });

  route(app, 'post', '/internal/mesh/register_node', 0, schemas.register, async (b) => {
    await mesh.registry.register({ ...b, trust: INITIAL_TRUST, registeredAt: Date.now(), lastSeen: Date.now() });
    const n = await mesh.registry.get(b.id);
    return { status: 200, body: { id: b.id, trust: n?.trust ?? INITIAL_TRUST, heartbeat_ms: mesh.heartbeatMs, ttl_ms: mesh.heartbeatMs * 3 } };
  });
  route(app, 'post', '/internal/mesh/nodes/:id/heartbeat', 1, schemas.heartbeat, async (b, [nodeId]) => {
    if (!(await mesh.registry.heartbeat(nodeId!, b.load))) {
      return { status: 404, body: { code: 'UNKNOWN_NODE', message: 'node is not registered (expired?): register again' } };
    }
    return { status: 200, body: { ok: true } };
  });
  route(app, 'post', '/internal/mesh/route/query', 0, schemas.query, async (b) => {
    return { status: 200, body: await mesh.query({ ...b, edgeId: b.edgeId ?? nodeId }) };
  });
  route(app, 'post', '/internal/mesh/route/feedback', 0, schemas.feedback, async (b) => {
    await mesh.feedback(b);
    return { status: 200, body: { ok: true } };
  });
  route(app, 'post', '/internal/mesh/links', 0, schemas.links, async (b) => {
    await mesh.reportLinks(b.links.map((l) => ({ ...l, updatedAt: Date.now(), source: 'report' as const })));
    return { status: 200, body: { ok: true, count: b.links.length } };
  });
  route(app, 'post', '/internal/mesh/nodes/:id/report', 1, z.strictObject({ reason: z.string().min(1).max(500) }), async (_b, [nodeId]) => {
    const trust = await mesh.reportAbuse(nodeId!);
    if (trust === undefined) return { status: 404, body: { code: 'UNKNOWN_NODE', message: 'no such node' } };
    return { status: 200, body: { id: nodeId, trust, level: trustLevel(trust) } };
  });
  route(app, 'get', '/internal/mesh/routes', 0, null, async () => ({ status: 200, body: { node: nodeId, routes: mediaRoutes() } }));
  // What this node's mirror of the mesh holds: the links its media paths are costed from.
  route(app, 'get', '/internal/mesh/links', 0, null, async () => ({ status: 200, body: { node: nodeId, links: [...mesh.registry.snapshot().links.values()] } }));
  route(app, 'get', '/internal/mesh/nodes', 0, null, async () => {
    const nodes = [...mesh.registry.snapshot().nodes.values()].map((n) => ({ ...n, trustLevel: trustLevel(n.trust) }));
    return { status: 200, body: { nodes } };
  });

  function route<S extends z.ZodType | null>(
    app: uWS.TemplatedApp,
    method: 'get' | 'post',
    path: string,
    params: number,
    schema: S,
    handler: (body: S extends z.ZodType ? z.infer<S> : undefined, params: string[]) => Promise<Reply>,
  ): void {
    const read = method === 'post' ? { maxBodyBytes: MAX_BODY } : {};
    app[method](
      path,
      asyncRoute(async (req) => {
        const auth = req.headers.authorization ?? '';
        try {
          const claims = verifier.verify(auth.startsWith('Bearer ') ? auth.slice(7) : undefined);
          if (!claims.mesh) return { status: 403, body: { code: 'PERMISSION_DENIED', message: 'token lacks the mesh grant' } };
        } catch (err) {
          if (err instanceof TokenError) return { status: 401, body: { code: err.code, message: err.message } };
          throw err;
        }
        if (!schema) return handler(undefined as never, req.params);
        let parsed: unknown;
        try {
          parsed = JSON.parse((await req.body).toString('utf8') || 'null');
        } catch (err) {
          if (err instanceof BodyTooLarge) return { status: 413, body: { code: 'PAYLOAD_TOO_LARGE', message: err.message } };
          return { status: 400, body: { code: 'MALFORMED', message: 'body is not JSON' } };
        }
        const r = schema.safeParse(parsed);
        if (!r.success) {
          const i = r.error.issues[0]!;
          return { status: 400, body: { code: 'INVALID_FIELD', field: i.path.join('.') || '(root)', message: i.message } };
        }
        return handler(r.data as never, req.params);
      }, params, read),
    );
  }
}
