/**
 * The default bounds of the in-process stores, in one place because they are chosen together:
 * a single instance at default settings stays under 256 MB resident however many distinct
 * callers, destinations, call ids and PASSporTs it is sent (bench/soak.ts draws the curve;
 * README.md, Performance, lists every store). The bytes are what each entry retains on the
 * heap, measured in a heap snapshot of the soak; the garbage collector's headroom comes on top.
 *
 * Every bound holds under hostile input: a new key past it evicts the least recent (or oldest)
 * one, except announcements, which refuse a new one while all are in their window.
 */
export const DEFAULT_MEMORY_BOUNDS = {
  /** Callers whose distinct destinations are counted (about 240 bytes each). */
  callers: 50_000,
  /** Destinations held over all callers together (about 100 bytes each). */
  destinations: 100_000,
  /** PASSporT fingerprints remembered for replay detection (about 120 bytes each). */
  fingerprints: 100_000,
  /** Verdict history entries (about 330 bytes each). */
  historyEntries: 50_000,
  /** Call ids with decision records, and the records' weight in all (see `approxBytes` in decisions.ts). */
  decisionCalls: 25_000,
  decisionBytes: 16 * 1024 * 1024,
  /** Numbers with fraud reports, and reports in all. */
  reportedNumbers: 100_000,
  reports: 50_000,
  /** Announced calls held. */
  announcements: 100_000,
} as const;
