import type { IncomingMessage } from 'node:http';
import { Writable } from 'node:stream';
import pino from 'pino';
import { requestIdOf, wantsAccessLine } from '../../src/http/request-log';
import { loggerOptions, maskLine, maskNumber, SERVICE, VERSION } from '../../src/ops/logger';

describe('log masking', () => {
  it('keeps the first digits of a number and masks the rest', () => {
    expect(maskNumber('+442079460123')).toBe('+44207*******');
    expect(maskNumber('/v1/registry/numbers/%2B442079460123')).toBe('/v1/registry/numbers/%2B44207*******');
    expect(maskNumber('/v1/registry/numbers/02079460123?x=1')).toBe('/v1/registry/numbers/02079******?x=1');
    expect(maskNumber('/healthz')).toBe('/healthz');
  });

  it('masks number and Identity fields wherever they appear in a log line', () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk, _enc, cb) => (lines.push(String(chunk)), cb()) });
    const opts = loggerOptions('info') as pino.LoggerOptions;
    const log = pino(opts, sink);
    log.info({ from: '+442079460123', call: { to: '+447400123456', identity: 'eyJ...' }, req: { method: 'GET', url: '/v1/registry/numbers/+442079460123', id: '1' } }, 'scored');
    const text = lines.join('');
    expect(text).not.toMatch(/2079460123|7400123456|eyJ/);
    expect(text).toMatch(/\+44207\*+/);
  });
});

describe('maskLine: a serialised log line', () => {
  const line = (fields: object) => JSON.stringify(fields);

  it('masks numbers in every string, the message included, in every way they are written', () => {
    const masked = maskLine(
      line({ msg: 'caller +44 20 7946 0123 rang 07400 123456; TN 442079460123\n02079460123, (020) 7946 0999', url: '/v1/registry/numbers/%2B442079460123', err: { message: 'sip:+447400123456@host is blocked' } }),
    );
    expect(JSON.parse(masked)).toEqual({
      msg: 'caller +44207******* rang 07400******; TN 44207*******\n02079******, (02079******',
      url: '/v1/registry/numbers/%2B44207*******',
      err: { message: 'sip:+44740*******@host is blocked' },
    });
  });

  it('leaves times, request ids, versions, hashes and JSON numbers as they are', () => {
    const untouched = line({
      time: '2026-12-07T10:00:00.000Z',
      reqId: '12345678-1234-5678-9012-123456789012',
      version: '0.1.0',
      registryVersion: '-4WVSWMHREe4DBIS',
      fingerprint: 'ab1234567890123456cd',
      at: 1733570000000,
      ms: 0.123456789,
    });
    expect(maskLine(untouched)).toBe(untouched);
  });
});

describe('loggerOptions', () => {
  it('writes ISO times, the service and its version on every line, child lines included', () => {
    const lines: string[] = [];
    const log = pino(loggerOptions('info'), { write: (l: string) => void lines.push(l) });
    log.info('started');
    log.child({ reqId: 'r1' }).warn({ number: '+442079460123' }, 'refused +442079460123');
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed).toHaveLength(2);
    for (const l of parsed) expect(l).toMatchObject({ service: SERVICE, version: VERSION, time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/) });
    expect(parsed[1]).toMatchObject({ msg: 'refused +44207*******', number: '[masked]' });
    expect(VERSION).toBe((jest.requireActual('../../package.json') as { version: string }).version);
  });
});

describe('access lines: which requests get one', () => {
  const never = () => 1;
  it('every 4xx and 5xx, on any route', () => {
    for (const status of [400, 401, 404, 429, 500, 503]) expect(wantsAccessLine('POST', '/v1/calls/score', status, 0, never)).toBe(true);
    expect(wantsAccessLine('GET', undefined, 404, 0)).toBe(true);
  });

  it("a busy route's success with probability ACCESS_LOG_SAMPLE; any other success always", () => {
    expect(wantsAccessLine('POST', '/v1/calls/score', 200, 0, () => 0)).toBe(false);
    expect(wantsAccessLine('POST', '/stir/v1/verification', 200, 0.1, () => 0.05)).toBe(true);
    expect(wantsAccessLine('POST', '/stir/v1/verification', 200, 0.1, () => 0.5)).toBe(false);
    expect(wantsAccessLine('GET', '/healthz', 200, 0)).toBe(false);
    expect(wantsAccessLine('POST', '/v1/calls/score', 200, 1)).toBe(true);
    expect(wantsAccessLine('GET', '/v1/registry/banks', 200, 0)).toBe(true);
    expect(wantsAccessLine('PUT', '/v1/registry/numbers/:number', 201, 0)).toBe(true);
  });
});

describe('request ids', () => {
  const req = (id?: string) => ({ headers: id === undefined ? {} : { 'x-request-id': id } }) as IncomingMessage;
  it("keeps the caller's UUID, replaces anything else with a fresh one", () => {
    expect(requestIdOf(req('B3D2C1A0-9F8E-4D7C-8B6A-5F4E3D2C1B0A'))).toBe('B3D2C1A0-9F8E-4D7C-8B6A-5F4E3D2C1B0A');
    const fresh = [requestIdOf(req('sbc-42')), requestIdOf(req('b3d2c1a0-9f8e-4d7c-8b6a-5f4e3d2c1b0a\n{"forged":1}')), requestIdOf(req())];
    for (const id of fresh) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(fresh).size).toBe(3);
  });
});
