// A/B arms: a room runs AIC or forwards as without it, by a stable hash of its name, so every
// node and every restart puts a room in the same arm.

export type Arm = 'aic' | 'control';

/** FNV-1a, 32 bits, over the name's UTF-16 code units. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export interface ArmPolicy {
  enabled: boolean;
  percent: number;
}

/** With A/B testing off every room runs AIC; on, `percent` of room names (hash mod 100) do. */
export function armOf(roomName: string, ab: ArmPolicy): Arm {
  if (!ab.enabled) return 'aic';
  return fnv1a(roomName) % 100 < ab.percent ? 'aic' : 'control';
}
