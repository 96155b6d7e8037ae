import type { FastifyInstance } from 'fastify';
import { build } from '../helpers/build';
import { bearer, KEYS_FILE } from '../helpers/keys';

let app: FastifyInstance;
beforeAll(async () => {
  app = await build({ API_KEYS_FILE: KEYS_FILE });
});
afterAll(() => app.close());

const post = (url: string, payload: string, type: string) =>
  app.inject({ method: 'POST', url, payload, headers: { ...bearer('admin'), 'content-type': type } });

describe('a JSON route refuses text/plain like any other type it does not read', () => {
  for (const url of ['/v1/calls/score', '/v1/reports', '/stir/v1/verification', '/v1/callbacks/verify']) {
    it(`POST ${url} with text/plain -> 415 { error, message }`, async () => {
      const res = await post(url, '{}', 'text/plain');
      expect([url, res.statusCode]).toEqual([url, 415]);
      expect(res.json()).toEqual({ error: 'unsupported_media_type', message: expect.stringMatching(/application\/json/) });
    });
  }
  it('text/plain with a charset too', async () => {
    const res = await post('/v1/calls/score', '{"from":"+447400123456","to":"+442079460999"}', 'text/plain; charset=utf-8');
    expect(res.statusCode).toBe(415);
  });
});

describe('a missing required field says "is required"', () => {
  it('score without from', async () => {
    const res = await post('/v1/calls/score', JSON.stringify({ to: '+442079460999' }), 'application/json');
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'validation_failed', message: 'from: is required', details: [{ field: 'from', message: 'is required' }] });
  });
  it('score without to', async () => {
    const res = await post('/v1/calls/score', JSON.stringify({ from: '+447400123456' }), 'application/json');
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'validation_failed', message: 'to: is required', details: [{ field: 'to', message: 'is required' }] });
  });
  it('score with neither names both', async () => {
    const res = await post('/v1/calls/score', '{}', 'application/json');
    expect(res.json().details).toEqual(expect.arrayContaining([{ field: 'from', message: 'is required' }, { field: 'to', message: 'is required' }]));
  });
  it('reports without category', async () => {
    const res = await post('/v1/reports', JSON.stringify({ number: '+447400123456' }), 'application/json');
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'validation_failed', message: 'category: is required' });
  });
  it('a field of the wrong type keeps its own message', async () => {
    const res = await post('/v1/calls/score', JSON.stringify({ from: 5, to: '+442079460999' }), 'application/json');
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/^from: /);
    expect(res.json().message).not.toMatch(/is required/);
  });
});
