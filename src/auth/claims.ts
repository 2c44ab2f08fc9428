import { z } from 'zod';
import { unstorableText } from '../util/text.js';

/** Text that ends up in rooms, the database and webhooks: refused here if it cannot be stored. */
const text = z.string().superRefine((s, ctx) => {
  const why = unstorableText(s);
  if (why) ctx.addIssue({ code: 'custom', message: why });
});

/** The VideoGrant's boolean fields (quickGrant checks them). */
const GRANT_FLAGS = [
  'roomJoin',
  'roomCreate',
  'roomList',
  'roomAdmin',
  'roomRecord',
  'canPublish',
  'canSubscribe',
  'canPublishData',
  'canUpdateOwnMetadata',
  'hidden',
  'recorder',
  'agent',
] as const;

/** LiveKit's VideoGrant claim, as livekit-server-sdk's AccessToken writes it. */
const videoGrantSchema = z.object({
  room: text.optional(),
  roomJoin: z.boolean().optional(),
  roomCreate: z.boolean().optional(),
  roomList: z.boolean().optional(),
  roomAdmin: z.boolean().optional(),
  roomRecord: z.boolean().optional(),
  canPublish: z.boolean().optional(),
  canPublishSources: z.array(text).optional(),
  canSubscribe: z.boolean().optional(),
  canPublishData: z.boolean().optional(),
  canUpdateOwnMetadata: z.boolean().optional(),
  hidden: z.boolean().optional(),
  recorder: z.boolean().optional(),
  agent: z.boolean().optional(),
});
export type VideoGrant = z.infer<typeof videoGrantSchema>;

/** The claims a token may carry; the schema is what decides, `quickClaims` only goes faster. */
export const claimsSchema = z.object({
  iss: z.string(),
  sub: text.optional(),
  name: text.optional(),
  metadata: text.optional(),
  attributes: z.record(text, text).optional(),
  video: videoGrantSchema.optional(),
  /** AuraLink extension: a mesh node token (internal mesh endpoints). */
  mesh: z.boolean().optional(),
  sha256: z.string().optional(),
  exp: z.number().optional(),
  nbf: z.number().optional(),
});
// Compiled on the first parse (zod's fast path): at load, not inside the first join.
claimsSchema.safeParse({});
export type Claims = z.infer<typeof claimsSchema>;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const storable = (v: unknown): v is string => typeof v === 'string' && unstorableText(v) === undefined;

/**
 * The claims `claimsSchema` would give for a JSON payload, by plain type checks (zod's parse
 * was ~70 µs of each join in the profile of a join storm), or undefined when anything is off
 * (a wrong type, unstorable text, an attribute named `__proto__`): the schema then decides,
 * with its message. It never accepts what the schema refuses, and gives the same object:
 * known keys only, present ones only (test/tokenFastPath.test.ts compares the two).
 */
export function quickClaims(p: Record<string, unknown>): Claims | undefined {
  if (typeof p.iss !== 'string') return undefined;
  const out: Claims = { iss: p.iss };
  for (const k of ['sub', 'name', 'metadata'] as const) {
    const v = p[k];
    if (v === undefined) continue;
    if (!storable(v)) return undefined;
    out[k] = v;
  }
  if (p.attributes !== undefined) {
    const a = p.attributes;
    if (!isObject(a) || Object.hasOwn(a, '__proto__')) return undefined;
    const attrs: Record<string, string> = {};
    for (const key of Object.keys(a)) {
      const v = a[key];
      if (!storable(key) || !storable(v)) return undefined;
      attrs[key] = v;
    }
    out.attributes = attrs;
  }
  if (p.video !== undefined) {
    const video = quickGrant(p.video);
    if (!video) return undefined;
    out.video = video;
  }
  if (p.mesh !== undefined) {
    if (typeof p.mesh !== 'boolean') return undefined;
    out.mesh = p.mesh;
  }
  if (p.sha256 !== undefined) {
    if (typeof p.sha256 !== 'string') return undefined;
    out.sha256 = p.sha256;
  }
  for (const k of ['exp', 'nbf'] as const) {
    const v = p[k];
    if (v === undefined) continue;
    // zod's z.number() refuses Infinity (JSON's 1e400).
    if (typeof v !== 'number' || !Number.isFinite(v)) return undefined;
    out[k] = v;
  }
  return out;
}

function quickGrant(v: unknown): VideoGrant | undefined {
  if (!isObject(v)) return undefined;
  const out: VideoGrant = {};
  if (v.room !== undefined) {
    if (!storable(v.room)) return undefined;
    out.room = v.room;
  }
  if (v.canPublishSources !== undefined) {
    const s = v.canPublishSources;
    if (!Array.isArray(s) || !s.every(storable)) return undefined;
    out.canPublishSources = [...(s as string[])];
  }
  for (const f of GRANT_FLAGS) {
    const b = v[f];
    if (b === undefined) continue;
    if (typeof b !== 'boolean') return undefined;
    out[f] = b;
  }
  return out;
}
