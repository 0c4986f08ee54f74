import { z } from 'zod';

/**
 * The built-in taxonomy: every touchpoint of the activity-log milestone. Names are
 * `namespace.object.verb`; `helper` is the method name of the typed library helper
 * (`log.auth.loginSucceeded(...)`). Schemas list what each action may carry; every
 * action also accepts a free-form `context` object (added by the registry).
 */

const id = z.string().min(1).max(256);
const durationMs = z.number().int().nonnegative();
const timestamp = z.iso.datetime({ offset: true });
const loginMethod = z.enum(['password', 'oauth', 'sso', 'magic_link', 'passkey', 'invite', 'api_key']);
const runOutcome = z.enum(['completed', 'failed', 'cancelled', 'timed_out']);
const state = z.string().min(1).max(64);

export const builtinActions = [
  // auth
  {
    name: 'auth.signup.completed',
    helper: 'signedUp',
    description: 'A user account was created.',
    metadata: { method: loginMethod.optional(), invited_by: id.optional() },
  },
  {
    name: 'auth.login.success',
    helper: 'loginSucceeded',
    description: 'A user signed in.',
    metadata: { method: loginMethod.optional(), mfa: z.boolean().optional() },
  },
  {
    name: 'auth.login.failure',
    helper: 'loginFailed',
    description: 'A sign-in attempt was refused.',
    metadata: {
      method: loginMethod.optional(),
      reason: z.enum([
        'invalid_credentials',
        'account_locked',
        'mfa_failed',
        'email_unverified',
        'rate_limited',
        'other',
      ]),
    },
  },
  {
    name: 'auth.logout.completed',
    helper: 'loggedOut',
    description: 'A session ended.',
    metadata: { reason: z.enum(['user', 'expired', 'revoked']).optional() },
  },
  {
    name: 'auth.token.refreshed',
    helper: 'tokenRefreshed',
    description: 'An access token was refreshed.',
    metadata: { client_id: id.optional() },
  },
  {
    name: 'auth.password.changed',
    helper: 'passwordChanged',
    description: 'A user changed their password.',
    metadata: {},
  },
  {
    name: 'auth.password_reset.requested',
    helper: 'passwordResetRequested',
    description: 'A password reset was requested.',
    metadata: { delivery: z.enum(['email', 'sms']).optional() },
  },
  {
    name: 'auth.password_reset.completed',
    helper: 'passwordResetCompleted',
    description: 'A password reset was completed.',
    metadata: {},
  },
  {
    name: 'auth.email.verified',
    helper: 'emailVerified',
    description: 'A user verified their email address.',
    metadata: {},
  },
  {
    name: 'auth.account.locked',
    helper: 'accountLocked',
    description: 'An account was locked.',
    metadata: {
      reason: z.enum(['too_many_attempts', 'admin', 'suspicious_activity', 'other']),
      locked_until: timestamp.optional(),
    },
  },
  {
    name: 'auth.account.unlocked',
    helper: 'accountUnlocked',
    description: 'An account was unlocked.',
    metadata: { reason: z.enum(['admin', 'expired', 'password_reset']).optional() },
  },
  {
    name: 'auth.service_account.issued',
    helper: 'serviceAccountIssued',
    description: 'A service account credential was issued.',
    metadata: {
      service_account_id: id,
      scopes: z.array(z.string().min(1).max(128)).max(64).optional(),
      expires_at: timestamp.optional(),
    },
  },
  {
    name: 'auth.service_account.revoked',
    helper: 'serviceAccountRevoked',
    description: 'A service account credential was revoked.',
    metadata: { service_account_id: id, reason: z.string().max(256).optional() },
  },
  // conversations and agents (no per-message events, by design)
  {
    name: 'conversations.conversation.created',
    helper: 'created',
    description: 'A conversation was created.',
    metadata: { agent_id: id.optional(), channel: z.string().max(64).optional() },
  },
  {
    name: 'conversations.conversation.cleared',
    helper: 'cleared',
    description: 'A conversation was cleared.',
    metadata: { message_count: z.number().int().nonnegative().optional() },
  },
  {
    name: 'agents.run.started',
    helper: 'runStarted',
    description: 'An agent run started.',
    metadata: {
      agent_id: id,
      run_id: id,
      conversation_id: id.optional(),
      model: z.string().max(128).optional(),
    },
  },
  {
    name: 'agents.run.ended',
    helper: 'runEnded',
    description: 'An agent run ended.',
    metadata: { agent_id: id, run_id: id, outcome: runOutcome, duration_ms: durationMs.optional() },
  },
  // workflows
  {
    name: 'workflows.run.started',
    helper: 'runStarted',
    description: 'A workflow run started.',
    metadata: {
      workflow_id: id,
      run_id: id,
      trigger: z.enum(['manual', 'schedule', 'webhook', 'api', 'event']).optional(),
    },
  },
  {
    name: 'workflows.run.ended',
    helper: 'runEnded',
    description: 'A workflow run ended.',
    metadata: { workflow_id: id, run_id: id, outcome: runOutcome, duration_ms: durationMs.optional() },
  },
  {
    name: 'workflows.step.started',
    helper: 'stepStarted',
    description: 'A workflow step started.',
    metadata: { workflow_id: id, run_id: id, step_id: id },
  },
  {
    name: 'workflows.step.ended',
    helper: 'stepEnded',
    description: 'A workflow step ended.',
    metadata: {
      workflow_id: id,
      run_id: id,
      step_id: id,
      outcome: runOutcome,
      duration_ms: durationMs.optional(),
    },
  },
  // billing bridge: state changes only
  {
    name: 'billing.subscription.state_changed',
    helper: 'subscriptionStateChanged',
    description: 'A subscription moved to another state.',
    metadata: {
      subscription_id: id,
      from_state: state.nullable().optional(),
      to_state: state,
      plan: id.optional(),
    },
  },
  {
    name: 'billing.payment.state_changed',
    helper: 'paymentStateChanged',
    description: 'A payment moved to another state.',
    metadata: {
      payment_id: id,
      from_state: state.nullable().optional(),
      to_state: state,
      amount_minor: z.number().int().nonnegative().optional(),
      currency: z
        .string()
        .regex(/^[A-Z]{3}$/)
        .optional(),
    },
  },
  // storage, vector, containers
  {
    name: 'storage.file.uploaded',
    helper: 'fileUploaded',
    description: 'A file was uploaded.',
    metadata: {
      file_id: id,
      filename: z.string().max(512).optional(),
      content_type: z.string().max(128).optional(),
      size_bytes: z.number().int().nonnegative().optional(),
    },
  },
  {
    name: 'storage.file.deleted',
    helper: 'fileDeleted',
    description: 'A file was deleted.',
    metadata: { file_id: id, reason: z.string().max(256).optional() },
  },
  {
    name: 'vector.sync.state_changed',
    helper: 'syncStateChanged',
    description: 'A vector store sync moved to another state.',
    metadata: {
      vector_store_id: id,
      from_state: z.enum(['pending', 'syncing', 'synced', 'failed']).nullable().optional(),
      to_state: z.enum(['pending', 'syncing', 'synced', 'failed']),
      document_count: z.number().int().nonnegative().optional(),
      error: z.string().max(512).optional(),
    },
  },
  {
    name: 'containers.container.created',
    helper: 'created',
    description: 'A container was created.',
    metadata: { container_id: id, image: z.string().max(256).optional() },
  },
  {
    name: 'containers.container.destroyed',
    helper: 'destroyed',
    description: 'A container was destroyed.',
    metadata: { container_id: id, reason: z.string().max(256).optional() },
  },
  {
    name: 'containers.container.bound',
    helper: 'bound',
    description: 'A container was bound to a resource.',
    metadata: { container_id: id, bound_to_type: z.string().max(64), bound_to_id: id },
  },
  {
    name: 'containers.container.unbound',
    helper: 'unbound',
    description: 'A container was unbound from a resource.',
    metadata: { container_id: id, bound_to_type: z.string().max(64), bound_to_id: id },
  },
] as const satisfies readonly BuiltinActionDefinition[];

export interface BuiltinActionDefinition {
  name: string;
  helper: string;
  description: string;
  metadata: z.ZodRawShape;
}
