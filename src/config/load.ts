import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { configSchema, type Config } from './schema.js';

export const DEFAULT_CONFIG_PATH = fileURLToPath(new URL('../../../config/default.yaml', import.meta.url));

/** The development key pair, added only with --dev (and printed at start). */
export const DEV_API_KEY = 'devkey';
export const DEV_API_SECRET = 'auralink-development-secret-do-not-use-in-production';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Deep merge: objects merge key by key, anything else replaces. */
export function merge(base: Obj, over: Obj): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isObj(v) && isObj(out[k]) ? merge(out[k] as Obj, v) : v;
  }
  return out;
}

function setPath(target: Obj, path: string[], value: unknown): void {
  let cur = target;
  for (const key of path.slice(0, -1)) {
    if (!isObj(cur[key])) cur[key] = {};
    cur = cur[key] as Obj;
  }
  cur[path[path.length - 1]!] = value;
}

/** AURALINK_SIGNAL__MAX_FRAME_BYTES=1 -> { signal: { max_frame_bytes: 1 } }; values parsed as YAML. */
export function fromEnv(env: NodeJS.ProcessEnv): Obj {
  const out: Obj = {};
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('AURALINK_') || raw === undefined) continue;
    const path = name.slice('AURALINK_'.length).toLowerCase().split('__');
    if (path[0] === 'config' || path[0] === 'cache_dir') continue; // not config keys
    let value: unknown = raw;
    try {
      value = YAML.parse(raw);
    } catch {
      /* keep the raw string; the schema says whether it fits */
    }
    setPath(out, path, value ?? '');
  }
  return out;
}

export interface LoadOptions {
  file?: string;
  env?: NodeJS.ProcessEnv;
  overrides?: Obj; // from CLI flags or tests
}

function readYaml(path: string): Obj {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([`${path}: ${(err as Error).message}`]);
  }
  try {
    const doc = YAML.parse(text) ?? {};
    if (!isObj(doc)) throw new Error('top level must be a map');
    return doc;
  } catch (err) {
    throw new ConfigError([`${path}: ${(err as Error).message}`]);
  }
}

export function loadConfig(opts: LoadOptions = {}): Config {
  let raw: Obj = { ...readYaml(DEFAULT_CONFIG_PATH), development: false };
  if (opts.file) raw = merge(raw, readYaml(opts.file));
  raw = merge(raw, fromEnv(opts.env ?? process.env));
  if (opts.overrides) raw = merge(raw, opts.overrides);
  if (raw.development === true) {
    raw = merge(raw, { keys: { [DEV_API_KEY]: DEV_API_SECRET } });
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`),
    );
  }
  const cfg = parsed.data;
  if (!cfg.node_id) cfg.node_id = `${hostname()}-${process.pid}`;
  return cfg;
}
