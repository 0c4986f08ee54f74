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

export function createOutput(stream: Writable): Output {
  return {
    write(text) {
      if (stream.write(text)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const onDrain = () => {
          stream.off('error', onError);
          resolve();
        };
        const onError = (error: Error) => {
          stream.off('drain', onDrain);
          reject(error);
        };
        stream.once('drain', onDrain);
        stream.once('error', onError);
      });
    },
  };
}
