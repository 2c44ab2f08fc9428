// The demo page: join a room, publish camera + microphone, see and hear everyone, mute,
// camera off, screen share, leave. Served by the server at "/".
import { Room, type RemoteTrack } from '../room.js';
import { updateOverlay } from './overlay.js';

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const grid = $('grid');
const status = (s: string): void => {
  $('status').textContent = s;
};
let room: Room | null = null;
let micMuted = false;
let camOff = false;
let screen: MediaStreamTrack | null = null;

function tile(key: string, label: string): HTMLVideoElement {
  let el = document.getElementById(`tile-${key}`);
  if (!el) {
    el = document.createElement('div');
    el.id = `tile-${key}`;
    el.className = 'tile';
    el.innerHTML = `<video autoplay playsinline></video><span class="name"></span><span class="aic"></span>`;
    grid.append(el);
  }
  el.querySelector('.name')!.textContent = label;
  return el.querySelector('video')!;
}

function attach(key: string, label: string, track: MediaStreamTrack, muted: boolean): void {
  const video = tile(key, label);
  const stream = (video.srcObject as MediaStream | null) ?? new MediaStream();
  for (const t of stream.getTracks()) if (t.kind === track.kind) stream.removeTrack(t);
  stream.addTrack(track);
  video.srcObject = stream;
  video.muted = muted;
  void video.play().catch(() => undefined);
}

// Remote videos shown, for the overlay (layer received, quality score), every second.
const shown = new Map<RemoteTrack, HTMLVideoElement>();
setInterval(() => {
  for (const [r, video] of shown) {
    const label = video.parentElement?.querySelector<HTMLElement>('.aic');
    if (label) void updateOverlay(r, video, label).catch(() => undefined);
  }
}, 1000);

function attachRemote(r: RemoteTrack): void {
  const label = `${r.participantIdentity}${r.source.startsWith('screen') ? ' (screen)' : ''}`;
  const video = tile(remoteKey(r), label);
  // Room.attach reports the tile's size and visibility to the server (AIC).
  room!.attach(r, video);
  video.muted = false;
  void video.play().catch(() => undefined);
  if (r.kind === 'video') shown.set(r, video);
}

function remoteKey(r: RemoteTrack): string {
  return r.source.startsWith('screen') ? `${r.participantSid}-screen` : r.participantSid;
}

async function tokenFor(roomName: string, name: string): Promise<string> {
  const given = ($('token') as HTMLInputElement).value.trim();
  if (given) return given;
  const res = await fetch(`/dev/token?room=${encodeURIComponent(roomName)}&identity=${encodeURIComponent(name)}`);
  if (!res.ok) throw new Error('enter an access token (the dev token endpoint exists only with --dev)');
  return ((await res.json()) as { token: string }).token;
}

$('join').addEventListener('submit', (ev) => {
  ev.preventDefault();
  void (async () => {
    const roomName = ($('room') as HTMLInputElement).value.trim();
    const name = ($('name') as HTMLInputElement).value.trim();
    ($('joinBtn') as HTMLButtonElement).disabled = true;
    try {
      status('connecting…');
      const url = location.origin.replace(/^http/, 'ws');
      // ?relay=1: all media through the server's TURN relay (what a client behind a strict
      // firewall gets); used by the TURN end-to-end test.
      // ?p2p=1: accept direct routes for two-party calls; ?blockdirect=1 (tests) makes direct
      // ICE fail so the TURN and SFU fallbacks are exercised.
      const q = new URLSearchParams(location.search);
      room = await Room.connect(url, await tokenFor(roomName, name), {
        ...(q.get('relay') === '1' ? { iceTransportPolicy: 'relay' as const } : {}),
        ...(q.get('p2p') === '1' ? { p2p: true } : {}),
        ...(q.get('blockdirect') === '1' ? { p2pBlockDirect: true } : {}),
      });
      document.body.dataset.route = room.route;
      room.on('routeChanged', (r) => {
        document.body.dataset.route = r;
        status(`media route: ${r}`);
      });
      (window as unknown as { auralinkRoom: Room }).auralinkRoom = room;
      room.on('trackSubscribed', (r) => attachRemote(r));
      // Tracks already in the room were subscribed inside connect(), before this listener.
      for (const r of room.remote.values()) attachRemote(r);
      room.on('trackUnsubscribed', (r) => {
        shown.delete(r);
        const video = document.querySelector<HTMLVideoElement>(`#tile-${remoteKey(r)} video`);
        const stream = video?.srcObject as MediaStream | null;
        stream?.removeTrack(r.track);
        if (stream && stream.getTracks().length === 0) document.getElementById(`tile-${remoteKey(r)}`)?.remove();
      });
      room.on('participantLeft', (p) => {
        document.getElementById(`tile-${p.sid}`)?.remove();
        document.getElementById(`tile-${p.sid}-screen`)?.remove();
      });
      room.on('activeSpeaker', ({ participantSid }) => {
        for (const el of grid.querySelectorAll('.tile')) el.classList.toggle('speaking', el.id === `tile-${participantSid}`);
      });
      room.on('trackSubscriptionFailed', (f) => {
        console.warn(`auralink: could not receive ${f.participantIdentity}'s ${f.source}: ${f.error.message}`);
        status(`could not receive ${f.participantIdentity}'s ${f.source}`);
      });
      room.on('reconnecting', () => status('reconnecting…'));
      room.on('reconnected', () => status(`in ${roomName}`));
      room.on('disconnected', () => status('disconnected'));
      // ?video=1280x720: the camera size (the AIC tests want three real simulcast layers).
      const [vw, vh] = (q.get('video') ?? '640x480').split('x').map(Number);
      const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: vw || 640, height: vh || 480 } });
      const [audio] = media.getAudioTracks();
      const [video] = media.getVideoTracks();
      if (video) {
        attach('local', `${name} (you)`, video, true);
        await room.publish(video, 'camera');
      }
      if (audio) await room.publish(audio, 'microphone');
      $('controls').hidden = false;
      status(`in ${roomName} as ${name}`);
      document.body.dataset.joined = 'true';
    } catch (err) {
      status(`error: ${(err as Error).message}`);
      ($('joinBtn') as HTMLButtonElement).disabled = false;
    }
  })();
});

$('mic').addEventListener('click', () => {
  micMuted = !micMuted;
  void room?.setMuted('microphone', micMuted);
  $('mic').textContent = micMuted ? 'Unmute mic' : 'Mute mic';
});

$('cam').addEventListener('click', () => {
  camOff = !camOff;
  void room?.setMuted('camera', camOff);
  $('cam').textContent = camOff ? 'Camera on' : 'Camera off';
});

$('screen').addEventListener('click', () => {
  void (async () => {
    if (!room) return;
    if (screen) {
      screen.stop();
      screen = null;
      await room.unpublish('screen_share');
      $('screen').textContent = 'Share screen';
      return;
    }
    const s = await navigator.mediaDevices.getDisplayMedia({ video: true });
    screen = s.getVideoTracks()[0] ?? null;
    if (!screen) return;
    screen.addEventListener('ended', () => {
      screen = null;
      void room?.unpublish('screen_share');
      $('screen').textContent = 'Share screen';
    });
    await room.publish(screen, 'screen_share');
    $('screen').textContent = 'Stop sharing';
  })().catch((err: Error) => status(`screen share failed: ${err.message}`));
});

$('leave').addEventListener('click', () => {
  void room?.leave().then(() => {
    grid.innerHTML = '';
    $('controls').hidden = true;
    ($('joinBtn') as HTMLButtonElement).disabled = false;
    status('left');
    delete document.body.dataset.joined;
  });
});
