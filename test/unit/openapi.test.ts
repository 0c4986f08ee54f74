import { readFileSync } from 'node:fs';
import { Validator } from '@seriousme/openapi-schema-validator';
import { describe, expect, it } from 'vitest';
import { streamPath } from '../../src/http/parameters.js';
import { newEvent } from '../helpers/new-event.js';
import { contractViolation, openApi } from '../helpers/openapi-contract.js';
import { repoRoot } from '../helpers/run-cli.js';

/** The document itself; that the server answers as it says is checked by every HTTP test (helpers/http-server.ts). */
describe('the OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    const result = await new Validator().validate(structuredClone(openApi));
    expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
    expect(result.valid).toBe(true);
    // The validator is no rubber stamp: a parameter without its `in` is refused.
    const broken = structuredClone(openApi) as unknown as {
      paths: { '/api/v1/activity': { get: { parameters: object[] } } };
    };
    broken.paths['/api/v1/activity'].get.parameters[0] = { name: 'action', schema: { type: 'string' } };
    expect((await new Validator().validate(broken)).valid).toBe(false);
  });

  it('is the one in docs/openapi.json (npm run openapi writes it)', async () => {
    await expect(`${JSON.stringify(openApi, null, 2)}\n`).toMatchFileSnapshot('../../docs/openapi.json');
  });

  it('names every route the server has, and no other', async () => {
    const routes = readFileSync(`${repoRoot}/src/http/routes.ts`, 'utf8');
    const served = [...routes.matchAll(/path: '([^']+)'/g)].map((match) => match[1]);
    // The stream's is named by its constant, which HEAD leaves out.
    expect(routes).toContain('path: streamPath,');
    served.push(streamPath);
    expect(Object.keys(openApi.paths).sort()).toEqual(served.sort());
  });

  it('refuses answers it does not describe', () => {
    const event = { ...newEvent('acme'), seq: 1, created_at: '2026-12-07T00:00:00.000Z' };
    const answer = (status: number, body: unknown, contentType = 'application/json') => ({
      method: 'GET',
      path: '/api/v1/activity?limit=1',
      status,
      contentType,
      body: JSON.stringify(body),
    });
    expect(contractViolation(answer(200, { data: [event], next_cursor: null }))).toBeUndefined();
    expect(
      contractViolation(answer(200, { data: [{ ...event, ip: '203.0.113.7' }], next_cursor: null })),
    ).toMatch(/additional properties/);
    expect(contractViolation(answer(200, { data: [{ ...event, seq: 0 }], next_cursor: null }))).toMatch(
      /seq/,
    );
    expect(contractViolation(answer(200, { data: [event] }))).toMatch(/next_cursor/);
    expect(contractViolation(answer(418, {}))).toMatch(/status not in the document/);
    expect(contractViolation(answer(200, { data: [], next_cursor: null }, 'text/plain'))).toMatch(
      /content type/,
    );
    const problem = {
      type: 'about:blank',
      title: 'Unauthorized',
      status: 401,
      detail: 'no token',
      code: 'UNAUTHORIZED',
    };
    expect(contractViolation(answer(401, problem, 'application/problem+json'))).toBeUndefined();
    expect(contractViolation(answer(401, { ...problem, stack: 'at …' }, 'application/problem+json'))).toMatch(
      /additional properties/,
    );
    expect(contractViolation(answer(401, { ...problem, code: 'NOPE' }, 'application/problem+json'))).toMatch(
      /code/,
    );
    expect(
      contractViolation({ ...answer(404, problem, 'application/problem+json'), path: '/nowhere' }),
    ).toBeUndefined();
    expect(contractViolation({ ...answer(200, {}), path: '/nowhere' })).toMatch(/no such operation/);
    expect(
      contractViolation({ ...answer(405, problem, 'application/problem+json'), method: 'DELETE' }),
    ).toBeUndefined();
  });
});
