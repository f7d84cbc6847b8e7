/**
 * The one error type the LLM clients throw. `kind` says what went wrong, `retryable` whether the
 * same request may succeed later; the message is already fit to print (the API key is never in it).
 */
import { mask } from '../../util/mask.js';
import type { LlmProvider } from './defaults.js';

export type LlmErrorKind =
  /** the provider answered with a non-2xx status */
  | 'http'
  /** no connection could be made, or it broke before the answer started */
  | 'connection'
  /** the provider reported an error inside a stream that had started (status 200) */
  | 'stream'
  /** the stream ended (or was cut) before the provider said it was complete */
  | 'stream-cut'
  /** the model declined to answer (OpenAI `refusal`, Anthropic stop reason `refusal`) */
  | 'refusal'
  /** the answer did not parse as the provider's format */
  | 'protocol'
  /** the per-call timeout passed */
  | 'timeout'
  /** the caller's AbortSignal fired */
  | 'aborted';

export interface LlmErrorInit {
  provider: LlmProvider;
  kind: LlmErrorKind;
  message: string;
  status?: number;
  /** the provider's own message, as it sent it (masked) */
  providerMessage?: string;
  /** the provider's error type/code, e.g. `overloaded_error`, `invalid_api_key` */
  providerCode?: string;
  retryable?: boolean;
  retryAfterMs?: number;
  /** the provider's id of the request (`request-id`, `x-request-id`), for its support */
  requestId?: string;
  hint?: string;
  /** the key to scrub from every text, in case the provider echoed it */
  apiKey?: string;
}

export class LlmError extends Error {
  readonly provider: LlmProvider;
  readonly kind: LlmErrorKind;
  readonly status: number | undefined;
  readonly providerMessage: string | undefined;
  readonly providerCode: string | undefined;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  readonly requestId: string | undefined;
  readonly hint: string | undefined;

  constructor(init: LlmErrorInit) {
    const scrub = (s: string): string => mask(init.apiKey ? s.split(init.apiKey).join('********') : s);
    super(scrub(init.requestId ? `${init.message} (request id ${init.requestId})` : init.message));
    this.name = 'LlmError';
    this.provider = init.provider;
    this.kind = init.kind;
    this.status = init.status;
    this.providerMessage = init.providerMessage === undefined ? undefined : scrub(init.providerMessage);
    this.providerCode = init.providerCode;
    this.retryable = init.retryable ?? false;
    this.retryAfterMs = init.retryAfterMs;
    this.requestId = init.requestId;
    this.hint = init.hint === undefined ? undefined : scrub(init.hint);
  }
}

export function isLlmError(err: unknown): err is LlmError {
  return err instanceof LlmError;
}
