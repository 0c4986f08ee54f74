import { v7 as uuidv7 } from 'uuid';
import type { NewActivityEvent } from '../../src/domain/event.js';

/** An event ready for the repository (validated, scrubbed, hashed), for store-level tests. */
export function newEvent(tenant: string, overrides: Partial<NewActivityEvent> = {}): NewActivityEvent {
  return {
    id: uuidv7(),
    tenant_id: tenant,
    action: 'auth.login.success',
    actor_type: 'user',
    actor_id: 'u_1',
    object_type: null,
    object_id: null,
    status: 'success',
    source: null,
    request_id: null,
    ip_hash: null,
    user_agent: null,
    metadata: {},
    ...overrides,
  };
}
