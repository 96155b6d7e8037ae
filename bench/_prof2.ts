import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createShakenVerifier } from '../src/shaken';
const V = '/work/shared/shaken-vectors';
const cases = JSON.parse(readFileSync(V + '/cases.json', 'utf8'));
const pem = readFileSync(V + '/certs/sp1234.pem', 'utf8');
const v = createShakenVerifier({ trustAnchors: [new X509Certificate(readFileSync(V + '/certs/root.pem'))], fetcher: { fetch: async () => ({ body: pem }) } });
const input = { identity: cases[0].request.identity, origCandidates: ['+442079460123'], dest: '+447400123456', receivedAt: new Date(cases[0].request.receivedAt) };
(async () => {
  for (let i = 0; i < 20000; i++) await v.verify(input);
  v.close();
})();
