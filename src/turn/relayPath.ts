import type { RemoteInfo, Socket } from 'node:dgram';
import type { TurnStats } from './turnStats.js';

/** The fields of a node-turn allocation the data path reads (node-turn keeps them current). */
export interface RelayedAllocation {
  permissions: Record<string, number | undefined>;
  sockets: Socket[];
  /** node-turn's reverted transport: dst is the client. */
  transport: { dst: { address: string; port: number } };
}

interface Binding {
  channel: number;
  address: string;
  port: number;
}

interface Relay {
  readonly alloc: RelayedAllocation;
  readonly socket: Socket;
  readonly clientAddress: string;
  readonly clientPort: number;
  readonly byChannel: Map<number, Binding>;
  /** peer address -> peer port -> binding (the peer-to-client direction's lookup). */
  readonly byPeer: Map<string, Map<number, Binding>>;
}

const EMPTY = Buffer.alloc(0);
const gather: Buffer[] = [EMPTY, EMPTY];

/** ChannelData headers are immutable (channel, length): made once, shared by every send. */
const HEADERS_MAX = 65_536;
const headers = new Map<number, Buffer>();
function header(channel: number, length: number): Buffer {
  const key = channel * 65_536 + length;
  let h = headers.get(key);
  if (h === undefined) {
    h = Buffer.allocUnsafeSlow(4);
    h.writeUInt16BE(channel, 0);
    h.writeUInt16BE(length, 2);
    // Past the bound (many channels x many lengths) a header is made per send instead.
    if (headers.size < HEADERS_MAX) headers.set(key, h);
  }
  return h;
}

/**
 * The ChannelData path in both directions, replacing node-turn's: node-turn relayed ChannelData
 * only peer-to-client, and per packet built an Address, scanned every channel binding with
 * toString(), copied the payload with Buffer.concat and built TRACE strings it then discarded.
 * Here a packet costs two Map lookups, a permission check and one send of the received buffer
 * (peer-to-client: a gathered send of a cached header and that buffer). What remains per packet
 * is Node's own: the received Buffer, its rinfo, the send request.
 */
export class RelayPath {
  /** client address -> client port -> relay (the listening socket serves every client). */
  private readonly byClient = new Map<string, Map<number, Relay>>();
  private readonly relays = new Map<RelayedAllocation, Relay>();

  constructor(
    private readonly listen: Socket,
    private readonly stats: TurnStats,
    private readonly relayBufferBytes: number,
  ) {}

  get size(): number {
    return this.relays.size;
  }

  /** Relay sockets in use (for their kernel drop counters). */
  sockets(): Socket[] {
    return [...this.relays.values()].map((r) => r.socket);
  }

  /**
   * Takes over a new allocation's relay socket: node-turn's listener is kept only for what is
   * not ChannelData (Data indications to a peer without a channel).
   */
  adopt(alloc: RelayedAllocation): void {
    const socket = alloc.sockets[0];
    if (!socket || this.relays.has(alloc)) return;
    setBuffers(socket, this.relayBufferBytes);
    const relay: Relay = {
      alloc,
      socket,
      clientAddress: alloc.transport.dst.address,
      clientPort: alloc.transport.dst.port,
      byChannel: new Map(),
      byPeer: new Map(),
    };
    const indication = socket.listeners('message') as ((buf: Buffer, rinfo: RemoteInfo) => void)[];
    socket.removeAllListeners('message');
    socket.on('message', (buf: Buffer, rinfo: RemoteInfo) => {
      if (!this.fromPeer(relay, buf, rinfo)) for (const fn of indication) fn(buf, rinfo);
    });
    socket.on('error', () => this.stats.dropped.send_error++);
    this.relays.set(alloc, relay);
    let ports = this.byClient.get(relay.clientAddress);
    if (!ports) this.byClient.set(relay.clientAddress, (ports = new Map()));
    ports.set(relay.clientPort, relay);
  }

  release(alloc: RelayedAllocation): void {
    const relay = this.relays.get(alloc);
    if (!relay) return;
    this.relays.delete(alloc);
    const ports = this.byClient.get(relay.clientAddress);
    if (ports?.get(relay.clientPort) === relay) {
      ports.delete(relay.clientPort);
      if (ports.size === 0) this.byClient.delete(relay.clientAddress);
    }
  }

  /** After node-turn accepted a ChannelBind (it checked number, peer and conflicts). */
  bind(alloc: RelayedAllocation, channel: number, peer: { address: string; port: number }): void {
    const relay = this.relays.get(alloc);
    if (!relay || relay.byChannel.has(channel)) return;
    const b: Binding = { channel, address: peer.address, port: peer.port };
    relay.byChannel.set(channel, b);
    let ports = relay.byPeer.get(b.address);
    if (!ports) relay.byPeer.set(b.address, (ports = new Map()));
    ports.set(b.port, b);
  }

  /** A ChannelData message (first two bits 01) from a client on the listening socket. */
  fromClient(buf: Buffer, rinfo: RemoteInfo): void {
    const channel = (buf[0]! << 8) | buf[1]!;
    const len = (buf[2]! << 8) | buf[3]!;
    // Channels 0x4000-0x7FFE; over UDP up to 3 bytes of padding may follow the data.
    if (channel > 0x7ffe || len > buf.length - 4) {
      this.stats.dropped.malformed++;
      return;
    }
    const relay = this.byClient.get(rinfo.address)?.get(rinfo.port);
    if (relay === undefined) {
      this.stats.dropped.no_allocation++;
      return;
    }
    const b = relay.byChannel.get(channel);
    if (b === undefined) {
      this.stats.dropped.no_channel++;
      return;
    }
    const perm = relay.alloc.permissions[b.address];
    if (perm === undefined || perm < Date.now()) {
      this.stats.dropped.no_permission++;
      return;
    }
    relay.socket.send(buf, 4, len, b.port, b.address);
    this.stats.clientToPeerPackets++;
    this.stats.clientToPeerBytes += len;
  }

  /** A datagram from a peer on a relay socket; false when it is for node-turn (no channel). */
  private fromPeer(relay: Relay, buf: Buffer, rinfo: RemoteInfo): boolean {
    const perm = relay.alloc.permissions[rinfo.address];
    if (perm === undefined || perm < Date.now()) {
      this.stats.dropped.no_permission++;
      return true;
    }
    const b = relay.byPeer.get(rinfo.address)?.get(rinfo.port);
    if (b === undefined) return false;
    // dgram copies the list before send() returns: one array serves every send.
    gather[0] = header(b.channel, buf.length);
    gather[1] = buf;
    this.listen.send(gather, relay.clientPort, relay.clientAddress);
    gather[1] = EMPTY;
    this.stats.peerToClientPackets++;
    this.stats.peerToClientBytes += buf.length;
    return true;
  }
}

/** Asks for `bytes` of receive and send buffer; the kernel caps it (net.core.rmem_max/wmem_max). */
export function setBuffers(socket: Socket, bytes: number): void {
  if (bytes <= 0) return;
  try {
    socket.setRecvBufferSize(bytes);
    socket.setSendBufferSize(bytes);
  } catch {
    /* not bound yet or closed: the kernel default stays */
  }
}
