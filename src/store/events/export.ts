import { CompiledQuery, type Kysely, sql } from 'kysely';
import type { EventFilter, ExportRequest } from '../../domain/activity-repository.js';
import { eventFields } from '../../domain/event.js';
import { type CopyColumnKind, copyTextToJsonLines } from '../copy-text-json.js';
import type { StoreSchema } from '../schema.js';
import { guardedStream } from '../store-errors.js';
import {
  type ActionClause,
  actionClauses,
  buildPage,
  type PageValues,
  pageValues,
  withValues,
} from './page.js';

/**
 * How each field of a page row goes into its JSON text (see eventJson): escaped by
 * to_json, or as it is where no character could need escaping.
 */
const jsonValueOf: Record<(typeof eventFields)[number], 'escaped' | 'quoted' | 'bare'> = {
  id: 'quoted', // a uuid
  tenant_id: 'escaped',
  seq: 'bare',
  action: 'escaped',
  actor_type: 'quoted', // one of four words: the schema checks it
  actor_id: 'escaped',
  object_type: 'escaped',
  object_id: 'escaped',
  status: 'quoted', // one of three words: the schema checks it
  source: 'escaped',
  request_id: 'escaped',
  ip_hash: 'escaped',
  user_agent: 'escaped',
  metadata: 'bare', // jsonb's own text
  created_at: 'quoted', // digits and separators (pageColumns in rows.ts)
};

/**
 * A page row as the contract's JSON text, written by the database: the keys, their
 * order and the values of `JSON.stringify(toActivityEvent(row))`, but metadata keeps
 * jsonb's spacing (`{"a": 1}`). One `concat` builds it in one pass. PGlite's export
 * reads pages of these; on PostgreSQL, copyTextToJsonLines writes the same bytes from
 * the rows of a COPY.
 */
const eventJson = (() => {
  const parts: string[] = [];
  let text = '{';
  for (const [index, field] of eventFields.entries()) {
    text += `${index > 0 ? ',' : ''}"${field}":`;
    const kind = jsonValueOf[field];
    if (kind === 'quoted') text += '"';
    parts.push(`'${text}'`, kind === 'escaped' ? `coalesce(to_json("${field}"), 'null')` : `"${field}"`);
    text = kind === 'quoted' ? '"' : '';
  }
  parts.push(`'${text}}'`);
  return sql<string>`concat(${sql.raw(parts.join(', '))})`;
})();

/** An event's fields as they come from a page's COPY, in order (see copyTextToJsonLines). */
const exportColumns = eventFields.map((key) => ({
  key,
  kind: key === 'seq' ? 'number' : key === 'metadata' ? 'json' : 'string',
})) satisfies Array<{ key: string; kind: CopyColumnKind }>;

/** Lines per page of an export where the database cannot COPY to a stream (PGlite). */
const exportPageSize = 1000;

/** Runs a `COPY … TO STDOUT` on the pages' connections (PostgreSQL only). */
export type CopyOut = (statement: CompiledQuery) => AsyncIterable<Uint8Array>;

/** Exports: every event a page would return, as JSON lines (see ActivityRepository.exportJson). */
export class EventExporter {
  readonly #pages: Kysely<StoreSchema>;
  readonly #where: string;
  readonly #copyOut: CopyOut | undefined;

  constructor(pages: Kysely<StoreSchema>, where: string, copyOut: CopyOut | undefined) {
    this.#pages = pages;
    this.#where = where;
    this.#copyOut = copyOut;
  }

  exportJson(tenantId: string, filter: EventFilter, request: ExportRequest): AsyncGenerator<Uint8Array> {
    return guardedStream(this.#where, () => {
      const clauses = actionClauses(filter);
      const copyOut = this.#copyOut;
      if (copyOut === undefined) return this.#pagedLines(tenantId, filter, request, clauses);
      // One statement for the whole export, streamed, whose rows Node turns into JSON
      // lines while the database reads on.
      const values = pageValues(tenantId, filter, request, clauses);
      const select = buildPage(this.#pages, values, { ...request, limit: undefined }, clauses).compile();
      const copy = CompiledQuery.raw(`copy (${select.sql}) to stdout`, [...select.parameters]);
      return copyTextToJsonLines(exportColumns, copyOut(withValues(copy, values)));
    });
  }

  /** The export page by page, each page's lines built by the database (eventJson). */
  async *#pagedLines(
    tenantId: string,
    filter: EventFilter,
    request: ExportRequest,
    clauses: ActionClause[],
  ): AsyncGenerator<Uint8Array> {
    const order = request.order ?? 'desc';
    let position: ExportRequest = request;
    for (;;) {
      const values = pageValues(tenantId, filter, position, clauses);
      const select = this.#lines(values, position, clauses);
      const { rows } = await this.#pages.executeQuery<{ line: string; seq: unknown }>(
        withValues(select.compile(), values),
      );
      if (rows.length > 0) yield Buffer.from(rows.map((row) => `${row.line}\n`).join(''));
      const last = rows.at(-1);
      if (last === undefined || rows.length < exportPageSize) return;
      const seq = Number(last.seq);
      position = order === 'asc' ? { ...request, afterSeq: seq } : { ...request, beforeSeq: seq };
    }
  }

  /** A page of an export's events as JSON lines (eventJson) with their seqs, in its order. */
  #lines(values: PageValues, request: ExportRequest, clauses: ActionClause[]) {
    const page = buildPage(this.#pages, values, { ...request, limit: exportPageSize }, clauses);
    return this.#pages
      .selectFrom(page.as('p') as never)
      .select([eventJson.as('line'), sql<unknown>`seq`.as('seq')])
      .orderBy(sql`seq`, request.order ?? 'desc');
  }
}
