// Baseline for bench/signal: the same delivery done by bare uWS pub/sub with no protocol,
// auth or validation: publish each frame as received to one topic; send one frame on open.
import uWS from 'uWebSockets.js';

const app = uWS.App();
app.ws('/rtc', {
  maxPayloadLength: 64 * 1024,
  maxBackpressure: 4 * 1024 * 1024,
  idleTimeout: 60,
  open: (ws) => {
    ws.send(new Uint8Array(64), true);
    ws.subscribe('room');
  },
  message: (ws, msg, isBinary) => {
    ws.publish('room', msg, isBinary);
  },
});
app.listen('127.0.0.1', 0, (sock) => {
  if (!sock) process.exit(1);
  process.stdout.write(JSON.stringify({ msg: 'listening', port: uWS.us_socket_local_port(sock) }) + '\n');
});
