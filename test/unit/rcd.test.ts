import { createHash } from 'node:crypto';
import { canonicalJson } from '../../src/shaken/canonical-json';
import { cleanDisplayText, finishRichCallData, jCardName, MAX_DISPLAY_NAME, parseRichClaims, type RawRichClaims } from '../../src/shaken';

/** Rich call data (RFC 9795): reading the claims, checking rcdi, cleaning what is shown. */

const sri = (content: string | Buffer) => `sha256-${createHash('sha256').update(content).digest('base64')}`;
const JCL = 'https://rcd.example/cards/bank.json';
const CARD = ['vcard', [['version', {}, 'text', '4.0'], ['fn', {}, 'text', 'Example Bank Fraud Team'], ['photo', {}, 'uri', 'https://rcd.example/logo.png']]];
const CARD_BYTES = Buffer.from(JSON.stringify(CARD));

function judge(raw: RawRichClaims, jclBody?: Buffer | null) {
  const parsed = parseRichClaims(raw);
  if (!parsed) return 'RCD_INVALID';
  const r = finishRichCallData(parsed, jclBody);
  return r.ok ? (r.rcd ?? 'none') : 'RCD_INVALID';
}

describe('rich call data: reading and integrity', () => {
  it('nam and crn, no rcdi: the name and the reason', () => {
    expect(judge({ rcd: { nam: 'Example Bank' }, crn: 'Your card was used abroad' })).toEqual({ name: 'Example Bank', callReason: 'Your card was used abroad' });
  });

  it('rcdi over /nam (the JCS canonical JSON of the value) that matches: shown', () => {
    expect(judge({ rcd: { nam: 'Example Bank' }, rcdi: { '/nam': sri('"Example Bank"') } })).toEqual({ name: 'Example Bank' });
  });

  it('a nam changed after its digest was made (tampered): RCD_INVALID, nothing shown', () => {
    expect(judge({ rcd: { nam: 'Examp1e Bank' }, rcdi: { '/nam': sri('"Example Bank"') } })).toBe('RCD_INVALID');
  });

  it('rcdi over an inline jCard: canonical JSON with members sorted; its fn names the caller when nam is absent', () => {
    const jcd = ['vcard', [['fn', { b: 1, a: 2 }, 'text', 'Inline Name']]];
    expect(canonicalJson(jcd)).toBe('["vcard",[["fn",{"a":2,"b":1},"text","Inline Name"]]]');
    expect(judge({ rcd: { jcd }, rcdi: { '/jcd': sri(canonicalJson(jcd)) } })).toEqual({ name: 'Inline Name' });
    expect(judge({ rcd: { jcd }, rcdi: { '/jcd': sri(JSON.stringify(jcd)) } })).toBe('RCD_INVALID');
  });

  it('jcl with rcdi over the fetched content: the jCard fn when it matches', () => {
    expect(judge({ rcd: { jcl: JCL }, rcdi: { '/jcl': sri(CARD_BYTES) } }, CARD_BYTES)).toEqual({ name: 'Example Bank Fraud Team' });
  });

  it('jcl whose fetched content differs from its digest (tampered): RCD_INVALID, even beside a nam', () => {
    const tampered = Buffer.from(JSON.stringify(['vcard', [['fn', {}, 'text', 'Evil Corp']]]));
    expect(judge({ rcd: { jcl: JCL }, rcdi: { '/jcl': sri(CARD_BYTES) } }, tampered)).toBe('RCD_INVALID');
    expect(judge({ rcd: { nam: 'Example Bank', jcl: JCL }, rcdi: { '/jcl': sri(CARD_BYTES) } }, tampered)).toBe('RCD_INVALID');
  });

  it('referenced content rcdi covers that could not be had: RCD_INVALID', () => {
    expect(judge({ rcd: { nam: 'Example Bank', jcl: JCL }, rcdi: { '/jcl': sri(CARD_BYTES) } }, null)).toBe('RCD_INVALID');
  });

  it('a jcl nobody vouched for that could not be had: no name from it, and no failure', () => {
    expect(judge({ rcd: { jcl: JCL } }, null)).toBe('none');
    expect(judge({ rcd: { nam: 'Example Bank', jcl: JCL } }, undefined)).toEqual({ name: 'Example Bank' });
  });

  it('a covered jcl that is not JSON: RCD_INVALID; one nobody covered: ignored', () => {
    const junk = Buffer.from('<html>');
    expect(judge({ rcd: { jcl: JCL }, rcdi: { '/jcl': sri(junk) } }, junk)).toBe('RCD_INVALID');
    expect(judge({ rcd: { jcl: JCL } }, junk)).toBe('none');
  });

  it('pointers to content never fetched (an icon, a photo in the jCard) are not checked', () => {
    expect(judge({ rcd: { nam: 'B', icn: 'https://rcd.example/i.png', jcl: JCL }, rcdi: { '/icn': sri('x'), '/jcl/1/2/3': sri('y') } })).toEqual({ name: 'B' });
  });

  it('a pointer to nothing: RCD_INVALID', () => {
    expect(judge({ rcd: { nam: 'B' }, rcdi: { '/jcd': sri('x') } })).toBe('RCD_INVALID');
    expect(judge({ rcd: { nam: 'B' }, rcdi: { '/icn': sri('x') } })).toBe('RCD_INVALID');
  });

  it.each<[string, RawRichClaims]>([
    ['rcd not an object', { rcd: 'Example Bank' }],
    ['nam not a string', { rcd: { nam: 42 } }],
    ['crn not a string', { rcd: { nam: 'B' }, crn: ['x'] }],
    ['jcd not an array', { rcd: { jcd: { fn: 'x' } } }],
    ['jcl not https', { rcd: { jcl: 'http://rcd.example/card.json' } }],
    ['jcl not a URL', { rcd: { jcl: 'card.json' } }],
    ['jcd and jcl both', { rcd: { jcd: ['vcard', []], jcl: JCL } }],
    ['rcdi without rcd', { rcdi: { '/nam': sri('"B"') } }],
    ['rcdi not an object', { rcd: { nam: 'B' }, rcdi: 'sha256-x' }],
    ['rcdi key not a pointer', { rcd: { nam: 'B' }, rcdi: { nam: sri('"B"') } }],
    ['rcdi digest of an unknown algorithm', { rcd: { nam: 'B' }, rcdi: { '/nam': `md5-${createHash('md5').update('"B"').digest('base64')}` } }],
    ['rcdi digest of the wrong length', { rcd: { nam: 'B' }, rcdi: { '/nam': 'sha256-AAAA' } }],
    ['nam absurdly long', { rcd: { nam: 'x'.repeat(5000) } }],
  ])('malformed (%s): RCD_INVALID', (_why, raw) => {
    expect(judge(raw)).toBe('RCD_INVALID');
  });

  it('http jcl is allowed in the lab (allowInsecure) only', () => {
    expect(parseRichClaims({ rcd: { jcl: 'http://127.0.0.1:8080/c.json' } }, true)?.jcl).toBe('http://127.0.0.1:8080/c.json');
  });
});

