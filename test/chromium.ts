import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { TestServer } from './helpers.js';

// Real-browser tests: Debian's Chromium (installed by scripts/setup.sh) with fake camera and
// microphone, driving the demo page the server serves.

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  '--disable-background-networking',
  // The SFU listens on 127.0.0.1 in tests: let WebRTC use loopback.
  '--allow-loopback-in-peer-connection',
  // getDisplayMedia without a picker.
  '--auto-select-desktop-capture-source=Entire screen',
];

export const launch = (): Promise<Browser> => chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });

/**
 * Chromium inside a network namespace (a host of a test/netns.ts topology): a wrapper that
 * execs it under `ip netns exec` (Playwright's pipe on fds 3 and 4 passes through). The
 * wrapper file goes with the browser. `origins`: the servers' http origins the pages use; not
 * on loopback, they are not secure contexts (no getUserMedia, mediasoup-client refuses the
 * device) unless Chromium is told to treat them as secure.
 */
export async function launchIn(netns: string, origins: readonly string[]): Promise<Browser> {
  const dir = mkdtempSync(join(tmpdir(), 'auralink-chromium-'));
  const wrapper = join(dir, 'chromium');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec '${netns.replace(/'/g, '')}' /usr/bin/chromium "$@"\n`, { mode: 0o755 });
  try {
    const browser = await chromium.launch({ executablePath: wrapper, args: [...CHROMIUM_ARGS, `--unsafely-treat-insecure-origin-as-secure=${origins.join(',')}`] });
    browser.once('disconnected', () => rmSync(dir, { recursive: true, force: true }));
    return browser;
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

/** One page per name (each its own browser context) joined to `room` through the demo page at `/?query`. */
export async function joinDemo(browser: Browser, t: TestServer, room: string, names: readonly string[], query = ''): Promise<Record<string, Page>> {
  const pages: Record<string, Page> = {};
  for (const name of names) {
    const page = await (await browser.newContext()).newPage();
    const consoleLines: string[] = [];
    page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
    await page.goto(`${t.http}/${query ? `?${query}` : ''}`);
    await page.fill('#room', room);
    await page.fill('#name', name);
    await page.click('#joinBtn');
    await page.waitForSelector('body[data-joined=true]', { timeout: 20_000 }).catch(async (e: Error) => {
      const shown = await page.locator('#status').textContent().catch(() => null);
      throw new Error(`${name} did not join (${e.message.split('\n')[0]}); status: ${JSON.stringify(shown)}; the page's console: ${consoleLines.slice(-10).join(' | ') || '(nothing)'}`);
    });
    pages[name] = page;
  }
  return pages;
}

export interface TrackStat {
  identity: string;
  source: string;
  kind: string;
  framesDecoded: number;
  packetsReceived: number;
}

/** Per subscribed track: what that consumer's RTCRtpReceiver reports (inbound-rtp). */
export function remoteStats(page: Page): Promise<TrackStat[]> {
  return page.evaluate(async () => {
    const room = (window as unknown as { auralinkRoom?: import('../src/client/room.js').Room }).auralinkRoom;
    if (!room) return [];
    const out: TrackStat[] = [];
    for (const r of room.remote.values()) {
      let framesDecoded = 0;
      let packetsReceived = 0;
      (await r.getStats()).forEach((s: { type: string; framesDecoded?: number; packetsReceived?: number }) => {
        if (s.type !== 'inbound-rtp') return;
        framesDecoded += s.framesDecoded ?? 0;
        packetsReceived += s.packetsReceived ?? 0;
      });
      out.push({ identity: r.participantIdentity, source: r.source, kind: r.kind, framesDecoded, packetsReceived });
    }
    return out;
  });
}

export const find = (stats: TrackStat[], identity: string, source: string): TrackStat | undefined =>
  stats.find((s) => s.identity === identity && s.source === source);

/** A page's media state in one line, for a failure message: transport states, ICE restarts, what each track received. */
export async function mediaState(page: Page): Promise<string> {
  const sfu = await page
    .evaluate(() => {
      const room = (window as unknown as { auralinkRoom?: import('../src/client/room.js').Room }).auralinkRoom;
      return room ? { states: room.sfu.transportStates(), iceRestarts: room.sfu.iceRestarts() } : null;
    })
    .catch((e: Error) => e.message);
  const tracks = await remoteStats(page).catch(() => []);
  return JSON.stringify({ sfu, tracks: tracks.map((s) => `${s.identity}/${s.source}: ${s.packetsReceived} pkts, ${s.framesDecoded} frames`) });
}
