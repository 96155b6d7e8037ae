import { Writable } from 'node:stream';
import pino from 'pino';
import { loggerOptions, maskNumber } from '../../src/ops/logger';

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
