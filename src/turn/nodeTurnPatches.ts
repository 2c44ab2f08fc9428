import { lookup as dnsLookup } from 'node:dns';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';

/**
 * node-turn 0.0.6 is the mandated embedded TURN server; these are the defects in it that real
 * clients (Chromium, coturn's turnutils_uclient) hit, fixed once per process where they live.
 * Each one is covered by test/turn.test.ts.
 */
const require = createRequire(import.meta.url);

interface NodeTurnAttribute {
  type: number;
  length: number;
  padding: number;
  value: unknown;
  name?: string;
}
interface NodeTurnAllocation {
  sockets: { close(): void }[];
  timer: NodeJS.Timeout;
  lifetime: number;
  timeToExpiry: number;
  fiveTuple: string;
  server: { allocations: Record<string, NodeTurnAllocation> };
  update(lifetime?: number): number;
}

let applied = false;
const RESERVATION_TOKEN = 0x0022;

export function patchNodeTurn(): void {
  if (applied) return;
  applied = true;
  const Attribute = require('node-turn/lib/attribute.js') as { prototype: { read(this: NodeTurnAttribute, data: Buffer): void } };
  const Data = require('node-turn/lib/data.js') as (b: Buffer) => Buffer;
  const Allocation = require('node-turn/lib/allocation.js') as { prototype: NodeTurnAllocation };
  const dgram = require('node:dgram') as { createSocket: (o: unknown, cb?: unknown) => unknown };
  const readAttribute = Attribute.prototype.read;

  // 1. EVEN-PORT is parsed with data.readBit(), which only node-turn's Data wrapper has: the
  //    message threw and was dropped. 2. Any attribute type node-turn does not know (Chromium's
  //    GOOG-NETWORK-INFO 0xC057, ICE attributes, RFC 8656's ADDITIONAL-ADDRESS-FAMILY...) threw
  //    too, dropping the whole request. Unknown attributes are now kept unnamed (skipped).
  Attribute.prototype.read = function read(this: NodeTurnAttribute, data: Buffer): void {
    try {
      readAttribute.call(this, Data(data));
    } catch (err) {
      // 3. RESERVATION-TOKEN (8 bytes) was read with readUIntBE(4, 8), a RangeError: keep it as
      //    hex; node-turn then answers 508 for a token it never issued.
      if (this.type === RESERVATION_TOKEN && this.length === 8) {
        this.value = data.toString('hex', 4, 12);
        this.name = 'reservation-token';
        return;
      }
      if (!(err instanceof Error) || !err.message.startsWith('Invalid Attribute type')) throw err;
      this.value = data.subarray(4, 4 + this.length);
      this.name = undefined;
    }
  };

  // 5. Not a defect, a cost: every send() to an address string went through dns.lookup and a
  //    process.nextTick before the datagram left, per packet. node-turn's sockets (and ours)
  //    get a lookup that answers IP literals at once. Patched in the TURN thread only.
  const createSocket = dgram.createSocket;
  dgram.createSocket = (o: unknown, cb?: unknown) =>
    createSocket(typeof o === 'string' ? { type: o, lookup: ipLiteralLookup } : { lookup: ipLiteralLookup, ...(o as object) }, cb);

  // 4. update() with no argument (an Allocate retransmission) or the NaN that Refresh computed
  //    set a 0 ms timer: every refresh deleted the allocation at once. And the expiry timer only
  //    forgot the allocation, leaving its relay sockets bound for ever.
  Allocation.prototype.update = function update(this: NodeTurnAllocation, lifetime?: number): number {
    const seconds = lifetime !== undefined && Number.isFinite(lifetime) && lifetime > 0 ? lifetime : this.lifetime;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      delete this.server.allocations[this.fiveTuple];
    }, seconds * 1000);
    this.timer.unref();
    return (this.timeToExpiry = Date.now() + seconds * 1000);
  };
}

/**
 * An allocations table that closes an allocation's relay sockets and timer whenever node-turn
 * drops it (expiry, Refresh with lifetime 0) and reports adds and removes.
 */
export function ownedAllocations(onChange: (delta: 1 | -1, allocation: unknown) => void): Record<string, unknown> {
  return new Proxy({} as Record<string, NodeTurnAllocation>, {
    set(target, key: string, value: NodeTurnAllocation) {
      const had = key in target;
      target[key] = value;
      value.timer?.unref?.();
      if (!had) onChange(1, value);
      return true;
    },
    deleteProperty(target, key: string) {
      const a = target[key];
      if (a) {
        clearTimeout(a.timer);
        for (const s of a.sockets) {
          try {
            s.close();
          } catch {
            /* already closed */
          }
        }
        delete target[key];
        onChange(-1, a);
      }
      return true;
    },
  });
}

/** dgram's lookup: IP literals answered synchronously, names resolved as dgram would. */
export function ipLiteralLookup(address: string, family: number | object, cb: (err: Error | null, address: string, family: number) => void): void {
  const f = isIP(address);
  if (f !== 0) cb(null, address, f);
  else dnsLookup(address, family as number, cb);
}
