/**
 * What an agent-runner under test talks to besides stigmer-server: the fake LLM providers and a
 * TCP listener standing in for Temporal (the runner only checks that it accepts connections).
 * `runnerDeps()` starts both before the file's tests and closes them after.
 */
import { before, after } from 'node:test';
import net from 'node:net';
import { pathToFileURL } from 'node:url';
import { fixture } from './helpers.js';
import type { FakeLlm } from './fixtures/fake-llm.mjs';

const { startFakeLlm } = (await import(pathToFileURL(fixture('fake-llm.mjs')).href)) as typeof import('./fixtures/fake-llm.mjs');

export interface RunnerDeps {
  /** set once the file's `before` hooks ran */
  readonly fakeLlm: FakeLlm;
  /** host:port of the Temporal stand-in */
  readonly temporalAddress: string;
}

/** Call at the top of a test file; read the fields inside tests. */
export function runnerDeps(): RunnerDeps {
  const deps: { fakeLlm?: FakeLlm; temporalAddress?: string } = {};
  const temporal = net.createServer((s) => s.end());
  before(async () => {
    deps.fakeLlm = await startFakeLlm();
    await new Promise<void>((r) => temporal.listen(0, '127.0.0.1', r));
    deps.temporalAddress = `127.0.0.1:${(temporal.address() as net.AddressInfo).port}`;
  });
  after(async () => {
    await deps.fakeLlm?.close();
    if (temporal.listening) await new Promise((r) => temporal.close(r));
  });
  return {
    get fakeLlm(): FakeLlm {
      if (!deps.fakeLlm) throw new Error('Internal error: runnerDeps() read before its before() hook ran');
      return deps.fakeLlm;
    },
    get temporalAddress(): string {
      if (!deps.temporalAddress) throw new Error('Internal error: runnerDeps() read before its before() hook ran');
      return deps.temporalAddress;
    },
  };
}
