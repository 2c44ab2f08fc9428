// What a join's protobuf encoding costs the server: the participantJoined broadcast (once:
// fan-out publishes one encoding to every subscriber) and the newcomer's JoinResponse listing
// everyone already in the room. The server's codec (each participant's info encoded once,
// signal/protoServer.ts) against encoding every message whole (what it did before), in one run.
// Usage: node dist/bench/joinEncode.js [--rooms 100] [--per-room 20] [--runs 3]
import { parseArgs } from 'node:util';
import protobuf from 'protobufjs/light.js';
import { Participant, permissionFromGrant } from '../src/rooms/participant.js';
import type { Connection } from '../src/rooms/ports.js';
import { codecs } from '../src/signal/codec.js';
import { descriptor } from '../src/signal/gen/descriptor.js';
import type { ParticipantInfo, ServerMessage } from '../src/signal/messages.js';

const { values: args } = parseArgs({ options: { rooms: { type: 'string', default: '100' }, 'per-room': { type: 'string', default: '20' }, runs: { type: 'string', default: '3' } } });
const ROOMS = Number(args.rooms);
const PER_ROOM = Number(args['per-room']);
const Server = protobuf.Root.fromJSON(descriptor as unknown as protobuf.INamespace).lookupType('auralink.v1.ServerMessage');
const whole = (msg: ServerMessage): Uint8Array => Server.encode(Server.fromObject(msg as unknown as Record<string, unknown>)).finish();
const server = (msg: ServerMessage): Uint8Array => codecs.proto.encodeServer(msg) as Uint8Array;

let seq = 0;
function storm(encode: (m: ServerMessage) => Uint8Array): number {
  const rooms: ParticipantInfo[][] = Array.from({ length: ROOMS }, () => []);
  const u0 = process.cpuUsage();
  let bytes = 0;
  for (let i = 0; i < ROOMS * PER_ROOM; i++) {
    const others = rooms[i % ROOMS]!;
    // Fresh participants each storm, as in the server (their infos are new objects).
    const p = new Participant(`PA_${seq++}`, `user-${i}`, `User ${i}`, '', permissionFromGrant({}), false, null as unknown as Connection);
    bytes += encode({ seq: i + 1, participantJoined: p.info() }).length;
    const msg: ServerMessage = {
      join: {
        room: { sid: 'RM_bench', name: `room${i % ROOMS}`, metadata: '', createdAt: 1_700_000_000_000, maxParticipants: 0, numParticipants: others.length + 1, emptyTimeout: 300 },
        participant: p.info(),
        otherParticipants: others,
        resumeToken: 'x'.repeat(43),
        resumeWindowMs: 30_000,
        roomSeq: i,
        resumed: false,
        server: { version: '0.1.0', nodeId: 'node-a', protocol: 2 },
        pingIntervalMs: 5000,
        iceServers: [{ urls: ['turn:127.0.0.1:3478?transport=udp'], username: `1700000000:user-${i}`, credential: 'q'.repeat(28) }],
        probeTargets: [],
      },
    };
    bytes += encode(msg).length;
    others.push(p.info());
  }
  const u = process.cpuUsage(u0);
  if (bytes === 0) throw new Error('nothing encoded');
  return (u.user + u.system) / (ROOMS * PER_ROOM);
}

const res: Record<string, number[]> = { whole: [], server: [] };
for (let r = 0; r < Number(args.runs); r++) {
  storm(whole); // warm
  storm(server);
  res.whole!.push(storm(whole));
  res.server!.push(storm(server));
}
const range = (xs: number[]): string => `${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}`;
console.log(`${ROOMS * PER_ROOM} joins over ${ROOMS} rooms (${PER_ROOM} each), protobuf, ${args.runs} runs, CPU µs per join (broadcast + JoinResponse):`);
console.log(`  every message encoded whole (before): ${range(res.whole!)}`);
console.log(`  server codec (infos encoded once):    ${range(res.server!)}`);
