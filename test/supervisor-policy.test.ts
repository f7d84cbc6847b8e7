/**
 * src/supervisor/policy.ts: `with.restart` / `with.log` parsing and the restart decisions, with
 * the time passed in (no clock, no waiting).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_LOG, DEFAULT_RESTART, describeEnding, parseLog, parseRestart, parseSize, restartsOn, RestartTracker, type Ending } from '../src/supervisor/policy.js';

const crash: Ending = { code: 1, signal: null, reason: 'exited' };
const clean: Ending = { code: 0, signal: null, reason: 'exited' };

test('with.restart: defaults (policy no), durations, a bare policy string, YAML 1.1 `no`', () => {
  assert.deepEqual(parseRestart(undefined), DEFAULT_RESTART);
  assert.equal(DEFAULT_RESTART.policy, 'no');
  assert.deepEqual(parseRestart({ policy: 'on-failure', backoff: '50ms', max_backoff: '400ms', max_restarts: 3, window: '2s' }), {
    policy: 'on-failure', backoffMs: 50, maxBackoffMs: 400, maxRestarts: 3, windowMs: 2000,
  });
  assert.equal(parseRestart('always').policy, 'always');
  assert.equal(parseRestart({ policy: false }).policy, 'no');
  assert.equal(parseRestart({ policy: 'always', max_restarts: '7' }).maxRestarts, 7);
  // a backoff above the default max_backoff raises it
  assert.equal(parseRestart({ policy: 'always', backoff: '1m' }).maxBackoffMs, 60_000);
});

test('with.restart: a bad value says what and where', () => {
  assert.throws(() => parseRestart({ policy: 'sometimes' }), /with\.restart\.policy to be no, on-failure or always, got "sometimes"/);
  assert.throws(() => parseRestart({ policy: 'always', backoff: 'soon' }), /with\.restart\.backoff to be a duration/);
  assert.throws(() => parseRestart({ policy: 'always', max_restarts: -1 }), /with\.restart\.max_restarts to be a whole number/);
  assert.throws(() => parseRestart({ policy: 'always', backoff: '2s', max_backoff: '1s' }), /max_backoff \(1000 ms\) is shorter than with\.restart\.backoff/);
  assert.throws(() => parseRestart({ policy: 'always', retries: 3 }), /with\.restart\.retries is not a restart setting/);
  assert.throws(() => parseRestart(3), /with\.restart to be a mapping/);
  assert.throws(() => parseRestart({ policy: 'always', window: 0 }), /window to be longer than 0/);
});

test('with.log: sizes in binary units, keep, defaults 10MB x 3', () => {
  assert.deepEqual(parseLog(undefined), DEFAULT_LOG);
  assert.deepEqual(DEFAULT_LOG, { maxSize: 10 * 1024 * 1024, keep: 3 });
  assert.deepEqual(parseLog({ max_size: '512KB', keep: 1 }), { maxSize: 512 * 1024, keep: 1 });
  assert.equal(parseSize('10MB', 'x'), 10 * 1024 * 1024);
  assert.equal(parseSize('1.5k', 'x'), 1536);
  assert.equal(parseSize('2GiB', 'x'), 2 * 1024 ** 3);
  assert.equal(parseSize(4096, 'x'), 4096);
  assert.throws(() => parseLog({ max_size: 'big' }), /with\.log\.max_size to be a size like "10MB"/);
  assert.throws(() => parseLog({ max_size: 0 }), /with\.log\.max_size/);
  assert.throws(() => parseLog({ rotate: true }), /with\.log\.rotate is not a log setting/);
});

test('which endings each policy restarts', () => {
  assert.equal(restartsOn('no', crash), false);
  assert.equal(restartsOn('no', { ...crash, reason: 'unhealthy' }), false);
  assert.equal(restartsOn('on-failure', crash), true);
  assert.equal(restartsOn('on-failure', clean), false);
  assert.equal(restartsOn('on-failure', { code: null, signal: 'SIGKILL', reason: 'exited' }), true);
  assert.equal(restartsOn('on-failure', { code: null, signal: null, reason: 'exited' }), true, 'an exit it could not see counts as a failure');
  assert.equal(restartsOn('on-failure', { ...clean, reason: 'unhealthy' }), true);
  assert.equal(restartsOn('always', clean), true);
  assert.equal(describeEnding(crash), 'exit code 1');
  assert.equal(describeEnding({ code: null, signal: 'SIGSEGV', reason: 'exited' }), 'signal SIGSEGV');
  assert.equal(describeEnding({ ...crash, reason: 'unhealthy' }), 'failed liveness checks');
});

test('backoff doubles up to max_backoff; more than max_restarts within the window is a crash loop', () => {
  const t = new RestartTracker(parseRestart({ policy: 'on-failure', backoff: '100ms', max_backoff: '350ms', max_restarts: 4, window: '10s' }));
  let now = 1_000_000;
  const delays: number[] = [];
  for (let i = 1; i <= 4; i++) {
    t.ready(now);
    now += 10;
    const d = t.ended(now, crash);
    assert.equal(d.action, 'restart');
    if (d.action !== 'restart') return;
    assert.equal(d.attempt, i);
    assert.equal(d.max, 4);
    delays.push(d.delayMs);
    now += d.delayMs;
  }
  assert.deepEqual(delays, [100, 200, 350, 350]);
  t.ready(now);
  assert.deepEqual(t.ended(now + 10, crash), { action: 'crash-loop', restarts: 4, windowMs: 10_000 });
  // a clean exit under on-failure is no restart, not a crash loop
  assert.deepEqual(t.ended(now + 20, clean), { action: 'none' });
});

test('up for a whole window resets backoff and count; old restarts fall out of the window', () => {
  const t = new RestartTracker(parseRestart({ policy: 'always', backoff: '1s', max_backoff: '8s', max_restarts: 2, window: '1m' }));
  t.ready(0);
  assert.deepEqual(t.ended(1000, crash), { action: 'restart', delayMs: 1000, attempt: 1, max: 2 });
  t.ready(2500);
  assert.deepEqual(t.ended(3000, crash), { action: 'restart', delayMs: 2000, attempt: 2, max: 2 });
  // stayed up a whole window since it was last ready: starts over
  t.ready(6000);
  assert.deepEqual(t.ended(6000 + 60_000, clean), { action: 'restart', delayMs: 1000, attempt: 1, max: 2 });
  // ready again 2 s later, crashes 30 s after: only the restart within the last minute counts
  t.ready(68_000);
  assert.deepEqual(t.ended(98_000, crash), { action: 'restart', delayMs: 2000, attempt: 2, max: 2 });
  t.ready(100_000);
  assert.equal(t.ended(101_000, crash).action, 'crash-loop');
  // a manual restart starts over
  t.reset();
  assert.equal(t.ended(102_000, crash).action, 'restart');
});

test('max_restarts 0: the first failure is a crash loop; policy no never restarts', () => {
  assert.equal(new RestartTracker(parseRestart({ policy: 'always', max_restarts: 0 })).ended(5, crash).action, 'crash-loop');
  assert.deepEqual(new RestartTracker(DEFAULT_RESTART).ended(5, crash), { action: 'none' });
});
