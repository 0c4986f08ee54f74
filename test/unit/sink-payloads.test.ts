import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import type { ActivityEvent, ActorType, EventStatus } from '../../src/domain/event.js';
import { builtinActions } from '../../src/registry/builtin-actions.js';
import { ocsfClassOf, ocsfMappings } from '../../src/registry/ocsf-mapping.js';
import { selfAuditActions } from '../../src/registry/self-audit-actions.js';
import { toOcsf } from '../../src/sinks/ocsf.js';
import { deliveryBody } from '../../src/sinks/payloads.js';

const schema = JSON.parse(
  readFileSync(new URL('../fixtures/ocsf/1.3.0/ocsf-subset.schema.json', import.meta.url), 'utf8'),
) as object;
const validateOcsf = new Ajv2020({ strict: false, allErrors: true }).compile(schema);
const product = { name: 'activity', vendor_name: 'activity', version: '0.1.0' };

function event(action: string, overrides: Partial<ActivityEvent> = {}): ActivityEvent {
  return {
    id: '0193a7e2-5c1f-7b2a-9c3d-4e5f60718293',
    tenant_id: 'acme',
    seq: 42,
    action,
    actor_type: 'user',
    actor_id: 'u_1',
    object_type: 'document',
    object_id: 'doc_7',
    status: 'success',
    source: 'api',
    request_id: 'req_9',
    ip_hash: 'a'.repeat(64),
    user_agent: 'Mozilla/5.0',
    metadata: { method: 'password', mfa: true },
    created_at: '2026-12-08T10:11:12.345Z',
    ...overrides,
  };
}

const everyAction = [...builtinActions, ...selfAuditActions].map((action) => action.name);

/** Each way an event's optional parts can be missing, and each actor and status. */
const variants: Array<Partial<ActivityEvent>> = [
  {},
  {
    actor_id: null,
    ip_hash: null,
    request_id: null,
    user_agent: null,
    source: null,
    object_id: null,
    object_type: null,
  },
  ...(['user', 'service_account', 'system', 'api_key'] as ActorType[]).map((actor_type) => ({ actor_type })),
  ...(['success', 'failure', 'pending'] as EventStatus[]).map((status) => ({ status })),
  { metadata: { service_account_id: 'sa_1' } },
];

describe('OCSF payload', () => {
  it('maps every built-in action and every action of the tool explicitly', () => {
    expect(everyAction.filter((name) => ocsfMappings[name] === undefined)).toEqual([]);
  });

  it.each(everyAction)('%s is valid OCSF 1.3.0 of its class, however its event is filled', (action) => {
    for (const variant of variants) {
      const ocsf = toOcsf(event(action, variant), product);
      const valid = validateOcsf(ocsf);
      expect(valid ? [] : validateOcsf.errors, JSON.stringify(variant)).toEqual([]);
      expect(ocsf.type_uid).toBe((ocsf.class_uid as number) * 100 + (ocsf.activity_id as number));
      expect(ocsf).toMatchObject({
        time: Date.parse('2026-12-08T10:11:12.345Z'),
        metadata: {
          uid: '0193a7e2-5c1f-7b2a-9c3d-4e5f60718293',
          tenant_uid: 'acme',
          sequence: 42,
          version: '1.3.0',
        },
        unmapped: { tenant_id: 'acme', seq: 42 },
      });
    }
  });

  it('names the IP by its hash alone, and makes no address up', () => {
    const ocsf = toOcsf(event('auth.login.success'), product);
    expect(ocsf.src_endpoint).toEqual({ uid: 'a'.repeat(64) });
    expect(JSON.stringify(toOcsf(event('auth.login.success', { ip_hash: null }), product))).not.toMatch(
      /"ip"/,
    );
  });

  it('refuses what OCSF does not define: the fixture is no rubber stamp', () => {
    const ocsf = toOcsf(event('storage.file.uploaded'), product);
    expect(validateOcsf({ ...ocsf, tenant_id: 'acme' })).toBe(false);
    expect(validateOcsf({ ...ocsf, api: {} })).toBe(false);
    expect(validateOcsf({ ...ocsf, class_uid: 3002 })).toBe(false);
    const { src_endpoint: _endpoint, ...withoutEndpoint } = ocsf;
    expect(validateOcsf(withoutEndpoint)).toBe(false);
  });

  it('maps an action of a registry file by its namespace and verb', () => {
    expect(ocsfClassOf('billing.invoice.created')).toMatchObject({ classUid: 6003, activityId: 1 });
    expect(ocsfClassOf('billing.invoice.deleted')).toMatchObject({ classUid: 6003, activityId: 4 });
    expect(ocsfClassOf('billing.invoice.sent')).toMatchObject({ classUid: 6003, activityId: 3 });
    expect(ocsfClassOf('auth.sso.linked')).toMatchObject({ classUid: 3002, activityId: 99 });
    expect(validateOcsf(toOcsf(event('auth.sso.linked'), product))).toBe(true);
  });
});

describe('delivery bodies', () => {
  const events = [event('auth.login.success'), event('storage.file.uploaded', { seq: 43 })];

  it('ndjson: the API event JSON, a line each', () => {
    const { contentType, body } = deliveryBody('ndjson', events, product);
    expect(contentType).toBe('application/x-ndjson');
    expect(
      body
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line)),
    ).toEqual(events);
  });

  it('cloudevents: a CloudEvents 1.0 batch, the event as data, tenant and seq as extensions', () => {
    const { contentType, body } = deliveryBody('cloudevents', events, product);
    expect(contentType).toBe('application/cloudevents-batch+json');
    const batch = JSON.parse(body) as Array<Record<string, unknown>>;
    expect(batch[1]).toEqual({
      specversion: '1.0',
      id: events[1]?.id,
      source: '/activity/tenants/acme',
      type: 'storage.file.uploaded',
      time: '2026-12-08T10:11:12.345Z',
      subject: 'doc_7',
      datacontenttype: 'application/json',
      activitytenant: 'acme',
      activityseq: 43,
      data: events[1],
    });
    // Extension names: lower-case letters and digits (CloudEvents 1.0).
    for (const name of Object.keys(batch[0] as object)) expect(name).toMatch(/^[a-z0-9]+$/);
  });

  it('ocsf: a JSON array of OCSF events', () => {
    const { contentType, body } = deliveryBody('ocsf', events, product);
    expect(contentType).toBe('application/json');
    expect((JSON.parse(body) as unknown[]).map((each) => validateOcsf(each))).toEqual([true, true]);
  });
});
