import pg from 'pg';
import { bulkLoad, skewedTenants } from '../lib/dataset.js';
import { median, percentile } from '../lib/stats.js';
import { migrate, openTool, openToolWithoutReadAudit, pageSessionOptions } from '../lib/tool.js';
import { type BenchRow, milliseconds, type Workload } from '../lib/workload.js';

const columns =
  'tenant_id, seq, id, action, actor_type, actor_id, object_type, object_id, status, source, request_id, ip_hash, user_agent, metadata, created_at';

/** The raw keyset SQL of a first page, each on the index the tool uses for the same filter. */
const rawFilters = {
  none: { sql: '', params: [] as unknown[] },
  'action prefix auth.*': { sql: "and namespace = 'auth'", params: [] },
  actor: { sql: 'and actor_id = $2', params: ['user_42'] },
  object: { sql: 'and object_id = $2', params: ['doc_42'] },
  'request id': { sql: 'and request_id = $2', params: ['req_big_424242'] },
};

/**
 * B5–B7: pages of a tenant of `bigTenant` events in a table of `table` events. The
 * tool is the service's `query` (validation, cursor signing, rows to JSON shape, the
 * read recorded as activity.events.read); the baseline is the keyset SQL alone over
 * the same pg connection settings. B23: B5's first page with its read recorded, over
 * the same with ACTIVITY_AUDIT_READS=false, in turn.
 */
