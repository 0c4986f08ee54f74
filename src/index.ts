/**
 * The library entry: the core of `activity` for other Node services.
 *
 * @example
 *   import { loadConfig, openApp, createActivityLog } from 'activity';
 *   const app = await openApp(loadConfig());
 *   const log = createActivityLog(app.service, { tenantId: 'acme' });
 *   await log.auth.loginSucceeded({ actor_id: 'u_1', ip: req.ip, metadata: { method: 'password' } });
 *   await app.close();
 */
export {
  type ActivityApp,
  openApp,
  openAppWithDatabase,
  usingApp,
  usingMigrations,
  usingRetention,
} from './app/open-app.js';
export { type Config, loadConfig } from './config/load-config.js';
export type { ActivityRepository, EventFilter } from './domain/activity-repository.js';
export { ActivityError, type ErrorCode, errorCodes, isActivityError } from './domain/errors.js';
export type { ActivityEvent, ActorType, EventStatus } from './domain/event.js';
export type { QueryInput, RecordInput } from './domain/inputs.js';
export { builtinActions } from './registry/builtin-actions.js';
export { type ActionDefinition, createRegistry, type Registry } from './registry/registry.js';
export {
  type ActivityObserver,
  ActivityService,
  type QueryPage,
  type RecordManyReport,
} from './service/activity-service.js';
export { MigrationService, type MigrationUpReport } from './service/migration-service.js';
export {
  defaultBatchSize,
  type PurgeOptions,
  type PurgeReport,
  purgeExpired,
  type RetentionRule,
  type TenantPurge,
} from './service/purge.js';
export { RetentionService } from './service/retention-service.js';
export { type ActivityLog, createActivityLog } from './service/typed-log.js';
