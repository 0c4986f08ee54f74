import { readFile } from 'node:fs/promises';

/**
 * How many TCP connections to `port` on this machine the server's side still holds
 * (/proc/net/tcp's local port): what the kernel says, whatever the server believes of
 * them. ESTABLISHED, and, closed by the server but still holding data for a client
 * that reads none, FIN-WAIT-1 and CLOSING; not LISTEN, nor TIME-WAIT (nothing held).
 */
export async function heldOnPort(port: number): Promise<number> {
  let count = 0;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => '');
    for (const line of text.trim().split('\n').slice(1)) {
      const [, local = '', , state = ''] = line.trim().split(/\s+/);
      // 01 ESTABLISHED, 04 FIN_WAIT1, 0B CLOSING
      if (heldStates.has(state) && Number.parseInt(local.split(':')[1] ?? '', 16) === port) count++;
    }
  }
  return count;
}

const heldStates = new Set(['01', '04', '0B']);
