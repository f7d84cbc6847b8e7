/**
 * stigmer's version as the build inlined it. package.json is the one place the version is written:
 * scripts/bundle.mjs puts it into the bundle (esbuild `define`), so `stigmer --version` reads no
 * file. In tsc's unbundled output (what tests import directly) this is undefined and
 * `stigmerVersion()` (src/util/paths.ts) reads package.json instead.
 */
declare const __STIGMER_VERSION__: string | undefined;

export const BUNDLED_VERSION: string | undefined = typeof __STIGMER_VERSION__ === 'string' ? __STIGMER_VERSION__ : undefined;
