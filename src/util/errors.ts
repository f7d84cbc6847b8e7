/**
 * Errors a person caused and can fix. The CLI prints `message` (no stack trace) and exits with
 * `exitCode`. Anything else that reaches the top is a bug and is reported as an internal error.
 */
export const EXIT = {
  ok: 0,
  taskFailed: 1,
  usage: 2,
  sighup: 129,
  sigint: 130,
  sigterm: 143,
} as const;

export class UserError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number = EXIT.usage) {
    super(message);
    this.name = 'UserError';
    this.exitCode = exitCode;
  }
}

/** The end of an exhaustive `switch`: the compiler proves it unreachable; at run time it is a bug. */
export function unreachable(value: never, what: string): never {
  const tag = value && typeof value === 'object' ? ((value as Record<string, unknown>)['type'] ?? (value as Record<string, unknown>)['reason']) : value;
  throw new Error(`Internal error: ${what} ${JSON.stringify(tag)} is not handled`);
}
