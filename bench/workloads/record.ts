import { eventInput } from '../lib/dataset.js';
import { mediansInTurn, throughput } from '../lib/stats.js';
import { migrate, openTool, rawInsert, withPool } from '../lib/tool.js';
import { type BenchRow, perSecond, type Workload } from '../lib/workload.js';

/** B1–B3: recording one event at a time, through the service and as raw INSERTs, in turn. */
export const recordWorkload: Workload = {
  ids: ['B1', 'B2', 'B3'],
  async run(context) {
    const cases = [
      {
        id: 'B1',
        workload: 'record one event at a time, 1 client',
        clients: 1,
        oneTenant: true,
        target: 0.8,
      },
      { id: 'B2', workload: 'record, 8 clients, 8 tenants', clients: 8, oneTenant: false, target: 0.8 },
      { id: 'B3', workload: 'record, 8 clients, one tenant', clients: 8, oneTenant: true, target: 0.7 },
    ];
    const rows: BenchRow[] = [];
    for (const scenario of cases) {
      const url = await context.createDatabase(`bench_${scenario.id.toLowerCase()}`);
      await migrate(url);
      const tenantOf = (client: number) => (scenario.oneTenant ? 'acme' : `tenant_${client}`);
      const app = await openTool(url);
      // Seqs far above the tool's, so the baseline's rows never collide with them.
      let seq = 10_000_000;
      const options = { clients: scenario.clients, seconds: context.sizes.seconds };
      let medians: number[];
      try {
        medians = await withPool(url, scenario.clients, (pool) =>
          mediansInTurn(
            context.sizes.repetitions,
            () => throughput((client, i) => app.service.record(eventInput(tenantOf(client), i)), options),
            () => throughput((client, i) => rawInsert(pool, eventInput(tenantOf(client), i), seq++), options),
          ),
        );
      } finally {
        await app.close();
      }
      const [tool, baseline] = medians as [number, number];
      const ratio = tool / baseline;
      rows.push({
        id: scenario.id,
        workload: scenario.workload,
        tool: perSecond(tool),
        baseline: `${perSecond(baseline)} (raw INSERT)`,
        ratio,
        target: `≥ ${scenario.target}×`,
        met: ratio >= scenario.target,
        figures: { tool_events_per_second: tool, baseline_events_per_second: baseline },
      });
    }
    return rows;
  },
};
