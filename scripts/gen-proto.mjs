// Compiles proto/auralink.proto into a JSON descriptor module, so the codec loads the same
// schema in Node and in browsers (no .proto parsing at run time).
import protobuf from 'protobufjs';
import { mkdirSync, writeFileSync } from 'node:fs';
const root = protobuf.loadSync(new URL('../proto/auralink.proto', import.meta.url).pathname);
mkdirSync(new URL('../src/signal/gen/', import.meta.url), { recursive: true });
writeFileSync(
  new URL('../src/signal/gen/descriptor.ts', import.meta.url),
  `// Generated from proto/auralink.proto by scripts/gen-proto.mjs. Do not edit.\n` +
    `export const descriptor = ${JSON.stringify(root.toJSON(), null, 1)} as const;\n`,
);
