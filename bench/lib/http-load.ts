import { Agent, request } from 'node:http';
import { percentile } from './stats.js';

export interface LoadResult {
  /** Completed 200 responses per second over the measured window. */
  requestsPerSecond: number;
  ok: number;
  /** Requests answered during the warm-up (to share out a server's CPU time). */
  warmupRequests: number;
  /** Responses other than 200, and requests that failed on the socket. */
  errors: number;
  p50Ms: number;
  p99Ms: number;
}

/** One GET on a keep-alive agent; resolves with the status (0 on a socket error) once the body is read. */
function get(agent: Agent, url: URL, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { agent, headers }, (response) => {
      // The body is read and dropped: the client spends as little as it can.
      response.resume();
      response.once('end', () => resolve(response.statusCode ?? 0));
      response.once('error', () => resolve(0));
    });
    req.once('error', () => resolve(0));
    req.end();
  });
}

/**
 * A small closed-loop load generator: `connections` loops, each on its own keep-alive
 * socket, sending the next GET as soon as the last answered; a warm-up of
 * `warmupSeconds`, then `seconds` measured (requests/s and latency of 200 responses).
 */
export async function runLoad(options: {
  url: string;
  headers?: Record<string, string>;
  connections: number;
  seconds: number;
  warmupSeconds: number;
}): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.connections });
  const url = new URL(options.url);
  const headers = options.headers ?? {};
  try {
    const phase = async (ms: number, measured: boolean) => {
      const deadline = performance.now() + ms;
      const times: number[] = [];
      let errors = 0;
      let answered = 0;
      await Promise.all(
        Array.from({ length: options.connections }, async () => {
          while (performance.now() < deadline) {
            const started = performance.now();
            const status = await get(agent, url, headers);
            answered++;
            if (status !== 200) errors++;
            else if (measured) times.push(performance.now() - started);
          }
        }),
      );
      return { times, errors, answered };
    };
    const warmup = await phase(options.warmupSeconds * 1000, false);
    const started = performance.now();
    const { times, errors } = await phase(options.seconds * 1000, true);
    const elapsed = (performance.now() - started) / 1000;
    return {
      requestsPerSecond: times.length / elapsed,
      ok: times.length,
      warmupRequests: warmup.answered,
      errors,
      p50Ms: percentile(times, 50),
      p99Ms: percentile(times, 99),
    };
  } finally {
    agent.destroy();
  }
}

/** GETs `url` once and parses the JSON body (to check both servers answer the same shape). */
export async function getJson(url: string, headers: Record<string, string> = {}): Promise<unknown> {
  return JSON.parse(await getText(url, headers));
}

/** GETs `url` once; rejects unless it answers 200. */
export function getText(url: string, headers: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.once('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (response.statusCode !== 200) reject(new Error(`GET ${url}: ${response.statusCode} ${text}`));
        else resolve(text);
      });
      response.once('error', reject);
    });
    req.once('error', reject);
    req.end();
  });
}

/** POSTs a JSON body; resolves with the status and the body text. */
export function postJson(
  agent: Agent,
  url: string,
  headers: Record<string, string>,
  body: unknown,
): Promise<{ status: number; text: string }> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        agent,
        method: 'POST',
        headers: {
          ...headers,
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(payload)),
        },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          text += chunk;
        });
        response.once('end', () => resolve({ status: response.statusCode ?? 0, text }));
        response.once('error', reject);
      },
    );
    req.once('error', reject);
    req.end(payload);
  });
}
