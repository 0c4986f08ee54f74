import { z } from 'zod';
import { suggestion } from '../domain/closest-names.js';
import { ActivityError } from '../domain/errors.js';
import { isReservedAction, namespaceOf, reservedNamespace } from '../domain/event.js';
import { describeIssues, toFieldIssues } from '../domain/field-issues.js';
import { builtinActions } from './builtin-actions.js';
import { selfAuditActions } from './self-audit-actions.js';

/** `namespace.object.verb`, lower case, digits and underscores. */
export const actionNamePattern = /^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$/;

/** The free-form object every action accepts beside its declared fields. */
const contextSchema = z.record(z.string(), z.unknown());

export interface ActionDefinition {
  name: string;
  namespace: string;
  description: string;
  /** Strict: an undeclared key is rejected, never dropped. */
  schema: z.ZodType<Record<string, unknown>>;
  /** Written only by the tool itself (the `activity.*` namespace); callers get ACTION_RESERVED. */
  reserved?: boolean;
}

/** What `activity actions` and `GET /api/v1/activity/actions` show of one action. */
export interface ActionDescription {
  name: string;
  namespace: string;
  description: string;
  schema: Record<string, unknown>;
  /** Recorded only by the tool (see docs/activity-log.md, "The log accounts for itself"). */
  reserved: boolean;
}

export interface Registry {
  get(name: string): ActionDefinition | undefined;
  list(): ActionDefinition[];
  describe(): ActionDescription[];
  /** Throws ACTION_UNKNOWN unless the action is registered. */
  assertKnown(name: string): ActionDefinition;
  /** Validates an action's metadata; throws ACTION_UNKNOWN or VALIDATION_FAILED naming the field. */
  validateMetadata(action: string, metadata: Record<string, unknown>): Record<string, unknown>;
}

/** Builds a strict metadata schema from declared fields, adding the optional `context`. */
export function strictMetadataSchema(shape: z.ZodRawShape): z.ZodType<Record<string, unknown>> {
  return z.strictObject({ ...shape, context: contextSchema.optional() });
}

export function builtinActionDefinitions(): ActionDefinition[] {
  return builtinActions.map((action) => ({
    name: action.name,
    namespace: namespaceOf(action.name),
    description: action.description,
    schema: strictMetadataSchema(action.metadata),
  }));
}

/** The reserved `activity.*` actions: strict, without the free-form `context`. */
function selfAuditActionDefinitions(): ActionDefinition[] {
  return selfAuditActions.map((action) => ({
    name: action.name,
    namespace: reservedNamespace,
    description: action.description,
    schema: z.strictObject(action.metadata),
    reserved: true,
  }));
}

/** The registry of built-in actions plus any custom ones (names must not collide). */
export function createRegistry(customActions: readonly ActionDefinition[] = []): Registry {
  const byName = new Map<string, ActionDefinition>();
  for (const action of customActions) {
    if (isReservedAction(action.name)) {
      throw new ActivityError(
        'REGISTRY_INVALID',
        `action ${action.name}: the ${reservedNamespace}.* namespace is reserved for the events the tool records of itself`,
      );
    }
  }
  for (const action of [...builtinActionDefinitions(), ...selfAuditActionDefinitions(), ...customActions]) {
    if (byName.has(action.name)) {
      throw new ActivityError('REGISTRY_INVALID', `action ${action.name} is defined twice`);
    }
    byName.set(action.name, action);
  }
  const sorted = [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));

  const assertKnown = (name: string): ActionDefinition => {
    const action = byName.get(name);
    if (action) return action;
    // A name of another shape is not quoted: it could be anything, a secret included.
    const named = actionNamePattern.test(name) ? `"${name}"` : '(not of the form namespace.object.verb)';
    const meant = named.startsWith('"')
      ? suggestion(
          name,
          sorted.filter((each) => !isReservedAction(each.name)).map((each) => each.name),
        )
      : '';
    throw new ActivityError(
      'ACTION_UNKNOWN',
      `unknown action ${named}${meant}; the registry: \`activity actions\`, GET /api/v1/activity/actions`,
      {
        issues: [{ path: 'action', message: 'not in the registry' }],
      },
    );
  };

  return {
    get: (name) => byName.get(name),
    list: () => sorted,
    describe: () =>
      sorted.map((action) => ({
        name: action.name,
        namespace: action.namespace,
        description: action.description,
        schema: z.toJSONSchema(action.schema, { io: 'input', unrepresentable: 'any' }) as Record<
          string,
          unknown
        >,
        reserved: action.reserved === true,
      })),
    assertKnown,
    validateMetadata(actionName, metadata) {
      const action = assertKnown(actionName);
      const parsed = action.schema.safeParse(metadata);
      if (parsed.success) return parsed.data;
      const issues = toFieldIssues(parsed.error, 'metadata');
      throw new ActivityError('VALIDATION_FAILED', describeIssues(issues), { issues });
    },
  };
}
