/** How long a follower waits before it tries again: longer after each failure in a row. */
const retryDelaysMs = [500, 1000, 2000, 5000, 10_000];

export function retryDelayMs(failuresInARow: number): number {
  return retryDelaysMs[Math.min(failuresInARow, retryDelaysMs.length - 1)] as number;
}

/** Resolves after `ms`, or at once when `stop` resolves first. */
export async function pauseUnlessStopped(ms: number, stop: Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([stop, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
