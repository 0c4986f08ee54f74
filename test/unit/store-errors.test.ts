import { describe, expect, it } from 'vitest';
import { guarded, guardedStream, toStoreError } from '../../src/store/store-errors.js';

const where = 'PostgreSQL at db:5432/app';

describe('driver errors as the tool reports them', () => {
  it.each([
    ['a backend terminated mid-query', Object.assign(new Error('terminating connection'), { code: '57P01' })],
    ['a connection that broke mid-query', new Error('Connection terminated unexpectedly')],
    [
      'a query on a connection that broke earlier in its transaction',
      new Error('Client has encountered a connection error and is not queryable'),
    ],
    ['a query on a closed connection', new Error('Client was closed and is not queryable')],
    [
      'sslmode=require against a server without TLS',
      new Error('The server does not support SSL connections'),
    ],
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })],
  ])('%s is DB_UNAVAILABLE (exit 3, HTTP 503)', (_, error) => {
    const reported = toStoreError(error, where);
    expect(reported.code).toBe('DB_UNAVAILABLE');
    expect(reported.message).toMatch(/^cannot use PostgreSQL at db:5432\/app: /);
    expect(reported.cause).toBe(error);
  });

  it('an undefined table says to run migrate', () => {
    expect(toStoreError(Object.assign(new Error('x'), { code: '42P01' }), where).code).toBe(
      'DB_NOT_MIGRATED',
    );
  });

  it('anything else is INTERNAL, its message kept only as the cause', () => {
    const reported = toStoreError(
      Object.assign(new Error('syntax error at "selec"'), { code: '42601' }),
      where,
    );
    expect(reported.code).toBe('INTERNAL');
    expect(reported.message).not.toContain('selec');
  });
});

describe('a guarded store operation', () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });

  it('reports what it throws as the store error it is', async () => {
    const reported = guarded(where, () => Promise.reject(refused));
    await expect(reported).rejects.toMatchObject({ code: 'DB_UNAVAILABLE', cause: refused });
  });

  it('reports a stream that fails midway as the store error it is', async () => {
    async function* copy() {
      yield 'first';
      throw refused;
    }
    const read: string[] = [];
    const reading = (async () => {
      for await (const chunk of guardedStream(where, copy)) read.push(chunk);
    })();
    await expect(reading).rejects.toMatchObject({ code: 'DB_UNAVAILABLE', cause: refused });
    expect(read).toEqual(['first']);
  });

  it('opens the stream it guards only when it is first read', async () => {
    let opened = false;
    const stream = guardedStream(where, () => {
      opened = true;
      return (async function* () {})();
    });
    expect(opened).toBe(false);
    await stream.next();
    expect(opened).toBe(true);
  });

  it('closes the stream it guards when the reader leaves early', async () => {
    let closed = false;
    async function* copy() {
      try {
        yield 'first';
        yield 'second';
      } finally {
        closed = true;
      }
    }
    for await (const _ of guardedStream(where, copy)) break;
    expect(closed).toBe(true);
  });
});
