import { SignalError } from '../signal/errors.js';

// The worker's refusal of a request names the method ("... [method:transport.produce]"):
// given the client's parameters (an ssrc or RID already in use, say), it is the client's error.
const WORKER_REFUSAL = /\[method:[\w.]+\]$/;

// The worker died while (or just before) this request was sent: its channel is closed, or the
// request was still waiting when the worker went. A mediaReset follows: nothing for the client
// to fix, and not a bug of ours.
const WORKER_GONE = /^Channel closed$|^Channel request handler with ID \S+ not found|^(Worker|Router|Transport) closed$/;
// mediasoup's port range (sfu.rtc_min_port..rtc_max_port) is used up.
const NO_PORTS = /no more available ports/i;

/**
 * mediasoup's argument errors become typed client errors, its "cannot now" ones UNAVAILABLE;
 * anything else is ours (INTERNAL).
 */
export async function media<T>(field: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    const name = (err as Error).name;
    const message = (err as Error).message ?? '';
    if (WORKER_GONE.test(message)) throw new SignalError('UNAVAILABLE', `${field}: the media worker serving this room is restarting; media will be reset`, field);
    if (NO_PORTS.test(message)) throw new SignalError('UNAVAILABLE', `${field}: no media ports left on this server`, field);
    if (err instanceof TypeError || name === 'UnsupportedError' || name === 'InvalidStateError' || WORKER_REFUSAL.test((err as Error).message)) {
      throw new SignalError('INVALID_FIELD', `${field}: ${(err as Error).message}`, field);
    }
    throw err;
  }
}
