import { Command } from 'commander';
import { ActivityError } from '../../domain/errors.js';
import { action, type CliIo, type CommonOptions, tenantFlag, withCommonOptions } from '../context.js';

interface ProofOptions extends CommonOptions {
  tenant: string;
  seq: string;
  size?: string;
}

export function proofCommand(io: CliIo, setExitCode: (code: number) => void): Command {
  return withCommonOptions(
    new Command('proof')
      .description("the inclusion proof (RFC 9162) of one event against the tenant's latest checkpoint")
      .requiredOption('--tenant <id>', 'the tenant')
      .requiredOption('--seq <n>', "the event's seq")
      .option('--size <m>', 'against the checkpoint of this many events instead of the latest')
      .addHelpText(
        'after',
        `
Examples:
  $ activity proof --tenant acme --seq 42
  $ activity proof --tenant acme --seq 42 --size 1000 --format json > proof.json`,
      ),
  ).action(
    action<ProofOptions>(io, setExitCode, async (options, context) => {
      const tenantId = tenantFlag(options.tenant);
      const seq = positiveFlag('--seq', options.seq);
      const size = options.size === undefined ? undefined : positiveFlag('--size', options.size);
      const { usingIntegrity } = await import('../../app/open-app.js');
      const proof = await usingIntegrity(
        await context.config(),
        (integrity) => integrity.proof(tenantId, seq, size),
        { existing: true },
      );
      if (context.format === 'table') {
        await context.out.write(
          `event ${proof.seq} of ${proof.tenant_id} in the tree of ${proof.tree_size.toLocaleString('en')} events\n` +
            `leaf hash: ${proof.leaf_hash}\nproof:\n${proof.proof.map((hash) => `  ${hash}\n`).join('')}` +
            `checkpoint:\n${proof.checkpoint.replace(/^/gm, '  ').trimEnd()}\n`,
        );
      } else {
        await context.out.write(`${JSON.stringify(proof)}\n`);
      }
      return 0;
    }),
  );
}

/** A whole number from 1, as the flag spells it; a usage error otherwise. */
function positiveFlag(flag: string, value: string): number {
  const number = /^[1-9]\d{0,15}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(number))
    throw new ActivityError('USAGE_INVALID', `${flag} must be a whole number from 1`);
  return number;
}
