import { v7 as uuidv7 } from 'uuid';
import { suggestion } from '../domain/closest-names.js';
import { ActivityError, type FieldIssue } from '../domain/errors.js';
import { describeIssues, toFieldIssues } from '../domain/field-issues.js';
import { actionFilterSchema } from '../domain/inputs.js';
import {
  type SinkCursor,
  type SinkPayload,
  type SinkRepository,
  type SinkState,
  type StoredSink,
  sinkPayloads,
} from '../domain/sink.js';
import { tenantIdProblem } from '../domain/tenant-id.js';
import { credentialIn, isSecretKey } from '../privacy/scrub.js';
import { seal, unseal } from '../privacy/secret-box.js';
import type { Registry } from '../registry/registry.js';
import { newWebhookSecret, webhookSecretProblem } from '../sinks/webhook-signature.js';

/** What `sink add` takes. */
export interface SinkInput {
  /** One tenant, or null for every tenant. */
  tenantId: string | null;
  url: string;
  payload: string;
  /** Sent with every delivery; stored sealed, never shown again. */
  headers?: Record<string, string>;
  /** The Standard Webhooks secret (`whsec_…`); one is made when none is given. */
  secret?: string;
  /** Deliver every event the tenant still has, not only those recorded from now. */
  fromStart?: boolean;
  /**
   * Only events of these actions: exact names and `ns.*` prefixes, comma separated, as
   * `query --action` takes them; every event when absent (or `*`).
   */
  action?: string;
}

/** A sink as shown: its headers by name only, its secret never. */
export interface SinkView {
  sink_id: string;
  tenant_id: string | null;
  url: string;
  payload: SinkPayload;
  /** The actions it takes (names and `ns.*` prefixes), or null for every event. */
  actions: string[] | null;
  /** null: they cannot be opened (sealed under another ACTIVITY_SECRET). */
  header_names: string[] | null;
  state: SinkState;
  created_at: string;
  last_success_at: string | null;
  last_error: string | null;
  last_error_at: string | null;
  failing_since: string | null;
  next_attempt_at: string;
}

/** A sink with how far behind each tenant it is. */
export interface SinkStatus extends SinkView {
  tenants: Array<SinkCursor & { lag_events: number; lag_seconds: number }>;
  lag_events: number;
  lag_seconds: number;
}

/**
 * Headers a sink may not set: the delivery's own, and those of the connection, which
 * HTTP (and node's client) decides.
 */
const reservedHeaders =
  /^(content-type|content-length|content-encoding|host|connection|keep-alive|upgrade|expect|te|trailer|transfer-encoding|proxy-.*|user-agent|webhook-.*|activity-.*)$/i;
/** What a header value may hold: visible ASCII, spaces and tabs (what every client sends as is). */
const headerValue = /^[\t\x20-\x7e]{0,8192}$/;
/** An HTTP header name (RFC 9110 token). */
const headerName = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;

/**
 * Sinks as a use case: where each tenant's events are delivered, with what payload and
 * headers. What a sink must keep secret (its headers, its signing secret) is sealed
 * with a key derived from ACTIVITY_SECRET before it is stored, and never shown again:
 * the signing secret is returned once, by `add`.
 */
export class SinkService {
  readonly #sinks: SinkRepository;
  readonly #key: Buffer;
  readonly #registry: Registry;
  readonly #clock: () => Date;

  constructor(options: {
    sinks: SinkRepository;
    sealingKey: Buffer;
    registry: Registry;
    clock?: () => Date;
  }) {
    this.#sinks = options.sinks;
    this.#key = options.sealingKey;
    this.#registry = options.registry;
    this.#clock = options.clock ?? (() => new Date());
  }

