/**
 * Checksums files as release tools (goreleaser, sha256sum) write them: one `<sha256>  <name>` line
 * per file, `*<name>` marking binary mode, CRLF tolerated.
 */

const LINE = /^([0-9a-fA-F]{64}) [ *]?(.+)$/;

/** The sha256 (lowercase) listed for `filename`, or undefined when the file has no line. */
export function findChecksum(text: string, filename: string): string | undefined {
  for (const raw of text.split('\n')) {
    const m = LINE.exec(raw.replace(/\r$/, '').trim());
    if (!m) continue;
    let name = m[2]!;
    if (name.startsWith('*')) name = name.slice(1);
    if (name.startsWith('./')) name = name.slice(2);
    if (name === filename) return m[1]!.toLowerCase();
  }
  return undefined;
}

/** Whether `value` is a sha256 written as 64 hex digits. */
export function isSha256(value: string): boolean {
  return /^[0-9a-fA-F]{64}$/.test(value);
}
