/**
 * The objects stigmer-server stores and serves, and the names and limits they obey. Shared by
 * the server, its store and the HTTP client (the client imports types only).
 */

/** An agent: instructions for the LLM plus an optional model that overrides the runner's default. */
export interface Agent {
  name: string;
  instructions: string;
  model: string | null;
  created_at: string;
  updated_at: string;
}

/**
 * Where an execution is in its life:
 *
 *   queued ──claim──> running ──complete──> succeeded
 *     ^                  │ ──────fail─────> failed
 *     └──release/lease───┘
 *   queued | running ──cancel──> cancelled
 */
export type ExecutionStatus =
  /** waiting for a runner to claim it */
  | 'queued'
  /** claimed by a runner that holds its lease */
  | 'running'
  /** the runner completed it; `output` is the whole answer */
  | 'succeeded'
  /** the runner (or the server) failed it; `error` says why */
  | 'failed'
  /** cancelled by a user before it finished */
  | 'cancelled';

export const EXECUTION_STATUSES: readonly ExecutionStatus[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];

/** Statuses an execution never leaves. */
export function isFinished(status: ExecutionStatus): boolean {
  return status === 'succeeded' || status === 'failed' || status === 'cancelled';
}

/** An execution as the API shows it. */
export interface Execution {
  id: string;
  agent: string;
  message: string;
  model: string | null;
  status: ExecutionStatus;
  output: string;
  error: string | null;
  /** set on a succeeded execution whose answer is not what was asked for in full (cut at the length limit) */
  warning?: string;
  created_at: string;
  updated_at: string;
  attempts: number;
}

/** An execution as the store keeps it: the runner that holds it is not part of the API. */
export interface StoredExecution extends Execution {
  runner_id: string | null;
}

/** What a runner gets from `POST /v1/runner/claim`. */
export interface Claim {
  execution: Execution;
  agent: Agent;
  lease_ms: number;
}

/** Events of `GET /v1/executions/{id}/events`, in the order the server sends them. */
export type ExecutionEvent =
  /** a piece of output, in order */
  | { type: 'chunk'; text: string }
  /** the status changed (or, first thing on a stream, the current status); `attempt` counts claims */
  | { type: 'status'; status: ExecutionStatus; attempt: number }
  /** the last event: the final status and the error of a failed execution */
  | { type: 'done'; status: ExecutionStatus; error: string | null; warning?: string };

export interface Health {
  status: 'ok';
  version: string;
  uptime_ms: number;
}

/** The JSON body of every error response. */
export interface ApiErrorBody {
  error: { code: string; message: string; field?: string };
}

export const AGENT_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const AGENT_NAME_RULE = 'lowercase letters, digits and "-", starting with a letter or digit, at most 63 characters';
export const MAX_BODY_BYTES = 1024 * 1024;
export const MAX_WAIT_MS = 30_000;
export const DEFAULT_LEASE_MS = 15_000;
export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 1000;
