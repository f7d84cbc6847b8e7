/**
 * A readiness wait brought forward by the service's output (src/process/probes.ts `nudge`): the
 * process kind wakes its probe when a captured service prints, so a port opened in the middle of
 * a long interval is seen at the next line, not at the interval's end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { waitReady } from '../src/process/probes.js';
import { freePort } from './helpers.js';

test('a nudge brings the next attempt forward: a port that opens during a wait longer than the deadline is ready at once', async () => {
  const port = await freePort();
  const server = net.createServer((s) => s.destroy());
  let wake: (() => void) | undefined;
  let failed = 0;
  try {
    // Without the nudge the second attempt would come after the interval, past the deadline: a timeout.
    const outcome = await waitReady(
      { kind: 'tcp', host: '127.0.0.1', port },
      {
        signal: AbortSignal.timeout(60_000),
        intervalMs: 60_000,
        timeoutMs: 30_000,
        nudge: (w) => (wake = w),
        onAttempt: () => {
          failed++;
          // The port opens after the first failed attempt, then the service "prints".
          server.listen(port, '127.0.0.1', () => wake?.());
        },
      },
    );
    assert.equal(outcome.status, 'ready');
    assert.equal(failed, 1);
    assert.equal(outcome.status === 'ready' ? outcome.attempts : 0, 2);
  } finally {
    await new Promise((r) => server.close(r));
  }
});
