// Nesting depth of encoded JSON / MessagePack, found by scanning the bytes without decoding,
// so a decoder is never asked to recurse deeper than a caller allows.

/** Whether the JSON text nests arrays/objects deeper than `max`. */
export function jsonDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/**
 * Whether the MessagePack value nests arrays/maps deeper than `max`. Walks only the type
 * headers and lengths; malformed or truncated input is left for the decoder to report.
 */
export function msgpackDeeperThan(b: Uint8Array, max: number): boolean {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const left: number[] = []; // items still to come in each open container
  let pos = 0;
  while (pos < b.length) {
    const t = b[pos]!;
    let size = 1; // bytes of this item's header + payload (containers: header only)
    let items = -1; // >= 0: a container of that many items
    const u8 = (o: number): number => (pos + o < b.length ? b[pos + o]! : 0);
    const u16 = (o: number): number => (pos + o + 2 <= b.length ? view.getUint16(pos + o) : 0);
    const u32 = (o: number): number => (pos + o + 4 <= b.length ? view.getUint32(pos + o) : 0);
    if (t <= 0x7f || t >= 0xe0 || t === 0xc0 || t === 0xc2 || t === 0xc3) size = 1;
    else if (t <= 0x8f) items = (t & 0x0f) * 2;
    else if (t <= 0x9f) items = t & 0x0f;
    else if (t <= 0xbf) size = 1 + (t & 0x1f);
    else if (t === 0xc4 || t === 0xd9) size = 2 + u8(1);
    else if (t === 0xc5 || t === 0xda) size = 3 + u16(1);
    else if (t === 0xc6 || t === 0xdb) size = 5 + u32(1);
    else if (t === 0xc7) size = 3 + u8(1);
    else if (t === 0xc8) size = 4 + u16(1);
    else if (t === 0xc9) size = 6 + u32(1);
    else if (t === 0xca) size = 5;
    else if (t === 0xcb) size = 9;
    else if (t >= 0xcc && t <= 0xd3) size = 1 + (1 << (t & 0x03));
    else if (t >= 0xd4 && t <= 0xd8) size = 2 + (1 << (t - 0xd4));
    else if (t === 0xdc) [size, items] = [3, u16(1)];
    else if (t === 0xdd) [size, items] = [5, u32(1)];
    else if (t === 0xde) [size, items] = [3, u16(1) * 2];
    else if (t === 0xdf) [size, items] = [5, u32(1) * 2];
    else return false; // 0xc1 (never used): the decoder reports it
    pos += size;
    if (items >= 0 && left.length + 1 > max) return true; // an empty container is a level too
    if (items > 0) {
      left.push(items);
      continue;
    }
    // One item complete; so is every container it was the last item of.
    while (left.length > 0 && --left[left.length - 1]! === 0) left.pop();
    if (left.length === 0) return false;
  }
  return false;
}
