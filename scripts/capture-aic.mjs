// Captures bench/aic's media once (run by hand; needs ffmpeg with libvpx and libopus): one
// 1280x720 test source encoded as three VP8 simulcast layers (320x180, 640x360, 1280x720 at
// LiveKit's default simulcast bitrates) plus Opus, all sent as RTP to one local UDP port and
// kept as received. The file is committed (bench/fixtures/aic/), so the bench runs without
// ffmpeg. Format as test/fixtures/rtp (read by bench/aic/capture.ts): "RTPC", u32 count, then
// per packet u16 length + bytes (big-endian); manifest.json maps each SSRC to its stream.
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdirSync, writeFileSync } from 'node:fs';

const OUT = new URL('../bench/fixtures/aic/', import.meta.url).pathname;
const SECONDS = 8;
// -g 120: a key frame every 4 s in the capture. The replay answers PLI/FIR by jumping to
// the next one, as a browser's encoder answers with a fresh key frame.
const LAYERS = [
  { ssrc: 1001, width: 320, height: 180, bitrate: 160_000 },
  { ssrc: 1002, width: 640, height: 360, bitrate: 450_000 },
  { ssrc: 1003, width: 1280, height: 720, bitrate: 1_700_000 },
];
const AUDIO = { ssrc: 1004, bitrate: 32_000 };

const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 8 << 20 });
await new Promise((r) => sock.bind(0, '127.0.0.1', r));
const url = `rtp://127.0.0.1:${sock.address().port}?pkt_size=1200`;
const got = [];
sock.on('message', (m) => got.push(Buffer.from(m)));

const vp8 = (l, map) => [
  '-map', map, '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', String(l.bitrate),
  '-maxrate', String(l.bitrate), '-bufsize', String(l.bitrate), '-g', '120', '-auto-alt-ref', '0', '-error-resilient', '1',
  '-payload_type', '96', '-ssrc', String(l.ssrc), '-f', 'rtp', url,
];
const args = [
  '-hide_banner', '-loglevel', 'error',
  '-re', '-t', String(SECONDS), '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30',
  '-re', '-t', String(SECONDS), '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
  '-filter_complex', '[0:v]split=3[a][b][c];[a]scale=320:180[l0];[b]scale=640:360[l1]',
  ...vp8(LAYERS[0], '[l0]'), ...vp8(LAYERS[1], '[l1]'), ...vp8(LAYERS[2], '[c]'),
  '-map', '1:a', '-c:a', 'libopus', '-application', 'voip', '-b:a', String(AUDIO.bitrate), '-frame_duration', '20',
  '-payload_type', '111', '-ssrc', String(AUDIO.ssrc), '-f', 'rtp', url,
];
const ff = spawn('ffmpeg', args, { stdio: ['ignore', 'ignore', 'inherit'] });
const code = await new Promise((r) => ff.once('exit', r));
await new Promise((r) => setTimeout(r, 300)); // the last packets in flight
sock.close();
if (code !== 0) throw new Error(`ffmpeg exited ${code}`);

const head = Buffer.alloc(8);
head.write('RTPC', 0, 'latin1');
head.writeUInt32BE(got.length, 4);
const parts = [head];
for (const p of got) {
  const l = Buffer.alloc(2);
  l.writeUInt16BE(p.length);
  parts.push(l, p);
}
mkdirSync(OUT, { recursive: true });
writeFileSync(`${OUT}simulcast.rtpc`, Buffer.concat(parts));
const count = (ssrc) => got.filter((p) => p.readUInt32BE(8) === ssrc);
const bytes = (ps) => ps.reduce((n, p) => n + p.length, 0);
const manifest = {
  generatedBy: 'scripts/capture-aic.mjs',
  source: 'ffmpeg lavfi testsrc2 1280x720 30 fps, libvpx realtime -cpu-used 8, -g 120; sine 440 Hz, libopus voip 20 ms',
  seconds: SECONDS,
  fps: 30,
  video: LAYERS.map((l) => ({ ...l, pt: 96, packets: count(l.ssrc).length, measuredBps: Math.round((bytes(count(l.ssrc)) * 8) / SECONDS) })),
  audio: { ...AUDIO, pt: 111, packets: count(AUDIO.ssrc).length, measuredBps: Math.round((bytes(count(AUDIO.ssrc)) * 8) / SECONDS) },
};
writeFileSync(`${OUT}manifest.json`, JSON.stringify(manifest, null, 2) + '\n');
console.log(JSON.stringify(manifest, null, 2));
