// Peer for bench/peers: the same room server on socket.io 4 (rooms as socket.io rooms,
// websocket transport only). The room and peer id come in the handshake query; the newcomer
// gets `joined` with the peers already in the room, the room gets `newPeer`; `data` from a
// peer goes to the rest of the room with its sender (socket.io encodes a broadcast once).
import { createServer } from 'node:http';
import { Server } from 'socket.io';

const rooms = new Map<string, Map<string, { id: string; joinedAt: number }>>();
const http = createServer();
const io = new Server(http, { transports: ['websocket'], serveClient: false, perMessageDeflate: false, httpCompression: false });
io.on('connection', (socket) => {
  const q = socket.handshake.query;
  const roomId = typeof q.room === 'string' ? q.room : 'default';
  const peerId = typeof q.peer === 'string' ? q.peer : socket.id;
  let room = rooms.get(roomId);
  if (!room) rooms.set(roomId, (room = new Map()));
  const peer = { id: peerId, joinedAt: Date.now() };
  const peers = [...room.values()];
  socket.to(roomId).emit('newPeer', peer);
  room.set(peerId, peer);
  void socket.join(roomId);
  socket.emit('joined', { peers });
  socket.on('data', (payload: unknown) => socket.to(roomId).emit('data', { peerId, payload }));
  socket.on('disconnect', () => {
    if (room.get(peerId) !== peer) return;
    room.delete(peerId);
    if (room.size === 0) rooms.delete(roomId);
    else socket.to(roomId).emit('peerClosed', { id: peerId });
  });
});
http.listen(0, '127.0.0.1', () => {
  const addr = http.address();
  process.stdout.write(JSON.stringify({ msg: 'listening', port: typeof addr === 'object' && addr ? addr.port : 0 }) + '\n');
});
