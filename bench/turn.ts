// bench/turn: relayed packets/s and loss of the embedded TURN server (node-turn + our layer)
// side by side with coturn (Debian's turnserver) in the same run, both driven by coturn's own
// load client (turnutils_uclient: N clients, each allocating, binding a channel to a UDP echo
// peer and sending M messages that come back through the relay).
// Usage: npm run bench:turn   (CLIENTS, MESSAGES, INTERVAL_MS, SIZE)
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { cpuSeconds, sleep, startAura } from './common.js';

const CLIENTS = Number(process.env.CLIENTS ?? 40);
const MESSAGES = Number(process.env.MESSAGES ?? 2000);
const INTERVAL_MS = Number(process.env.INTERVAL_MS ?? 1);
const SIZE = Number(process.env.SIZE ?? 160);
const SECRET = 'bench-turn-secret';

const creds = (): { u: string; p: string } => {
  const u = `${Math.floor(Date.now() / 1000) + 3600}:bench`;
  return { u, p: createHmac('sha1', SECRET).update(u).digest('base64') };
};

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', () => resolve(out));
  });
}

interface Result {
  pps: number;
  lossPct: number;
  cpu: number;
  seconds: number;
}

async function load(turnPort: number, peerPort: number, serverPid: number): Promise<Result> {
  const { u, p } = creds();
  const cpu0 = cpuSeconds(serverPid);
  const t0 = performance.now();
  const out = await run('turnutils_uclient', ['-c', '-u', u, '-w', p, '-p', String(turnPort), '-e', '127.0.0.1', '-r', String(peerPort), '-n', String(MESSAGES), '-m', String(CLIENTS), '-l', String(SIZE), '-z', String(INTERVAL_MS), '127.0.0.1']);
  const seconds = (performance.now() - t0) / 1000;
  const m = [...out.matchAll(/start_mclient: tot_send_msgs=(\d+), tot_recv_msgs=(\d+)/g)].at(-1);
  if (!m) throw new Error(`uclient gave no totals:\n${out.slice(-1500)}`);
  const sent = Number(m[1]);
  const recv = Number(m[2]);
  // Every message crosses the relay twice (client -> peer, peer -> client).
  return { pps: (sent + recv) / seconds, lossPct: sent ? ((sent - recv) / sent) * 100 : 100, cpu: cpuSeconds(serverPid) - cpu0, seconds };
}

const peers: ChildProcess[] = [];
const peer = (port: number): void => {
  peers.push(spawn('turnutils_peer', ['-L', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' }));
};

console.log(`bench/turn: ${CLIENTS} clients x ${MESSAGES} messages of ${SIZE} B every ${INTERVAL_MS} ms, echoed by a UDP peer`);
const aura = await startAura({
  sfu: { enabled: false },
  turn: { secret: SECRET, host: '127.0.0.1', port: 28478, relay_min_port: 28500, relay_max_port: 28900, allowed_peer_cidrs: ['127.0.0.0/8'], max_allocations_per_user: 1000 },
});
const coturn = spawn('turnserver', [
  '-n', '--no-tls', '--no-dtls', '--no-cli', '-L', '127.0.0.1', '-E', '127.0.0.1', '-p', '29478', '--min-port', '29500', '--max-port', '29900',
  '--use-auth-secret', '--static-auth-secret', SECRET, '--realm', 'auralink', '--allow-loopback-peers', '--no-stdout-log', '--log-file', '/dev/null',
], { stdio: 'ignore' });
peer(28100);
peer(29100);
await sleep(1500);
try {
  const results: Record<string, Result> = {};
  // Alternate to spread any machine noise over both.
  for (const round of [1, 2]) {
    results[`aura${round}`] = await load(28478, 28100, aura.proc.pid!);
    results[`coturn${round}`] = await load(29478, 29100, coturn.pid!);
  }
  const avg = (k: string): Result => {
    const a = results[`${k}1`]!;
    const b = results[`${k}2`]!;
    return { pps: (a.pps + b.pps) / 2, lossPct: (a.lossPct + b.lossPct) / 2, cpu: (a.cpu + b.cpu) / 2, seconds: (a.seconds + b.seconds) / 2 };
  };
  const ours = avg('aura');
  const theirs = avg('coturn');
  const line = (name: string, r: Result): string =>
    `  ${name.padEnd(22)} ${Math.round(r.pps).toLocaleString('en').padStart(8)} relayed pkt/s, loss ${r.lossPct.toFixed(2)} %, server CPU ${(r.cpu / r.seconds * 100).toFixed(0)} % of a core`;
  console.log(line('embedded (node-turn):', ours));
  console.log(line('coturn:', theirs));
  console.log(`  ratio embedded/coturn: ${(ours.pps / theirs.pps).toFixed(2)} (packets/s at the offered load; CPU per packet ${((ours.cpu / ours.pps) / (theirs.cpu / theirs.pps)).toFixed(1)}x coturn's)`);
} finally {
  for (const p of peers) p.kill('SIGKILL');
  coturn.kill('SIGKILL');
  await aura.kill();
}
