import { readFile } from 'node:fs/promises';

/**
 * How many TCP connections to `port` on this machine are ESTABLISHED, counted on the
 * server's side (/proc/net/tcp's local port): what the kernel says, whatever the
 * server believes of them.
 */
export async function establishedOnPort(port: number): Promise<number> {
  let count = 0;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => '');
    for (const line of text.trim().split('\n').slice(1)) {
      const [, local = '', , state = ''] = line.trim().split(/\s+/);
      // 01: ESTABLISHED
      if (state === '01' && Number.parseInt(local.split(':')[1] ?? '', 16) === port) count++;
    }
  }
  return count;
}
