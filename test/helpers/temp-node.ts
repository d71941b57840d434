/** An in-process RumNode in a temporary directory, for tests below the HTTP layer. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { authorSigned } from '../../bridges/nostr/author.ts';
import { ConfigSchema, type ConfigInput } from '../../src/config/schema.ts';
import { RumNode } from '../../src/node.ts';
import { TEST_PASSWORD } from './node-process.ts';

export async function openTempNode(
  config: ConfigInput = {},
  dir = mkdtempSync(join(tmpdir(), 'rum-node-')),
) {
  const node = await RumNode.open({
    config: ConfigSchema.parse({
      configDir: join(dir, 'config'),
      dataDir: join(dir, 'data'),
      keystoreDir: join(dir, 'keystore'),
      ...config,
    }),
    logger: pino({ level: 'silent' }),
    keystorePassword: TEST_PASSWORD,
    keystoreScryptN: 1 << 10,
    // As `rum fullnode` runs it: public posts carry their author's Nostr event.
    postExtension: authorSigned,
  });
  return { node, dir };
}
