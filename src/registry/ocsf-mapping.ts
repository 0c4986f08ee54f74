/**
 * How each action is written as OCSF (https://schema.ocsf.io/1.3.0): its class and
 * activity, for the OCSF version below, which every OCSF event names in
 * `metadata.version`.
 *
 * - 3002 Authentication (category 3): signing in and out.
 * - 3001 Account Change (category 3): accounts and credentials created, changed, locked.
 * - 6003 API Activity (category 6): everything else, by what it did to its object.
 *
 * Every built-in action is listed (a test holds it so); an action of a registry file
 * falls to its namespace and verb (ocsfClassOf).
 */
export const ocsfVersion = '1.3.0';

export type OcsfClass = 3001 | 3002 | 6003;

export interface OcsfMapping {
  classUid: OcsfClass;
  activityId: number;
  /** The activity's name: OCSF's for its enum values, ours for 99 (Other). */
  activityName: string;
}

export const ocsfClasses: Record<OcsfClass, { name: string; categoryUid: number; categoryName: string }> = {
  3001: { name: 'Account Change', categoryUid: 3, categoryName: 'Identity & Access Management' },
  3002: { name: 'Authentication', categoryUid: 3, categoryName: 'Identity & Access Management' },
  6003: { name: 'API Activity', categoryUid: 6, categoryName: 'Application Activity' },
};

const logon = { classUid: 3002, activityId: 1, activityName: 'Logon' } as const;
const accountCreate = { classUid: 3001, activityId: 1, activityName: 'Create' } as const;
const passwordReset = { classUid: 3001, activityId: 4, activityName: 'Password Reset' } as const;
const apiCreate = { classUid: 6003, activityId: 1, activityName: 'Create' } as const;
const apiRead = { classUid: 6003, activityId: 2, activityName: 'Read' } as const;
const apiUpdate = { classUid: 6003, activityId: 3, activityName: 'Update' } as const;
const apiDelete = { classUid: 6003, activityId: 4, activityName: 'Delete' } as const;

export const ocsfMappings: Readonly<Record<string, OcsfMapping>> = {
  'auth.signup.completed': accountCreate,
  'auth.login.success': logon,
  'auth.login.failure': logon,
  'auth.logout.completed': { classUid: 3002, activityId: 2, activityName: 'Logoff' },
  // Authentication's ticket activities are Kerberos': a refresh is none of them.
  'auth.token.refreshed': { classUid: 3002, activityId: 99, activityName: 'Token Refresh' },
  'auth.password.changed': { classUid: 3001, activityId: 3, activityName: 'Password Change' },
  'auth.password_reset.requested': passwordReset,
  'auth.password_reset.completed': passwordReset,
  'auth.email.verified': { classUid: 3001, activityId: 99, activityName: 'Email Verified' },
  'auth.account.locked': { classUid: 3001, activityId: 9, activityName: 'Lock' },
  // Unlock is activity 12 from OCSF 1.4; in 1.3 it is Other.
  'auth.account.unlocked': { classUid: 3001, activityId: 99, activityName: 'Unlock' },
  'auth.service_account.issued': accountCreate,
  'auth.service_account.revoked': { classUid: 3001, activityId: 6, activityName: 'Delete' },
  'conversations.conversation.created': apiCreate,
  'conversations.conversation.cleared': apiDelete,
  'agents.run.started': apiCreate,
  'agents.run.ended': apiUpdate,
  'workflows.run.started': apiCreate,
  'workflows.run.ended': apiUpdate,
  'workflows.step.started': apiCreate,
  'workflows.step.ended': apiUpdate,
  'billing.subscription.state_changed': apiUpdate,
  'billing.payment.state_changed': apiUpdate,
  'storage.file.uploaded': apiCreate,
  'storage.file.deleted': apiDelete,
  'vector.sync.state_changed': apiUpdate,
  'containers.container.created': apiCreate,
  'containers.container.destroyed': apiDelete,
  'containers.container.bound': apiUpdate,
  'containers.container.unbound': apiUpdate,
  // The tool's own events: reads of the log, and what changed how it is kept.
  'activity.events.read': apiRead,
  'activity.stream.opened': apiRead,
  'activity.stream.closed': apiRead,
  'activity.events.exported': apiRead,
  'activity.access.denied': { classUid: 6003, activityId: 99, activityName: 'Access Denied' },
  'activity.events.purged': apiDelete,
  'activity.retention.changed': apiUpdate,
  'activity.hold.placed': apiUpdate,
  'activity.hold.lifted': apiUpdate,
  'activity.checkpoint.signed': apiCreate,
};

/** Verbs of registry-file actions, by what they do to their object. */
const verbActivities: Array<[RegExp, OcsfMapping]> = [
  [/^(created|added|issued|uploaded|started|opened|invited|signed)$/, apiCreate],
  [/^(read|viewed|listed|exported|downloaded|accessed)$/, apiRead],
  [/^(deleted|removed|destroyed|revoked|cleared|purged)$/, apiDelete],
];

/** The mapping of `action`: its own, or for an action of a registry file, by namespace and verb. */
export function ocsfClassOf(action: string): OcsfMapping {
  const mapped = ocsfMappings[action];
  if (mapped) return mapped;
  if (action.startsWith('auth.')) return { classUid: 3002, activityId: 99, activityName: verbOf(action) };
  const verb = verbOf(action);
  for (const [pattern, mapping] of verbActivities) if (pattern.test(verb)) return mapping;
  return apiUpdate;
}

function verbOf(action: string): string {
  return action.slice(action.lastIndexOf('.') + 1);
}
