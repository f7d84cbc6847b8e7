// Precompiles the JSON Schemas in schemas/ into standalone ajv validators (dist/validators/*.js),
// so loading a tasks file or config costs ~7 ms instead of compiling the schema at every start.
import Ajv from 'ajv';
import standaloneCode from 'ajv/dist/standalone/index.js';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

mkdirSync('dist/validators', { recursive: true });
for (const file of readdirSync('schemas').filter((f) => f.endsWith('.schema.json'))) {
  const schema = JSON.parse(readFileSync(join('schemas', file), 'utf8'));
  const ajv = new Ajv({ allErrors: true, verbose: true, strict: false, code: { source: true, esm: true } });
  const validate = ajv.compile(schema);
  const name = file.replace('.schema.json', '');
  writeFileSync(join('dist/validators', `${name}.js`), standaloneCode(ajv, validate));
}
