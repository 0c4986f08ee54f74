/** Percentile of a sample (nearest rank); 0 for an empty one. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** What a loop of operations achieved: how many a second, and the Node CPU each cost. */
export interface Rate {
  perSecond: number;
  /** The process's CPU time (user and system) per operation, in µs: this Node's work, not the database's. */
  cpuMicrosPerOp: number;
}

/**
 * Operations per second of `clients` concurrent loops calling `call` for `seconds`
 * (after a warm-up of a tenth of that), and the process's CPU per operation over the
 * same time. `call(client, i)` does one operation.
 */
export async function rate(
  call: (client: number, i: number) => Promise<unknown>,
  options: { clients: number; seconds: number },
): Promise<Rate> {
  const runFor = async (ms: number) => {
    const deadline = performance.now() + ms;
    let done = 0;
    await Promise.all(
      Array.from({ length: options.clients }, async (_, client) => {
        for (let i = 0; performance.now() < deadline; i++) {
          await call(client, i);
          done++;
        }
      }),
    );
    return done;
  };
  await runFor(options.seconds * 100);
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  const done = await runFor(options.seconds * 1000);
  const cpu = process.cpuUsage(cpuBefore);
  return {
    perSecond: done / ((performance.now() - started) / 1000),
    cpuMicrosPerOp: (cpu.user + cpu.system) / Math.max(1, done),
  };
}

/** rate's operations per second alone. */
export async function throughput(
  call: (client: number, i: number) => Promise<unknown>,
  options: { clients: number; seconds: number },
): Promise<number> {
  return (await rate(call, options)).perSecond;
}

/**
 * Runs each measurement `repetitions` times in turn (a, b, a, b…) and keeps each one's
 * median: a slow moment of the shared machine falls on both sides alike.
 */
export async function mediansInTurn(
  repetitions: number,
  ...measures: Array<() => Promise<number>>
): Promise<number[]> {
  return (await inTurn(repetitions, measures)).map(median);
}

/** mediansInTurn for rates: the median of each figure. */
export async function rateMediansInTurn(
  repetitions: number,
  ...measures: Array<() => Promise<Rate>>
): Promise<Rate[]> {
  return (await inTurn(repetitions, measures)).map((rates) => ({
    perSecond: median(rates.map((each) => each.perSecond)),
    cpuMicrosPerOp: median(rates.map((each) => each.cpuMicrosPerOp)),
  }));
}

/** Each measurement's values, taken `repetitions` times in turn. */
async function inTurn<T>(repetitions: number, measures: ReadonlyArray<() => Promise<T>>): Promise<T[][]> {
  const values = measures.map((): T[] => []);
  for (let i = 0; i < repetitions; i++) {
    for (const [index, measure] of measures.entries()) values[index]?.push(await measure());
  }
  return values;
}
