/** Durations in the tasks file: "250ms", "30s", "2m", "1h", or a number of milliseconds. */
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parse a duration; throws a plain Error with a readable message when it is not one. */
export function parseDuration(value: unknown, what = 'duration'): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
  if (typeof value === 'string') {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value.trim());
    if (m) return Math.round(Number(m[1]) * UNITS[m[2]!]!);
    if (/^\d+$/.test(value.trim())) return Number(value.trim());
  }
  throw new Error(`Expected ${what} to be a duration like "250ms", "30s" or "2m", got ${JSON.stringify(value)}`);
}

/** `parseDuration` with a default for undefined. */
export function durationOr(value: unknown, fallbackMs: number, what?: string): number {
  return value === undefined || value === null ? fallbackMs : parseDuration(value, what);
}
