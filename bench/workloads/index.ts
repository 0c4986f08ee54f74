import type { Workload } from '../lib/workload.js';
import { cliIoWorkload } from './cli-io.js';
import { embeddedWorkload } from './embedded.js';
import { httpWorkload } from './http.js';
import { integrityWorkload } from './integrity.js';
import { purgeWorkload } from './purge.js';
import { queryWorkload } from './query.js';
import { recordWorkload } from './record.js';
import { sinkWorkload } from './sinks.js';
import { startupWorkload } from './startup.js';
import { streamWorkload } from './stream.js';
import { treeCostWorkload } from './tree-cost.js';

/** Every workload, in the order of the table. */
export const workloads: readonly Workload[] = [
  recordWorkload,
  cliIoWorkload,
  queryWorkload,
  purgeWorkload,
  startupWorkload,
  embeddedWorkload,
  httpWorkload,
  streamWorkload,
  integrityWorkload,
  treeCostWorkload,
  sinkWorkload,
];
