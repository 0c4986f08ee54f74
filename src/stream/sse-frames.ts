// Server-Sent Events framing, both ways: the server writes frames, and `tail --url`,
// the tests and the bench read them with the one parser below. It imports nothing, so
// any shell may use it.

/**
 * One SSE frame. Fields must not hold CR or LF (they would end the field and let data
 * forge events), so `id` and `event` refuse them and `data` is one JSON line:
 * JSON.stringify never emits a raw newline.
 */
export function sseFrame(fields: { id?: string | number; event?: string; data: string }): string {
  const id = fields.id === undefined ? undefined : String(fields.id);
  for (const value of [id, fields.event]) {
    if (value !== undefined && /[\r\n]/.test(value))
      throw new Error('an SSE id or event name cannot hold CR or LF');
  }
  const lines = fields.data.split(/\r\n|\r|\n/).map((line) => `data: ${line}\n`);
  return `${id === undefined ? '' : `id: ${id}\n`}${fields.event ? `event: ${fields.event}\n` : ''}${lines.join('')}\n`;
}

/** A comment line: keeps proxies and clients from timing the connection out. */
export function sseComment(text: string): string {
  return `: ${text.replace(/[\r\n]/g, ' ')}\n\n`;
}

/** One parsed event of an SSE stream, as a browser's EventSource would see it. */
export interface SseMessage {
  id: string | undefined;
  event: string;
  data: string;
}

/**
 * Parses SSE text as it arrives: feed chunks, get complete messages. Follows the
 * WHATWG rules for the fields this tool uses (id, event, data; comments ignored).
 */
export function createSseParser(): (chunk: string) => SseMessage[] {
  let buffer = '';
  let id: string | undefined;
  let event = '';
  let data: string[] = [];
  return (chunk) => {
    buffer += chunk;
    const messages: SseMessage[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(buffer);
      // A CR at the end may be the first half of a CRLF split across chunks.
      if (!match || (match[0] === '\r' && match.index === buffer.length - 1)) break;
      const line = buffer.slice(0, match.index);
      buffer = buffer.slice(match.index + match[0].length);
      if (line === '') {
        if (data.length > 0) messages.push({ id, event: event || 'message', data: data.join('\n') });
        event = '';
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'id') id = value;
      else if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    return messages;
  };
}
