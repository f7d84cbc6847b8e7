/** The one option parser of the light paths (src/util/light-args.ts): what it takes, and what it leaves to commander. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lightOptions } from '../src/util/light-args.js';

const VALUES = { '-f': 'file', '--file': 'file', '--data-dir': 'dataDir' };
const FLAGS = { '--json': 'json' };

test('light options: value options and flags in the spellings the help gives, each once', () => {
  assert.deepEqual(lightOptions([], VALUES, FLAGS), {});
  assert.deepEqual(lightOptions(['--json', '-f', 'a.yaml', '--data-dir', 'd'], VALUES, FLAGS), { json: true, file: 'a.yaml', dataDir: 'd' });
  for (const args of [
    ['--file=a.yaml'],
    ['-f'],
    ['-f', ''],
    ['-f', '-x'],
    ['-f', 'a', '--file', 'b'],
    ['--json', '--json'],
    ['--help'],
    ['extra'],
    ['constructor', 'x'],
    ['--json', 'x'],
  ]) {
    assert.equal(lightOptions(args, VALUES, FLAGS), undefined, args.join(' '));
  }
});
