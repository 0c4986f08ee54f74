import { constants, createReadStream } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Command } from 'commander';
import { ActivityError, errorCodes } from '../../domain/errors.js';
import type { TenantVerification, VerifyReport } from '../../integrity/report.js';
import type { NoteVerifier } from '../../integrity/signed-note.js';
import type { ExternalCheckpoint } from '../../service/verify-service.js';
import { action, type CliIo, type CommonOptions, tenantFlag, withCommonOptions } from '../context.js';
import { progressText, startProgress } from '../progress.js';
import { csvRow, escapeControl } from '../render/text.js';

interface VerifyOptions extends CommonOptions {
  tenant?: string;
  checkpoint: string[];
  publicKey: string[];
  bundle?: string;
}

export function verifyCommand(io: CliIo, setExitCode: (code: number) => void): Command {
  return withCommonOptions(
    new Command('verify')
      .description(
        'recompute every leaf and the tree from the stored events and check them, and every checkpoint, for edits, deletions and insertions; exit 4 on any problem',
      )
      .option('--tenant <id>', 'only this tenant')
      .option(
        '--checkpoint <file>',
        'also hold the tree to this checkpoint, kept outside the database (repeatable)',
        (value: string, previous: string[]) => [...previous, value],
        [],
      )
      .option(
        '--public-key <key>',
        'the verifier key, or a file holding it (default: from the signing key); repeat it for keys rotated out',
        (value: string, previous: string[]) => [...previous, value],
        [],
      )
      .option(
        '--bundle <dir>',
        'check an offline bundle (activity export --out) instead: no database, only --public-key',
      )
      .addHelpText(
        'after',
        `
Problems are named by tenant and seq: modified, missing, inserted, truncated,
signature, inconsistent. Exit 0 only when everything checked holds; 4 otherwise.

Examples:
  $ activity verify
  $ activity verify --tenant acme --checkpoint /mnt/checkpoints/acme.1000.checkpoint
  $ activity verify --bundle ./acme-2026-11 --public-key activity.pub`,
      ),
  ).action(
    action<VerifyOptions>(io, setExitCode, async (options, context) => {
      if (options.bundle !== undefined) {
        if (options.publicKey.length === 0) {
          throw new ActivityError(
            'USAGE_INVALID',
            '--bundle needs --public-key: the key you trust, not one the bundle brings',
          );
        }
        if (options.tenant !== undefined || options.checkpoint.length > 0) {
          throw new ActivityError('USAGE_INVALID', '--bundle takes only --public-key');
        }
        const verifiers = await Promise.all(options.publicKey.map(verifierFrom));
        const tenant = await verifyBundleDirectory(options.bundle, verifiers);
        return report({ ok: tenant.problems.length === 0, tenants: [tenant] }, context);
      }
      const tenantId = options.tenant === undefined ? undefined : tenantFlag(options.tenant);
      const checkpoints = await readCheckpoints(options.checkpoint);
      const given =
        options.publicKey.length === 0 ? undefined : await Promise.all(options.publicKey.map(verifierFrom));
      const { usingIntegrity } = await import('../../app/open-app.js');
      const spinner = await startProgress(io, 'verifying');
      const started = performance.now();
      try {
        const result = await usingIntegrity(
          await context.config(),
          async (integrity) =>
            integrity.verify(given ?? (await signerVerifier(integrity)), {
              ...(tenantId === undefined ? {} : { tenantId }),
              checkpoints,
              onProgress(events, total) {
                spinner.text = progressText(
                  events,
                  'events checked',
                  started,
                  total > 0 ? events / total : undefined,
                );
              },
            }),
          { existing: true },
        );
        spinner.stop();
        if (checkpoints.length === 0 && context.format === 'table') {
          io.stderr.write(
            "note: checked against the database's own checkpoints only; keep copies outside it (activity checkpoint --out-dir) and give them with --checkpoint\n",
          );
        }
        return report(result, context);
      } finally {
        spinner.stop();
      }
    }),
  );
}

async function signerVerifier(integrity: {
  signer(): Promise<{ trusted: readonly NoteVerifier[] }>;
}): Promise<readonly NoteVerifier[]> {
  try {
    return (await integrity.signer()).trusted;
  } catch (error) {
    if (error instanceof ActivityError && error.code === 'CONFIG_INVALID') {
      throw new ActivityError(
        'USAGE_INVALID',
        `verify needs the public key: --public-key KEY (from \`activity checkpoint --public-key\`), or the signing key (${error.message})`,
      );
    }
    throw error;
  }
}

