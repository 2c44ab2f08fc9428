import type uWS from 'uWebSockets.js';

export class BodyTooLarge extends Error {}

/**
 * Collects a request body. Must be called synchronously in the route handler (uWS rule);
 * rejects with BodyTooLarge past `limit` bytes, and never resolves if the client aborts
 * (onAborted is the caller's).
 */
export function readBody(res: uWS.HttpResponse, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    res.onData((chunk, isLast) => {
      if (failed) return;
      size += chunk.byteLength;
      if (size > limit) {
        failed = true;
        reject(new BodyTooLarge(`body over ${limit} bytes`));
        return;
      }
      // uWS reuses the chunk's memory after this callback: copy it.
      chunks.push(Buffer.from(new Uint8Array(chunk).slice()));
      if (isLast) resolve(Buffer.concat(chunks));
    });
  });
}

/**
 * Bytes that requests in progress may buffer, all together: each request reserves what it
 * can send (its Content-Length, or its method's limit) before any of it is read, and gives
 * it back when it is answered or aborted.
 */
export class ByteBudget {
  private used = 0;
  constructor(readonly capacity: number) {}
  get inUse(): number {
    return this.used;
  }
  /** A release function, or null when `n` more bytes would go over capacity. */
  reserve(n: number): (() => void) | null {
    if (this.used + n > this.capacity) return null;
    this.used += n;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= n;
    };
  }
}
