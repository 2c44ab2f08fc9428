import type { EmbeddedTurnOptions } from './embeddedTurn.js';
import type { TurnSnapshot } from './turnStats.js';

/** Main thread -> TURN thread. */
export type ToTurnThread =
  | {
      type: 'start';
      opts: EmbeddedTurnOptions;
      /** TURN REST credentials: checked in the thread exactly as before (credentials.ts). */
      secret: string;
      ttlS: number;
      allowedPeerCidrs: string[];
      deniedPeerCidrs: string[];
      debug: boolean;
    }
  | { type: 'snapshot'; id: number }
  | { type: 'close' }
  /** Fault injection: the thread throws an uncaught error (supervision is tested with it). */
  | { type: 'crash' };

/** TURN thread -> main thread. */
export type FromTurnThread =
  | { type: 'started' }
  | { type: 'startFailed'; message: string }
  | { type: 'allocations'; count: number }
  | { type: 'snapshot'; id: number; snapshot: TurnSnapshot }
  | { type: 'log'; level: 'debug' | 'info' | 'warn'; obj: object; msg: string };
