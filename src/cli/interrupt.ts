/**
 * `items` until Ctrl-C (SIGINT): the listing stops after the item at hand, so that what
 * was written ends with a whole line and the command exits 0. A second Ctrl-C ends the
 * process at once, as it would have without this.
 */
export async function* untilInterrupted<T>(items: AsyncIterable<T>): AsyncGenerator<T> {
  let interrupted = false;
  const onInterrupt = () => {
    interrupted = true;
  };
  process.once('SIGINT', onInterrupt);
  try {
    for await (const item of items) {
      yield item;
      if (interrupted) return;
    }
  } finally {
    process.off('SIGINT', onInterrupt);
  }
}
