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

/**
 * `count` things done since `startedMs` (performance.now()), as `12,000 <what> (3,400/s)`;
 * with the share of the work `done` (0 to 1) when it is known, also how much and how
 * long is left: `…, 40 %, about 9 s left`.
 */
export function progressText(
  count: number,
  what: string,
  startedMs: number,
  done?: number,
  nowMs = performance.now(),
): string {
  const seconds = Math.max(0.001, (nowMs - startedMs) / 1000);
  const perSecond = Math.round(count / seconds);
  const text = `${count.toLocaleString('en')} ${what} (${perSecond.toLocaleString('en')}/s)`;
  if (done === undefined || !(done > 0) || done >= 1) return text;
  const left = Math.ceil((seconds * (1 - done)) / done);
  return `${text}, ${Math.floor(done * 100)} %, about ${left < 120 ? `${left} s` : `${Math.ceil(left / 60)} min`} left`;
}

/**
 * `items` as they come, their count (each weighed by `weigh`) on the progress line
 * every thousand or so; with `done`, the share of the work done so far (see progressText).
 */
export async function* counting<T>(
  items: AsyncIterable<T>,
  spinner: Ora,
  what: string,
  weigh: (item: T) => number = () => 1,
  done?: () => number | undefined,
): AsyncGenerator<T> {
  const started = performance.now();
  let count = 0;
  let shown = 0;
  for await (const item of items) {
    count += weigh(item);
    if (count - shown >= 1000) {
      shown = count;
      spinner.text = progressText(count, what, started, done?.());
    }
    yield item;
  }
}
