import { parseVariant } from '../../bench/compare-env';

describe('compare-env configurations', () => {
  it('reads a name and its variables', () => {
    expect(parseVariant('pool1:UV_THREADPOOL_SIZE=1,LOG_LEVEL=warn')).toEqual({ name: 'pool1', env: { UV_THREADPOOL_SIZE: '1', LOG_LEVEL: 'warn' } });
    expect(parseVariant('defaults:')).toEqual({ name: 'defaults', env: {} });
    expect(parseVariant('defaults')).toEqual({ name: 'defaults', env: {} });
    expect(parseVariant('url:X=a=b')).toEqual({ name: 'url', env: { X: 'a=b' } });
  });

  it('refuses what it cannot read', () => {
    expect(() => parseVariant(':A=1')).toThrow('needs a name');
    expect(() => parseVariant('x:A')).toThrow('not VAR=value: A');
    expect(() => parseVariant('x:=1')).toThrow('not VAR=value');
  });
});
