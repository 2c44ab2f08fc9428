import type { ErrorCode } from './messages.js';

/** A request failed in a way the client is told about, with a code and (maybe) the field. */
export class SignalError extends Error {
  constructor(readonly code: ErrorCode, message: string, readonly field?: string) {
    super(message);
    this.name = 'SignalError';
  }
}
