import type { FastifyServerOptions } from 'fastify';
import type { LevelWithSilent } from 'pino';

/**
 * Phone numbers and Identity headers are personal data: logs keep enough of a number to tell
 * calls apart (country and first digits) and mask the rest.
 */
export function maskNumber(value: string): string {
  return value.replace(/\+?\d[\d\s().-]{5,}\d/g, (m) => {
    const digits = m.replace(/\D/g, '');
    return `${m.startsWith('+') ? '+' : ''}${digits.slice(0, 5)}${'*'.repeat(Math.max(0, digits.length - 5))}`;
  });
}

/** Fields that may hold a number or a PASSporT, wherever they appear in a logged object. */
const REDACTED_PATHS = [
  'from', 'to', 'pai', 'identity', 'number', 'customer', 'e164',
  '*.from', '*.to', '*.pai', '*.identity', '*.number', '*.customer', '*.e164',
  'req.headers.authorization', 'req.headers.identity',
];

export function loggerOptions(level: LevelWithSilent): FastifyServerOptions['logger'] {
  return {
    level,
    redact: { paths: REDACTED_PATHS, censor: '[masked]' },
    serializers: {
      // Fastify's default logs the whole URL: registry paths carry numbers.
      req: (req: { method: string; url: string; id: string; ip?: string }) => ({
        id: req.id,
        method: req.method,
        url: maskNumber(req.url),
        remoteAddress: req.ip,
      }),
    },
  };
}
