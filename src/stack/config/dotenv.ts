/**
 * `.env` in the working directory: read with dotenv's parser (which never prints), and always
 * under the real environment, which wins.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { UserError } from '../../util/errors.js';

type Parse = (src: Buffer) => Record<string, string>;
// dotenv costs ~15 ms to load: only when there is a .env to read (it is CommonJS: require is sync).
const loadParse = (): Parse => (createRequire(import.meta.url)('dotenv') as { parse: Parse }).parse;

/** The values of `<cwd>/.env` ({} when there is none). */
export function readDotenv(cwd: string): Record<string, string> {
  const file = join(cwd, '.env');
  if (!existsSync(file)) return {};
  try {
    return loadParse()(readFileSync(file));
  } catch (err) {
    throw new UserError(`${file}: cannot read: ${(err as Error).message}`);
  }
}

/** The environment with `<cwd>/.env` under it: a variable of the real environment always wins. */
export function loadDotenv(cwd: string = process.cwd(), env: Record<string, string | undefined> = process.env): Record<string, string> {
  const merged: Record<string, string> = { ...readDotenv(cwd) };
  for (const [k, v] of Object.entries(env)) if (v !== undefined) merged[k] = v;
  return merged;
}
