import type { z } from 'zod';
import type { ActivityEvent } from '../domain/event.js';
import type { RecordInput } from '../domain/inputs.js';
import { builtinActions } from '../registry/builtin-actions.js';
import type { ActivityService } from './activity-service.js';

type BuiltinAction = (typeof builtinActions)[number];
type NamespaceOf<Name> = Name extends `${infer Namespace}.${string}` ? Namespace : never;
type MetadataOf<Action extends BuiltinAction> = z.input<z.ZodObject<Action['metadata']>> & {
  context?: Record<string, unknown>;
};

/** What a helper takes: the event's fields without `action`; `tenant_id` defaults to the logger's. */
export type HelperInput<Action extends BuiltinAction> = Omit<
  RecordInput,
  'action' | 'metadata' | 'tenant_id'
> & {
  tenant_id?: string;
} & (Record<string, never> extends MetadataOf<Action>
    ? { metadata?: MetadataOf<Action> }
    : { metadata: MetadataOf<Action> });

/** `log.auth.loginSucceeded({...})`: one typed method per built-in action, by namespace. */
export type ActivityLog = {
  [Namespace in NamespaceOf<BuiltinAction['name']>]: {
    [Action in Extract<BuiltinAction, { name: `${Namespace}.${string}` }> as Action['helper']]: (
      input: HelperInput<Action>,
    ) => Promise<ActivityEvent>;
  };
};

/**
 * Typed helpers over `service.record`.
 *
 * @example
 *   const log = createActivityLog(service, { tenantId: 'acme' });
 *   await log.auth.loginFailed({ actor_id: 'u_1', status: 'failure', metadata: { reason: 'mfa_failed' } });
 */
export function createActivityLog(
  service: ActivityService,
  defaults: { tenantId?: string } = {},
): ActivityLog {
  const log: Record<string, Record<string, (input: Record<string, unknown>) => Promise<ActivityEvent>>> = {};
  for (const action of builtinActions) {
    const [namespace] = action.name.split('.') as [string];
    log[namespace] ??= {};
    log[namespace][action.helper] = (input) =>
      service.record({ tenant_id: defaults.tenantId, ...input, action: action.name });
  }
  return log as unknown as ActivityLog;
}
