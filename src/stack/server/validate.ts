/**
 * Checks of request bodies, path parameters and query strings. Each failure is a 400 that names
 * the field and says what was expected and what came: `instructions: expected a non-empty
 * string, got a number`.
 */
import { ServiceError } from './service.js';
import {
  AGENT_NAME_PATTERN,
  AGENT_NAME_RULE,
  DEFAULT_LIST_LIMIT,
  EXECUTION_STATUSES,
  MAX_LIST_LIMIT,
  MAX_WAIT_MS,
  type ExecutionStatus,
} from './model.js';

const MAX_RUNNER_ID = 200;

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return value === '' ? 'an empty string' : `"${value.length > 40 ? `${value.slice(0, 40)}...` : value}"`;
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'number') return `${value}`;
  return `a ${typeof value}`;
}

function invalid(field: string, expected: string, got: unknown): ServiceError {
  return new ServiceError(400, 'invalid-field', `${field}: expected ${expected}, got ${describe(got)}`, field);
}

type Body = Record<string, unknown>;

/** The body must be a JSON object holding only `allowed` keys. */
function object(body: unknown, allowed: readonly string[]): Body {
  if (body === undefined) throw new ServiceError(400, 'invalid-body', 'the request body is empty; expected a JSON object');
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ServiceError(400, 'invalid-body', `expected the request body to be a JSON object, got ${describe(body)}`);
  }
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) {
      throw new ServiceError(400, 'unknown-field', `unknown field "${key}" (expected ${allowed.map((k) => `"${k}"`).join(', ')})`, key);
    }
  }
  return body as Body;
}

function required(body: Body, field: string): unknown {
  if (!(field in body) || body[field] === undefined) throw new ServiceError(400, 'missing-field', `${field} is required`, field);
  return body[field];
}

function nonEmptyString(value: unknown, field: string, max = Infinity): string {
  if (typeof value !== 'string' || value.trim() === '') throw invalid(field, 'a non-empty string', value);
  if (value.length > max) throw invalid(field, `at most ${max} characters`, `${value.length} characters`);
  return value;
}

function string(value: unknown, field: string): string {
  if (typeof value !== 'string') throw invalid(field, 'a string', value);
  return value;
}

export function checkAgentName(name: string, field = 'name'): string {
  if (!AGENT_NAME_PATTERN.test(name)) throw invalid(field, `a name of ${AGENT_NAME_RULE}`, name);
  return name;
}

export function parseAgentBody(raw: unknown, pathName: string): { instructions: string; model: string | null } {
  const body = object(raw, ['instructions', 'model', 'name']);
  // The name is the path's; a body may repeat it (a whole agent sent back), but not contradict it.
  if (body['name'] !== undefined && body['name'] !== pathName) throw invalid('name', `"${pathName}" (the name in the path)`, body['name']);
  const instructions = nonEmptyString(required(body, 'instructions'), 'instructions');
  const model = body['model'] === undefined || body['model'] === null ? null : nonEmptyString(body['model'], 'model', 200);
  return { instructions, model };
}

export function parseExecutionBody(raw: unknown): { agent: string; message: string } {
  const body = object(raw, ['agent', 'message']);
  const agent = checkAgentName(string(required(body, 'agent'), 'agent'), 'agent');
  const message = nonEmptyString(required(body, 'message'), 'message');
  return { agent, message };
}

export function parseClaimBody(raw: unknown): { runnerId: string; waitMs: number } {
  const body = object(raw, ['runner_id', 'wait_ms']);
  const runnerId = nonEmptyString(required(body, 'runner_id'), 'runner_id', MAX_RUNNER_ID);
  const wait = body['wait_ms'] ?? 0;
  if (typeof wait !== 'number' || !Number.isInteger(wait) || wait < 0 || wait > MAX_WAIT_MS) {
    throw invalid('wait_ms', `a whole number of milliseconds from 0 to ${MAX_WAIT_MS}`, wait);
  }
  return { runnerId, waitMs: wait };
}

export function parseRunnerBody(raw: unknown): { runnerId: string } {
  const body = object(raw, ['runner_id']);
  return { runnerId: nonEmptyString(required(body, 'runner_id'), 'runner_id', MAX_RUNNER_ID) };
}

export function parseCompleteBody(raw: unknown): { runnerId: string; warning?: string } {
  const body = object(raw, ['runner_id', 'warning']);
  const runnerId = nonEmptyString(required(body, 'runner_id'), 'runner_id', MAX_RUNNER_ID);
  return body['warning'] === undefined ? { runnerId } : { runnerId, warning: nonEmptyString(body['warning'], 'warning') };
}

export function parseChunkBody(raw: unknown): { runnerId: string; text: string } {
  const body = object(raw, ['runner_id', 'text']);
  const runnerId = nonEmptyString(required(body, 'runner_id'), 'runner_id', MAX_RUNNER_ID);
  return { runnerId, text: string(required(body, 'text'), 'text') };
}

export function parseFailBody(raw: unknown): { runnerId: string; error: string } {
  const body = object(raw, ['runner_id', 'error']);
  const runnerId = nonEmptyString(required(body, 'runner_id'), 'runner_id', MAX_RUNNER_ID);
  return { runnerId, error: nonEmptyString(required(body, 'error'), 'error') };
}

/** `POST /v1/executions/{id}/cancel` takes no fields; an empty body is fine. */
export function parseEmptyBody(raw: unknown): void {
  if (raw !== undefined) object(raw, []);
}

export function parseListQuery(q: URLSearchParams): { agent?: string; status?: ExecutionStatus; limit: number } {
  const out: { agent?: string; status?: ExecutionStatus; limit: number } = { limit: DEFAULT_LIST_LIMIT };
  const agent = q.get('agent');
  if (agent !== null && agent !== '') out.agent = checkAgentName(agent, 'agent');
  const status = q.get('status');
  if (status !== null && status !== '') {
    if (!(EXECUTION_STATUSES as readonly string[]).includes(status)) throw invalid('status', `one of ${EXECUTION_STATUSES.join(', ')}`, status);
    out.status = status as ExecutionStatus;
  }
  const limit = q.get('limit');
  if (limit !== null && limit !== '') {
    const n = /^\d+$/.test(limit) ? Number(limit) : NaN;
    if (!Number.isInteger(n) || n < 1 || n > MAX_LIST_LIMIT) throw invalid('limit', `a whole number from 1 to ${MAX_LIST_LIMIT}`, limit);
    out.limit = n;
  }
  return out;
}
