// PostgreSQL text (UTF-8) cannot hold U+0000, and a lone UTF-16 surrogate has no UTF-8 form
// (the driver would silently turn it into U+FFFD). Text that reaches the database is checked
// here at the boundary, so a bad value is the caller's typed error, not a failed write.

// eslint-disable-next-line no-control-regex
const NUL = /\u0000/;
// With the u flag a lone surrogate is one code point of category Cs; a valid pair is not.
const LONE_SURROGATE = /\p{Cs}/u;

/** Why `s` cannot be stored as PostgreSQL text, or undefined when it can. */
export function unstorableText(s: string): string | undefined {
  if (NUL.test(s)) return 'contains NUL (U+0000), which cannot be stored';
  if (LONE_SURROGATE.test(s)) return 'contains an unpaired UTF-16 surrogate (not valid Unicode)';
  return undefined;
}

/**
 * A JSON rendering of any value that is always storable as text: JSON.stringify escapes
 * control characters (NUL becomes the six characters \u0000) and lone surrogates; bigints
 * become strings and byte arrays base64, so nothing throws.
 */
export function storableJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (typeof x === 'bigint') return x.toString();
    if (x instanceof Uint8Array) return { base64: Buffer.from(x).toString('base64') };
    if (x && typeof x === 'object' && (x as { type?: unknown }).type === 'Buffer' && Array.isArray((x as { data?: unknown }).data)) {
      return { base64: Buffer.from((x as { data: number[] }).data).toString('base64') };
    }
    return x;
  }) ?? 'null';
}

/** `s` with what text cannot hold escaped (NUL as \u0000, lone surrogates as \uXXXX). */
export function storableString(s: string): string {
  return unstorableText(s) === undefined ? s : JSON.stringify(s).slice(1, -1);
}
