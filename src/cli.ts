#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from 'commander';
import { createToken, type VideoGrant } from './auth/token.js';
import { ConfigError, DEV_API_KEY, DEV_API_SECRET, loadConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { AuraServer } from './server.js';
import { VERSION } from './version.js';

const GRANT_NAMES = [
  'roomJoin', 'roomCreate', 'roomList', 'roomAdmin', 'roomRecord', 'canPublish', 'canSubscribe',
  'canPublishData', 'canUpdateOwnMetadata', 'hidden', 'recorder', 'agent',
] as const;

function parseIntArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('not an integer');
  return n;
}

/** "roomAdmin,canPublish=false" -> { roomAdmin: true, canPublish: false } */
export function parseGrants(spec: string): Partial<Record<(typeof GRANT_NAMES)[number], boolean>> {
  const out: Record<string, boolean> = {};
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [name, value = 'true'] = part.split('=');
    if (!(GRANT_NAMES as readonly string[]).includes(name!)) {
      throw new InvalidArgumentError(`unknown grant ${name}; known: ${GRANT_NAMES.join(', ')}`);
    }
    if (value !== 'true' && value !== 'false') throw new InvalidArgumentError(`grant ${name}: use true or false`);
    out[name!] = value === 'true';
  }
  return out;
}

function loadOrExit(file: string | undefined, overrides: Record<string, unknown>): Config {
  try {
    return loadConfig({ file, overrides });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`auralink: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

const program = new Command()
  .name('auralink')
  .description('AuraLink RTC server: signalling, SFU, mesh router, TURN')
  .version(VERSION);

program
  .command('serve', { isDefault: true })
  .description('run the server')
  .option('-c, --config <file>', 'YAML config file (over config/default.yaml)', process.env.AURALINK_CONFIG)
  .option('-p, --port <port>', 'HTTP + WebSocket port', parseIntArg)
  .option('--bind <address>', 'address to listen on')
  .option('--dev', 'development mode: adds the dev API key pair and prints it')
  .addOption(new Option('--log-level <level>').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']))
  .addOption(new Option('--role <role>', 'edge: rooms + SFU + TURN; relay: TURN and mesh only').choices(['edge', 'relay']))
  .option('--region <region>', 'mesh region of this node')
  .action(async (o: { config?: string; port?: number; bind?: string; dev?: boolean; logLevel?: string; role?: string; region?: string }) => {
    const overrides: Record<string, unknown> = {};
    if (o.role || o.region) overrides.mesh = { ...(o.role ? { role: o.role } : {}), ...(o.region ? { region: o.region } : {}) };
    if (o.port !== undefined) overrides.port = o.port;
    if (o.bind) overrides.bind_address = o.bind;
    if (o.dev) overrides.development = true;
    if (o.logLevel) overrides.log_level = o.logLevel;
    const config = loadOrExit(o.config, overrides);
    const server = new AuraServer(config);
    // Signals are taken from the start: one that comes while the server is still starting is
    // acted on once it has started (a clean drain and close), a second one exits at once.
    let started = false;
    let early: string | undefined;
    const onSignal = (signal: string): void => {
      if (started) return stop(signal);
      if (early) process.exit(1);
      early = signal;
    };
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    process.on('SIGINT', () => onSignal('SIGINT'));
    try {
      await server.listen();
    } catch (err) {
      server.log.fatal({ err }, 'cannot start');
      process.exit(1);
    }
    if (config.development) {
      const token = createToken(DEV_API_KEY, DEV_API_SECRET, {
        identity: 'dev-user',
        video: { roomJoin: true, room: 'dev-room' },
      });
      process.stderr.write(
        `\nDEVELOPMENT MODE: API key "${DEV_API_KEY}", secret "${DEV_API_SECRET}"\n` +
          `signalling: ws://127.0.0.1:${server.port}${config.signal.path}?access_token=${token}\n\n`,
      );
    }
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) {
        server.log.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      stopping = true;
      server.log.info({ signal }, 'shutting down');
      void server
        .drain()
        .then(() => server.close())
        .then(() => {
          server.log.info('stopped');
          process.exit(0);
        });
    };
    started = true;
    if (early) stop(early);
  });

const token = program.command('token').description('access tokens');
token
  .command('create')
  .description('mint a LiveKit-format access token')
  .option('--room <room>', 'room name (required unless --mesh)')
  .requiredOption('--identity <identity>', 'participant identity (a node id with --mesh)')
  .option('--mesh', 'a mesh node token for the /internal/mesh endpoints instead of a room token')
  .option('--name <name>', 'display name')
  .option('--metadata <metadata>', 'participant metadata')
  .option('--grants <list>', 'comma list of grants, e.g. "roomAdmin,canPublish=false" (roomJoin is always set)', parseGrants)
  .option('--ttl <seconds>', 'validity in seconds', parseIntArg, 6 * 3600)
  .option('--api-key <key>', 'API key (default: the only key in config, or the dev key with --dev)')
  .option('--api-secret <secret>', 'API secret (default: from config)')
  .option('-c, --config <file>', 'YAML config file', process.env.AURALINK_CONFIG)
  .option('--dev', 'use the development key pair')
  .action(async (o: {
    room?: string; mesh?: boolean; identity: string; name?: string; metadata?: string; grants?: Partial<VideoGrant>;
    ttl: number; apiKey?: string; apiSecret?: string; config?: string; dev?: boolean;
  }) => {
    if (!o.room && !o.mesh) {
      process.stderr.write('auralink: --room is required (or --mesh for a node token)\n');
      process.exit(2);
    }
    let key = o.apiKey;
    let secret = o.apiSecret;
    if (!secret) {
      const config = loadOrExit(o.config, o.dev ? { development: true } : {});
      const keys = Object.keys(config.keys);
      key ??= o.dev ? DEV_API_KEY : keys.length === 1 ? keys[0] : undefined;
      if (!key) {
        process.stderr.write('auralink: name the key with --api-key (config has ' + (keys.length ? keys.join(', ') : 'no keys; try --dev') + ')\n');
        process.exit(2);
      }
      secret = config.keys[key];
      if (!secret) {
        process.stderr.write(`auralink: API key ${key} is not in the config\n`);
        process.exit(2);
      }
    }
    if (!key) {
      process.stderr.write('auralink: --api-secret needs --api-key\n');
      process.exit(2);
    }
    const jwt = createToken(key, secret, {
      identity: o.identity,
      name: o.name,
      metadata: o.metadata,
      ttlSeconds: o.ttl,
      video: o.mesh ? {} : { ...o.grants, roomJoin: true, room: o.room },
      mesh: o.mesh,
    });
    process.stdout.write(jwt + '\n');
  });

program.parseAsync().catch((err: unknown) => {
  process.stderr.write(`auralink: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
