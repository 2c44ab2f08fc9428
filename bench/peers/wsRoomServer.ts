// Peer for bench/peers: a hand-written room server on `ws`, protoo style (mediasoup-demo): the
// room and peer id come in the URL query, the newcomer's first message lists the peers already
// in the room, and the room is told about the newcomer. Messages are JSON; data from a peer is
// wrapped with its sender and sent to the rest of the room (stringified once). No auth.
import { WebSocketServer, type WebSocket } from 'ws';

interface Peer {
  id: string;
  joinedAt: number;
  ws: WebSocket;
}
const rooms = new Map<string, Map<string, Peer>>();

const broadcast = (room: Map<string, Peer>, msg: string, except?: Peer): void => {
  for (const p of room.values()) if (p !== except) p.ws.send(msg);
};

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 64 * 1024 });
wss.on('connection', (ws, req) => {
  const q = new URL(req.url ?? '/', 'http://x').searchParams;
  const roomId = q.get('room') ?? 'default';
  const peerId = q.get('peer') ?? Math.random().toString(36).slice(2);
  let room = rooms.get(roomId);
  if (!room) rooms.set(roomId, (room = new Map()));
  const peer: Peer = { id: peerId, joinedAt: Date.now(), ws };
  const peers = [...room.values()].map((p) => ({ id: p.id, joinedAt: p.joinedAt }));
  broadcast(room, JSON.stringify({ notification: true, method: 'newPeer', data: { id: peer.id, joinedAt: peer.joinedAt } }));
  room.set(peerId, peer);
  ws.send(JSON.stringify({ response: true, ok: true, data: { peers } }));
  ws.on('message', (data) => {
    let msg: { data?: unknown };
    try {
      msg = JSON.parse(data.toString()) as { data?: unknown };
    } catch {
      return;
    }
    broadcast(room, JSON.stringify({ notification: true, method: 'data', data: { peerId, payload: msg.data } }), peer);
  });
  ws.on('close', () => {
    if (room.get(peerId) !== peer) return;
    room.delete(peerId);
    if (room.size === 0) rooms.delete(roomId);
    else broadcast(room, JSON.stringify({ notification: true, method: 'peerClosed', data: { id: peerId } }));
  });
});
wss.on('listening', () => {
  const addr = wss.address();
  process.stdout.write(JSON.stringify({ msg: 'listening', port: typeof addr === 'object' && addr ? addr.port : 0 }) + '\n');
});
