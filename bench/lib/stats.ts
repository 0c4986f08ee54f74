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

/**
 * Operations per second of `clients` concurrent loops calling `call` for `seconds`
 * (after a warm-up of a tenth of that). `call(client, i)` does one operation.
 */
export async function throughput(
  call: (client: number, i: number) => Promise<unknown>,
  options: { clients: number; seconds: number },
): Promise<number> {
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
  const done = await runFor(options.seconds * 1000);
  return done / ((performance.now() - started) / 1000);
}

/**
 * Runs each measurement `repetitions` times in turn (a, b, a, b…) and keeps each one's
 * median: a slow moment of the shared machine falls on both sides alike.
 */
export async function mediansInTurn(
  repetitions: number,
  ...measures: Array<() => Promise<number>>
): Promise<number[]> {
  const values = measures.map((): number[] => []);
  for (let i = 0; i < repetitions; i++) {
    for (const [index, measure] of measures.entries()) values[index]?.push(await measure());
  }
  return values.map(median);
}