/** The verifier key text, or the file that holds it. */
async function verifierFrom(value: string): Promise<NoteVerifier> {
  const { parseVerifierKey } = await import('../../integrity/signed-note.js');
  let text = value;
  if (!/^[^\s+]+\+[0-9a-f]{8}\+/.test(value)) {
    try {
      text = await readFile(value, 'utf8');
    } catch (error) {
      throw new ActivityError(
        'USAGE_INVALID',
        `--public-key is neither a verifier key (<name>+<key id>+<key>) nor a readable file (${(error as NodeJS.ErrnoException).code})`,
      );
    }
  }
  try {
    return parseVerifierKey(text);
  } catch (error) {
    throw new ActivityError('USAGE_INVALID', `--public-key: ${(error as Error).message}`);
  }
}

async function readCheckpoints(files: readonly string[]): Promise<ExternalCheckpoint[]> {
  return Promise.all(
    files.map(async (file) => {
      try {
        return { source: file, note: await readFile(file, 'utf8') };
      } catch (error) {
        throw new ActivityError(
          'INPUT_UNREADABLE',
          `--checkpoint ${file} cannot be read (${(error as NodeJS.ErrnoException).code})`,
        );
      }
    }),
  );
}

async function verifyBundleDirectory(
  directory: string,
  verifiers: readonly NoteVerifier[],
): Promise<TenantVerification> {
  const { bundleFiles, verifyBundle } = await import('../../integrity/bundle.js');
  const unreadable = (name: string, error: unknown) =>
    new ActivityError(
      'INPUT_UNREADABLE',
      `${join(directory, name)} cannot be read (${(error as NodeJS.ErrnoException).code}): --bundle is a directory written by \`activity export --out\``,
    );
  const read = async (name: string) => {
    try {
      return await readFile(join(directory, name), 'utf8');
    } catch (error) {
      throw unreadable(name, error);
    }
  };
  const [checkpoint, proof] = await Promise.all([read(bundleFiles.checkpoint), read(bundleFiles.proof)]);
  const eventsPath = join(directory, bundleFiles.events);
  try {
    await access(eventsPath, constants.R_OK);
  } catch (error) {
    throw unreadable(bundleFiles.events, error);
  }
  const lines = createInterface({
    input: createReadStream(eventsPath, 'utf8'),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  try {
    return await verifyBundle({ checkpoint, proof, lines }, verifiers);
  } catch (error) {
    if (error instanceof RangeError)
      throw new ActivityError('INPUT_UNREADABLE', `the bundle in ${directory}: ${error.message}`);
    throw error;
  } finally {
    lines.close();
  }
}

async function report(
  result: VerifyReport,
  context: { out: { write(text: string): Promise<void> }; format: string },
) {
  await context.out.write(renderReport(result, context.format));
  return result.ok ? 0 : errorCodes.INTEGRITY_FAILED.exit;
}

function renderReport(result: VerifyReport, format: string): string {
  switch (format) {
    case 'json':
    case 'ndjson':
      return `${JSON.stringify(result)}\n`;
    case 'csv':
      return (
        csvRow(['tenant_id', 'seq', 'kind', 'message']) +
        result.tenants
          .flatMap((tenant) =>
            tenant.problems.map((problem) =>
              csvRow([tenant.tenant_id, problem.seq, problem.kind, problem.message]),
            ),
          )
          .join('')
      );
    default: {
      const lines = result.tenants.flatMap((tenant) => [
        `${escapeControl(tenant.tenant_id)}: ${tenant.verified.toLocaleString('en')} of ${tenant.size.toLocaleString('en')} events verified${tenant.problems.length === 0 ? '' : `, ${tenant.problems.length} problem(s)`}`,
        ...tenant.problems.map(
          (problem) => `  seq ${problem.seq} ${problem.kind}: ${escapeControl(problem.message)}`,
        ),
        ...tenant.unverified.map(
          (range) => `  seq ${range.from_seq}..${range.to_seq} not verified: ${range.reason}`,
        ),
      ]);
      const problems = result.tenants.reduce((sum, tenant) => sum + tenant.problems.length, 0);
      lines.push(
        result.ok
          ? `ok: ${result.tenants.length} tenant(s) verified`
          : `FAILED: ${problems} problem(s) in ${result.tenants.filter((tenant) => tenant.problems.length > 0).length} tenant(s)`,
      );
      return `${lines.join('\n')}\n`;
    }
  }
}
