import { SignalError } from '../signal/errors.js';

// The worker's refusal of a request names the method ("... [method:transport.produce]"):
// given the client's parameters (an ssrc or RID already in use, say), it is the client's error.
const WORKER_REFUSAL = /\[method:[\w.]+\]$/;

/** mediasoup's argument errors become typed client errors; anything else is ours (INTERNAL). */
export async function media<T>(field: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    const name = (err as Error).name;
    if (err instanceof TypeError || name === 'UnsupportedError' || name === 'InvalidStateError' || WORKER_REFUSAL.test((err as Error).message)) {
      throw new SignalError('INVALID_FIELD', `${field}: ${(err as Error).message}`, field);
    }
    throw err;
  }
}
