/** Settings and figures the benches share. */

/** A positive number from the environment, or `fallback`; anything else stops the bench, naming the variable. */
export function positiveEnv(name: string, fallback: number): number {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number`);
  return v;
}

/** The median (the mean of the middle two of an even count); NaN for none. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** A whole number as the tables print it: 12,345. */
export const int = (x: number): string => Math.round(x).toLocaleString('en-GB');
