import type { Writable } from 'node:stream';

export const formats = ['table', 'json', 'ndjson', 'csv'] as const;
export type Format = (typeof formats)[number];

/** `table` on a terminal, `ndjson` when piped. */
export function defaultFormat(stdout: { isTTY?: boolean }): Format {
  return stdout.isTTY ? 'table' : 'ndjson';
}

/** Writes to a stream and waits for it to drain when its buffer is full (constant memory). */
export interface Output {
  write(text: string | Uint8Array): Promise<void>;
}

/** The reader of the output went away (EPIPE: `activity query --all | head`). */
export class OutputClosed extends Error {
  constructor(cause: Error) {
    super('the reader of the output went away', { cause });
  }
}

export function createOutput(stream: Writable): Output {
  // A reader that left shows up as EPIPE at any time, with or without a write waiting
  // for the stream to drain; the writes after it fail with OutputClosed. Other errors
  // reach the waiting write, or with none, stay unhandled: the process fails loudly.
  let closed: OutputClosed | undefined;
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') {
      if (stream.listenerCount('error') === 1) throw error;
      return;
    }
    closed ??= new OutputClosed(error);
  });
  return {
    write(text) {
      if (closed) return Promise.reject(closed);
      if (stream.write(text)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const onDrain = () => {
          stream.off('error', onError);
          resolve();
        };
        const onError = (error: Error) => {
          stream.off('drain', onDrain);
          reject(closed ?? error);
        };
        stream.once('drain', onDrain);
        stream.once('error', onError);
      });
    },
  };
}
