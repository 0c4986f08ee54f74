import type { Ora } from 'ora';
import type { CliIo } from './context.js';

/**
 * A progress line on stderr, started, shown only when stderr is a terminal: never in
 * the data on stdout, nor in a log under cron. Stop it before writing the result.
 */
export async function startProgress(io: CliIo, text: string): Promise<Ora> {
  const { default: ora } = await import('ora');
  return ora({
    stream: io.stderr,
    isSilent: io.stderr.isTTY !== true,
    discardStdin: false,
    color: io.env.NO_COLOR ? false : 'cyan',
    text,
  }).start();
}

/** `count` things done since `startedMs` (performance.now()), as `12,000 <what> (3,400/s)`. */
export function progressText(count: number, what: string, startedMs: number): string {
  const perSecond = Math.round(count / Math.max(0.001, (performance.now() - startedMs) / 1000));
  return `${count.toLocaleString('en')} ${what} (${perSecond.toLocaleString('en')}/s)`;
}

/**
 * `items` as they come, their count (each weighed by `weigh`) on the progress line
 * every thousand or so.
 */
export async function* counting<T>(
  items: AsyncIterable<T>,
  spinner: Ora,
  what: string,
  weigh: (item: T) => number = () => 1,
): AsyncGenerator<T> {
  const started = performance.now();
  let count = 0;
  let shown = 0;
  for await (const item of items) {
    count += weigh(item);
    if (count - shown >= 1000) {
      shown = count;
      spinner.text = progressText(count, what, started);
    }
    yield item;
  }
}
