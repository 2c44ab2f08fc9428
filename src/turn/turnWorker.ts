// The TURN thread: node-turn and our layer (embeddedTurn.ts) own every TURN socket here, so
// relaying never waits for the signalling event loop and signalling never waits for relaying.
// The main thread (turnThread.ts) starts it, asks it for snapshots and closes it.
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parentPort } from 'node:worker_threads';
import { TurnCredentials } from './credentials.js';
import { EmbeddedTurn, type TurnLog } from './embeddedTurn.js';
import { PeerFilter } from './peerFilter.js';
import { SocketDrops } from './socketDrops.js';
import type { FromTurnThread, ToTurnThread } from './turnMessages.js';
import { TurnStats, type TurnSnapshot } from './turnStats.js';

const port = parentPort!;
const post = (m: FromTurnThread): void => port.postMessage(m);
const stats = new TurnStats();
const drops = new SocketDrops();
const LAG_RESOLUTION_MS = 10;
const lag = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
lag.enable();
let elu = performance.eventLoopUtilization();
let turn: EmbeddedTurn | undefined;
let listenPort = 0;
let debug = false;
// Relay sockets close with their allocation and take their drop count with them: sample often
// enough that little is lost.
const sampler = setInterval(() => turn && drops.sample(listenPort, turn.relayPorts()), 2000);
sampler.unref();

const log: TurnLog = {
  debug: (obj, msg) => debug && post({ type: 'log', level: 'debug', obj, msg }),
  info: (obj, msg) => post({ type: 'log', level: 'info', obj, msg }),
  warn: (obj, msg) => post({ type: 'log', level: 'warn', obj, msg }),
};

// Allocation counts are coalesced: one message per event-loop turn at most.
let pendingCount: number | undefined;
const onAllocations = (count: number): void => {
  if (pendingCount === undefined) {
    setImmediate(() => {
      post({ type: 'allocations', count: pendingCount! });
      pendingCount = undefined;
    });
  }
  pendingCount = count;
};

function snapshot(): TurnSnapshot {
  if (turn) drops.sample(listenPort, turn.relayPorts());
  const now = performance.eventLoopUtilization();
  const utilization = performance.eventLoopUtilization(now, elu).utilization;
  elu = now;
  // The window is the time since the last scrape, as prom-client's own event-loop metrics; the
  // histogram records whole timer intervals, so the delay is what exceeds the resolution.
  const s = (ns: number): number => (Number.isFinite(ns) ? Math.max(0, ns / 1e6 - LAG_RESOLUTION_MS) / 1000 : 0);
  const l = { p50: s(lag.percentile(50)), p99: s(lag.percentile(99)), max: s(lag.max) };
  lag.reset();
  return {
    allocations: turn?.allocationCount ?? 0,
    clientToPeerPackets: stats.clientToPeerPackets,
    clientToPeerBytes: stats.clientToPeerBytes,
    peerToClientPackets: stats.peerToClientPackets,
    peerToClientBytes: stats.peerToClientBytes,
    dropped: { ...stats.dropped },
    refused: { ...stats.refused },
    socketDrops: { ...drops.total },
    lag: l,
    utilization,
    buffers: turn?.bufferSizes() ?? { listenRecv: 0, listenSend: 0, relayRecv: 0, relaySend: 0 },
  };
}

port.on('message', (m: ToTurnThread) => {
  switch (m.type) {
    case 'start': {
      debug = m.debug;
      listenPort = m.opts.port;
      const t = new EmbeddedTurn(m.opts, new TurnCredentials(m.secret, m.ttlS), new PeerFilter(m.allowedPeerCidrs, m.deniedPeerCidrs), stats, log, onAllocations);
      t.start().then(
        () => {
          turn = t;
          post({ type: 'started' });
        },
        (err: unknown) => {
          t.close();
          post({ type: 'startFailed', message: err instanceof Error ? err.message : String(err) });
        },
      );
      break;
    }
    case 'snapshot':
      post({ type: 'snapshot', id: m.id, snapshot: snapshot() });
      break;
    case 'close':
      // Closes the listening socket and every allocation's relay socket, then ends the thread.
      turn?.close();
      turn = undefined;
      clearInterval(sampler);
      lag.disable();
      process.exit(0);
      break;
    case 'crash':
      setImmediate(() => {
        throw new Error('TURN thread crash (fault injection)');
      });
      break;
  }
});
