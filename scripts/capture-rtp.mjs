// Captures real RTP packets from ffmpeg into test/fixtures/rtp/ (the parser corpus).
// Each stream: ffmpeg encodes a lavfi test source and sends RTP to a local UDP port, where
// a dgram socket keeps the first N packets. Run by hand when the corpus should change
// (Debian's ffmpeg: libvpx, libx264, libopus); the fixtures are committed, so tests and CI
// do not need ffmpeg. File format (read by test/rtpCorpus.ts): "RTPC", u32 count, then per
// packet u16 length + bytes (big-endian). manifest.json names the codec and payload type.
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { writeFileSync, mkdirSync } from 'node:fs';

const OUT = new URL('../test/fixtures/rtp/', import.meta.url).pathname;
const VIDEO = ['-re', '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30', '-t', '20'];
const SINE = (extra = []) => ['-re', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', ...extra, '-t', '20'];
const STREAMS = [
  { name: 'vp8', codec: 'vp8', pt: 96, packets: 400,
    args: [...VIDEO, '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '1M', '-g', '30', '-auto-alt-ref', '0'] },
  { name: 'vp9', codec: 'vp9', pt: 98, packets: 400,
    args: [...VIDEO, '-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '1M', '-g', '30', '-strict', 'experimental'] },
  { name: 'h264', codec: 'h264', pt: 102, packets: 400,
    args: [...VIDEO, '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-profile:v', 'baseline', '-g', '30',
      '-bsf:v', 'dump_extra=freq=keyframe'] },
  { name: 'opus-voip', codec: 'opus', pt: 111, packets: 250,
    args: [...SINE(), '-c:a', 'libopus', '-application', 'voip', '-b:a', '12k', '-frame_duration', '20'] },
  { name: 'opus-celt-stereo', codec: 'opus', pt: 111, packets: 250,
    args: [...SINE(['-ac', '2']), '-c:a', 'libopus', '-application', 'lowdelay', '-b:a', '64k', '-frame_duration', '10'] },
];

async function capture(s) {
  const sock = dgram.createSocket('udp4');
  await new Promise((r) => sock.bind(0, '127.0.0.1', r));
  const port = sock.address().port;
  const got = [];
  const ff = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', ...s.args, '-payload_type', String(s.pt),
    '-ssrc', String(0x1000 + s.pt), '-f', 'rtp', `rtp://127.0.0.1:${port}?pkt_size=1200`], { stdio: ['ignore', 'ignore', 'inherit'] });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${s.name}: only ${got.length} packets in 30 s`)), 30000);
    sock.on('message', (m) => {
      if (got.length < s.packets) got.push(Buffer.from(m));
      if (got.length === s.packets) { clearTimeout(timer); resolve(); }
    });
    ff.once('exit', (code) => { if (got.length < s.packets) { clearTimeout(timer); reject(new Error(`${s.name}: ffmpeg exited ${code} after ${got.length}`)); } });
  }).finally(() => { ff.kill('SIGTERM'); sock.close(); });
  const head = Buffer.alloc(8);
  head.write('RTPC', 0, 'latin1');
  head.writeUInt32BE(got.length, 4);
  const parts = [head];
  for (const p of got) { const l = Buffer.alloc(2); l.writeUInt16BE(p.length); parts.push(l, p); }
  writeFileSync(`${OUT}${s.name}.rtpc`, Buffer.concat(parts));
  return { file: `${s.name}.rtpc`, codec: s.codec, pt: s.pt, packets: got.length };
}

mkdirSync(OUT, { recursive: true });
const manifest = [];
for (const s of STREAMS) { manifest.push(await capture(s)); console.log(manifest.at(-1)); }
writeFileSync(`${OUT}manifest.json`, JSON.stringify({ generatedBy: 'scripts/capture-rtp.mjs', streams: manifest }, null, 2) + '\n');
