import { Command } from 'commander';
import { ActivityError } from '../../domain/errors.js';
import { action, type CliIo, type CommonOptions, withCommonOptions } from '../context.js';

interface TokenOptions extends CommonOptions {
  tenant: string;
  role?: string;
  scope?: string[];
  sub: string;
  ttl: string;
}

export function tokenCommand(io: CliIo, setExitCode: (code: number) => void): Command {
  return withCommonOptions(
    new Command('token')
      .description('mint a signed bearer token for `activity serve` (HS256 with ACTIVITY_JWT_SECRET)')
      .requiredOption('--tenant <id>', 'tenant the token reads and writes')
      .option('--role <role>', 'role claim; owner and admin grant activity:read')
      .option(
        '--scope <scope>',
        'scope to grant, e.g. activity:read or activity:write (repeatable)',
        (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
      )
      .option('--sub <id>', 'subject: who the token identifies', 'cli')
      .option('--ttl <duration>', 'lifetime, e.g. 15m, 12h, 30d (at most 365d)', '1h'),
    { database: false },
  )
    .addHelpText(
      'after',
      `
activity:write is granted only by --scope, never by a role.

Examples:
  $ activity token --tenant acme --role admin
  $ activity token --tenant acme --scope activity:read --scope activity:write --ttl 15m
  $ curl -H "Authorization: Bearer $(activity token --tenant acme --role admin)" \\
      http://127.0.0.1:8080/api/v1/activity
  $ activity token --tenant acme --sub ci --scope activity:write --format json | jq -r .expires_at`,
    )
    .action(
      action<TokenOptions>(io, setExitCode, async (options, context) => {
        const { parseDuration } = await import('../../domain/inputs.js');
        const { createTokenSigner } = await import('../../auth/sign-token.js');
        const { isOneWord, maxTokenLifetimeDays, maxTokenLifetimeSeconds } = await import(
          '../../auth/token-claims.js'
        );
        const { tenantIdProblem } = await import('../../domain/tenant-id.js');
        const tenantProblem = tenantIdProblem(options.tenant);
        if (tenantProblem !== undefined)
          throw new ActivityError('USAGE_INVALID', `--tenant ${tenantProblem}`);
        const scopes = options.scope ?? [];
        const ttlMs = parseDuration(options.ttl);
        // serve refuses a token that lives longer, so it is never minted.
        if (ttlMs === undefined || ttlMs <= 0 || ttlMs > maxTokenLifetimeSeconds * 1000) {
          throw new ActivityError(
            'USAGE_INVALID',
            `--ttl must be a duration like 15m, 12h or 30d, at most ${maxTokenLifetimeDays}d`,
          );
        }
        if (options.sub.trim() === '') throw new ActivityError('USAGE_INVALID', '--sub must not be empty');
        if (options.role !== undefined && !isOneWord(options.role)) {
          throw new ActivityError('USAGE_INVALID', '--role must be one word');
        }
        if (scopes.some((scope) => !isOneWord(scope))) {
          throw new ActivityError('USAGE_INVALID', '--scope must be one word; repeat --scope for more');
        }

        const config = await context.config();
        // The configured issuer and audience go in, so that serve's check passes.
        const signer = createTokenSigner({
          jwtSecret: config.jwtSecret,
          issuer: config.jwtIssuer,
          audience: config.jwtAudience,
        });
        const { token, expiresAt } = await signer.sign({
          tenantId: options.tenant,
          subject: options.sub,
          role: options.role,
          scopes,
          ttlSeconds: ttlMs / 1000,
        });
        if (context.format === 'json') {
          await context.out.write(`${JSON.stringify({ token, expires_at: expiresAt.toISOString() })}\n`);
        } else {
          await context.out.write(`${token}\n`);
        }
        // Minted all the same (another service may know them), but said: a typo grants nothing.
        const [{ activityScopes }, { knownRoles }] = await Promise.all([
          import('../../auth/token-claims.js'),
          import('../../auth/verify-token.js'),
        ]);
        const { suggestion } = await import('../../domain/closest-names.js');
        const unknown = [
          ...scopes.flatMap((scope) =>
            (activityScopes as readonly string[]).includes(scope)
              ? []
              : [`scope ${scope}${suggestion(scope, activityScopes)}`],
          ),
          ...(options.role === undefined || knownRoles.includes(options.role)
            ? []
            : [`role ${options.role}${suggestion(options.role, knownRoles)}`]),
        ];
        for (const each of unknown) {
          context.io.stderr.write(`warning: serve knows no ${each}: it grants nothing there\n`);
        }
        if (options.role !== 'owner' && options.role !== 'admin' && scopes.length === 0) {
          context.io.stderr.write('warning: this token grants no scope (add --role admin or --scope S)\n');
        }
        return 0;
      }),
    );
}
