/**
 * Speed and time left of a transfer, for progress bars: the rate over the last few seconds (a
 * window of samples), so a stall shows as a falling speed rather than an average since the start.
 */
const WINDOW_MS = 5000;

export interface RateMeter {
  /** record `done` units at `now` (ms); returns the rate in units per second, when known */
  sample(done: number, now?: number): number | undefined;
}

export function rateMeter(windowMs = WINDOW_MS): RateMeter {
  const samples: { t: number; done: number }[] = [];
  return {
    sample(done, now = Date.now()) {
      samples.push({ t: now, done });
      while (samples.length > 2 && now - samples[0]!.t > windowMs) samples.shift();
      const first = samples[0]!;
      const dt = now - first.t;
      if (dt < 250 || done < first.done) return undefined;
      return ((done - first.done) * 1000) / dt;
    },
  };
}

/** Seconds left at `rate`, or undefined when it cannot be told. */
export function etaSeconds(done: number, total: number | undefined, rate: number | undefined): number | undefined {
  if (!total || !rate || rate <= 0 || done > total) return undefined;
  return (total - done) / rate;
}

/** 75 -> "1m15s", 3700 -> "1h01m", 5 -> "5s" */
export function formatEta(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
