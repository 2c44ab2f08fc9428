import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { PeerWatch } from '../src/cluster/media/peerWatch.js';
import { eventually, sleep } from './helpers.js';

// The cascade's peer watch (src/cluster/media/peerWatch.ts): a node pipes come from that stops
// answering probes is reported down; one that answers is not, even when the watching process
// itself stalls (its own stall must not look like the peer's silence).

const quiet = pino({ level: 'silent' });

describe('PeerWatch', () => {
  let server: Server;
  let url: string;
  let probes = 0;
  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/internal/mesh/probe') probes++;
      res.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  test('a peer that answers is not reported, also when this process stalls for several timeouts', async () => {
    const down: string[] = [];
    const w = new PeerWatch(() => ['p'], () => url, (id) => down.push(id), { timeoutMs: 400 }, quiet);
    try {
      await sleep(600);
      assert.ok(probes > 0, 'it probes the peer');
      const until = Date.now() + 1500;
      while (Date.now() < until); // a 1.5 s stall of the event loop (a long GC, a busy handler)
      await sleep(800);
      assert.deepEqual(down, [], 'not reported down for a stall of its own');
    } finally {
      w.close();
    }
  });

  test('a peer that stops answering is reported down once; one no longer piped from is no longer probed', async () => {
    const down: string[] = [];
    let upstream = ['p', 'dead'];
    const dead = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', () => r()));
    const deadUrl = `http://127.0.0.1:${(dead.address() as AddressInfo).port}`;
    const w = new PeerWatch(() => upstream, (id) => (id === 'dead' ? deadUrl : url), (id) => down.push(id), { timeoutMs: 400 }, quiet);
    try {
      await sleep(600);
      assert.deepEqual(down, []);
      dead.closeAllConnections();
      await new Promise((r) => dead.close(r)); // the peer is gone: connection refused
      await eventually(() => down.length > 0, 3000, 'the silent peer reported down');
      await sleep(800);
      assert.deepEqual(down, ['dead'], 'only the silent peer, once');
      upstream = [];
      await sleep(200);
      const n = probes;
      await sleep(500);
      assert.equal(probes, n, 'no probes to a node nothing comes from');
    } finally {
      w.close();
    }
  });
});
