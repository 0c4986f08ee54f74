import type { ActivityApp, ActivityRepository } from 'activity';
import { v7 as uuidv7 } from 'uuid';
import { eventInput } from '../lib/dataset.js';
import { mediansInTurn, throughput } from '../lib/stats.js';
import { migrate, openToolWithDatabase, rawInsert, withPool } from '../lib/tool.js';
import { type BenchRow, perSecond, type Workload } from '../lib/workload.js';

/**
 * B1–B3: recording one event at a time, through the service and as raw INSERTs, in
 * turn. B1 also times the store alone, so that its row shows how its gap to the raw
 * INSERT divides between storing an event and validating it.
 */
/** B1–B3's shapes: how many writers, over one tenant or one tenant each (B19–B21 take them too). */
export const recordCases = [
  { id: 'B1', workload: 'record one event at a time, 1 client', clients: 1, oneTenant: true, target: 0.8 },
  { id: 'B2', workload: 'record, 8 clients, 8 tenants', clients: 8, oneTenant: false, target: 0.8 },
  { id: 'B3', workload: 'record, 8 clients, one tenant', clients: 8, oneTenant: true, target: 0.7 },
];

export const recordWorkload: Workload = {
  ids: ['B1', 'B2', 'B3'],
  async run(context) {
    const rows: BenchRow[] = [];
    for (const scenario of recordCases) {
      const url = await context.createDatabase(`bench_${scenario.id.toLowerCase()}`);
      await migrate(url);
      const tenantOf = (client: number) => (scenario.oneTenant ? 'acme' : `tenant_${client}`);
      const { app, database } = await openToolWithDatabase(url);
      // Seqs far above the tool's, so the baseline's rows never collide with them.
      let seq = 10_000_000;
      const options = { clients: scenario.clients, seconds: context.sizes.seconds };
      const storeAlone =
        scenario.id === 'B1' ? storeAloneOf(app, database.repository, tenantOf(0)) : undefined;
      let medians: number[];
      try {
        medians = await withPool(url, scenario.clients, (pool) =>
          mediansInTurn(
            context.sizes.repetitions,
            () => throughput((client, i) => app.service.record(eventInput(tenantOf(client), i)), options),
            () => throughput((client, i) => rawInsert(pool, eventInput(tenantOf(client), i), seq++), options),
            ...(storeAlone ? [() => throughput((_, i) => storeAlone(i), options)] : []),
          ),
        );
      } finally {
        await app.close();
      }
      const [tool, baseline, store] = medians as [number, number, number | undefined];
      const ratio = tool / baseline;
      const storeFigures = store === undefined ? {} : { store_alone_events_per_second: store };
      rows.push({
        id: scenario.id,
        workload: scenario.workload,
        tool: perSecond(tool),
        baseline: `${perSecond(baseline)} (raw INSERT)`,
        ratio,
        target: `≥ ${scenario.target}×`,
        met: ratio >= scenario.target,
        figures: { tool_events_per_second: tool, baseline_events_per_second: baseline, ...storeFigures },
        ...(store === undefined
          ? {}
          : {
              notes: `the store alone (the repository's append of an event validated beforehand): ${perSecond(store)}, ${(store / baseline).toFixed(2)}× the raw INSERT`,
            }),
      });
    }
    return rows;
  },
};

type Prepared = ReturnType<ActivityApp['service']['prepare']>;

/**
 * The repository's append of one event at a time, of events prepared (validated,
 * scrubbed, IP hashed) before the clock starts, each with a new id: what storing
 * costs without the service's work in front of it.
 */
function storeAloneOf(app: ActivityApp, repository: ActivityRepository, tenantId: string) {
  const prepared = Array.from({ length: 1000 }, (_, i) => app.service.prepare(eventInput(tenantId, i)));
  return (i: number) => {
    const event = { ...(prepared[i % prepared.length] as Prepared), id: uuidv7() };
    return repository.appendGenerated([event]);
  };
}
