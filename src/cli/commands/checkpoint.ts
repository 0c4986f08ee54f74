import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command } from 'commander';
import { ActivityError } from '../../domain/errors.js';
import type { SignedCheckpoint } from '../../service/checkpoint-service.js';
import {
  action,
  type CliIo,
  type CommonOptions,
  tenantFlag,
  withActorOption,
  withCommonOptions,
} from '../context.js';
import { csvRow, escapeControl } from '../render/text.js';

interface CheckpointOptions extends CommonOptions {
  tenant?: string;
  outDir?: string;
  publicKey?: boolean;
}

export function checkpointCommand(io: CliIo, setExitCode: (code: number) => void): Command {
  return withCommonOptions(
    withActorOption(new Command('checkpoint'))
      .description(
        'sign and store the tree head of every tenant with new events (or one), as C2SP checkpoints; refuses, with exit 4, a tree that does not extend the last one signed',
      )
      .option('--tenant <id>', 'only this tenant')
      .option(
        '--out-dir <dir>',
        'also write each checkpoint to DIR/<tenant>.<size>.checkpoint, to keep outside the database',
      )
      .option('--public-key', 'print the public key that verifies checkpoints, and sign nothing')
      .addHelpText(
        'after',
        `
The key is ACTIVITY_SIGNING_KEY_FILE (Ed25519, PKCS#8 PEM); the embedded database
keeps its own in its data directory. Run it from cron, and keep what it prints (or
--out-dir) where the database's operators cannot edit it.

Examples:
  $ activity checkpoint                                  every tenant with new events
  $ activity checkpoint --tenant acme --format json
  $ activity checkpoint --out-dir /mnt/checkpoints       then copy them to object storage
  $ activity checkpoint --public-key > activity.pub      for verify --public-key`,
      ),
  ).action(
    action<CheckpointOptions>(io, setExitCode, async (options, context) => {
      const tenantId = options.tenant === undefined ? undefined : tenantFlag(options.tenant);
      const config = await context.config();
      const actor = context.actor(config);
      const { usingIntegrity } = await import('../../app/open-app.js');
      const { publicKey, checkpoints } = await usingIntegrity(config, async (integrity) => {
        const signer = await integrity.signer();
        if (options.publicKey) return { publicKey: signer.publicKey, checkpoints: undefined };
        return {
          publicKey: signer.publicKey,
          checkpoints: await integrity.checkpoint(
            {
              ...(tenantId === undefined ? {} : { tenantId }),
              ...(options.outDir === undefined ? {} : { outside: await latestWritten(options.outDir) }),
            },
            actor,
          ),
        };
      });
      if (checkpoints === undefined) {
        await context.out.write(`${publicKey}\n`);
        return 0;
      }
      if (options.outDir !== undefined) await writeCheckpoints(options.outDir, checkpoints);
      await context.out.write(renderCheckpoints(publicKey, checkpoints, context.format));
      return 0;
    }),
  );
}

/** The latest checkpoint written to `directory` for each tenant (none when it does not exist yet). */
async function latestWritten(directory: string): Promise<Map<string, string>> {
  let names: string[];
  try {
    names = await readdir(directory);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw new ActivityError(
      'INPUT_UNREADABLE',
      `--out-dir ${directory} cannot be read (${(error as NodeJS.ErrnoException).code})`,
    );
  }
  const latest = new Map<string, { size: number; name: string }>();
  for (const name of names) {
    const match = /^(.+)\.(\d+)\.checkpoint$/.exec(name);
    if (!match) continue;
    const [, tenantId = '', size = '0'] = match;
    if (Number(size) > (latest.get(tenantId)?.size ?? -1)) latest.set(tenantId, { size: Number(size), name });
  }
  const notes = new Map<string, string>();
  for (const [tenantId, { name }] of latest)
    notes.set(tenantId, await readFile(join(directory, name), 'utf8'));
  return notes;
}

/** Each note to its own file, written whole then renamed: a copier never reads half of one. */
async function writeCheckpoints(directory: string, checkpoints: readonly SignedCheckpoint[]): Promise<void> {
  await mkdir(directory, { recursive: true });
  for (const checkpoint of checkpoints) {
    const path = join(directory, `${checkpoint.tenantId}.${checkpoint.size}.checkpoint`);
    await writeFile(`${path}.tmp`, checkpoint.note);
    await rename(`${path}.tmp`, path);
  }
}

function renderCheckpoints(
  publicKey: string,
  checkpoints: readonly SignedCheckpoint[],
  format: string,
): string {
  const rows = checkpoints.map((checkpoint) => ({
    tenant_id: checkpoint.tenantId,
    size: checkpoint.size,
    root_hash: Buffer.from(checkpoint.rootHash).toString('base64'),
    note: checkpoint.note,
  }));
  switch (format) {
    case 'json':
    case 'ndjson':
      return `${JSON.stringify({ public_key: publicKey, checkpoints: rows })}\n`;
    case 'csv':
      return (
        csvRow(['tenant_id', 'size', 'root_hash', 'note']) +
        rows.map((row) => csvRow([row.tenant_id, row.size, row.root_hash, row.note])).join('')
      );
    default:
      return `${
        rows.length === 0
          ? 'no tenant has events since its last checkpoint: nothing to sign\n'
          : rows
              .map(
                (row) =>
                  `${escapeControl(row.tenant_id)}: ${row.size.toLocaleString('en')} events, root ${row.root_hash}\n`,
              )
              .join('')
      }public key: ${publicKey}\n`;
  }
}
