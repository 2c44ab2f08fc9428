import { readFileSync } from 'node:fs';

/**
 * Datagrams the kernel dropped on the TURN sockets because their receive buffer was full: the
 * `drops` column of /proc/net/udp{,6} (Linux; elsewhere they stay 0). A socket's count is gone
 * once it closes, so each sample adds what grew since the previous one: relay sockets that
 * closed lose only their last interval.
 */
export class SocketDrops {
  readonly total = { listen: 0, relay: 0 };
  private seen = new Map<string, number>();

  sample(listenPort: number, relayPorts: ReadonlySet<number>): void {
    const next = new Map<string, number>();
    for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
      let text: string;
      try {
        text = readFileSync(file, 'latin1');
      } catch {
        continue;
      }
      let i = text.indexOf('\n') + 1;
      while (i > 0 && i < text.length) {
        const end = text.indexOf('\n', i);
        const line = text.slice(i, end < 0 ? undefined : end);
        i = end < 0 ? -1 : end + 1;
        const c = line.trim().split(/\s+/);
        if (c.length < 13) continue;
        const port = parseInt(c[1]!.slice(c[1]!.lastIndexOf(':') + 1), 16);
        const role = port === listenPort ? 'listen' : relayPorts.has(port) ? 'relay' : undefined;
        if (!role) continue;
        const inode = c[9]!;
        const drops = Number(c[12]);
        this.total[role] += Math.max(0, drops - (this.seen.get(inode) ?? 0));
        next.set(inode, drops);
      }
    }
    this.seen = next;
  }
}
