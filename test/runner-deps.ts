/**
 * What an agent-runner under test talks to besides stigmer-server: the fake LLM providers and the
 * test Temporal frontend (the runner checks its WorkflowService's health and the namespace over gRPC).
 * `runnerDeps()` starts both before the file's tests and closes them after.
 */
import { before, after } from 'node:test';
import { pathToFileURL } from 'node:url';
import { fixture } from './helpers.js';
import type { FakeLlm } from './fixtures/fake-llm.mjs';

const { startFakeLlm } = (await import(pathToFileURL(fixture('fake-llm.mjs')).href)) as typeof import('./fixtures/fake-llm.mjs');
const { startFrontend } = (await import(pathToFileURL(fixture('temporal-frontend.mjs')).href)) as typeof import('./fixtures/temporal-frontend.mjs');

export interface RunnerDeps {
  /** set once the file's `before` hooks ran */
  readonly fakeLlm: FakeLlm;
  /** host:port of the Temporal stand-in */
  readonly temporalAddress: string;
}

/** Call at the top of a test file; read the fields inside tests. */
export function runnerDeps(): RunnerDeps {
  const deps: { fakeLlm?: FakeLlm; temporalAddress?: string } = {};
  let temporal: Awaited<ReturnType<typeof startFrontend>> | undefined;
  before(async () => {
    deps.fakeLlm = await startFakeLlm();
    temporal = await startFrontend();
    deps.temporalAddress = temporal.address;
  });
  after(async () => {
    await deps.fakeLlm?.close();
    await temporal?.close();
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