export const queryWorkload: Workload = {
  ids: ['B5', 'B6', 'B7', 'B23'],
  async run(context) {
    const { sizes } = context;
    const url = await context.createDatabase('bench_query');
    await migrate(url);
    context.log(
      `loading ${sizes.table.toLocaleString('en')} events (tenant "big": ${sizes.bigTenant.toLocaleString('en')})`,
    );
    await bulkLoad(url, [
      ['big', sizes.bigTenant],
      ...skewedTenants('t', sizes.table - sizes.bigTenant, 200),
    ]);

    // The baseline reads on the same session settings as the tool's page connections.
    const client = new pg.Client({ connectionString: url, options: pageSessionOptions });
    await client.connect();
    const app = await openTool(url);
    const quiet = await openToolWithoutReadAudit(url);
    try {
      // Each call is timed in turn with the others (tool, raw, tool, raw…), so that a
      // noisy moment of the machine falls on both sides alike.
      const sampleInTurn = async <Calls extends Array<() => Promise<unknown>>>(...calls: Calls) => {
        for (let i = 0; i < Math.min(50, sizes.samples); i++) for (const call of calls) await call();
        const times = calls.map((): number[] => []);
        for (let i = 0; i < sizes.samples; i++) {
          for (const [index, call] of calls.entries()) {
            const started = performance.now();
            await call();
            times[index]?.push(performance.now() - started);
          }
        }
        return times.map((each) => ({ p50: median(each), p99: percentile(each, 99) })) as {
          [K in keyof Calls]: { p50: number; p99: number };
        };
      };
      const raw = (where: string, params: unknown[], name: string) => () =>
        client.query({
          name: `bench_${name.replace(/\W/g, '_')}`,
          text: `select ${columns} from activity_events where tenant_id = $1 ${where} order by seq desc limit 50`,
          values: ['big', ...params],
        });

      const [firstTool, firstRaw, firstQuiet] = await sampleInTurn(
        () => app.service.query('big', { limit: 50 }),
        raw('', [], 'first'),
        () => quiet.service.query('big', { limit: 50 }),
      );
      const rows: BenchRow[] = [
        {
          id: 'B5',
          workload: `first page (50), tenant of ${sizes.bigTenant.toLocaleString('en')} in ${sizes.table.toLocaleString('en')}`,
          tool: `p50 ${milliseconds(firstTool.p50)}, p99 ${milliseconds(firstTool.p99)}`,
          baseline: `p50 ${milliseconds(firstRaw.p50)} (keyset SQL)`,
          ratio: firstTool.p50 / firstRaw.p50,
          target: '≤ 1.3×',
          met: firstTool.p50 / firstRaw.p50 <= 1.3,
          figures: { tool_p50_ms: firstTool.p50, tool_p99_ms: firstTool.p99, baseline_p50_ms: firstRaw.p50 },
        },
      ];

      rows.push({
        id: 'B23',
        workload:
          "B5's first page with its read recorded (activity.events.read), over ACTIVITY_AUDIT_READS=false",
        tool: `p50 ${milliseconds(firstTool.p50)}, p99 ${milliseconds(firstTool.p99)}`,
        baseline: `p50 ${milliseconds(firstQuiet.p50)}, p99 ${milliseconds(firstQuiet.p99)} (reads not recorded)`,
        // A throughput ratio, as the target is: pages per second recorded over not.
        ratio: firstQuiet.p50 / firstTool.p50,
        target: '≥ 0.9×',
        met: firstQuiet.p50 / firstTool.p50 >= 0.9,
        figures: {
          tool_p50_ms: firstTool.p50,
          tool_p99_ms: firstTool.p99,
          unrecorded_p50_ms: firstQuiet.p50,
          unrecorded_p99_ms: firstQuiet.p99,
        },
      });

      // A cursor deepPage events down, reached the way a client pages: by cursors.
      let cursor: string | undefined;
      for (let read = 0; read < sizes.deepPage; read += 1000) {
        const page = await app.service.query('big', { limit: 1000, ...(cursor ? { cursor } : {}) });
        cursor = page.next_cursor ?? undefined;
      }
      const [deep] = await sampleInTurn(() => app.service.query('big', { limit: 50, cursor }));
      rows.push({
        id: 'B6',
        workload: `a page ${sizes.deepPage.toLocaleString('en')} events deep`,
        tool: `p50 ${milliseconds(deep.p50)}, p99 ${milliseconds(deep.p99)}`,
        baseline: `p50 ${milliseconds(firstRaw.p50)} (B5's first page, raw)`,
        ratio: deep.p50 / firstRaw.p50,
        target: '≤ 1.5×',
        met: deep.p50 / firstRaw.p50 <= 1.5,
        figures: { tool_p50_ms: deep.p50, tool_p99_ms: deep.p99, baseline_p50_ms: firstRaw.p50 },
      });

      const toolFilters: Record<string, Record<string, unknown>> = {
        'action prefix auth.*': { action: 'auth.*' },
        actor: { actor_id: 'user_42' },
        object: { object_id: 'doc_42' },
        'request id': { request_id: 'req_big_424242' },
      };
      const perFilter: string[] = [];
      const figures: Record<string, number> = {};
      let worst = 0;
      for (const [name, input] of Object.entries(toolFilters)) {
        const filter = rawFilters[name as keyof typeof rawFilters];
        const [tool, base] = await sampleInTurn(
          () => app.service.query('big', { ...input, limit: 50 }),
          raw(filter.sql, filter.params, name),
        );
        worst = Math.max(worst, tool.p50 / base.p50);
        perFilter.push(`${name} ${milliseconds(tool.p50)} vs ${milliseconds(base.p50)}`);
        figures[`${name} tool_p50_ms`] = tool.p50;
        figures[`${name} baseline_p50_ms`] = base.p50;
      }
      // One day, a day ago: a window the tool turns into a seq range.
      const dayAgo = new Date(Date.now() - 86_400_000);
      const twoDaysAgo = new Date(Date.now() - 2 * 86_400_000);
      const [windowTool, windowRaw] = await sampleInTurn(
        () =>
          app.service.query('big', {
            since: twoDaysAgo.toISOString(),
            until: dayAgo.toISOString(),
            limit: 50,
          }),
        () =>
          client.query({
            name: 'bench_window',
            text: `select ${columns} from activity_events where tenant_id = $1 and created_at >= $2 and created_at < $3
                 order by created_at desc, seq desc limit 50`,
            values: ['big', twoDaysAgo, dayAgo],
          }),
      );
      worst = Math.max(worst, windowTool.p50 / windowRaw.p50);
      perFilter.push(`one-day window ${milliseconds(windowTool.p50)} vs ${milliseconds(windowRaw.p50)}`);
      figures['window tool_p50_ms'] = windowTool.p50;
      figures['window baseline_p50_ms'] = windowRaw.p50;
      rows.push({
        id: 'B7',
        workload: 'each filter on the B5 tenant (worst ratio shown)',
        tool: 'see notes',
        baseline: 'raw SQL, same index',
        ratio: worst,
        target: '≤ 1.3× each',
        met: worst <= 1.3,
        figures,
        notes: `p50 tool vs raw: ${perFilter.join('; ')}`,
      });
      return rows;
    } finally {
      await app.close();
      await quiet.close();
      await client.end();
    }
  },
};
