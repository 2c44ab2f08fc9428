import { BlockList, isIP } from 'node:net';

/**
 * Which peers a TURN allocation may relay to. Without it a TURN server is an open proxy into
 * the network it runs in (RFC 8155 §9, coturn's denied-peer-ip). `allowed` wins over `denied`.
 */
export const DEFAULT_DENIED_PEER_CIDRS = [
  '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12',
  '192.0.0.0/24', '192.168.0.0/16', '198.18.0.0/15', '224.0.0.0/4', '240.0.0.0/4',
  '::/128', '::1/128', 'fc00::/7', 'fe80::/10', 'ff00::/8',
];

export class PeerFilter {
  private readonly allowed = new BlockList();
  private readonly denied = new BlockList();

  constructor(allowed: readonly string[], denied: readonly string[]) {
    for (const c of allowed) addCidr(this.allowed, c);
    for (const c of denied) addCidr(this.denied, c);
  }

  permits(address: string): boolean {
    // IPv4-mapped IPv6 (::ffff:a.b.c.d) is judged as the IPv4 address it is.
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped) address = mapped[1]!;
    const family = isIP(address);
    if (family === 0) return false;
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (this.allowed.check(address, type)) return true;
    return !this.denied.check(address, type);
  }
}

/** Throws with the CIDR in the message when it is not one (config validation uses it). */
export function addCidr(list: BlockList, cidr: string): void {
  const [net, bits, extra] = cidr.split('/');
  const family = isIP(net ?? '');
  const prefix = Number(bits);
  if (extra !== undefined || family === 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 6 ? 128 : 32)) {
    throw new Error(`not a CIDR: ${cidr}`);
  }
  list.addSubnet(net!, prefix, family === 6 ? 'ipv6' : 'ipv4');
}