describe('cleanDisplayText: a name fit for a SIP display name', () => {
  it('removes control and format characters, quotes, backslashes and angle brackets', () => {
    expect(cleanDisplayText('Bank\r\nVia: evil\u0000"\\<sip:x>\u202eknaB', 64)).toBe('Bank Via: evil sip:x knaB');
  });

  it('collapses white space and trims; nothing left is undefined', () => {
    expect(cleanDisplayText('  Example\t\t Bank  ', 64)).toBe('Example Bank');
    expect(cleanDisplayText('\u0007\u200b""', 64)).toBeUndefined();
  });

  it('bounds the length in code points, never splitting a surrogate pair', () => {
    expect(cleanDisplayText('x'.repeat(500), MAX_DISPLAY_NAME)).toHaveLength(MAX_DISPLAY_NAME);
    expect([...cleanDisplayText('😀'.repeat(100), 10)!]).toHaveLength(10);
  });

  it('a hostile nam comes out clean, and a hostile crn too', () => {
    expect(judge({ rcd: { nam: `"Bank"\r\nX-Evil: 1 ${'A'.repeat(200)}` }, crn: 'fraud\u0085check' })).toEqual({ name: `Bank X-Evil: 1 ${'A'.repeat(49)}`, callReason: 'fraud check' });
  });

  it('jCardName reads fn and nothing else', () => {
    expect(jCardName(CARD)).toBe('Example Bank Fraud Team');
    expect(jCardName(['vcard', [['n', {}, 'text', 'x']]])).toBeUndefined();
    expect(jCardName({ fn: 'x' })).toBeUndefined();
  });
});
