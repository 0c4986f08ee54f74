import { describe, expect, it } from 'vitest';
import { createSseParser, type SseMessage, sseComment, sseFrame } from '../../src/stream/sse-frames.js';

/** Feeds `chunks` to one parser and returns every message it produced, in order. */
function parseChunks(chunks: readonly string[]): SseMessage[] {
  const parse = createSseParser();
  return chunks.flatMap((chunk) => parse(chunk));
}

describe('sseFrame', () => {
  it('lays out id, event and data, each on its own line, ended by a blank line', () => {
    expect(sseFrame({ id: 7, event: 'activity', data: '{"seq":7}' })).toBe(
      'id: 7\nevent: activity\ndata: {"seq":7}\n\n',
    );
  });

  it('writes id 0 and string ids as given', () => {
    expect(sseFrame({ id: 0, data: 'x' })).toBe('id: 0\ndata: x\n\n');
    expect(sseFrame({ id: '42', event: 'close', data: '{}' })).toBe('id: 42\nevent: close\ndata: {}\n\n');
  });

  it('leaves out id and event when they are not given', () => {
    expect(sseFrame({ data: 'hello' })).toBe('data: hello\n\n');
    expect(sseFrame({ event: 'close', data: '{}' })).toBe('event: close\ndata: {}\n\n');
  });

  it('writes empty data as one empty data line', () => {
    expect(sseFrame({ data: '' })).toBe('data: \n\n');
  });

  it('splits multi-line data into one data line per line, whatever the line ending', () => {
    expect(sseFrame({ id: 1, data: 'a\nb\r\nc\rd' })).toBe('id: 1\ndata: a\ndata: b\ndata: c\ndata: d\n\n');
  });

  it('cannot be made to forge a field or a second event from inside data', () => {
    const frame = sseFrame({ id: 3, event: 'activity', data: 'x\n\nid: 99\nevent: close\ndata: forged' });
    expect(frame.match(/^id: /gm)).toHaveLength(1);
    expect(frame.match(/\n\n/g)).toHaveLength(1);
    expect(parseChunks([frame])).toEqual([
      { id: '3', event: 'activity', data: 'x\n\nid: 99\nevent: close\ndata: forged' },
    ]);
  });

  it.each([
    ['LF in id', { id: '1\nevent: close', data: 'x' }],
    ['CR in id', { id: '1\r', data: 'x' }],
    ['CRLF in id', { id: '1\r\n', data: 'x' }],
    ['LF in event', { event: 'activity\ndata: forged', data: 'x' }],
    ['CR in event', { event: 'activity\r', data: 'x' }],
  ])('throws on %s', (_name, fields) => {
    expect(() => sseFrame(fields)).toThrow(/CR or LF/);
  });

  it('round-trips through the parser', () => {
    const data = JSON.stringify({ seq: 12, action: 'auth.login.success', note: 'line\nbreak' });
    expect(parseChunks([sseFrame({ id: 12, event: 'activity', data })])).toEqual([
      { id: '12', event: 'activity', data },
    ]);
  });
});

describe('sseComment', () => {
  it('is a colon line followed by a blank line', () => {
    expect(sseComment('heartbeat')).toBe(': heartbeat\n\n');
  });

  it('turns CR and LF into spaces so a comment cannot end early or smuggle a field', () => {
    const comment = sseComment('a\nb\rc\r\nid: 5');
    expect(comment).toBe(': a b c  id: 5\n\n');
    expect(parseChunks([comment, 'data: after\n\n'])).toEqual([
      { id: undefined, event: 'message', data: 'after' },
    ]);
  });
});

describe('createSseParser', () => {
  const stream = [
    ': connected\n\n',
    'id: 1\nevent: activity\ndata: {"seq":1}\n\n',
    ': heartbeat\n\n',
    'id: 2\nevent: activity\ndata: first\ndata: second\n\n',
    'data: no id here\n\n',
    'event: close\ndata: {"reason":"expired"}\n\n',
  ].join('');
  const expected: SseMessage[] = [
    { id: '1', event: 'activity', data: '{"seq":1}' },
    { id: '2', event: 'activity', data: 'first\nsecond' },
    { id: '2', event: 'message', data: 'no id here' },
    { id: '2', event: 'close', data: '{"reason":"expired"}' },
  ];

  it('parses complete messages and ignores comments', () => {
    expect(parseChunks([stream])).toEqual(expected);
  });

  it('gives the same messages wherever the text is split into two chunks', () => {
    for (let at = 0; at <= stream.length; at++) {
      expect(parseChunks([stream.slice(0, at), stream.slice(at)]), `split at ${at}`).toEqual(expected);
    }
  });

  it('gives the same messages when fed one character at a time', () => {
    expect(parseChunks([...stream])).toEqual(expected);
  });

  it('handles CRLF line endings split anywhere, including between CR and LF', () => {
    const crlf = stream.replaceAll('\n', '\r\n');
    for (let at = 0; at <= crlf.length; at++) {
      expect(parseChunks([crlf.slice(0, at), crlf.slice(at)]), `split at ${at}`).toEqual(expected);
    }
    expect(parseChunks([...crlf])).toEqual(expected);
  });

  it('does not take a CR at the end of a chunk plus the LF that follows for two line endings', () => {
    // Read as two line endings, "data: a\r" + "\n" would end the message early and the
    // data line after it would start a second one.
    expect(parseChunks(['data: a\r', '\ndata: b\r', '\n\r', '\n'])).toEqual([
      { id: undefined, event: 'message', data: 'a\nb' },
    ]);
  });

  it('accepts bare CR line endings', () => {
    expect(parseChunks(['id: 4\revent: activity\rdata: x\r\rdata: y\r\r', ': next\n'])).toEqual([
      { id: '4', event: 'activity', data: 'x' },
      { id: '4', event: 'message', data: 'y' },
    ]);
  });

  it('keeps the last id across messages, and an id-only block still moves it', () => {
    expect(parseChunks(['id: 5\ndata: a\n\n', 'data: b\n\n', 'id: 9\n\n', 'data: c\n\n'])).toEqual([
      { id: '5', event: 'message', data: 'a' },
      { id: '5', event: 'message', data: 'b' },
      { id: '9', event: 'message', data: 'c' },
    ]);
  });

  it('resets the event name after each message', () => {
    expect(parseChunks(['event: activity\ndata: a\n\ndata: b\n\n'])).toEqual([
      { id: undefined, event: 'activity', data: 'a' },
      { id: undefined, event: 'message', data: 'b' },
    ]);
  });

  it('strips one space after the colon only, and reads a bare field name as an empty value', () => {
    expect(parseChunks(['data:x\ndata:  y\ndata\n\n'])).toEqual([
      { id: undefined, event: 'message', data: 'x\n y\n' },
    ]);
  });

  it('drops a block with no data and ignores unknown fields', () => {
    expect(parseChunks(['event: activity\n\nretry: 1000\nfoo: bar\ndata: z\n\n'])).toEqual([
      { id: undefined, event: 'message', data: 'z' },
    ]);
  });

  it('holds back a message until its blank line arrives', () => {
    const parse = createSseParser();
    expect(parse('id: 1\nevent: activity\ndata: {"seq":1}\n')).toEqual([]);
    expect(parse('\n')).toEqual([{ id: '1', event: 'activity', data: '{"seq":1}' }]);
  });
});
