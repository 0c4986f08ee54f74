import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { postgresBin } from '../../test/helpers/postgres-server.js';
import { binPath, repoRoot } from '../lib/context.js';
import { bulkLoad, eventInput, importTenant, writeLines } from '../lib/dataset.js';
import { runProcess } from '../lib/process.js';
import { cliEnvironment, migrate } from '../lib/tool.js';
import { type BenchRow, formatNumber, perSecond, type Workload } from '../lib/workload.js';

const csvColumns =
  'tenant_id, seq, id, action, actor_type, actor_id, object_type, object_id, status, source, request_id, ip_hash, user_agent, metadata, created_at';

function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return `"${text.replaceAll('"', '""')}"`;
}

function psql(url: string, command: string) {
  return runProcess(join(postgresBin(), 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', url, '-c', command]);
}

/**
 * B4: `activity record --file` of NDJSON events against `COPY FROM STDIN` of the same
 * rows; B8: `activity query --all --format ndjson` against `COPY (SELECT …) TO STDOUT`.
 * Both end to end, through the built CLI, with the peak RSS of its process.
 */
export const cliIoWorkload: Workload = {
  ids: ['B4', 'B8'],
  async run(context) {
    const { sizes } = context;
    const rows: BenchRow[] = [];

    // B4
    const events = sizes.importEvents;
    const ndjson = join(context.scratch, 'import.ndjson');
    const csv = join(context.scratch, 'import.csv');
    context.log(`writing ${formatNumber(events)} events as NDJSON and as CSV`);
    await writeLines(ndjson, events, (i) => JSON.stringify(eventInput(importTenant(i), i)));
    const seqs = new Map<string, number>();
    await writeLines(csv, events, (i) => {
      const input = eventInput(importTenant(i), i);
      const seq = (seqs.get(input.tenant_id as string) ?? 0) + 1;
      seqs.set(input.tenant_id as string, seq);
      return [
        input.tenant_id,
        seq,
        randomUUID(),
        input.action,
        'user',
        input.actor_id,
        input.object_type,
        input.object_id,
        'success',
        input.source,
        input.request_id,
        'a'.repeat(64),
        input.user_agent,
        input.metadata,
        new Date().toISOString(),
      ]
        .map(csvField)
        .join(',');
    });
    const toolUrl = await context.createDatabase('bench_import_tool');
    await migrate(toolUrl);
    const tool = await runProcess(
      process.execPath,
      [binPath, 'record', '--file', ndjson, '--format', 'json'],
      {
        env: cliEnvironment(toolUrl),
        cwd: repoRoot,
      },
    );
    if (tool.exitCode !== 0) throw new Error(`record --file exited ${tool.exitCode}: ${tool.stderr}`);
    const copyUrl = await context.createDatabase('bench_import_copy');
    await migrate(copyUrl);
    const copy = await psql(
      copyUrl,
      `\\copy activity_events (${csvColumns}) from '${csv}' with (format csv)`,
    );
    if (copy.exitCode !== 0) throw new Error(`COPY FROM failed: ${copy.stderr}`);
    const importRatio = copy.seconds / tool.seconds;
    rows.push({
      id: 'B4',
      workload: `activity record --file, ${formatNumber(events)} NDJSON events`,
      tool: `${perSecond(events / tool.seconds, 'rows/s')}, peak RSS ${formatNumber(tool.peakRssMb)} MB`,
      baseline: `${perSecond(events / copy.seconds, 'rows/s')} (COPY FROM STDIN)`,
      ratio: importRatio,
      target: '≥ 0.5×; RSS ≤ 200 MB',
      met: importRatio >= 0.5 && tool.peakRssMb <= 200,
      figures: {
        tool_seconds: tool.seconds,
        tool_peak_rss_mb: tool.peakRssMb,
        baseline_seconds: copy.seconds,
      },
    });

    // B8
    const url = await context.createDatabase('bench_export');
    await migrate(url);
    context.log(
      `loading ${formatNumber(sizes.importEvents)} + ${formatNumber(sizes.exportSmall)} events to export`,
    );
    await bulkLoad(url, [
      ['export_big', sizes.importEvents],
      ['export_small', sizes.exportSmall],
    ]);
    const exportTool = (tenant: string) =>
      runProcess(process.execPath, [binPath, 'query', '--tenant', tenant, '--all', '--format', 'ndjson'], {
        env: cliEnvironment(url),
        cwd: repoRoot,
      });
    const small = await exportTool('export_small');
    const big = await exportTool('export_big');
    if (big.exitCode !== 0 || small.exitCode !== 0)
      throw new Error(`query --all failed: ${big.stderr}${small.stderr}`);
    const copyOut = await psql(
      url,
      `\\copy (select ${csvColumns} from activity_events where tenant_id = 'export_big' order by seq desc) to '/dev/null'`,
    );
    if (copyOut.exitCode !== 0) throw new Error(`COPY TO failed: ${copyOut.stderr}`);
    const exportRatio = copyOut.seconds / big.seconds;
    const flat = big.peakRssMb <= small.peakRssMb * 1.1;
    rows.push({
      id: 'B8',
      workload: `activity query --all --format ndjson, ${formatNumber(sizes.importEvents)} events`,
      tool: `${perSecond(sizes.importEvents / big.seconds, 'rows/s')}, peak RSS ${formatNumber(big.peakRssMb)} MB (${formatNumber(small.peakRssMb)} MB for ${formatNumber(sizes.exportSmall)})`,
      baseline: `${perSecond(sizes.importEvents / copyOut.seconds, 'rows/s')} (COPY TO STDOUT)`,
      ratio: exportRatio,
      target: '≥ 0.5×; RSS ≤ 200 MB, flat',
      met: exportRatio >= 0.5 && big.peakRssMb <= 200 && flat,
      figures: {
        tool_seconds: big.seconds,
        tool_peak_rss_mb: big.peakRssMb,
        tool_small_peak_rss_mb: small.peakRssMb,
        baseline_seconds: copyOut.seconds,
      },
      notes: `peak RSS ${formatNumber(big.peakRssMb)} MB for ${formatNumber(sizes.importEvents)} events vs ${formatNumber(small.peakRssMb)} MB for ${formatNumber(sizes.exportSmall)} (flat means within 10%)`,
    });
    return rows;
  },
};