  async add(input: SinkInput): Promise<{ sink: SinkView; secret: string }> {
    const secret = input.secret ?? newWebhookSecret();
    const headers = input.headers ?? {};
    assertValid([
      ...(input.tenantId === null ? [] : tenantIssues(input.tenantId)),
      ...urlIssues(input.url),
      ...((sinkPayloads as readonly string[]).includes(input.payload)
        ? []
        : [{ path: 'payload', message: `must be one of ${sinkPayloads.join(', ')}` }]),
      ...headerIssues(headers),
      ...(input.secret === undefined
        ? []
        : [webhookSecretProblem(input.secret)].flatMap((problem) =>
            problem === undefined ? [] : [{ path: 'secret', message: problem }],
          )),
    ]);
    const filter = actionFilterOf(input.action, this.#registry);
    const sinkId = uuidv7();
    const stored = await this.#sinks.add(
      {
        sink_id: sinkId,
        tenant_id: input.tenantId,
        url: input.url,
        payload: input.payload as SinkPayload,
        actions: filter?.actions ?? null,
        prefixes: filter?.prefixes ?? null,
        headers: Object.keys(headers).length === 0 ? null : seal(this.#key, JSON.stringify(headers), sinkId),
        secret: seal(this.#key, secret, sinkId),
      },
      { fromStart: input.fromStart === true },
    );
    return { sink: this.#view(stored), secret };
  }

  async list(): Promise<SinkView[]> {
    return (await this.#sinks.list()).map((sink) => this.#view(sink));
  }

  async status(sinkId: string): Promise<SinkStatus> {
    const sink = await this.#existing(sinkId);
    const now = this.#clock().getTime();
    const tenants = (await this.#sinks.cursors(sinkId)).map((cursor) => ({
      ...cursor,
      lag_events: Math.max(0, cursor.last_seq - cursor.delivered_seq),
      lag_seconds:
        cursor.oldest_waiting_at === null
          ? 0
          : Math.max(0, Math.round((now - Date.parse(cursor.oldest_waiting_at)) / 1000)),
    }));
    return {
      ...this.#view(sink),
      tenants,
      lag_events: tenants.reduce((sum, tenant) => sum + tenant.lag_events, 0),
      lag_seconds: tenants.reduce((most, tenant) => Math.max(most, tenant.lag_seconds), 0),
    };
  }

  /** Stops delivering; the cursors stay where they are. */
  async pause(sinkId: string): Promise<SinkView> {
    return this.#setState(sinkId, 'paused');
  }

  /** Delivers again from each cursor, at once (a failing or suspended sink too). */
  async resume(sinkId: string): Promise<SinkView> {
    return this.#setState(sinkId, 'active');
  }

  async remove(sinkId: string): Promise<void> {
    assertValid(sinkIdIssues(sinkId));
    if (!(await this.#sinks.remove(sinkId))) throw noSuchSink(sinkId);
  }

  /** The sink's headers and signing secret, unsealed: for its deliveries only. */
  secretsOf(sink: StoredSink): { headers: Record<string, string>; secret: string } | undefined {
    const secret = unseal(this.#key, sink.secret, sink.sink_id);
    const headers = sink.headers === null ? '{}' : unseal(this.#key, sink.headers, sink.sink_id);
    if (secret === undefined || headers === undefined) return undefined;
    return { headers: JSON.parse(headers) as Record<string, string>, secret };
  }

  async #setState(sinkId: string, state: 'active' | 'paused'): Promise<SinkView> {
    assertValid(sinkIdIssues(sinkId));
    if (!(await this.#sinks.setState(sinkId, state))) throw noSuchSink(sinkId);
    return this.#view(await this.#existing(sinkId));
  }

  async #existing(sinkId: string): Promise<StoredSink> {
    assertValid(sinkIdIssues(sinkId));
    const sink = await this.#sinks.get(sinkId);
    if (!sink) throw noSuchSink(sinkId);
    return sink;
  }

  #view(sink: StoredSink): SinkView {
    const headers = sink.headers === null ? '{}' : unseal(this.#key, sink.headers, sink.sink_id);
    return {
      sink_id: sink.sink_id,
      tenant_id: sink.tenant_id,
      url: sink.url,
      payload: sink.payload,
      actions:
        sink.actions === null && sink.prefixes === null
          ? null
          : [...(sink.actions ?? []), ...(sink.prefixes ?? []).map((prefix) => `${prefix}*`)],
      header_names: headers === undefined ? null : Object.keys(JSON.parse(headers) as object),
      state: sink.state,
      created_at: sink.created_at,
      last_success_at: sink.last_success_at,
      last_error: sink.last_error,
      last_error_at: sink.last_error_at,
      failing_since: sink.failing_since,
      next_attempt_at: sink.next_attempt_at,
    };
  }
}

/**
 * The sink's filter, as query's `--action` reads it: exact names, and prefixes kept
 * with their dot (`auth.*` → `auth.`); undefined where it takes every event.
 */
function actionFilterOf(
  action: string | undefined,
  registry: Registry,
): { actions: string[]; prefixes: string[] } | undefined {
  if (action === undefined) return undefined;
  const parsed = actionFilterSchema.safeParse(action);
  if (!parsed.success) {
    const issues = toFieldIssues(parsed.error).map((issue) => ({ ...issue, path: 'action' }));
    throw new ActivityError('PARAMETER_INVALID', describeIssues(issues), { issues });
  }
  if (parsed.data.includes('*')) return undefined;
  // A sink that names no action the registry has would never send anything: a typo.
  const names = registry.list().map((each) => each.name);
  const unknown = parsed.data.filter((part) =>
    part.endsWith('.*') ? !names.some((name) => name.startsWith(part.slice(0, -1))) : !names.includes(part),
  );
  if (unknown.length > 0) {
    const issues = unknown.map((part) => ({
      path: 'action',
      message: `${part} names no registered action${suggestion(part, names)}`,
    }));
    throw new ActivityError('PARAMETER_INVALID', describeIssues(issues), { issues });
  }
  return {
    actions: parsed.data.filter((part) => !part.endsWith('.*')),
    prefixes: parsed.data.filter((part) => part.endsWith('.*')).map((part) => part.slice(0, -1)),
  };
}

function noSuchSink(sinkId: string): ActivityError {
  return new ActivityError('NOT_FOUND', `no sink ${sinkId}: \`activity sink list\` shows them`);
}

function assertValid(issues: FieldIssue[]): void {
  if (issues.length > 0) throw new ActivityError('PARAMETER_INVALID', describeIssues(issues), { issues });
}

function tenantIssues(tenantId: string): FieldIssue[] {
  const problem = tenantIdProblem(tenantId);
  return problem === undefined ? [] : [{ path: 'tenant_id', message: problem }];
}

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function sinkIdIssues(sinkId: string): FieldIssue[] {
  return uuid.test(sinkId)
    ? []
    : [{ path: 'sink_id', message: 'must be a sink id (a UUID, from `sink list`)' }];
}

/**
 * An absolute http(s) URL without credentials: the URL is stored and shown in clear, so
 * what proves who the sink is goes in a header, which is sealed.
 */
function urlIssues(url: string): FieldIssue[] {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return [{ path: 'url', message: 'must be an absolute http:// or https:// URL' }];
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    return [{ path: 'url', message: 'must be an http:// or https:// URL' }];
  }
  if (url.length > 2048) return [{ path: 'url', message: 'must be at most 2048 characters' }];
  const sealIt = 'send it with --header, which is stored sealed';
  if (parsed.username !== '' || parsed.password !== '') {
    return [{ path: 'url', message: `must not hold a user or password: ${sealIt}` }];
  }
  for (const [name] of parsed.searchParams) {
    if (isSecretKey(name))
      return [{ path: 'url', message: `holds a credential in its query (${name}): ${sealIt}` }];
  }
  // Anywhere in it: a token in the path (a Slack or GitHub URL), the query or the fragment.
  const credential = credentialIn(decodedUrl(url));
  if (credential !== undefined)
    return [{ path: 'url', message: `holds a credential (${credential}): ${sealIt}` }];
  return [];
}

function decodedUrl(url: string): string {
  try {
    return decodeURIComponent(url);
  } catch {
    return url;
  }
}

function headerIssues(headers: Record<string, string>): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const seen = new Set<string>();
  for (const [name, value] of Object.entries(headers)) {
    if (!headerName.test(name))
      issues.push({ path: 'header', message: 'has a name that is not an HTTP header name' });
    else if (reservedHeaders.test(name)) {
      issues.push({ path: 'header', message: `${name} is set by the delivery or the connection itself` });
    } else if (seen.has(name.toLowerCase())) {
      issues.push({
        path: 'header',
        message: `${name} is given twice (header names are not case-sensitive)`,
      });
    } else if (!headerValue.test(value)) {
      // The value is never quoted back: it may be a credential.
      issues.push({
        path: 'header',
        message: `${name} must have a value of visible ASCII characters and spaces, at most 8 KiB`,
      });
    }
    seen.add(name.toLowerCase());
  }
  return issues;
}
