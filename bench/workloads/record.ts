import type { ActivityApp, ActivityRepository } from 'activity';
import { v7 as uuidv7 } from 'uuid';
import { eventInput } from '../lib/dataset.js';
import { type Rate, rate, rateMediansInTurn } from '../lib/stats.js';
import { contractAppend, migrate, openToolWithDatabase, rawInsert, withPool } from '../lib/tool.js';
import { type BenchRow, microseconds, perSecond, type Workload } from '../lib/workload.js';

/**
 * B1–B3: recording one event at a time, through the service, against two baselines
 * measured in turn with it: a raw single-row INSERT (what any table costs) and the
 * tool's own append statement sent by a bare client (what the contract costs in SQL:
 * the head row that makes seq gapless, the leaf hash, the NOTIFY). Each row has both
 * ratios, and the Node CPU per event of each side. B1 also times the store alone,
 * so that its row shows how its gap divides between storing an event and validating it.
 */
/** B1–B3's shapes: how many writers, over one tenant or one tenant each (B19–B21 take them too). */
export const recordCases = [
  {
    id: 'B1',
    workload: 'record one event at a time, 1 client',
    clients: 1,
    oneTenant: true,
    target: 0.8,
    against: 'contract',
  },
  {
    id: 'B2',
    workload: 'record, 8 clients, 8 tenants',
    clients: 8,
    oneTenant: false,
    target: 0.8,
    against: 'insert',
  },
  {
    id: 'B3',
    workload: 'record, 8 clients, one tenant',
    clients: 8,
    oneTenant: true,
    target: 0.7,
    against: 'insert',
  },
] as const;

const baselineNames = { insert: 'raw INSERT', contract: 'the append statement alone' } as const;

export const recordWorkload: Workload = {
  ids: ['B1', 'B2', 'B3'],
  async run(context) {
    const rows: BenchRow[] = [];
    for (const scenario of recordCases) {
      const url = await context.createDatabase(`bench_${scenario.id.toLowerCase()}`);
      await migrate(url);
      const tenantOf = (client: number) => (scenario.oneTenant ? 'acme' : `tenant_${client}`);
      const { app, database } = await openToolWithDatabase(url);
      // Seqs far above the tool's, so the raw INSERT's rows never collide with them.
      let seq = 10_000_000;
      const options = { clients: scenario.clients, seconds: context.sizes.seconds };
      const contract = Array.from({ length: scenario.clients }, (_, client) =>
        contractAppend(preparedEvents(app, tenantOf(client))),
      );
      const storeAlone =
        scenario.id === 'B1' ? storeAloneOf(app, database.repository, tenantOf(0)) : undefined;
      let rates: Rate[];
      try {
        rates = await withPool(url, scenario.clients, (pool) =>
          rateMediansInTurn(
            context.sizes.repetitions,
            () => rate((client, i) => app.service.record(eventInput(tenantOf(client), i)), options),
            () => rate((client, i) => rawInsert(pool, eventInput(tenantOf(client), i), seq++), options),
            () => rate((client, i) => (contract[client] as (typeof contract)[number])(pool, i), options),
            ...(storeAlone ? [() => rate((_, i) => storeAlone(i), options)] : []),
          ),
        );
      } finally {
        await app.close();
      }
      const [tool, insert, statement, store] = rates as [Rate, Rate, Rate, Rate | undefined];
      const baselines = { insert, contract: statement };
      const baseline = baselines[scenario.against];
      const ratio = tool.perSecond / baseline.perSecond;
      const other = scenario.against === 'insert' ? 'contract' : 'insert';
      const cpu = (each: Rate) => microseconds(each.cpuMicrosPerOp);
      const notes = [
        `${(tool.perSecond / baselines[other].perSecond).toFixed(2)}× ${baselineNames[other]} (${perSecond(baselines[other].perSecond)}, Node CPU ${cpu(baselines[other])}/event)`,
        `Node CPU per event: the tool ${(tool.cpuMicrosPerOp / insert.cpuMicrosPerOp).toFixed(2)}× the raw INSERT's`,
        ...(store === undefined
          ? []
          : [
              `the store alone (the repository's append of an event validated beforehand): ${perSecond(store.perSecond)}, ${(store.perSecond / insert.perSecond).toFixed(2)}× the raw INSERT, Node CPU ${cpu(store)}/event`,
            ]),
      ];
      rows.push({
        id: scenario.id,
        workload: scenario.workload,
        tool: perSecond(tool.perSecond),
        baseline: `${perSecond(baseline.perSecond)} (${baselineNames[scenario.against]})`,
        ratio,
        target: `≥ ${scenario.target}×`,
        met: ratio >= scenario.target,
        nodeCpu: `${cpu(tool)} (baseline ${cpu(baseline)})`,
        figures: {
          tool_events_per_second: tool.perSecond,
          raw_insert_events_per_second: insert.perSecond,
          append_statement_events_per_second: statement.perSecond,
          tool_node_cpu_us_per_event: tool.cpuMicrosPerOp,
          raw_insert_node_cpu_us_per_event: insert.cpuMicrosPerOp,
          append_statement_node_cpu_us_per_event: statement.cpuMicrosPerOp,
          ...(store === undefined
            ? {}
            : {
                store_alone_events_per_second: store.perSecond,
                store_alone_node_cpu_us_per_event: store.cpuMicrosPerOp,
              }),
        },
        notes: notes.join('; '),
      });
    }
    return rows;
  },
};

type Prepared = ReturnType<ActivityApp['service']['prepare']>;

/** A thousand of a tenant's events as the service prepares them (validated, scrubbed, IP hashed). */
function preparedEvents(app: ActivityApp, tenantId: string): Prepared[] {
  return Array.from({ length: 1000 }, (_, i) => app.service.prepare(eventInput(tenantId, i)));
}

/**
 * The repository's append of one event at a time, of events prepared before the clock
 * starts, each with a new id: what storing costs without the service's work in front of it.
 */
function storeAloneOf(app: ActivityApp, repository: ActivityRepository, tenantId: string) {
  const prepared = preparedEvents(app, tenantId);
  return (i: number) => {
    const event = { ...(prepared[i % prepared.length] as Prepared), id: uuidv7() };
    return repository.appendGenerated([event]);
  };
}
