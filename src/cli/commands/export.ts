import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command } from 'commander';
import { ActivityError } from '../../domain/errors.js';
import { resolveTimeInput, timeInputSchema } from '../../domain/inputs.js';
import {
  action,
  type CliIo,
  type CommonOptions,
  tenantFlag,
  withActorOption,
  withCommonOptions,
} from '../context.js';
import { escapeControl } from '../render/text.js';

interface ExportOptions extends CommonOptions {
  tenant: string;
  since?: string;
  until?: string;
  out: string;
}

export function exportCommand(io: CliIo, setExitCode: (code: number) => void): Command {
  return withCommonOptions(
    withActorOption(new Command('export'))
      .description(
        "write an offline bundle: a tenant's events (a contiguous seq range) with what proves them against its latest signed checkpoint",
      )
      .requiredOption('--tenant <id>', 'the tenant')
      .option('--since <time>', 'from the first event at or after TIME: RFC 3339, or an age like 30d')
      .option('--until <time>', 'to the last event before TIME')
      .requiredOption('--out <dir>', 'the bundle directory to create (must not exist, or be empty)')
      .addHelpText(
        'after',
        `
The bundle holds events.ndjson, checkpoint and proof.json (docs/integrity.md). Anyone
with the public key checks it, with no database:
  $ activity verify --bundle DIR --public-key activity.pub

Examples:
  $ activity checkpoint --tenant acme && activity export --tenant acme --out ./acme-bundle
  $ activity export --tenant acme --since 2026-11-01T00:00:00Z --until 2026-12-01T00:00:00Z --out ./acme-2026-11`,
      ),
  ).action(
    action<ExportOptions>(io, setExitCode, async (options, context) => {
      const tenantId = tenantFlag(options.tenant);
      const now = new Date();
      const time = (flag: 'since' | 'until') => {
        const value = options[flag];
        if (value === undefined) return undefined;
        if (!timeInputSchema.safeParse(value).success) {
          throw new ActivityError(
            'USAGE_INVALID',
            `--${flag} must be RFC 3339 (2026-01-31T12:00:00Z) or an age like 15m, 24h, 7d`,
          );
        }
        return resolveTimeInput(`--${flag}`, value, now);
      };
      const since = time('since');
      const until = time('until');
      await assertEmptyOrMissing(options.out);
      const { usingIntegrity } = await import('../../app/open-app.js');
      const { bundleFiles } = await import('../../integrity/bundle.js');
      let written = 0;
      const config = await context.config();
      const actor = context.actor(config);
      const proof = await usingIntegrity(
        config,
        async (integrity) => {
          const bundle = await integrity.bundle(
            tenantId,
            {
              ...(since === undefined ? {} : { since }),
              ...(until === undefined ? {} : { until }),
            },
            actor,
          );
          // Each file written under a .partial name, renamed once all are whole: a bundle
          // is there complete or not at all.
          const created = await mkdir(options.out, { recursive: true });
          const partial = (name: string) => join(options.out, `${name}.partial`);
          const names = Object.values(bundleFiles);
          try {
            await writeFile(partial(bundleFiles.checkpoint), bundle.checkpoint);
            await writeFile(partial(bundleFiles.proof), `${JSON.stringify(bundle.proof, null, 2)}\n`);
            const events = createWriteStream(partial(bundleFiles.events));
            try {
              for await (const event of bundle.events) {
                if (!events.write(`${JSON.stringify(event)}\n`)) await once(events, 'drain');
                written++;
              }
            } finally {
              events.end();
              await once(events, 'close');
            }
            for (const name of names) await rename(partial(name), join(options.out, name));
          } catch (error) {
            await Promise.all(names.map((name) => rm(partial(name), { force: true })));
            if (created !== undefined) await rm(options.out, { recursive: true, force: true });
            throw error;
          }
          return bundle.proof;
        },
        { existing: true },
      );
      const summary = {
        out: options.out,
        tenant_id: proof.tenant_id,
        first_seq: proof.first_seq,
        last_seq: proof.last_seq,
        tree_size: proof.tree_size,
        events: written,
      };
      await context.out.write(
        context.format === 'table'
          ? `${escapeControl(options.out)}: ${written.toLocaleString('en')} events of ${escapeControl(tenantId)}, seq ${proof.first_seq}..${proof.last_seq}, proved against its checkpoint of ${proof.tree_size.toLocaleString('en')}\n`
          : `${JSON.stringify(summary)}\n`,
      );
      return 0;
    }),
  );
}

async function assertEmptyOrMissing(directory: string): Promise<void> {
  try {
    if ((await readdir(directory)).length > 0) {
      throw new ActivityError(
        'USAGE_INVALID',
        `--out ${directory} exists and is not empty: nothing was written`,
      );
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'ENOTDIR')
      throw new ActivityError('USAGE_INVALID', `--out ${directory} is a file, not a directory`);
    throw error;
  }
}
