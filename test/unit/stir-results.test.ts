import { verifyResults } from '../../src/http/routes/stir';
import type { ShakenVerification } from '../../src/shaken';

const passed = (errors: ShakenVerification['errors']): ShakenVerification => ({ verstat: 'TN-Validation-Passed', attestation: 'A', errors }) as ShakenVerification;

describe('the STI-VS verifyResults', () => {
  it('gives no failure cause for rich call data dropped from a call that passed', () => {
    expect(verifyResults(passed(['RCD_INVALID']))).toEqual([]);
  });

  it('still gives the cause when the call failed', () => {
    expect(verifyResults({ ...passed(['BAD_SIGNATURE', 'RCD_INVALID']), verstat: 'TN-Validation-Failed' }).map((r) => r.reasonCode)).toEqual([438]);
  });
});
