import { ScalarType, type AnyMessage, type FieldInfo, type Message } from '@bufbuild/protobuf';
import { unstorableText } from '../util/text.js';

type Msg = Message<AnyMessage>;

function checkString(v: unknown, path: string): { field: string; reason: string } | undefined {
  if (typeof v !== 'string') return undefined;
  const reason = unstorableText(v);
  return reason ? { field: path, reason } : undefined;
}

function checkValue(f: FieldInfo, v: unknown, path: string): { field: string; reason: string } | undefined {
  if (f.kind === 'scalar' && f.T === ScalarType.STRING) return checkString(v, path);
  if (f.kind === 'message' && v && typeof v === 'object') return findUnstorableText(v as Msg, `${path}.`);
  return undefined;
}

/**
 * The first string field (nested messages, repeated fields, oneofs and maps included) of a
 * decoded protobuf message holding text PostgreSQL cannot store, named by its path
 * ("participant.name", "destination_identities[2]", "attributes[key]"); undefined if none.
 * Generic over the message type, so every Twirp method is covered without a list of fields.
 */
export function findUnstorableText(msg: Msg, prefix = ''): { field: string; reason: string } | undefined {
  const m = msg as unknown as Record<string, unknown>;
  for (const f of msg.getType().fields.list()) {
    const path = `${prefix}${f.name}`;
    let v: unknown;
    if (f.oneof) {
      const o = m[f.oneof.localName] as { case?: string; value?: unknown } | undefined;
      if (o?.case !== f.localName) continue;
      v = o.value;
    } else {
      v = m[f.localName];
    }
    if (v === undefined || v === null) continue;
    let found: { field: string; reason: string } | undefined;
    if (f.kind === 'map') {
      for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
        found = (f.K === ScalarType.STRING ? checkString(k, `${path} (a key)`) : undefined)
          ?? (f.V.kind === 'scalar' && f.V.T === ScalarType.STRING ? checkString(val, `${path}[${JSON.stringify(k)}]`) : undefined)
          ?? (f.V.kind === 'message' && val && typeof val === 'object' ? findUnstorableText(val as Msg, `${path}[${JSON.stringify(k)}].`) : undefined);
        if (found) return found;
      }
    } else if (f.repeated && Array.isArray(v)) {
      for (let i = 0; i < v.length && !found; i++) found = checkValue(f, v[i], `${path}[${i}]`);
    } else {
      found = checkValue(f, v, path);
    }
    if (found) return found;
  }
  return undefined;
}
