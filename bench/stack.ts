/**
 * The benchmark graph: seven tasks shaped like the Stigmer stack, made of sleeping one-shots and
 * the fake service (listening after N ms), so every tool runs the same real processes.
 *
 *   resolve-config ─┬─> download-temporal ─> start-temporal ─> wait-temporal ─┐
 *                   ├─> gather-secrets ─────────────────────────────────────────┼─> start-agent-runner
 *                   └─> start-server (needs gather-secrets too) ────────────────┘
 *
 * One-shots run `sleep`; services run test/fixtures/service.mjs with `--after` and `--stamp`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixture } from './lib.js';

/** How long each piece of work takes, in ms. */
export const WORK = {
  config: 50,
  download: 200,
  secrets: 50,
  temporalAfter: 300,
  serverAfter: 200,
  runnerAfter: 100,
} as const;

export interface StackPorts {
  temporal: number;
  server: number;
  runner: number;
}

export type StackTask = 'resolve-config' | 'download-temporal' | 'start-temporal' | 'wait-temporal' | 'gather-secrets' | 'start-server' | 'start-agent-runner';

export const NEEDS: Record<StackTask, StackTask[]> = {
  'resolve-config': [],
  'download-temporal': ['resolve-config'],
  'start-temporal': ['download-temporal'],
  'wait-temporal': ['start-temporal'],
  'gather-secrets': ['resolve-config'],
  'start-server': ['resolve-config', 'gather-secrets'],
  'start-agent-runner': ['wait-temporal', 'start-server', 'gather-secrets'],
};

export const SERVICE = fixture('service.mjs');

export const seconds = (ms: number): string => String(ms / 1000);

/** Arguments of the fake service for one of the stack's services. */
export function serviceArgs(port: number, afterMs: number): string[] {
  return [SERVICE, '--listen', String(port), '--after', String(afterMs), '--stamp'];
}

/** The stack as a stigmer tasks file. */
export function stigmerYaml(ports: StackPorts): string {
  const node = JSON.stringify(process.execPath);
  const args = (port: number, after: number): string => `[${serviceArgs(port, after).map((a) => JSON.stringify(a)).join(', ')}]`;
  const sleep = (ms: number): string => `{ command: sleep, args: ["${seconds(ms)}"] }`;
  return `version: 1
tasks:
  resolve-config:
    uses: exec
    with: ${sleep(WORK.config)}
  download-temporal:
    uses: exec
    needs: [resolve-config]
    with: ${sleep(WORK.download)}
  start-temporal:
    uses: process
    needs: [download-temporal]
    with:
      command: ${node}
      args: ${args(ports.temporal, WORK.temporalAfter)}
      ports: [${ports.temporal}]
      ready: { log: "starting", timeout: 20s }
      stop: { signal: SIGTERM, grace: 5s }
  wait-temporal:
    uses: wait-port
    needs: [start-temporal]
    with: { host: 127.0.0.1, port: ${ports.temporal}, timeout: 20s }
  gather-secrets:
    uses: exec
    needs: [resolve-config]
    with: ${sleep(WORK.secrets)}
  start-server:
    uses: process
    needs: [resolve-config, gather-secrets]
    with:
      command: ${node}
      args: ${args(ports.server, WORK.serverAfter)}
      ports: [${ports.server}]
      ready: { tcp: { host: 127.0.0.1, port: ${ports.server} }, timeout: 20s }
      stop: { signal: SIGTERM, grace: 5s }
  start-agent-runner:
    uses: process
    needs: [wait-temporal, start-server, gather-secrets]
    with:
      command: ${node}
      args: ${args(ports.runner, WORK.runnerAfter)}
      ports: [${ports.runner}]
      ready: { tcp: { host: 127.0.0.1, port: ${ports.runner} }, timeout: 20s }
      stop: { signal: SIGTERM, grace: 5s }
`;
}

export function writeStigmerStack(dir: string, ports: StackPorts): string {
  const file = join(dir, 'stigmer.tasks.yaml');
  writeFileSync(file, stigmerYaml(ports));
  return file;
}

/** Each task's own share of the work, measured outside any tool (see overhead.ts). */
export interface Baselines {
  /** `sleep` of each one-shot, spawn to exit */
  config: number;
  download: number;
  secrets: number;
  /** the fake service, spawn to its "starting" line */
  serviceStarted: number;
  /** the fake service, spawn to listening, per `--after` */
  temporalListen: number;
  serverListen: number;
  runnerListen: number;
}

/** Each task's weight on the critical path, from the baselines. */
export function taskWeights(b: Baselines): Record<StackTask, number> {
  return {
    'resolve-config': b.config,
    'download-temporal': b.download,
    'start-temporal': b.serviceStarted,
    // the rest of Temporal's start-up: from its "starting" line to its port opening
    'wait-temporal': b.temporalListen - b.serviceStarted,
    'gather-secrets': b.secrets,
    'start-server': b.serverListen,
    'start-agent-runner': b.runnerListen,
  };
}

/** The longest chain of needs, by weight: the least time any runner could take. */
export function criticalPath(weights: Record<StackTask, number>): { path: StackTask[]; ms: number } {
  const memo = new Map<StackTask, { ms: number; path: StackTask[] }>();
  const longest = (t: StackTask): { ms: number; path: StackTask[] } => {
    const hit = memo.get(t);
    if (hit) return hit;
    let best: { ms: number; path: StackTask[] } = { ms: 0, path: [] };
    for (const n of NEEDS[t]) {
      const c = longest(n);
      if (c.ms > best.ms) best = c;
    }
    const r = { ms: best.ms + weights[t], path: [...best.path, t] };
    memo.set(t, r);
    return r;
  };
  return longest('start-agent-runner');
}
