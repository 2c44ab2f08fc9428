import type uWS from 'uWebSockets.js';
import type { Metrics } from '../obs/metrics.js';
import { asyncRoute, send } from './http.js';

export interface HealthSource {
  ready(): boolean;
  status(): Record<string, unknown>;
}

/** /health (summary), /liveness (process answers), /readiness (accepting joins), /metrics. */
export function registerHealth(app: uWS.TemplatedApp, src: HealthSource, metrics: Metrics): void {
  app.get('/health', (res) => send(res, { status: 200, body: { status: 'ok', ...src.status() } }));
  app.get('/liveness', (res) => send(res, { status: 200, body: { status: 'alive' } }));
  app.get('/readiness', (res) =>
    send(res, src.ready() ? { status: 200, body: { status: 'ready' } } : { status: 503, body: { status: 'not ready' } }),
  );
  app.get(
    '/metrics',
    asyncRoute(async () => ({
      status: 200,
      body: await metrics.registry.metrics(),
      contentType: metrics.registry.contentType,
    })),
  );
}
