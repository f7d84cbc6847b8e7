/**
 * One line of a captured log, as `log-writer.ts` writes it and `stigmer logs` reads it:
 *
 *   2026-12-02T06:37:22.123Z out listening on 127.0.0.1:7233
 *   2026-12-02T06:37:22.130Z err warning: no config, using defaults
 *   2026-12-02T06:37:25.004Z --- restarted after exit code 1 (2/5)
 *
 * an RFC 3339 UTC timestamp with milliseconds, the stream (`out`, `err`, or `---` for stigmer's
 * own lines), one space, and the text exactly as the service wrote it (ANSI codes kept: readers
 * strip them for display). Lines written before this format (a service writing straight to the
 * file, or the `--- <ISO> starting <command>` header of that era) parse as `stream: undefined`.
 */

export type LogStream = 'out' | 'err' | '---';

export interface LogLine {
  /** epoch ms, or undefined for a line without a timestamp (the old format) */
  time: number | undefined;
  stream: LogStream | undefined;
  text: string;
}

// 2026-12-02T06:37:22.123Z + space + stream + space
const STAMP = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (out|err|---) /;
/** The header the pre-capture spawn wrote: `--- <ISO> starting <command>`. */
const OLD_HEADER = /^--- (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) /;

export function parseLogLine(line: string): LogLine {
  const m = STAMP.exec(line);
  if (m) return { time: Date.parse(m[1]!), stream: m[2] as LogStream, text: line.slice(m[0].length) };
  const old = OLD_HEADER.exec(line);
  if (old) return { time: Date.parse(old[1]!), stream: undefined, text: line };
  return { time: undefined, stream: undefined, text: line };
}

/** What a reader shows of a line: stigmer's own lines keep their `---` mark. */
export function displayText(l: LogLine): string {
  return l.stream === '---' ? `--- ${l.text}` : l.text;
}

/** What a service itself printed on this line; undefined for stigmer's own (`---`) lines. */
export function serviceText(line: string): string | undefined {
  const l = parseLogLine(line);
  return l.stream === '---' ? undefined : l.text;
}

/**
 * The prefix of every line of one millisecond. Lines of a chunk share it, so the date is
 * formatted once per chunk, not once per line.
 */
export class Stamp {
  private ms = -1;
  private iso = '';

  prefix(now: number, stream: LogStream): string {
    if (now !== this.ms) {
      this.ms = now;
      this.iso = new Date(now).toISOString();
    }
    return `${this.iso} ${stream} `;
  }
}
